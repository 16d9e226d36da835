"""The documented YAML/JSON skeleton file (``docs/skeleton_files.md``): ``read_skeleton``, ``read_skeleton_file``,
``write_skeleton``, ``skeleton_file_text``.

A file holds a name, a length unit, one entry per joint (name, parent, kind, offset, hinge axis and limits in
degrees, optional twist limits), left/right pairs by name and the lateral axis. Round trips are exact in every
unit. (Skeletons as plain dicts for model files are :mod:`kinepose.skeleton.files`.)
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Context, Decimal
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from kinepose._atomic import atomic_write
from kinepose.errors import FileFormatError, KineposeError
from kinepose.skeleton.core import JOINT_KINDS, Skeleton
from kinepose.skeleton.files import _BRIEF, _is_int

__all__ = [
    "SKELETON_FILE_EXTENSIONS",
    "SKELETON_FILE_FORMAT",
    "SKELETON_FILE_VERSION",
    "UNITS",
    "SkeletonFile",
    "read_skeleton",
    "read_skeleton_file",
    "skeleton_file_text",
    "write_skeleton",
]

SKELETON_FILE_FORMAT = "kinepose-skeleton"
SKELETON_FILE_VERSION = 1
#: Extensions :func:`read_skeleton` and :func:`write_skeleton` handle (YAML and JSON hold the same fields).
SKELETON_FILE_EXTENSIONS = (".yaml", ".yml", ".json")
#: Length units of skeleton files: metres per file unit, as exact decimals.
UNITS = {"m": Decimal(1), "cm": Decimal("0.01"), "mm": Decimal("0.001"), "inch": Decimal("0.0254")}

_CTX = Context(prec=60)  # decimal arithmetic of the unit conversions: correctly rounded once, to float64
_PI = Decimal("3.14159265358979323846264338327950288419716939937510582097494459")
_DEG = _CTX.divide(_PI, Decimal(180))  # radians per degree
_AXIS_NAMES = ("x", "y", "z")
_TOP_KEYS = ("format", "version", "name", "units", "lateral_axis", "joints", "left_right")
_JOINT_KEYS = ("name", "parent", "kind", "offset", "axis", "limits", "twist_limits")
_MAX_YAML_DEPTH = 32  # skeleton files nest 4 levels; deeper input is refused before PyYAML recurses


@dataclass(frozen=True)
class SkeletonFile:
    """What a skeleton file holds (:func:`read_skeleton_file`).

    Attributes:
        skeleton: the :class:`Skeleton`, metres and radians.
        units: the file's length unit (``m``, ``cm``, ``mm`` or ``inch``).
        twist_limits: ``{joint name: (lower, upper)}`` radians, for the ball joints that give them. kinepose's
            solvers do not use them yet; they are kept so that a file read and written again keeps them.
        path: the file read, if any.
    """

    skeleton: Skeleton
    units: str = "m"
    twist_limits: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    path: str | None = None


def read_skeleton(path: str | os.PathLike) -> Skeleton:
    """The :class:`Skeleton` of a YAML (``.yaml``/``.yml``) or JSON (``.json``) skeleton file.

    The format is described in ``docs/skeleton_files.md``; :func:`read_skeleton_file` also returns the file's
    units and twist limits.

    Raises:
        FileFormatError: the file is missing, unreadable, not YAML/JSON, or a field is missing, unknown or
            wrong; the message names the file, the joint (index and name) and the field.
    """
    return read_skeleton_file(path).skeleton


def read_skeleton_file(path: str | os.PathLike) -> SkeletonFile:
    """Read a skeleton file (see :func:`read_skeleton`): the skeleton, its units and twist limits.

    Lengths are converted to metres and angles to radians with decimal arithmetic, each value rounded once to
    float64, so that :func:`write_skeleton` can choose decimals that read back to the same float64 bits in every
    unit.
    """
    spath = os.fspath(path)
    ext = _skeleton_extension(spath)
    try:
        with open(spath, encoding="utf-8") as f:
            text = f.read()
    except UnicodeDecodeError as exc:
        raise FileFormatError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", spath) from None
    except OSError as exc:
        raise FileFormatError(f"cannot read ({exc.strerror or exc})", spath) from exc
    doc = _parse_json(text, spath) if ext == ".json" else _parse_yaml(text, spath)
    return _skeleton_file_from_doc(doc, spath)


def write_skeleton(
    skeleton: Skeleton,
    path: str | os.PathLike,
    *,
    units: str = "m",
    twist_limits: Mapping[str, tuple[float, float]] | None = None,
    overwrite: bool = False,
) -> None:
    """Write ``skeleton`` as a YAML or JSON skeleton file (by the extension), atomically.

    Lengths are written in ``units``, angles in degrees, each number as the shortest decimal that reads back to
    the same float64, so ``read_skeleton(path)`` equals ``skeleton`` exactly. The text is read back and compared
    before the file is touched. Hinge axes and limits are stored for hinge joints only (a :class:`Skeleton`
    ignores the rows of other joints).

    Args:
        skeleton: the skeleton (metres, radians).
        path: ``.yaml``, ``.yml`` or ``.json`` file.
        units: ``m``, ``cm``, ``mm`` or ``inch``: the unit of the lengths in the file.
        twist_limits: optional ``{ball joint name: (lower, upper)}`` radians to store with the skeleton.
        overwrite: replace an existing file; without it an existing ``path`` is an error and stays untouched.

    Raises:
        KineposeError: ``path`` exists and ``overwrite`` is False, a bad ``units``, or twist limits for a
            joint that is not a ball joint of the skeleton.
        FileFormatError: the file cannot be written.
    """
    spath = os.fspath(path)
    ext = _skeleton_extension(spath)
    text = skeleton_file_text(skeleton, "json" if ext == ".json" else "yaml", units=units, twist_limits=twist_limits)
    if os.path.lexists(spath) and not overwrite:
        raise KineposeError(f"{spath}: exists; pass overwrite=True (kinepose skeleton: --force) to replace it")
    atomic_write(spath, lambda f: f.write(text))


def skeleton_file_text(
    skeleton: Skeleton,
    fmt: str = "yaml",
    *,
    units: str = "m",
    twist_limits: Mapping[str, tuple[float, float]] | None = None,
) -> str:
    """The text of a skeleton file (``fmt`` ``"yaml"`` or ``"json"``) for :func:`write_skeleton`, checked: it is
    parsed back and must give the same skeleton, units and twist limits."""
    if fmt not in ("yaml", "json"):
        raise KineposeError(f"fmt: expected 'yaml' or 'json', got {fmt!r}")
    if units not in UNITS:
        raise KineposeError(f"units: expected one of {', '.join(UNITS)}, got {units!r}")
    twist = _checked_twist_limits(skeleton, twist_limits or {})
    factor = UNITS[units]
    joints = []
    for j, name in enumerate(skeleton.joint_names):
        p = skeleton.parents[j]
        kind = skeleton.kinds[j]
        row: list[tuple[str, str]] = [
            ("name", _string(name)),
            ("parent", "null" if p < 0 else _string(skeleton.joint_names[p])),
            ("kind", kind),
            ("offset", _numbers(skeleton.offsets[j], factor)),
        ]
        if kind == "hinge":
            row.append(("axis", "[" + ", ".join(repr(float(v)) for v in skeleton.hinge_axes[j]) + "]"))
            if not np.isnan(skeleton.limits[j]).all():
                row.append(("limits", _numbers(skeleton.limits[j], _DEG)))
        if name in twist:
            row.append(("twist_limits", _numbers(np.array(twist[name]), _DEG)))
        joints.append(row)
    pairs = ["[" + ", ".join(_string(skeleton.joint_names[i]) for i in pair) + "]" for pair in skeleton.left_right]
    head = [
        ("format", SKELETON_FILE_FORMAT),
        ("version", str(SKELETON_FILE_VERSION)),
        ("name", _string(skeleton.name)),
        ("units", units),
        ("lateral_axis", _string(_AXIS_NAMES[skeleton.lateral_axis])),
    ]
    if fmt == "json":
        quoted = {"kind", "format", "units"}  # plain words in YAML, strings in JSON
        head = [(k, _string(v) if k in quoted else v) for k, v in head]
        joints = [[(k, _string(v) if k in quoted else v) for k, v in row] for row in joints]
        lines = ["{"] + [f'  "{k}": {v},' for k, v in head] + ['  "joints": [']
        rows = ["    {" + ", ".join(f'"{k}": {v}' for k, v in row) + "}" for row in joints]
        lines += [",\n".join(rows), "  ],", '  "left_right": [' + ", ".join(pairs) + "]", "}"]
    else:
        lines = [f"# kinepose skeleton file (docs/skeleton_files.md): lengths in {units}, angles in degrees"]
        lines += [f"{k}: {v}" for k, v in head] + ["joints:"]
        for row in joints:
            lines += [f"  - {k}: {v}" if i == 0 else f"    {k}: {v}" for i, (k, v) in enumerate(row)]
        lines += ["left_right:" + ("" if pairs else " []")] + [f"  - {p}" for p in pairs]
    text = "\n".join(lines) + "\n"
    back = _skeleton_file_from_doc(_parse_json(text, "<text>") if fmt == "json" else _parse_yaml(text, "<text>"),
                                   "<text>")  # fmt: skip
    if not _same_file_content(skeleton, twist, back):
        raise KineposeError(f"skeleton '{skeleton.name}': its file text does not read back to the same skeleton "
                            f"(a joint name the {fmt.upper()} reader cannot hold?)")  # fmt: skip
    return text


def _skeleton_extension(path: str) -> str:
    ext = os.path.splitext(path)[1].lower()
    if ext not in SKELETON_FILE_EXTENSIONS:
        raise FileFormatError(
            f"unknown skeleton file extension {ext or '(none)'!r}; expected {', '.join(SKELETON_FILE_EXTENSIONS)}", path
        )
    return ext


def _string(s: str) -> str:
    # A JSON string is a YAML double-quoted scalar too; non-ASCII stays as is (YAML's \u escapes cannot pair
    # surrogates), control characters are escaped.
    return json.dumps(s, ensure_ascii=False)


def _numbers(values: np.ndarray, factor: Decimal) -> str:
    return "[" + ", ".join("null" if np.isnan(v) else _decimal_text(float(v), factor) for v in values) + "]"


def _to_float(d: Decimal, factor: Decimal) -> float:
    """``d`` file units (or degrees) times ``factor``, rounded once to float64."""
    return float(_CTX.multiply(d, factor)) if factor != 1 else float(d)


def _decimal_text(v: float, factor: Decimal) -> str:
    """The shortest decimal ``s`` with ``_to_float(Decimal(s), factor) == v`` (plain notation when short)."""
    if v == 0:
        return "0"
    if factor == 1:
        return repr(v)  # Python's repr is the shortest decimal that reads back exactly
    target = _CTX.divide(Decimal(v), factor)
    for digits in range(1, 40):
        s = format(target, f".{digits}g")
        if _to_float(Decimal(s), factor) == v:
            break
    else:  # pragma: no cover - 60 significant digits always read back
        s = format(target, "g")
    d = Decimal(s)
    if -7 < d.adjusted() < 16:
        s = format(d, "f")
        if "." in s:
            s = s.rstrip("0").rstrip(".")
    return s


def _checked_twist_limits(skeleton: Skeleton, twist: Mapping[str, tuple[float, float]]) -> dict:
    out = {}
    for name, lim in twist.items():
        j = skeleton.index(name)
        if skeleton.kinds[j] != "ball":
            raise KineposeError(f"twist_limits: joint {name!r} is a {skeleton.kinds[j]} joint; twist limits are for "
                                f"ball joints")  # fmt: skip
        lo, hi = (float(v) for v in lim)
        if not (np.isfinite(lo) or np.isnan(lo)) or not (np.isfinite(hi) or np.isnan(hi)):
            raise KineposeError(f"twist_limits: joint {name!r}: expected finite radians (nan: no limit), got {lim}")
        out[name] = (lo, hi)
    return out


def _same_file_content(skeleton: Skeleton, twist: dict, back: SkeletonFile) -> bool:
    b = back.skeleton
    hinge = [k == "hinge" for k in skeleton.kinds]
    same_twist = set(twist) == set(back.twist_limits) and all(
        np.array_equal(twist[n], back.twist_limits[n], equal_nan=True) for n in twist
    )
    return (
        same_twist
        and (b.name, b.joint_names, b.parents, b.kinds, b.left_right, b.lateral_axis)
        == (skeleton.name, skeleton.joint_names, skeleton.parents, skeleton.kinds, skeleton.left_right,
            skeleton.lateral_axis)
        and np.array_equal(b.offsets, skeleton.offsets)
        and np.array_equal(b.hinge_axes[hinge], skeleton.hinge_axes[hinge])
        and np.array_equal(b.limits[hinge], skeleton.limits[hinge], equal_nan=True)
    )  # fmt: skip


# --------------------------------------------------------------------- parsing


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number a skeleton file may hold")


def _parse_json(text: str, path: str) -> Any:
    try:
        return json.loads(text, parse_float=Decimal, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise FileFormatError(f"malformed JSON ({exc.msg}, column {exc.colno})", path, exc.lineno) from None
    except (ValueError, RecursionError) as exc:  # NaN/Infinity, integers of thousands of digits, deep nesting
        raise FileFormatError(f"malformed JSON ({type(exc).__name__}: {exc})", path) from None


class _DecimalLoader(yaml.SafeLoader):
    """PyYAML's safe loader, with floats read as exact decimals and ``1e-3`` (no dot) read as a number."""


