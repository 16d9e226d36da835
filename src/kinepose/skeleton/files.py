"""Skeletons as plain data.

- ``skeleton_to_dict`` / ``skeleton_from_dict``: plain lists and numbers (model files, ONNX metadata).
- ``detect_left_right`` / ``infer_lateral_axis``: what the BVH and URDF readers guess from joint names.

The YAML/JSON skeleton file (``read_skeleton``, ``write_skeleton``) is :mod:`kinepose.skeleton.skeleton_file`.
"""

from __future__ import annotations

import numbers
import reprlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from kinepose.errors import KineposeError
from kinepose.skeleton.core import JOINT_KINDS, Skeleton

__all__ = ["detect_left_right", "infer_lateral_axis", "skeleton_from_dict", "skeleton_to_dict"]

_REQUIRED = ("name", "joint_names", "parents", "offsets", "kinds")
_OPTIONAL = ("hinge_axes", "limits", "left_right", "lateral_axis")
_BRIEF = reprlib.Repr()
_BRIEF.maxstring, _BRIEF.maxother, _BRIEF.maxlevel = 60, 60, 3


def skeleton_to_dict(skeleton: Skeleton) -> dict:
    """The skeleton as plain lists and numbers (what :func:`skeleton_from_dict` reads)."""
    return {
        "name": skeleton.name,
        "joint_names": list(skeleton.joint_names),
        "parents": list(skeleton.parents),
        "offsets": np.asarray(skeleton.offsets).tolist(),
        "kinds": list(skeleton.kinds),
        "hinge_axes": np.asarray(skeleton.hinge_axes).tolist(),
        "limits": np.asarray(skeleton.limits).tolist(),
        "left_right": [list(p) for p in skeleton.left_right],
        "lateral_axis": skeleton.lateral_axis,
    }


def skeleton_from_dict(d: dict) -> Skeleton:
    """The :class:`Skeleton` of a :func:`skeleton_to_dict` dict; the preset object itself when it is the same.

    Raises:
        KineposeError: ``d`` is not such a dict: a key missing, unknown or of the wrong type or shape (the
            message names the key), or a skeleton that does not hold together (see :class:`Skeleton`).
    """
    from kinepose.skeleton.presets import get_skeleton, list_skeletons

    kw = _checked_fields(d)
    sk = Skeleton(**kw)
    if kw["name"] in list_skeletons():  # share the preset object (and its caches) when it is the same
        preset = get_skeleton(kw["name"])
        a, b = skeleton_to_dict(preset), skeleton_to_dict(sk)
        # names first: a dict named after a preset may hold another joint count, whose arrays do not broadcast
        if all(a[k] == b[k] for k in ("joint_names", "parents", "kinds", "left_right", "lateral_axis")) and all(
            np.allclose(np.asarray(a[k], float), np.asarray(b[k], float), equal_nan=True)
            for k in ("offsets", "hinge_axes", "limits")
        ):
            return preset
    return sk


def _error(key: str, msg: str) -> KineposeError:
    return KineposeError(f"skeleton data: {key!r} {msg}")


