"""Read and write IDX files (the MNIST format), strictly: magic, dtype, dimensions, length.

An IDX file is two zero bytes, a type code, the number of dimensions, the dimensions as
big-endian uint32, then the data in big-endian order; gzip-compressed files are recognised
by their magic bytes, not their name. Anything else raises :class:`DataError` with one line
naming the file and the problem, before a large array is allocated.
"""

from __future__ import annotations

import contextlib
import gzip
import math
import os
import tempfile
import zlib
from typing import Any

import numpy as np

from deltaprop._validation import DataError, open_error

__all__ = ["IDX_DTYPES", "read_idx", "write_idx"]

#: IDX type code (third magic byte) → big-endian dtype of the data.
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_IDX_CODES = {dt.str[1:]: code for code, dt in IDX_DTYPES.items()}  # "u1", "i2", ... → code
_IDX_VALID = ", ".join(f"0x{code:02X} {dt.name}" for code, dt in IDX_DTYPES.items())
# The IDX format allows 255 dimensions; the data sets in use have 1 to 4, so more than 8
# means a corrupt header (and would let a tiny file declare a large header).
_IDX_MAX_NDIM = 8
# DEFLATE cannot expand data by more than 1032:1 (zlib technical details, "maximum
# compression factor"); a header declaring more data than that bound is rejected before
# anything is decompressed or allocated.
_DEFLATE_MAX_RATIO = 1032
_CHUNK = 1 << 22


def _read_idx_header(stream: Any, name: str) -> tuple[np.dtype, tuple[int, ...], int]:
    """Parse magic number and dimensions; return (dtype, dims, header bytes)."""
    magic = stream.read(4)
    if len(magic) < 4:
        raise DataError(
            f"{name}: too short for an IDX file ({len(magic)} bytes; the magic number is 4)"
        )
    if magic[0] != 0 or magic[1] != 0:
        raise DataError(
            f"{name}: not an IDX file (magic number {magic.hex(' ')}; IDX files start with 00 00)"
        )
    code, ndim = magic[2], magic[3]
    if code not in IDX_DTYPES:
        raise DataError(f"{name}: unknown IDX data type code 0x{code:02X}; valid: {_IDX_VALID}")
    if not 1 <= ndim <= _IDX_MAX_NDIM:
        raise DataError(
            f"{name}: IDX header declares {ndim} dimensions; expected 1 to {_IDX_MAX_NDIM}"
        )
    raw_dims = stream.read(4 * ndim)
    if len(raw_dims) < 4 * ndim:
        raise DataError(
            f"{name}: truncated IDX header: {ndim} dimensions need {4 * ndim} bytes after "
            f"the magic number, found {len(raw_dims)}"
        )
    dims = tuple(int.from_bytes(raw_dims[4 * i : 4 * i + 4], "big") for i in range(ndim))
    # NumPy cannot shape even an empty array whose other dimensions multiply past its
    # index range (e.g. (0, 65536, 50331648, 2796203)); without a 0 the length check
    # below rejects such a header.
    too_large = math.prod(d for d in dims if d) * IDX_DTYPES[code].itemsize > np.iinfo(np.intp).max
    if 0 in dims and too_large:
        raise DataError(f"{name}: IDX header declares shape {dims}, too large for an array")
    return IDX_DTYPES[code], dims, 4 + 4 * ndim


def _describe(dims: tuple[int, ...], dtype: np.dtype) -> str:
    return f"shape {dims} of {dtype.name}"


def _read_idx_gzip(stream: gzip.GzipFile, name: str, compressed_size: int) -> np.ndarray:
    dtype, dims, header_size = _read_idx_header(stream, name)
    expected = math.prod(dims) * dtype.itemsize
    if header_size + expected > _DEFLATE_MAX_RATIO * compressed_size:
        raise DataError(
            f"{name}: IDX header declares {_describe(dims, dtype)} ({expected} data bytes), "
            f"more than a {compressed_size}-byte gzip file can hold"
        )
    # Read in chunks: memory grows only with data that really exists.
    buffer = bytearray()
    while len(buffer) <= expected:
        chunk = stream.read(min(_CHUNK, expected + 1 - len(buffer)))
        if not chunk:
            break
        buffer += chunk
    if len(buffer) != expected:
        found = len(buffer)
        if found > expected:
            while chunk := stream.read(_CHUNK):
                found += len(chunk)
        raise DataError(
            f"{name}: IDX header declares {_describe(dims, dtype)}, which needs {expected} "
            f"data bytes; the decompressed file holds {found}"
        )
    return _idx_array(buffer, dtype, dims)


