"""IDX reading and writing: round trips, gzip detection by content, and clear errors."""

from __future__ import annotations

import gzip

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