def _checked_fields(d: Any) -> dict:
    """``d``'s fields as :class:`Skeleton` arguments, each checked for type and shape (Skeleton checks the rest)."""
    if not isinstance(d, dict):
        raise KineposeError(f"skeleton data: expected a dict, got {type(d).__name__}")
    missing = [k for k in _REQUIRED if k not in d]
    if missing:
        raise KineposeError(f"skeleton data: missing key(s) {missing}")
    unknown = sorted(str(k) for k in d if k not in _REQUIRED + _OPTIONAL)
    if unknown:
        raise KineposeError(f"skeleton data: unknown key(s) {_BRIEF.repr(unknown)}; known: {_REQUIRED + _OPTIONAL}")
    if not isinstance(d["name"], str):
        raise _error("name", f"must be a string, got {_BRIEF.repr(d['name'])}")
    names = _items(d, "joint_names", str, "strings")
    J = len(names)
    if J == 0:
        raise _error("joint_names", "must name at least one joint")
    kw: dict[str, Any] = {
        "name": d["name"],
        "joint_names": names,
        "parents": _items(d, "parents", numbers.Integral, "integers"),
        "kinds": _items(d, "kinds", str, "strings"),
        "offsets": _floats(d, "offsets", (J, 3), allow_nan=False),
    }
    if d.get("hinge_axes") is not None:
        kw["hinge_axes"] = _floats(d, "hinge_axes", (J, 3), allow_nan=False)
    if d.get("limits") is not None:
        kw["limits"] = _floats(d, "limits", (J, 2), allow_nan=True)  # nan: no limit
    if "left_right" in d:
        pairs = _items(d, "left_right", (list, tuple), "[left, right] pairs")
        if not all(len(p) == 2 and all(_is_int(i) for i in p) for p in pairs):
            raise _error("left_right", f"must be a list of [left, right] index pairs, got {_BRIEF.repr(pairs)}")
        kw["left_right"] = [tuple(int(i) for i in p) for p in pairs]
    if "lateral_axis" in d:
        if not _is_int(d["lateral_axis"]):
            raise _error("lateral_axis", f"must be 0, 1 or 2, got {_BRIEF.repr(d['lateral_axis'])}")
        kw["lateral_axis"] = int(d["lateral_axis"])
    _check_structure(kw)
    return kw


def _check_structure(kw: dict) -> None:
    """What :class:`Skeleton` checks too, here so that the message names the key of the dict."""
    names, parents, kinds = kw["joint_names"], kw["parents"], kw["kinds"]
    J = len(names)
    if len(set(names)) != J:
        raise _error("joint_names", f"has duplicates {_BRIEF.repr(sorted({n for n in names if names.count(n) > 1}))}")
    for key, n in (("parents", len(parents)), ("kinds", len(kinds))):
        if n != J:
            raise _error(key, f"has {n} entries, expected {J} (one per joint name)")
    if parents[0] != -1 or any(not 0 <= p < j for j, p in enumerate(parents) if j):
        raise _error("parents", "must start with -1 (the root) and be topologically sorted (0 <= parents[j] < j)")
    for j, k in enumerate(kinds):
        if k not in JOINT_KINDS:
            raise _error("kinds", f"entry {j} is {_BRIEF.repr(k)}, expected one of {JOINT_KINDS}")
        if k == "end" and j == 0:
            raise _error("kinds", "entry 0 is 'end', but the root cannot be an end site")
    for j, p in enumerate(parents):
        if p >= 0 and kinds[p] == "end":
            raise _error("parents", f"entry {j} hangs joint {names[j]!r} under end site {names[p]!r}")
    axes = kw.get("hinge_axes")
    for j, k in enumerate(kinds):
        if k == "hinge" and (axes is None or abs(np.linalg.norm(axes[j]) - 1) > 1e-6):
            raise _error("hinge_axes", f"row {j} (hinge joint {names[j]!r}) must be a unit vector")
    for a, b in kw.get("left_right", ()):
        if not (0 <= a < J and 0 <= b < J) or a == b:
            raise _error("left_right", f"pair ({a}, {b}) must name two different joints of the {J}")
    if kw.get("lateral_axis", 0) not in (0, 1, 2):
        raise _error("lateral_axis", f"must be 0, 1 or 2, got {kw['lateral_axis']}")


def _is_int(x: object) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool | np.bool_)


def _items(d: dict, key: str, kind: type | tuple[type, ...], what: str) -> list:
    value = d[key]
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if not isinstance(value, list | tuple):
        raise _error(key, f"must be a list of {what}, got {type(value).__name__}")
    items = list(value)
    if kind is numbers.Integral:
        ok = all(_is_int(x) for x in items)
    else:
        ok = all(isinstance(x, kind) for x in items)
    if not ok:
        raise _error(key, f"must be a list of {what}, got {_BRIEF.repr(items)}")
    return [int(x) for x in items] if kind is numbers.Integral else items