def _construct_decimal(loader: yaml.SafeLoader, node: yaml.Node) -> Decimal:
    text = loader.construct_scalar(node).replace("_", "").lower()
    if text in (".inf", "+.inf", "-.inf", ".nan"):
        return Decimal(text.replace(".inf", "Infinity").replace(".nan", "NaN"))
    if ":" in text:  # YAML 1.1 sexagesimal 1:30.5
        return Decimal(loader.construct_yaml_float(node))
    return Decimal(text)


_DecimalLoader.add_constructor("tag:yaml.org,2002:float", _construct_decimal)
_DecimalLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def _parse_yaml(text: str, path: str) -> Any:
    try:
        depth = 0
        for event in yaml.parse(text, Loader=_DecimalLoader):  # the event parser keeps its own stack
            if isinstance(event, yaml.SequenceStartEvent | yaml.MappingStartEvent):
                depth += 1
                if depth > _MAX_YAML_DEPTH:
                    raise FileFormatError(f"nested more than {_MAX_YAML_DEPTH} levels deep", path,
                                          event.start_mark.line + 1)  # fmt: skip
            elif isinstance(event, yaml.SequenceEndEvent | yaml.MappingEndEvent):
                depth -= 1
        return yaml.load(text, Loader=_DecimalLoader)  # a SafeLoader subclass: no Python objects
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise FileFormatError(f"malformed YAML ({problem})", path, line) from None
    except (ValueError, ArithmeticError, RecursionError) as exc:  # constructors: bad dates, huge integers
        raise FileFormatError(f"malformed YAML ({type(exc).__name__}: {exc})", path) from None


