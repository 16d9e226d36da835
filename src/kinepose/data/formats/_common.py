"""Low-level readers shared by :mod:`kinepose.data.formats.io`'s joint and rotation files: extension checks,
``.npz`` arrays, CSV rows and column groups, joint names and fps. Errors name the file and, for CSV, the
1-based line.
"""

from __future__ import annotations

import csv
import json
import lzma
import math
import os
import reprlib
import struct
import tokenize
import zipfile
import zlib
from typing import IO, Any

import numpy as np

from kinepose.errors import FileFormatError

_FORMAT = "kinepose-rotations"
_VERSION = 1
_AXES = ("x", "y", "z")
_QUAT = ("qw", "qx", "qy", "qz")

_NPY_MAGIC = b"\x93NUMPY"
_OBJECT_ARRAYS = "object arrays are not read; store strings as a unicode array such as np.array(names)"
# deflate expands at most about 1032:1; a member announcing more than this is damaged or a lie
_MAX_DEFLATE_RATIO = 1100
# What damaged zip archives raise besides BadZipFile: bad deflate/lzma/bzip2 streams (zlib.error, LZMAError,
# OSError), unknown or encrypted compression (NotImplementedError, RuntimeError), truncation (EOFError), bad
# offsets or sizes in the directory (ValueError, struct.error, OverflowError), names that are not UTF-8.
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    lzma.LZMAError,
    NotImplementedError,
    RuntimeError,
    EOFError,
    OSError,
    ValueError,
    struct.error,
    OverflowError,
)
# What numpy's header parsing (tokenizer, ast.literal_eval, dtype construction) raises on damaged bytes.
_HEADER_ERRORS = (ValueError, TypeError, SyntaxError, tokenize.TokenError, OverflowError, EOFError)
_BRIEF = reprlib.Repr()
_BRIEF.maxstring, _BRIEF.maxother, _BRIEF.maxlevel = 60, 60, 3


def _brief(value: object) -> str:
    """A short ``repr`` for messages: bounded length and depth, safe for deeply nested or huge values."""
    return _BRIEF.repr(value)


def _extension(path: str, supported: tuple[str, ...], what: str) -> str:
    ext = os.path.splitext(path)[1].lower()
    if ext not in supported:
        raise FileFormatError(
            f"unsupported {what} file extension {ext or '(none)'!r}; supported: {', '.join(supported)}", path
        )
    return ext


class _NpzArchive:
    """An open ``.npz`` (zip) archive: ``files`` are its array keys (member names less ``.npy``), as numpy's."""

    def __init__(self, path: str, archive: zipfile.ZipFile) -> None:
        self.path, self.zip = path, archive
        self.members = archive.namelist()
        self.files = [m[:-4] if m.endswith(".npy") else m for m in self.members]

    def __enter__(self) -> _NpzArchive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.zip.close()


def _load_npz(path: str) -> _NpzArchive:
    """Open an ``.npz`` archive; its arrays are read one by one by :func:`_npz_array`."""
    try:
        with open(path, "rb") as f:
            start = f.read(len(_NPY_MAGIC))
        if start == _NPY_MAGIC:
            raise FileFormatError("holds a single .npy array, not an .npz archive; rename it to .npy", path)
        return _NpzArchive(path, zipfile.ZipFile(path))
    except FileFormatError:
        raise
    except _ZIP_ERRORS as exc:
        raise FileFormatError(f"cannot read as .npz ({exc})", path) from exc


def _npz_array(data: _NpzArchive, key: str, path: str) -> np.ndarray:
    """Array ``key`` of an archive, its ``.npy`` header checked against the member's size before reading."""
    name = key if key in data.members else f"{key}.npy"
    try:
        info = data.zip.getinfo(name)
        # the sizes in the zip directory are what we trust the header against: check they are possible first
        archive_size = os.path.getsize(path)
        if info.compress_size > archive_size:
            raise FileFormatError(
                f"cannot read array {key!r}: the zip directory gives it {info.compress_size} compressed bytes, "
                f"more than the whole file ({archive_size})",
                path,
            )
        if (info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size) or (
            info.compress_type == zipfile.ZIP_DEFLATED and info.file_size > _MAX_DEFLATE_RATIO * info.compress_size
        ):
            raise FileFormatError(
                f"cannot read array {key!r}: the zip directory gives it {info.file_size} bytes from "
                f"{info.compress_size} stored ones, which its compression cannot produce (a damaged archive)",
                path,
            )
        with data.zip.open(info) as f:
            return _read_npy_stream(f, info.file_size, path, key)
    except FileFormatError:
        raise
    except _ZIP_ERRORS as exc:
        raise FileFormatError(f"cannot read array {key!r} ({exc})", path) from exc