def _floats(d: dict, key: str, shape: tuple[int, int], allow_nan: bool) -> np.ndarray:
    try:
        a = np.asarray(d[key])
    except (TypeError, ValueError, OverflowError) as exc:  # ragged nesting, unconvertible items
        raise _error(key, f"must be a {shape} array of numbers ({exc})") from None
    if a.dtype.kind not in "fiub":  # object dtype: None, strings, integers beyond 64 bits...
        raise _error(key, f"must be a {shape} array of numbers, got {_BRIEF.repr(d[key])}")
    with np.errstate(over="ignore"):  # float128 beyond float64 becomes inf, refused below
        a = a.astype(np.float64)
    if a.shape != shape:
        raise _error(key, f"has shape {a.shape}, expected {shape} (one row per joint)")
    bad = np.isinf(a) if allow_nan else ~np.isfinite(a)
    if bad.any():
        j = int(np.argwhere(bad)[0][0])
        raise _error(
            key, f"row {j} holds a non-finite value {a[j].tolist()}" + (" (nan means none)" if allow_nan else "")
        )
    return a


# ----------------------------------------------------------------------------------------------- joint names


def detect_left_right(names: Sequence[str]) -> tuple[tuple[int, int], ...]:
    """``(left, right)`` index pairs matched by name, in the order of the left joints.

    Recognised: ``Left``/``Right`` (any case) anywhere (``LeftUpLeg``, ``left_knee``, ``mixamorig:LeftArm``); an
    ``L``/``R`` prefix before an upper-case letter, digit or ``_`` (``LHipJoint``, ``L_hip``); an ``l``/``r`` prefix
    (``lhip``); ``_l``/``_r``, ``.L``/``.R`` style suffixes. A pair needs both names to exist.
    """
    index = {n: i for i, n in enumerate(names)}
    pairs: list[tuple[int, int]] = []
    used: set[int] = set()
    for i, n in enumerate(names):
        if i in used:
            continue
        for cand in _right_candidates(n):
            j = index.get(cand)
            if j is not None and j != i and j not in used:
                pairs.append((i, j))
                used.update((i, j))
                break
    return tuple(pairs)


def _right_candidates(n: str) -> list[str]:
    out = []
    for left, right in (("Left", "Right"), ("left", "right"), ("LEFT", "RIGHT")):
        if left in n:
            out.append(n.replace(left, right, 1))
    if len(n) > 1 and n[0] == "L" and (n[1].isupper() or n[1].isdigit() or n[1] in "_.-"):
        out.append("R" + n[1:])
    if len(n) > 1 and n[0] == "l":
        out.append("r" + n[1:])
    for sep in "_.-":
        for left, right in (("l", "r"), ("L", "R")):
            if n.endswith(sep + left):
                out.append(n[:-1] + right)
    return out


def infer_lateral_axis(offsets: np.ndarray, parents: Sequence[int], pairs: Sequence[tuple[int, int]]) -> int:
    """The world axis (0, 1, 2) along which the first ``(left, right)`` pair whose rest positions differ differs
    most; 0 when there is none. ``offsets`` (J, 3) and ``parents`` as in :class:`Skeleton`."""
    if not pairs:
        return 0
    rest = np.zeros((len(parents), 3))
    for j, p in enumerate(parents):
        rest[j] = offsets[j] if p < 0 else rest[p] + offsets[j]
    scale_ref = max(float(np.abs(rest).max()), 1e-12)
    for a, b in pairs:
        d = np.abs(rest[a] - rest[b])
        if d.max() > 1e-9 * scale_ref:
            return int(np.argmax(d))
    return 0


# ----------------------------------------------------------------------------------------------- skeleton files

#: The ``format`` field of a skeleton file, and the version this code writes and reads.
