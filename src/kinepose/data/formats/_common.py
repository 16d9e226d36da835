"""Low-level readers shared by :mod:`kinepose.data.formats.io`'s joint and rotation files: extension checks,
``.npz`` arrays, CSV rows and column groups, joint names and fps. Errors name the file and, for CSV, the
1-based line.
"""

from __future__ import annotations

import csv
import os
import zipfile
from typing import Any

import numpy as np

from kinepose.errors import FileFormatError

_FORMAT = "kinepose-rotations"
_VERSION = 1
_AXES = ("x", "y", "z")
_QUAT = ("qw", "qx", "qy", "qz")


def _extension(path: str, supported: tuple[str, ...], what: str) -> str:
    ext = os.path.splitext(path)[1].lower()
    if ext not in supported:
        raise FileFormatError(
            f"unsupported {what} file extension {ext or '(none)'!r}; supported: {', '.join(supported)}", path
        )
    return ext


def _load_npz(path: str) -> Any:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise FileFormatError(f"cannot read as .npz ({exc})", path) from exc


def _npz_array(data: Any, key: str, path: str) -> np.ndarray:
    try:
        return np.asarray(data[key])
    except ValueError as exc:  # object arrays need pickle
        raise FileFormatError(
            f"cannot read array {key!r} ({exc}); save strings with np.array(list_of_str)", path
        ) from exc
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise FileFormatError(f"cannot read array {key!r} ({exc})", path) from exc


def _numeric(a: np.ndarray, path: str, key: str) -> np.ndarray:
    if a.dtype.kind not in "fiub":
        raise FileFormatError(f"{key!r} must be a numeric array, got dtype {a.dtype}", path)
    return a.astype(np.float64)


def _names(a: np.ndarray, path: str, key: str = "joint_names") -> list[str]:
    if a.ndim != 1 or a.dtype.kind not in "US":
        raise FileFormatError(f"{key!r} must be a 1-D string array, got dtype {a.dtype} shape {a.shape}", path)
    return [x.decode() if isinstance(x, bytes) else str(x) for x in a.tolist()]


def _fps(a: Any, path: str) -> float:
    try:
        fps = float(np.asarray(a, dtype=np.float64).reshape(()))
    except (TypeError, ValueError) as exc:
        raise FileFormatError(f"'fps' must be one number, got {a!r}", path) from exc
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


def _csv_values(rows: list[tuple[int, list[str]]], header: list[str], path: str) -> np.ndarray:
    """(N, C) float64 of the data rows; errors name the line (and column for non-numeric cells)."""
    n = len(header)
    for line, cells in rows:
        if len(cells) != n:
            raise FileFormatError(f"row has {len(cells)} cells, the header has {n} columns", path, line)
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
