"""IDX reading and writing: round trips, gzip detection by content, clear errors, and files whose
header and size disagree (gzip bombs, huge raw files) refused at the cost of the honest size."""

from __future__ import annotations

import gzip
import time
import tracemalloc
import zlib

import numpy as np
import pytest

from mnist_nn.idx import IMAGES_MAGIC, LABELS_MAGIC, IDXError, read_idx, write_idx


@pytest.mark.parametrize("name", ["images-idx3-ubyte", "images-idx3-ubyte.gz"])
def test_round_trip_uint8_images(tmp_path, name):
    X = np.random.default_rng(0).integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    path = write_idx(tmp_path / name, X)
    X_read = read_idx(path, magic=IMAGES_MAGIC)
    assert X_read.dtype == np.uint8 and X_read.shape == (5, 28, 28)
    np.testing.assert_array_equal(X_read, X)
    X_read[0, 0, 0] = 1  # the result is an ordinary writable array


@pytest.mark.parametrize("dtype", ["i1", "i2", "i4", "f4", "f8"])
def test_round_trip_other_types_in_native_byte_order(tmp_path, dtype):
    A = (np.arange(24).reshape(2, 3, 4) - 10).astype(dtype)
    A_read = read_idx(write_idx(tmp_path / "a.idx", A))
    assert A_read.dtype == A.dtype and A_read.dtype.isnative
    np.testing.assert_array_equal(A_read, A)


def test_header_matches_the_mnist_layout(tmp_path):
    path = write_idx(tmp_path / "labels-idx1-ubyte", np.array([7, 2, 1], dtype=np.uint8))
    assert path.read_bytes() == bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 2, 1])
    assert int.from_bytes(path.read_bytes()[:4], "big") == LABELS_MAGIC


def test_gzip_is_detected_by_content_not_name(tmp_path):
    y = np.array([3, 1, 4], dtype=np.uint8)
    plain = write_idx(tmp_path / "plain", y).read_bytes()
    (tmp_path / "compressed-but-no-gz-suffix").write_bytes(gzip.compress(plain))
    (tmp_path / "plain-with-gz-suffix.gz").write_bytes(plain)
    np.testing.assert_array_equal(read_idx(tmp_path / "compressed-but-no-gz-suffix"), y)
    np.testing.assert_array_equal(read_idx(tmp_path / "plain-with-gz-suffix.gz"), y)


def test_gzip_output_is_deterministic(tmp_path):
    y = np.arange(10, dtype=np.uint8)
    first = write_idx(tmp_path / "a.gz", y).read_bytes()
    second = write_idx(tmp_path / "b.gz", y).read_bytes()
    assert first == second


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "too short"),
        (b"<html>Not found</html>", "bad magic"),
        (bytes([0, 0, 0x42, 1, 0, 0, 0, 1, 5]), "bad magic"),  # unknown type code
        (bytes([0, 0, 8, 3, 0, 0, 0, 2]), "truncated header"),
        (bytes([0, 0, 8, 1, 0, 0, 0, 4, 1, 2]), "truncated"),
        (bytes([0, 0, 8, 1, 0, 0, 0, 1, 1, 2]), "unexpected bytes"),
    ],
)
def test_broken_files_raise_idx_error_naming_the_file(tmp_path, content, message):
    path = tmp_path / "broken-idx1-ubyte"
    path.write_bytes(content)
    with pytest.raises(IDXError, match=message) as error:
        read_idx(path)
    assert str(path) in str(error.value)
    assert isinstance(error.value, ValueError)


