"""Reading back rotation files written by :func:`kinepose.data.formats.io.save_rotations` (``.npz``, ``.csv``,
``.json``); their layout is documented in :mod:`kinepose.data.formats.io`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import numpy as np

from kinepose.data.formats._common import (
    _FORMAT,
    _QUAT,
    _VERSION,
    _brief,
    _csv_groups,
    _csv_rows,
    _csv_values,
    _extension,
    _fps,
    _load_npz,
    _names,
    _npz_array,
    _numeric,
)
from kinepose.errors import FileFormatError

__all__ = ["ROTATION_INPUTS", "RotationsFile", "load_rotations"]

#: Extensions :func:`load_rotations` reads.
ROTATION_INPUTS = (".npz", ".csv", ".json")
_NPZ_KEYS = ("local_quat", "root_pos", "joint_names", "parents", "observable", "fps", "joints")


@dataclass
class RotationsFile:
    """Rotations read by :func:`load_rotations`.

    Attributes:
        local_quat: (T, J, 4) float64 w,x,y,z local rotations.
        root_pos: (T, 3) float64 root positions, metres.
        joint_names: ``J`` names, or None (an ``.npz`` without them).
        parents: ``J`` parent indices, root -1, or None (``.csv``).
        observable: (J,) bool flags, or None (``.csv``).
        fps: frames per second, or None (``.csv``).
        joints: (T, J, 3) float64 positions when the file has them (``.npz``, ``.json``), else None.
        path: the file read.
    """

    local_quat: np.ndarray
    root_pos: np.ndarray
    joint_names: list[str] | None
    parents: list[int] | None
    observable: np.ndarray | None
    fps: float | None
    joints: np.ndarray | None = None
    path: str = ""


def load_rotations(path: str | os.PathLike) -> RotationsFile:
    """Read a file written by :func:`save_rotations` (``.npz``, ``.csv`` or ``.json``).

    For ``.bvh`` use :func:`kinepose.data.formats.bvh.read_bvh` (``read_bvh(path).to_motion()``).

    Raises:
        FileFormatError: unknown extension, unreadable file, missing keys or columns, wrong shapes,
            non-finite values, a JSON ``format`` other than ``"kinepose-rotations"``.
    """
    spath = os.fspath(path)
    if os.path.splitext(spath)[1].lower() == ".bvh":
        raise FileFormatError(
            "load_rotations reads .npz, .csv and .json; for BVH use read_bvh(path).to_motion()", spath
        )
    ext = _extension(spath, ROTATION_INPUTS, "rotations")
    if not os.path.isfile(spath):
        why = "is a folder" if os.path.isdir(spath) else "no such file"
        raise FileFormatError(f"cannot read ({why})", spath)
    if ext == ".npz":
        out = _read_rotations_npz(spath)
    elif ext == ".json":
        out = _read_rotations_json(spath)
    else:
        out = _read_rotations_csv(spath)
    _check_rotations_file(out)
    return out


def _read_rotations_npz(path: str) -> RotationsFile:
    with _load_npz(path) as data:
        missing = [k for k in ("local_quat", "root_pos") if k not in data.files]
        if missing:
            raise FileFormatError(f"missing array(s) {missing}; the file holds {_brief(sorted(data.files))}", path)
        # only the arrays of the layout are read: others are ignored, as by load_joints
        get = {k: _npz_array(data, k, path) for k in _NPZ_KEYS if k in data.files}
    parents = get.get("parents")
    if parents is not None and (parents.ndim != 1 or parents.dtype.kind not in "iu"):
        raise FileFormatError(f"'parents' must be a 1-D integer array, got {parents.dtype} {parents.shape}", path)
    obs = get.get("observable")
    if obs is not None and (obs.ndim != 1 or obs.dtype.kind != "b"):
        raise FileFormatError(
            f"'observable' must be a 1-D boolean array, got dtype {obs.dtype} shape {obs.shape}", path
        )
    joints = get.get("joints")
    return RotationsFile(
        local_quat=_numeric(get["local_quat"], path, "local_quat"),
        root_pos=_numeric(get["root_pos"], path, "root_pos"),
        joint_names=_names(get["joint_names"], path) if "joint_names" in get else None,
        parents=None if parents is None else [int(p) for p in parents],
        observable=obs,
        fps=_fps(get["fps"], path) if "fps" in get else None,
        joints=None if joints is None else _numeric(joints, path, "joints"),
        path=path,
    )


def _json_array(doc: dict, key: str, path: str) -> np.ndarray:
    try:
        return np.array(doc[key], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise FileFormatError(f"{key!r} must be a rectangular nested list of numbers ({exc})", path) from exc
    except OverflowError:  # an integer beyond float64's range: json reads 1e400 as inf but 1000...0 as an int
        raise FileFormatError(f"{key!r}: an integer too large for a 64-bit float", path) from None


def _read_rotations_json(path: str) -> RotationsFile:
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise FileFormatError(f"cannot read ({exc})", path) from exc
    try:
        doc = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise FileFormatError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", path, line) from None
    except json.JSONDecodeError as exc:
        raise FileFormatError(f"malformed JSON ({exc.msg})", path, exc.lineno) from exc
    except RecursionError:  # the json module recurses per nesting level
        raise FileFormatError("malformed JSON: nested too deeply", path) from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise FileFormatError(f"malformed JSON ({exc})", path) from exc
    if not isinstance(doc, dict):
        raise FileFormatError(f"expected a JSON object, got {type(doc).__name__}", path)
    if doc.get("format") != _FORMAT:
        raise FileFormatError(f"'format' is {_brief(doc.get('format'))}, expected {_FORMAT!r}", path)
    if doc.get("version") != _VERSION:
        raise FileFormatError(f"unsupported 'version' {_brief(doc.get('version'))}; this reader knows {_VERSION}", path)
    if doc.get("quaternion_order", "wxyz") != "wxyz":
        raise FileFormatError(f"'quaternion_order' is {_brief(doc['quaternion_order'])}, expected 'wxyz'", path)
    if doc.get("units", "metres") not in ("metres", "meters", "m"):
        raise FileFormatError(f"'units' is {_brief(doc['units'])}, expected 'metres'", path)
    missing = [k for k in ("local_quat", "root_pos", "joint_names") if k not in doc]
    if missing:
        raise FileFormatError(f"missing key(s) {missing}", path)
    names = doc["joint_names"]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise FileFormatError("'joint_names' must be a list of strings", path)
    for i, n in enumerate(names):
        try:
            n.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate, from an escape such as "\ud800"
            raise FileFormatError(f"'joint_names': entry {i} is not valid Unicode text", path) from None
    q = _json_array(doc, "local_quat", path)
    if q.size == 0:
        q = q.reshape(0, len(names), 4)
    parents = doc.get("parents")
    if parents is not None and (not isinstance(parents, list) or not all(type(p) is int for p in parents)):
        raise FileFormatError("'parents' must be a list of integers", path)
    obs = doc.get("observable")
    if obs is not None and (not isinstance(obs, list) or not all(isinstance(b, bool) for b in obs)):
        raise FileFormatError("'observable' must be a list of true/false", path)
    return RotationsFile(
        local_quat=q,
        root_pos=_json_array(doc, "root_pos", path),
        joint_names=names,
        parents=parents,
        observable=None if obs is None else np.array(obs, dtype=bool),
        fps=_fps(doc["fps"], path) if "fps" in doc else None,
        joints=_json_array(doc, "joints", path) if "joints" in doc else None,
        path=path,
    )


def _read_rotations_csv(path: str) -> RotationsFile:
    rows = _csv_rows(path)
    (hline, header), data = rows[0], rows[1:]
    lead = ["frame", "root_x", "root_y", "root_z"]
    if [h.lower() for h in header[:4]] != lead:
        raise FileFormatError(
            f"header must start with {','.join(lead)}, then <joint>_qw,<joint>_qx,<joint>_qy,<joint>_qz per joint; "
            f"got {','.join(header[:4])!r}",
            path,
            hline,
        )
    names = _csv_groups(header, hline, path, _QUAT, 4)
    values = _csv_values(data, header, path) if data else np.zeros((0, len(header)))
    bad = ~np.isfinite(values)
    if bad.any():
        r, c = (int(i) for i in np.argwhere(bad)[0])
        raise FileFormatError(f"non-finite value in column {c + 1} ({header[c]!r})", path, data[r][0])
    T = values.shape[0]
    return RotationsFile(
        local_quat=values[:, 4:].reshape(T, len(names), 4),
        root_pos=values[:, 1:4].copy(),
        joint_names=names,
        parents=None,
        observable=None,
        fps=None,
        path=path,
    )


def _check_rotations_file(r: RotationsFile) -> None:
    """Shapes consistent with each other and values finite."""
    path, q = r.path, r.local_quat
    if q.ndim != 3 or q.shape[-1] != 4:
        raise FileFormatError(f"'local_quat' has shape {q.shape}, expected (T, J, 4)", path)
    T, J = q.shape[:2]
    if r.root_pos.shape != (T, 3):
        raise FileFormatError(f"'root_pos' has shape {r.root_pos.shape}, expected ({T}, 3) as local_quat", path)
    for key, value in (("joint_names", r.joint_names), ("parents", r.parents), ("observable", r.observable)):
        if value is not None and len(value) != J:
            raise FileFormatError(f"{key!r} has {len(value)} entries, expected {J} (local_quat's joints)", path)
    if r.joints is not None and r.joints.shape != (T, J, 3):
        raise FileFormatError(f"'joints' has shape {r.joints.shape}, expected ({T}, {J}, 3)", path)
    if r.parents is not None and (r.parents[:1] != [-1] or any(not 0 <= p < j for j, p in enumerate(r.parents) if j)):
        raise FileFormatError(f"'parents' must be topologically sorted with root -1 first, got {r.parents}", path)
    for key, a in (("local_quat", q), ("root_pos", r.root_pos), ("joints", r.joints)):
        if a is not None and not np.isfinite(a).all():
            idx = tuple(int(i) for i in np.argwhere(~np.isfinite(a))[0])
            raise FileFormatError(f"{key!r}: non-finite value at index {idx} (frame {idx[0]})", path)
