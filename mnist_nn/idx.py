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


class IDXError(ValueError):
    """A file that is not a valid IDX file (truncated, corrupt or of the wrong kind)."""

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = Path(path)
        super().__init__(f"{self.path}: {problem}")


def read_idx(path: str | os.PathLike, magic: int | None = None) -> np.ndarray:
    """Read an IDX file (gzip-compressed or not, detected by content) into a NumPy array.

    Checks the magic number (and that it equals ``magic`` when given, e.g. 2051 for images),
    the dimensions and that the byte count matches them exactly. Raises IDXError naming the file.
    """
    path = Path(path)
    data = path.read_bytes()
    if data[:2] == _GZIP_SIGNATURE:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as error:
            raise IDXError(path, f"corrupt or truncated gzip data ({error})") from None

    if len(data) < 4:
        raise IDXError(path, f"only {len(data)} bytes, too short for an IDX header")
    zeros, type_code, ndim = data[:2], data[2], data[3]
    if zeros != b"\x00\x00" or type_code not in IDX_DTYPES or ndim == 0:
        found = int.from_bytes(data[:4], "big")
        raise IDXError(path, f"bad magic number {found} (0x{found:08x}); not an IDX file")
    found_magic = int.from_bytes(data[:4], "big")
    if magic is not None and found_magic != magic:
        raise IDXError(path, f"magic number {found_magic}, expected {magic}")

    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise IDXError(path, f"truncated header: {ndim} dimensions need {header_size} bytes")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = IDX_DTYPES[type_code]
    expected = header_size + int(np.prod(shape, dtype=object)) * dtype.itemsize
    if len(data) < expected:
        raise IDXError(
            path, f"truncated: shape {shape} needs {expected} bytes but the file has {len(data)}"
        )
    if len(data) > expected:
        raise IDXError(
            path, f"{len(data) - expected} unexpected bytes after the data of shape {shape}"
        )
    values = np.frombuffer(data, dtype=dtype, offset=header_size)
    # astype copies into native byte order and gives a writable array (frombuffer's is read-only).
    return values.astype(dtype.newbyteorder("=")).reshape(shape)


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
    code = codes[native]
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    payload = header + array.astype(IDX_DTYPES[code], copy=False).tobytes()
    if path.suffix == ".gz":
        payload = gzip.compress(payload, mtime=0)  # mtime=0: same array, same bytes

    with atomic_write(path) as file:
        file.write(payload)
    return path
