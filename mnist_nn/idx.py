"""The IDX file format used by MNIST: read_idx() and its inverse write_idx().

An IDX file is a 4-byte magic number, one big-endian uint32 per dimension, then the raw values:

    magic = 0x00 0x00 <type code> <number of dimensions>
    MNIST images: 0x00000803 = 2051 (uint8, 3 dims), labels: 0x00000801 = 2049 (uint8, 1 dim)
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from mnist_nn.files import atomic_write

# Type code (third magic byte) -> big-endian dtype of the values.
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049
_GZIP_SIGNATURE = b"\x1f\x8b"
_CHUNK = 1 << 20  # bytes read from the file at a time
# Deflate never expands data more than about 1032 times, so a gzip file of n bytes cannot hold
# more than this many times n bytes (plus a little): a header promising more is truncated.
_MAX_GZIP_RATIO = 1100


class IDXError(ValueError):
    """A file that is not a valid IDX file (truncated, corrupt or of the wrong kind)."""

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = Path(path)
        super().__init__(f"{self.path}: {problem}")


class _Content:
    """The content of an IDX file, inflated chunk by chunk when it is gzip-compressed, so that
    no more than the requested bytes are ever produced (a gzip bomb costs nothing)."""

    def __init__(self, file: BinaryIO, path: Path) -> None:
        self.file, self.path = file, path
        file_size = os.fstat(file.fileno()).st_size
        self.compressed = file.read(2) == _GZIP_SIGNATURE
        file.seek(0)
        self.max_size = file_size * _MAX_GZIP_RATIO + _CHUNK if self.compressed else file_size
        self.inflater = zlib.decompressobj(wbits=31) if self.compressed else None
        self.pending = b""  # compressed bytes read from the file but not yet inflated
        self.limit = (
            f"more than a gzip file of {file_size} bytes can hold"
            if self.compressed
            else f"but the file has {file_size}"
        )

    def read_into(self, view: memoryview) -> int:
        """Fill `view` with the next bytes of content; returns how many (fewer at the end)."""
        if not self.compressed:
            return self.file.readinto(view) or 0
        filled = 0
        try:
            while filled < len(view) and self._more_input():
                piece = self.inflater.decompress(self.pending, min(len(view) - filled, _CHUNK))
                self.pending = self.inflater.unconsumed_tail
                view[filled : filled + len(piece)] = piece
                filled += len(piece)
        except zlib.error as error:
            raise IDXError(self.path, f"corrupt or truncated gzip data ({error})") from None
        return filled

    def _more_input(self) -> bool:
        """Make sure there are compressed bytes to inflate; False at the end of the content."""
        if self.inflater.eof:  # the end of one gzip member: another may follow (as in gzip)
            self.pending = self.inflater.unused_data  # the input after the member's end
            if not self.pending:
                self.pending = self.file.read(_CHUNK)
            if not self.pending.strip(b"\x00"):  # zero padding after the last member
                return False
            self.inflater = zlib.decompressobj(wbits=31)
        if not self.pending:
            self.pending = self.file.read(_CHUNK)
            if not self.pending:
                raise IDXError(self.path, "corrupt or truncated gzip data (the stream ends early)")
        return True


def read_idx(path: str | os.PathLike, magic: int | None = None) -> np.ndarray:
    """Read an IDX file (gzip-compressed or not, detected by content) into a NumPy array.

    Checks the magic number (and that it equals ``magic`` when given, e.g. 2051 for images),
    the dimensions and that the byte count matches them exactly. Raises IDXError naming the file.
    The data are read (and inflated) straight into the array, stopping at the size the header
    promises: memory stays the array's size whatever the file holds beyond it.
    """
    path = Path(path)
    with open(path, "rb") as file:
        content = _Content(file, path)
        shape, dtype = _read_header(content, magic)
        return _read_values(content, shape, dtype)


def _read_header(content: _Content, magic: int | None) -> tuple[tuple[int, ...], np.dtype]:
    path = content.path
    start = bytearray(4)
    if content.read_into(memoryview(start)) < 4:
        raise IDXError(path, "too short for an IDX header (4 bytes of magic number)")
    zeros, type_code, ndim = start[:2], start[2], start[3]
    found = int.from_bytes(start, "big")
    if zeros != b"\x00\x00" or type_code not in IDX_DTYPES or ndim == 0:
        raise IDXError(path, f"bad magic number {found} (0x{found:08x}); not an IDX file")
    if magic is not None and found != magic:
        raise IDXError(path, f"magic number {found}, expected {magic}")
    sizes = bytearray(4 * ndim)
    if content.read_into(memoryview(sizes)) < len(sizes):
        raise IDXError(path, f"truncated header: {ndim} dimensions need {4 + 4 * ndim} bytes")
    shape = tuple(int.from_bytes(sizes[4 * i : 4 * i + 4], "big") for i in range(ndim))
    return shape, IDX_DTYPES[type_code]


def _read_values(content: _Content, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    path, header_size = content.path, 4 + 4 * len(shape)
    n_values = int(np.prod(shape, dtype=object))
    expected = header_size + n_values * dtype.itemsize
    if expected > content.max_size:  # found before reading a single value
        raise IDXError(path, f"truncated: shape {shape} needs {expected} bytes, {content.limit}")
    if not content.compressed and expected < content.max_size:
        raise IDXError(
            path, f"{content.max_size - expected} unexpected bytes after the data of shape {shape}"
        )
    try:
        values = np.empty(n_values, dtype=dtype)
    except MemoryError:
        raise IDXError(
            path, f"shape {shape} needs {expected} bytes, more than this machine can hold"
        ) from None
    got = header_size + content.read_into(memoryview(values.view(np.uint8)))
    if got < expected:
        raise IDXError(
            path, f"truncated: shape {shape} needs {expected} bytes but the file has {got}"
        )
    if content.read_into(memoryview(bytearray(1))):  # inflates to the end: the CRC is checked
        raise IDXError(path, f"unexpected bytes after the data of shape {shape}")
    if not dtype.isnative:  # native byte order, in place (no second copy of the data)
        values = values.byteswap(inplace=True).view(dtype.newbyteorder("="))
    return values.reshape(shape)


def idx_header(array: np.ndarray) -> bytes:
    """The IDX header of `array`: magic number (its type code and number of dimensions), then
    each dimension as a big-endian uint32. The file's content is this, then the values."""
    codes = {dtype.newbyteorder("="): code for code, dtype in IDX_DTYPES.items()}
    code = codes[array.dtype.newbyteorder("=")]
    return bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()


def write_idx(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Write ``array`` as an IDX file (gzip-compressed if the name ends in .gz), atomically.

    Supported dtypes: uint8, int8, int16, int32, float32, float64; 1 to 255 dimensions.
    """
    path = Path(path)
    array = np.asarray(array)
    codes = {dtype.newbyteorder("="): code for code, dtype in IDX_DTYPES.items()}
    native = array.dtype.newbyteorder("=")
    if native not in codes:
        raise ValueError(
            f"IDX cannot store dtype {array.dtype}; convert to one of "
            "uint8, int8, int16, int32, float32, float64 first"
        )
    if not 1 <= array.ndim <= 255:
        raise ValueError(f"IDX needs 1 to 255 dimensions, got an array of shape {array.shape}")
    payload = idx_header(array) + array.astype(IDX_DTYPES[codes[native]], copy=False).tobytes()
    if path.suffix == ".gz":
        payload = gzip.compress(payload, mtime=0)  # mtime=0: same array, same bytes

    with atomic_write(path) as file:
        file.write(payload)
    return path