def _skeleton_file_from_doc(doc: Any, path: str) -> SkeletonFile:
    def err(msg: str) -> FileFormatError:
        return FileFormatError(msg, path)

    if not isinstance(doc, dict):
        raise err(f"expected a mapping of {', '.join(_TOP_KEYS)} at the top, got {type(doc).__name__}")
    unknown = [str(k) for k in doc if k not in _TOP_KEYS]
    if unknown:
        raise err(f"unknown field(s) {_BRIEF.repr(unknown)}; known: {', '.join(_TOP_KEYS)}")
    if doc.get("format", SKELETON_FILE_FORMAT) != SKELETON_FILE_FORMAT:
        raise err(f"'format' must be {SKELETON_FILE_FORMAT!r}, got {_BRIEF.repr(doc['format'])}")
    if "version" in doc and not (_is_int(doc["version"]) and 1 <= doc["version"] <= SKELETON_FILE_VERSION):
        raise err(f"'version' {_BRIEF.repr(doc['version'])} is not one this kinepose reads "
                  f"(1 to {SKELETON_FILE_VERSION})")  # fmt: skip
    name = doc.get("name", Path(path).stem)
    if not isinstance(name, str) or not name:
        raise err(f"'name' must be a non-empty string, got {_BRIEF.repr(name)}")
    units = doc.get("units", "m")
    if units not in UNITS:
        raise err(f"'units' must be one of {', '.join(UNITS)}, got {_BRIEF.repr(units)}")
    lateral = doc.get("lateral_axis", 0)
    if lateral in _AXIS_NAMES:
        lateral = _AXIS_NAMES.index(lateral)
    if not (_is_int(lateral) and 0 <= lateral <= 2):
        raise err(f"'lateral_axis' must be x, y or z (or 0, 1, 2), got {_BRIEF.repr(doc.get('lateral_axis'))}")
    rows = doc.get("joints")
    if not isinstance(rows, list) or not rows:
        raise err(f"'joints' must be a non-empty list of joints, got {_BRIEF.repr(rows)}")

    factor = UNITS[units]
    names: list[str] = []
    index: dict[str, int] = {}
    parents, kinds, offsets, axes, limits = [], [], [], [], []
    twist: dict[str, tuple[float, float]] = {}
    for j, row in enumerate(rows):
        where = f"joint {j}"
        if not isinstance(row, dict):
            raise err(f"{where}: expected a mapping of {', '.join(_JOINT_KEYS)}, got {_BRIEF.repr(row)}")
        jname = row.get("name")
        if not isinstance(jname, str) or not jname:
            raise err(f"{where}: 'name' must be a non-empty string (quote names YAML reads as numbers or "
                      f"booleans), got {_BRIEF.repr(jname)}")  # fmt: skip
        where = f"joint {j} ({jname!r})"
        if jname in index:
            raise err(f"{where}: 'name' repeats joint {index[jname]}")
        bad = [str(k) for k in row if k not in _JOINT_KEYS]
        if bad:
            raise err(f"{where}: unknown field(s) {_BRIEF.repr(bad)}; known: {', '.join(_JOINT_KEYS)}")
        parent = row.get("parent")
        if j == 0:
            if parent is not None:
                raise err(f"{where}: 'parent' must be null: the first joint is the root")
            parents.append(-1)
        elif parent is None:
            raise err(f"{where}: 'parent' is missing or null, but only the first joint is the root")
        elif not isinstance(parent, str) or parent not in index:
            raise err(f"{where}: 'parent' {_BRIEF.repr(parent)} is not a joint listed before it (list parents first)")
        else:
            parents.append(index[parent])
        kind = row.get("kind", "ball")
        if kind not in JOINT_KINDS:
            raise err(f"{where}: 'kind' must be one of {', '.join(JOINT_KINDS)}, got {_BRIEF.repr(kind)}")
        if kind == "end" and j == 0:
            raise err(f"{where}: 'kind' is end, but the root cannot be an end site")
        if j and kinds[parents[-1]] == "end":
            raise err(f"{where}: 'parent' {parent!r} is an end site, which cannot have children")
        if "offset" not in row and j:
            raise err(f"{where}: 'offset' is missing (3 numbers, {units})")
        offsets.append(_file_numbers(row.get("offset", [0, 0, 0]), 3, factor, err, where, "offset", units))
        axis, lim = np.zeros(3), [np.nan, np.nan]
        for key in ("axis", "limits"):
            if key in row and kind != "hinge":
                raise err(f"{where}: '{key}' is for hinge joints, this one is {kind}")
        if kind == "hinge":
            if "axis" not in row:
                raise err(f"{where}: 'axis' is missing (3 numbers: the hinge axis in the parent's frame)")
            axis = _file_numbers(row["axis"], 3, Decimal(1), err, where, "axis", "")
            norm = float(np.linalg.norm(axis))
            if norm < 1e-9:
                raise err(f"{where}: 'axis' must not be zero")
            if abs(norm - 1) > 1e-9:
                axis = axis / norm
            if row.get("limits") is not None:
                lim = _file_numbers(row["limits"], 2, _DEG, err, where, "limits", "degrees", allow_null=True)
        if row.get("twist_limits") is not None:
            if kind != "ball":
                raise err(f"{where}: 'twist_limits' is for ball joints, this one is {kind}")
            t = _file_numbers(row["twist_limits"], 2, _DEG, err, where, "twist_limits", "degrees", allow_null=True)
            twist[jname] = (float(t[0]), float(t[1]))
        for key, pair in (("limits", lim), ("twist_limits", twist.get(jname))):
            if pair is not None and pair[0] > pair[1]:
                raise err(f"{where}: '{key}' lower bound is above the upper bound")
        index[jname] = j
        names.append(jname)
        kinds.append(kind)
        axes.append(axis)
        limits.append(lim)

    pairs = []
    lr = doc.get("left_right", [])
    if not isinstance(lr, list):
        raise err(f"'left_right' must be a list of [left, right] joint name pairs, got {_BRIEF.repr(lr)}")
    for k, pair in enumerate(lr):
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(n, str) for n in pair)):
            raise err(f"'left_right' entry {k} must be a [left, right] pair of joint names, got {_BRIEF.repr(pair)}")
        missing = [n for n in pair if n not in index]
        if missing or pair[0] == pair[1]:
            why = f"names no joint {missing[0]!r}" if missing else "names one joint twice"
            raise err(f"'left_right' entry {k} {_BRIEF.repr(pair)} {why}")
        pairs.append((index[pair[0]], index[pair[1]]))
    try:
        sk = Skeleton(name, names, parents, np.array(offsets), kinds, np.array(axes), np.array(limits), pairs,
                      lateral_axis=lateral)  # fmt: skip
    except KineposeError as exc:  # what the checks above do not catch
        raise err(str(exc)) from None
    return SkeletonFile(sk, units, twist, None if path == "<text>" else path)


def _file_numbers(
    value: Any,
    n: int,
    factor: Decimal,
    err: Callable[[str], FileFormatError],
    where: str,
    key: str,
    unit: str,
    allow_null: bool = False,
) -> np.ndarray:
    what = f"{n} numbers" + (f" ({unit})" if unit else "") + (" or null" if allow_null else "")
    if not isinstance(value, list) or len(value) != n:
        raise err(f"{where}: '{key}' must be a list of {what}, got {_BRIEF.repr(value)}")
    out = np.empty(n)
    for i, v in enumerate(value):
        if v is None and allow_null:
            out[i] = np.nan
            continue
        if isinstance(v, bool) or not isinstance(v, int | Decimal | float):
            raise err(f"{where}: '{key}' must be a list of {what}, got {_BRIEF.repr(value)}")
        d = Decimal(v)
        try:
            f = _to_float(d, factor) if d.is_finite() else float("nan")
        except ArithmeticError:  # decimal Overflow/Underflow of exponents beyond 999999
            f = float("nan")
        if not np.isfinite(f):
            raise err(f"{where}: '{key}' holds {v}, not a finite number" + (" (null: no limit)" if allow_null else ""))
        out[i] = f
    return out