def _read_npy(path: str) -> np.ndarray:
    """The array of a ``.npy`` file, its header checked against the file size before anything is allocated."""
    try:
        with open(path, "rb") as f:
            start = f.read(4)
            if start in (b"PK\x03\x04", b"PK\x05\x06"):  # what np.load takes for an archive
                raise FileFormatError("holds an .npz archive, not a single .npy array; rename it to .npz", path)
            f.seek(0)
            return _read_npy_stream(f, os.path.getsize(path), path, None)
    except OSError as exc:
        raise FileFormatError(f"cannot read as .npy ({exc})", path) from exc


def _read_npy_stream(f: IO[bytes], size: int, path: str, key: str | None) -> np.ndarray:
    """Read one ``.npy`` array of ``size`` bytes from ``f``.

    numpy's own reader allocates what the header announces before reading, and lets tokenizer errors of a
    damaged header escape; here the header is parsed with numpy's functions, then checked (no object dtype,
    no negative or absurd shape, announced bytes present) before the data is read.
    """
    what = "array" if key is None else f"array {key!r}"

    def error(msg: str) -> FileFormatError:
        return FileFormatError(
            f"cannot read {what}: {msg}" if key is not None else f"cannot read as .npy ({msg})", path
        )

    try:
        version = np.lib.format.read_magic(f)
    except _HEADER_ERRORS as exc:
        raise error(f"not a .npy file: {exc}") from exc
    # numpy writes 3.0 only for structured dtypes with non-latin-1 field names, which are never read here
    if version not in ((1, 0), (2, 0)):
        raise error(f"unsupported .npy format version {version[0]}.{version[1]}; expected 1.0 or 2.0")
    try:
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read_header(f)
    except _HEADER_ERRORS as exc:
        raise error(f"bad .npy header: {exc}") from exc
    shape = tuple(int(n) for n in shape)  # numpy's check lets bools through: (True, 15, 3)
    if dtype.hasobject:
        raise error(f"holds dtype {dtype}: {_OBJECT_ARRAYS}")
    if any(n < 0 for n in shape) or len(shape) > 32:
        raise error(f"bad .npy header: shape {shape}")
    if dtype.itemsize == 0:
        raise error(f"bad .npy header: dtype {dtype} has no bytes per item")
    count = math.prod(shape)
    nbytes = count * dtype.itemsize
    available = size - f.tell()
    if nbytes > available:
        raise error(
            f"the header announces shape {shape} of {dtype} ({nbytes} bytes) but only {max(available, 0)} bytes "
            f"of data follow (a truncated or damaged file)"
        )
    buf = bytearray(nbytes)
    got = f.readinto(buf)
    if got != nbytes:
        raise error(f"truncated: the header announces {nbytes} bytes of data, the file holds {got}")
    a = np.frombuffer(buf, dtype=dtype, count=count)
    return a.reshape(shape[::-1]).transpose() if fortran else a.reshape(shape)


def _numeric(a: np.ndarray, path: str, key: str) -> np.ndarray:
    if a.dtype.kind not in "fiub":
        raise FileFormatError(f"{key!r} must be a numeric array, got dtype {a.dtype}", path)
    with np.errstate(over="ignore"):  # float128 beyond float64's range becomes inf, which the callers report
        return a.astype(np.float64)


def _names(a: np.ndarray, path: str, key: str = "joint_names") -> list[str]:
    if a.ndim != 1 or a.dtype.kind not in "US":
        raise FileFormatError(f"{key!r} must be a 1-D string array, got dtype {a.dtype} shape {a.shape}", path)
    if a.dtype.kind == "U":
        # numpy stores UCS-4 code units unchecked; turning one beyond U+10FFFF into a str crashes (SystemError)
        codes = np.ascontiguousarray(a).view(np.dtype(np.uint32).newbyteorder(a.dtype.byteorder))
        bad = (codes > 0x10FFFF) | ((codes >= 0xD800) & (codes <= 0xDFFF))
        if bad.any():
            i = int(np.argwhere(bad.reshape(len(a), -1))[0][0])
            raise FileFormatError(f"{key!r}: entry {i} is not valid Unicode text", path)
        return [str(x) for x in a.tolist()]
    out = []
    for i, x in enumerate(a.tolist()):
        try:
            out.append(x.decode())
        except UnicodeDecodeError as exc:
            raise FileFormatError(
                f"{key!r}: entry {i} is not UTF-8 text ({exc.reason} at byte {exc.start})", path
            ) from None
    return out