def _read_idx_raw(stream: Any, name: str, file_size: int) -> np.ndarray:
    dtype, dims, header_size = _read_idx_header(stream, name)
    expected = math.prod(dims) * dtype.itemsize
    found = file_size - header_size
    if found != expected:  # checked before any allocation
        raise DataError(
            f"{name}: IDX header declares {_describe(dims, dtype)}, which needs {expected} "
            f"data bytes; the file holds {found}"
        )
    data = bytearray(expected)  # bounded by the file's size, checked above
    got = stream.readinto(data)
    if got != expected:  # the file shrank while we read it
        raise DataError(f"{name}: expected {expected} data bytes, read {got}")
    return _idx_array(data, dtype, dims)


def _idx_array(buffer: bytearray, dtype: np.dtype, dims: tuple[int, ...]) -> np.ndarray:
    array = np.frombuffer(buffer, dtype=dtype)
    if not array.dtype.isnative:
        array = array.astype(dtype.newbyteorder("="))
    return array.reshape(dims)


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (the MNIST format), raw or gzip-compressed.

    Compression is recognised by the gzip magic bytes ``1f 8b``, not by the file name.
    The format is read strictly: magic number ``00 00 TT NN`` with a type code ``TT``
    (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64) and
    ``NN`` = 1 … 8 dimensions, then each dimension as a big-endian uint32, then exactly
    ``prod(dims) * itemsize`` bytes of big-endian data.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    ndarray of shape dims
        In native byte order, writable.

    Raises
    ------
    DataError
        Missing or unreadable file, bad magic number or type code, too few or too many
        data bytes (the message gives both counts), corrupt or truncated gzip data.
        Declared sizes are checked against the file before anything is allocated.

    References
    ----------
    Y. LeCun, C. Cortes, C. Burges, "The MNIST database", file-format section.
    """
    name = os.fspath(path)
    try:
        with open(name, "rb") as f:
            file_size = os.fstat(f.fileno()).st_size
            gzipped = f.read(2) == b"\x1f\x8b"
            f.seek(0)
            if not gzipped:
                return _read_idx_raw(f, name, file_size)
            try:
                with gzip.GzipFile(fileobj=f, mode="rb") as stream:
                    return _read_idx_gzip(stream, name, file_size)
            except (OSError, EOFError, zlib.error) as error:
                raise DataError(f"{name}: corrupt or truncated gzip data ({error})") from None
    except OSError as error:
        raise open_error(name, error) from None


def write_idx(path: str | os.PathLike[str], array: np.ndarray) -> None:
    """Write ``array`` as an IDX file, gzip-compressed when ``path`` ends with ``.gz``.

    The write is atomic: the data goes to a temporary file in the same directory, which
    is flushed, fsync'ed and renamed over ``path`` (``os.replace``), so readers see the
    old file or the new one, never a partial one. A new file gets mode 0644, a replaced
    one keeps its mode. Gzip output is reproducible (no name or time stamp in its header).

    Parameters
    ----------
    path : str or path-like
    array : ndarray
        dtype uint8, int8, int16, int32, float32 or float64 (any byte order; stored
        big-endian), 1 to 8 dimensions each below 2³².

    Raises
    ------
    DataError
        Unsupported dtype or shape, or the file cannot be written.
    """
    name = os.fspath(path)
    data = np.asarray(array)
    code = _IDX_CODES.get(data.dtype.str[1:])
    if code is None:
        raise DataError(
            f"{name}: IDX cannot hold dtype {data.dtype}; valid: "
            + ", ".join(dt.name for dt in IDX_DTYPES.values())
        )
    if not 1 <= data.ndim <= _IDX_MAX_NDIM:
        raise DataError(f"{name}: IDX needs 1 to {_IDX_MAX_NDIM} dimensions; got {data.ndim}")
    if max(data.shape) >= 2**32:
        raise DataError(f"{name}: IDX dimensions must be < 2**32; got shape {data.shape}")
    header = bytes([0, 0, code, data.ndim]) + b"".join(d.to_bytes(4, "big") for d in data.shape)
    payload = np.ascontiguousarray(data, dtype=data.dtype.newbyteorder(">")).reshape(-1)
    payload = payload.view(np.uint8)
    directory = os.path.dirname(os.path.abspath(name))
    try:
        mode = os.stat(name).st_mode & 0o7777
    except OSError:
        mode = 0o644
    try:
        fd, temporary = tempfile.mkstemp(
            dir=directory, prefix=f".{os.path.basename(name)}.", suffix=".tmp"
        )
    except OSError as error:
        raise DataError(f"{name}: cannot write ({error.strerror or error})") from None
    try:
        with os.fdopen(fd, "wb") as f:
            if name.endswith(".gz"):
                with gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0) as stream:
                    stream.write(header)
                    stream.write(payload)
            else:
                f.write(header)
                f.write(payload)
            f.flush()
            os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        os.replace(temporary, name)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        if isinstance(error, OSError):
            raise DataError(f"{name}: cannot write ({error.strerror or error})") from None
        raise
    # Make the rename itself durable; not every file system allows fsync on a directory.
    with contextlib.suppress(OSError):
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

