"""The IDX file format of MNIST and its relatives: read, validated, and written.

Layout: two zero bytes, a type code, the number of dimensions, then one big-endian uint32 per
dimension, then the data in big-endian C order. Files may be gzipped; gzip is recognised by its
magic bytes, not by the file name.
"""

from __future__ import annotations

import gzip
import os
import zlib
from functools import lru_cache

import numpy as np

# IDX type code -> big-endian numpy dtype
IDX_DTYPES: dict[int, str] = {
    0x08: "u1",
    0x09: "i1",
    0x0B: ">i2",
    0x0C: ">i4",
    0x0D: ">f4",
    0x0E: ">f8",
}
_GZIP_MAGIC = b"\x1f\x8b"


class IDXError(ValueError):
    """An IDX file that is not valid; the message names the file and what is wrong."""


def _read_bytes(path: str) -> bytes:
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] != _GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:
        raise IDXError(
            f"{path}: corrupt gzip data ({e}); re-download or reinstall the file"
        ) from e


def parse_idx(raw: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decode the bytes of one IDX file into a native-endian numpy array.

    Args:
        raw: the (already decompressed) file content.
        name: shown in error messages.
    """
    if len(raw) < 4:
        raise IDXError(f"{name}: {len(raw)} bytes is too short for an IDX header; the file is truncated")
    if raw[0] != 0 or raw[1] != 0:
        raise IDXError(
            f"{name}: bad magic number {raw[:4].hex()} (an IDX file starts with two zero bytes); "
            "is this an MNIST-format file?"
        )
    code, ndim = raw[2], raw[3]
    if code not in IDX_DTYPES:
        raise IDXError(f"{name}: unknown IDX type code 0x{code:02x}; expected one of "
                       + ", ".join(f"0x{c:02x}" for c in IDX_DTYPES))
    if ndim == 0:
        raise IDXError(f"{name}: IDX header declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise IDXError(f"{name}: truncated header ({len(raw)} bytes for {ndim} dimensions)")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(IDX_DTYPES[code])
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise IDXError(
            f"{name}: header says shape {dims} of {dtype} ({expected} bytes) but the file holds "
            f"{len(raw) - header} data bytes; the file is truncated or corrupt"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)
    return data.astype(dtype.newbyteorder("="), copy=False)


@lru_cache(maxsize=8)
def _read_cached(path: str, mtime_ns: int, size: int) -> np.ndarray:
    # Keyed on mtime and size as well, so that a rewritten file is read again.
    array = parse_idx(_read_bytes(path), path)
    array.flags.writeable = False  # shared between the splits and datasets that read it
    return array


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (raw or gzipped) into a read-only numpy array.

    Repeated reads of an unchanged file return the same cached array, so building the train,
    val and test splits of a dataset reads each file once.

    Args:
        path: the ``.idx*-ubyte`` or ``.idx*-ubyte.gz`` file.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"IDX file not found: {path}")
    st = os.stat(path)
    return _read_cached(path, st.st_mtime_ns, st.st_size)


def write_idx(path: str | os.PathLike, array: np.ndarray, *, compress: bool | None = None) -> None:
    """Write ``array`` as an IDX file (gzipped when ``compress``, or when the name ends in .gz).

    Args:
        path: output file.
        array: any array whose dtype IDX supports (uint8, int8, int16, int32, float32, float64).
        compress: gzip the file; None decides by the ``.gz`` suffix.
    """
    path = os.fspath(path)
    array = np.asarray(array)
    by_kind = {np.dtype(v).newbyteorder("="): k for k, v in IDX_DTYPES.items()}
    native = array.dtype.newbyteorder("=")
    if native not in by_kind:
        raise ValueError(
            f"IDX cannot store dtype {array.dtype}; convert to one of "
            + ", ".join(str(d) for d in by_kind)
        )
    code = by_kind[native]
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    body = np.ascontiguousarray(array, dtype=np.dtype(IDX_DTYPES[code])).tobytes()
    if compress is None:
        compress = path.endswith(".gz")
    data = header + body
    with open(path, "wb") as f:
        f.write(gzip.compress(data) if compress else data)