def test_truncated_gzip_raises_idx_error(tmp_path):
    X = np.random.default_rng(1).integers(0, 256, size=(20, 28, 28), dtype=np.uint8)
    full = write_idx(tmp_path / "full.gz", X).read_bytes()
    cut = tmp_path / "cut.gz"
    cut.write_bytes(full[: len(full) // 2])
    with pytest.raises(IDXError, match="gzip") as error:
        read_idx(cut)
    assert "cut.gz" in str(error.value)


def test_wrong_magic_for_the_expected_kind(tmp_path):
    path = write_idx(tmp_path / "labels", np.zeros(4, dtype=np.uint8))
    with pytest.raises(IDXError, match="expected 2051"):
        read_idx(path, magic=IMAGES_MAGIC)


def test_write_rejects_unsupported_arrays(tmp_path):
    with pytest.raises(ValueError, match="dtype"):
        write_idx(tmp_path / "x", np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match="dimensions"):
        write_idx(tmp_path / "x", np.uint8(3))
    assert list(tmp_path.iterdir()) == []


HEADER_10000 = bytes([0, 0, 8, 3]) + np.array([10000, 28, 28], dtype=">u4").tobytes()
HONEST_SIZE = len(HEADER_10000) + 10000 * 28 * 28  # 7.8 MB


def gzip_bomb(path, n_extra_blocks: int) -> int:
    """A valid 10000x28x28 header and data, then blocks of 64 MiB of zeros: one gzip member,
    then the same block as further members (made once: quick). Returns the inflated size."""
    block = bytes(64 << 20)
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    member = compressor.compress(HEADER_10000 + bytes(HONEST_SIZE - len(HEADER_10000)) + block)
    extra = gzip.compress(block, compresslevel=9)
    with open(path, "wb") as file:
        file.write(member + compressor.flush())
        for _ in range(n_extra_blocks - 1):
            file.write(extra)
    return HONEST_SIZE + n_extra_blocks * len(block)


def peak_memory_of(function):
    tracemalloc.start()
    try:
        with pytest.raises(IDXError) as error:
            function()
        return tracemalloc.get_traced_memory()[1], error.value
    finally:
        tracemalloc.stop()


def test_a_gzip_bomb_stops_at_the_size_the_header_promises(tmp_path):
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    assert gzip_bomb(path, n_extra_blocks=16) > 1 << 30  # about 1 MB on disk
    assert path.stat().st_size < 2 << 20
    started = time.perf_counter()
    peak, error = peak_memory_of(lambda: read_idx(path, magic=IMAGES_MAGIC))
    assert "unexpected bytes after the data of shape (10000, 28, 28)" in str(error)
    assert peak < 2 * HONEST_SIZE, f"read_idx held {peak / 2**20:.0f} MB"
    assert time.perf_counter() - started < 5  # stops early: inflating 1 GiB would take longer


def test_a_huge_raw_file_is_refused_from_its_size_before_reading(tmp_path):
    path = tmp_path / "t10k-images-idx3-ubyte"
    with open(path, "wb") as file:
        file.write(HEADER_10000)
        file.truncate(8 << 30)  # 8 GiB, sparse: nothing is written
    peak, error = peak_memory_of(lambda: read_idx(path))
    assert f"{(8 << 30) - HONEST_SIZE} unexpected bytes after the data" in str(error)
    assert peak < 4 << 20  # a read buffer, no array


@pytest.mark.parametrize("compressed", [False, True], ids=["raw", "gzip"])
def test_a_header_promising_more_than_the_file_can_hold_reads_nothing(tmp_path, compressed):
    header = bytes([0, 0, 8, 3]) + np.array([10**9, 28, 28], dtype=">u4").tobytes()
    content = header + bytes(1000)
    path = tmp_path / "images"
    path.write_bytes(gzip.compress(content) if compressed else content)
    peak, error = peak_memory_of(lambda: read_idx(path))
    assert "truncated: shape (1000000000, 28, 28) needs 784000000016 bytes" in str(error)
    assert peak < 4 << 20  # a read buffer, no array


def test_concatenated_gzip_members_read_like_gzip_does(tmp_path):
    y = np.arange(300, dtype=np.uint8)
    data = write_idx(tmp_path / "y", y).read_bytes()
    path = tmp_path / "two-members.gz"
    path.write_bytes(gzip.compress(data[:100]) + gzip.compress(data[100:]) + bytes(8))
    np.testing.assert_array_equal(read_idx(path), y)
    assert gzip.decompress(path.read_bytes()) == data


def test_gzip_with_a_bad_crc_is_refused(tmp_path):
    y = np.arange(50, dtype=np.uint8)
    compressed = bytearray(gzip.compress(write_idx(tmp_path / "y", y).read_bytes()))
    compressed[-8] ^= 0xFF  # the CRC-32 of the content, in the gzip trailer
    (tmp_path / "bad-crc.gz").write_bytes(bytes(compressed))
    with pytest.raises(IDXError, match="corrupt or truncated gzip"):
        read_idx(tmp_path / "bad-crc.gz")


def test_big_endian_values_are_converted_in_place(tmp_path):
    A = np.arange(-5, 5, dtype=np.int32).reshape(2, 5) * 100_000
    A_read = read_idx(write_idx(tmp_path / "a.gz", A))
    assert A_read.dtype == np.dtype("=i4") and A_read.flags.writeable
    np.testing.assert_array_equal(A_read, A)