def _fps(a: Any, path: str) -> float:
    try:
        fps = float(np.asarray(a, dtype=np.float64).reshape(()))
    except (TypeError, ValueError, OverflowError) as exc:  # OverflowError: a JSON integer beyond float64
        raise FileFormatError(f"'fps' must be one number, got {_brief(a)}", path) from exc
    if not (np.isfinite(fps) and fps > 0):
        raise FileFormatError(f"'fps' must be positive and finite, got {fps}", path)
    return fps


def _csv_rows(path: str) -> list[tuple[int, list[str]]]:
    """Non-blank rows with their 1-based line numbers, cells stripped."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f)
            rows = []
            for row in reader:
                cells = [c.strip() for c in row]
                if any(cells):
                    rows.append((reader.line_num, cells))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise FileFormatError(f"cannot read as CSV ({exc})", path) from exc
    if not rows:
        raise FileFormatError("empty file: expected a header row", path, 1)
    return rows


def _looks_numeric(cells: list[str]) -> bool:
    try:
        [float(c) for c in cells]
    except ValueError:
        return False
    return True


def _csv_groups(header: list[str], line: int, path: str, suffixes: tuple[str, ...], start: int) -> list[str]:
    """Joint names of a header whose columns from ``start`` are groups ``<joint>_<suffix>`` in suffix order."""
    layout = ",".join(f"<joint>_{s}" for s in suffixes)
    cols = header[start:]
    if not cols or len(cols) % len(suffixes):
        raise FileFormatError(
            f"header has {len(cols)} joint columns, expected groups of {len(suffixes)} ({layout})", path, line
        )
    names: list[str] = []
    for g in range(0, len(cols), len(suffixes)):
        name = None
        for k, s in enumerate(suffixes):
            cell = cols[g + k]
            base, sep, suf = cell.rpartition("_")
            if not sep or not base or suf.lower() != s or (name is not None and base != name):
                want = f"{name}_{s}" if name is not None else f"<joint>_{s}"
                raise FileFormatError(
                    f"header column {start + g + k + 1} is {cell!r}, expected {want!r} (columns are {layout} "
                    f"per joint)",
                    path,
                    line,
                )
            name = base
        names.append(name)
    return names


_MISSING_CELLS = frozenset({"", "na", "nan", "n/a", "null", "none"})


def _csv_values(
    rows: list[tuple[int, list[str]]], header: list[str], path: str, missing_ok: bool = False
) -> np.ndarray:
    """(N, C) float64 of the data rows; errors name the line (and column for non-numeric cells). With
    ``missing_ok``, empty cells and NA/NaN/null (what pandas and spreadsheets write for a missing value) are NaN."""
    n = len(header)
    for line, cells in rows:
        if len(cells) != n:
            raise FileFormatError(f"row has {len(cells)} cells, the header has {n} columns", path, line)
    if missing_ok:
        rows = [(line, ["nan" if c.strip().lower() in _MISSING_CELLS else c for c in cells]) for line, cells in rows]
    try:
        return np.array([cells for _, cells in rows], dtype=np.float64).reshape(len(rows), n)
    except ValueError:
        pass
    for line, cells in rows:
        for k, cell in enumerate(cells):
            try:
                float(cell)
            except ValueError:
                raise FileFormatError(
                    f"non-numeric value {cell!r} in column {k + 1} ({header[k]!r})", path, line
                ) from None
    raise FileFormatError("non-numeric value in the data rows", path)  # pragma: no cover - numpy agreed with float()


def _read_json(path: str) -> Any:
    """A JSON file's content; a missing file, bad JSON (with its line) or a read error is a FileFormatError."""
    if not os.path.isfile(path):
        raise FileFormatError(f"cannot read ({'is a folder' if os.path.isdir(path) else 'no such file'})", path)
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as exc:
        raise FileFormatError(f"not valid JSON ({exc.msg}, column {exc.colno})", path, exc.lineno) from None
    except (UnicodeDecodeError, RecursionError) as exc:
        raise FileFormatError(f"not valid JSON ({type(exc).__name__})", path) from None
    except OSError as exc:
        raise FileFormatError(f"cannot read ({exc.strerror or exc})", path) from None
