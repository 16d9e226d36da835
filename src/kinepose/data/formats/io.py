"""Files of ``kinepose ik``: joint positions in (:func:`load_joints`), joint rotations out (:func:`save_rotations`,
read back by :func:`load_rotations`).

Conventions in every format: metres; ``T`` frames, ``J`` joints; quaternions **w, x, y, z** (real part first),
each joint's rotation relative to its parent (``local_quat``); one rotation for **every** joint of the skeleton,
end sites included (theirs is the identity ``1, 0, 0, 0``), so joint ``j``'s data is always at index ``j``.

Joint positions (inputs, :data:`SUPPORTED_INPUTS`)
--------------------------------------------------

``.npz``
    ``joints``: numeric array (T, J, 3), or (J, 3) for a single frame. Optional ``joint_names``: (J,) string
    array (save it as ``np.array(names)``; object arrays are not read). Optional ``fps``: a scalar. Optional
    ``confidence``: (T, J) detector scores (joints below ``min_confidence`` become missing). Other arrays
    are ignored. Each array's ``.npy`` header is checked against the archive before anything is allocated:
    a damaged, truncated or oversized member is an error naming the file and the array.
``.npy``
    one numeric array (T, J, 3) or (J, 3). It has no names: the joints must be in the skeleton's order.
``.csv``
    comma separated, UTF-8, the header row first. An optional leading ``frame`` column (ignored), then
    three columns per joint, ``<joint>_x,<joint>_y,<joint>_z`` in that order (the joint name is the header
    up to its last ``_``; names may contain ``_``), optionally a ``<joint>_c`` confidence column per joint.
    Then one row per frame with as many cells as the header; ``nan``, an empty cell or ``NA`` marks a missing
    joint.
    Blank lines are skipped. Error messages give 1-based line numbers (the header is line 1)::

        frame,root_x,root_y,root_z,chest_x,chest_y,chest_z
        0,0.0,0.9,0.0,0.0,1.136,0.0
        1,0.01,0.9,0.0,0.01,1.136,0.0
``.bvh``
    positions by the file's own forward kinematics (:meth:`kinepose.data.formats.bvh.BVH.positions`), joints and
    end sites in file order, names from the file (end sites are called ``<parent>_end``), fps from
    ``Frame Time``.

``scale`` multiplies the positions of every format to give metres: 0.001 for millimetres, 0.01
(:data:`~kinepose.data.formats.bvh.CM_TO_M`) for BVH files in centimetres, :data:`~kinepose.data.formats.bvh.CMU_TO_M`
(0.0254 / 0.45, about 0.0564) for the CMU mocap BVH conversions, whose unit is 1/0.45 inch.

A position that is NaN is a **missing joint** (occluded, not detected): IK and the fit use the other joints
and mark what it determined as undetermined in that frame. Infinite values are an error.

With a ``layout`` (``--layout coco17``...), the file's joints are in that keypoint layout's order (names,
if any, must be the layout's) and are converted onto the skeleton first (:mod:`kinepose.skeleton.layouts`).

With a ``skeleton``, the joints are put in the skeleton's order:

- names in the file: matched by name; joints the skeleton lacks are dropped, skeleton joints missing from
  the file are an error that names them. For ``.bvh`` files, whose end sites have lost their names, a
  skeleton end site missing from the file is matched to the file's ``<parent>_end`` (``<parent>_end2`` ...
  for a second end site on the same parent, in index order), as :func:`~kinepose.data.formats.bvh.write_bvh` writes.
- no names (``.npy``, ``.npz`` without ``joint_names``): the joint count must equal the skeleton's and the
  order is taken to be the skeleton's.

Joint rotations (outputs, :data:`SUPPORTED_OUTPUTS`)
----------------------------------------------------

Every output is written atomically: to a temporary file in the target's folder, then ``os.replace``; on
any error an existing file is left untouched and no partial file remains. Values are written as given
(float64), after checks: shapes against the skeleton, finite values, unit quaternions within 1e-3.

``.npz``
    ``local_quat`` (T, J, 4) float64, w,x,y,z; ``root_pos`` (T, 3) float64, metres; ``joint_names`` (J,)
    string array; ``parents`` (J,) int64, root -1; ``observable`` (J,) bool (all False when not given);
    when given (``kinepose ik`` writes them): ``determined`` (J,) bool, the input positions fix the joint's
    **local** rotation (its parent's twist included); ``determined_global`` (J,) bool, they fix its rotation
    relative to the world (``observable`` holds the same); ``valid`` (T, J) bool, ``determined`` in that
    frame (False where a joint it needs is missing or a limb is straight);
    ``fps`` float64 scalar; ``joints`` (T, J, 3) float64 positions, metres, only when given.
``.json``
    one object::

        {"format": "kinepose-rotations", "version": 1, "fps": 30.0,
         "joint_names": ["root", ...], "parents": [-1, 0, ...], "observable": [true, ...],
         "determined": [true, ...], "determined_global": [true, ...], "valid": [[true, ...], ...],
         "quaternion_order": "wxyz", "units": "metres",
         "root_pos": [[x, y, z], ...],                     # T rows
         "local_quat": [[[w, x, y, z], ...], ...],         # T frames of J quaternions
         "joints": [[[x, y, z], ...], ...]}                # only when given: T frames of J positions

    Numbers are written with full (round-trip) precision.
``.csv``
    header ``frame,root_x,root_y,root_z,<joint>_qw,<joint>_qx,<joint>_qy,<joint>_qz,...`` with four columns
    for every joint in skeleton order, then one row per frame: the 0-based frame index, the root position,
    the quaternions, numbers as ``%.9g`` (relative precision about 1e-9). The CSV holds neither fps, nor
    parents, nor ``observable``: use ``.npz`` or ``.json`` to keep them.
``.bvh``
    :func:`kinepose.data.formats.bvh.write_bvh` with rotation order ``ZXY`` (intrinsic, degrees), file units metres,
    3 rotation channels per joint; ``bvh_options`` choose another order, unit and channel layout (``kinepose ik``
    keeps those of a ``.bvh`` input whose own skeleton it solves on).
    The file lists joints depth-first (children in index order), which need not be the skeleton's index
    order (the humanoid's ``right_shoulder`` comes after ``right_ankle`` in index order but right after
    ``neck`` in the file); end sites become ``End Site`` blocks, read back as ``<parent>_end``. Match
    joints by name, or load positions with ``load_joints(path, skeleton)``, which does.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any

import numpy as np
import torch

from kinepose._atomic import atomic_write
from kinepose._validation import as_tensor, check_finite
from kinepose.data.formats._common import (
    _AXES,
    _FORMAT,
    _QUAT,
    _VERSION,
    _csv_groups,
    _csv_rows,
    _csv_values,
    _extension,
    _fps,
    _load_npz,
    _looks_numeric,
    _names,
    _npz_array,
    _numeric,
    _read_npy,
)
from kinepose.data.formats.bvh import read_bvh, write_bvh
from kinepose.data.formats.rotations_file import RotationsFile, load_rotations
from kinepose.data.motion import check_motion_arrays
from kinepose.errors import FileFormatError, KineposeError, ShapeError
from kinepose.skeleton.core import Skeleton

__all__ = [
    "SUPPORTED_INPUTS",
    "SUPPORTED_OUTPUTS",
    "JointsFile",
    "RotationsFile",
    "load_joints",
    "load_rotations",
    "save_joints",
    "save_rotations",
]

#: Extensions :func:`load_joints` reads.
SUPPORTED_INPUTS = (".npz", ".npy", ".csv", ".bvh")
#: Extensions :func:`save_rotations` writes.
SUPPORTED_OUTPUTS = (".npz", ".bvh", ".csv", ".json")


@dataclass
class JointsFile:
    """Joint positions read by :func:`load_joints`.

    Attributes:
        joints: (T, J, 3) float64 positions, metres (times ``scale``); in the skeleton's order when one was given.
        joint_names: ``J`` names (the skeleton's when one was given), or None when the file has none.
        fps: frames per second when the file says (``.npz`` ``fps``, ``.bvh``), else None.
        path: the file read.
    """

    joints: np.ndarray
    joint_names: list[str] | None
    fps: float | None
    path: str


# ----------------------------------------------------------------------------------------------- joints in


def load_joints(
    path: str | os.PathLike,
    skeleton: Skeleton | None = None,
    scale: float = 1.0,
    layout: str | None = None,
    min_confidence: float = 0.0,
) -> JointsFile:
    """Read joint positions from ``.npz``, ``.npy``, ``.csv`` or ``.bvh`` (layouts in the module docstring).

    Args:
        path: the file; its extension picks the format.
        skeleton: if given, joints are matched to it by name (or by count when the file has no names) and
            returned in its order; extra joints are dropped.
        scale: multiplies every position (file units to metres, e.g. 0.001 for millimetres).
        layout: the file's joints are in this keypoint layout's order (``coco17``, ``h36m17``, ``body25``...,
            :mod:`kinepose.skeleton.layouts`): they are converted onto ``skeleton`` (virtual joints such as
            the pelvis = mid-hips are formed; joints the layout cannot give are missing, NaN).
        min_confidence: joints whose ``confidence`` (npz key, or ``<joint>_c`` CSV columns) is below this
            are missing (NaN) in that frame; a confidence of 0 (OpenPose's "not detected") always is.

    Returns:
        :class:`JointsFile` with (T, J, 3) float64 ``joints``.

    Raises:
        FileFormatError: unknown extension, unreadable or malformed file (with the line for CSV), infinite
            positions (naming frame and joint). NaN is a missing joint, not an error.
        ShapeError: the joints do not fit ``skeleton`` (count mismatch, joints missing by name).
    """
    spath = os.fspath(path)
    if not (np.isfinite(scale) and scale > 0):
        raise KineposeError(f"scale: expected a positive finite number, got {scale}")
    ext = _extension(spath, SUPPORTED_INPUTS, "joints")
    if not os.path.isfile(spath):
        why = "is a folder" if os.path.isdir(spath) else "no such file"
        raise FileFormatError(f"cannot read ({why})", spath)
    lines: list[int] | None = None
    fps: float | None = None
    names: list[str] | None = None
    conf: np.ndarray | None = None
    if ext == ".npz":
        joints, names, fps, conf = _read_joints_npz(spath)
    elif ext == ".npy":
        joints = _numeric(_read_npy(spath), spath, "array")
    elif ext == ".csv":
        joints, names, lines, conf = _read_joints_csv(spath)
    else:
        try:
            bvh = read_bvh(spath)
        except OSError as exc:
            raise FileFormatError(f"cannot read ({exc.strerror or exc})", spath) from exc
        try:
            with np.errstate(over="ignore", invalid="ignore"):  # overflow gives inf, reported by the check below
                joints = bvh.positions().numpy()
        except MemoryError:  # a few hierarchy lines can announce many joints times many frames
            raise FileFormatError(
                f"too large: {bvh.num_frames} frames of {bvh.num_joints} joints do not fit in memory", spath
            ) from None
        names, fps = list(bvh.joint_names), bvh.fps

    joints = _check_joints_array(joints, spath, "joints")
    if names is not None and len(names) != joints.shape[1]:
        raise FileFormatError(f"joint_names has {len(names)} entries but joints has {joints.shape[1]} joints", spath)
    if names is not None and len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise FileFormatError(f"duplicate joint names {dup}", spath)
    _check_finite_joints(joints, names, spath, lines)
    joints = joints * scale
    joints[np.isnan(joints).any(-1)] = np.nan  # a joint with one NaN coordinate is missing as a whole
    if conf is not None:
        if conf.shape != joints.shape[:2]:
            raise FileFormatError(f"'confidence' has shape {conf.shape}, expected {joints.shape[:2]} (T, J)", spath)
        joints = np.where(((conf < min_confidence) | (conf <= 0))[..., None], np.nan, joints)  # 0: not detected
    if layout is not None:
        joints, names = _from_layout(joints, names, layout, skeleton, spath)
    if skeleton is not None:
        joints, names = _map_to_skeleton(joints, names, skeleton, spath, bvh_end_sites=ext == ".bvh")
    return JointsFile(joints, names, fps, spath)


def _from_layout(
    joints: np.ndarray, names: list[str] | None, layout: str, skeleton: Skeleton | None, path: str
) -> tuple[np.ndarray, list[str]]:
    """Joints in ``layout``'s order -> the skeleton's layout (by conversion) with names, NaN where not formed."""
    from kinepose.skeleton.layouts import convert_layout, get_layout, list_layouts

    src = get_layout(layout)
    if joints.shape[1] != src.num_joints:
        raise ShapeError(f"{path}: has {joints.shape[1]} joints, layout '{src.name}' has {src.num_joints}")
    if names is not None and list(names) != list(src.joint_names):
        unknown = [n for n in names if n not in src.joint_names]
        if unknown:
            raise FileFormatError(f"joint names {unknown[:5]} are not in layout '{src.name}' "
                                  f"({', '.join(src.joint_names)})", path)  # fmt: skip
        joints = joints[:, [names.index(n) for n in src.joint_names]]
    if skeleton is None:
        return joints, list(src.joint_names)
    # the layout that is the skeleton (same joint names): kinepose_hand21 for the hand21 preset, humanoid, h36m17
    dst = next((get_layout(n) for n in list_layouts() if get_layout(n).joint_names == skeleton.joint_names), None)
    if dst is None or dst.name == src.name:
        return joints, list(src.joint_names)  # matched by name below
    out = np.asarray(convert_layout(joints, src.name, dst.name), dtype=np.float64)
    return out, list(dst.joint_names)


def _read_joints_npz(path: str) -> tuple[np.ndarray, list[str] | None, float | None, np.ndarray | None]:
    with _load_npz(path) as data:
        if "joints" not in data.files:
            raise FileFormatError(f"no array 'joints' (T, J, 3); the file holds {sorted(data.files)}", path)
        joints = _numeric(_npz_array(data, "joints", path), path, "joints")
        names = _names(_npz_array(data, "joint_names", path), path) if "joint_names" in data.files else None
        fps = _fps(_npz_array(data, "fps", path), path) if "fps" in data.files else None
        conf = (
            _numeric(_npz_array(data, "confidence", path), path, "confidence") if "confidence" in data.files else None
        )
    if conf is not None and conf.ndim == 1:
        conf = conf[None]
    return joints, names, fps, conf


def _check_joints_array(joints: np.ndarray, path: str, key: str) -> np.ndarray:
    if joints.ndim == 2:
        joints = joints[None]  # (J, 3) -> (1, J, 3)
    if joints.ndim != 3 or joints.shape[-1] != 3:
        raise FileFormatError(f"{key!r} has shape {joints.shape}, expected (T, J, 3) or (J, 3)", path)
    if joints.shape[0] == 0 or joints.shape[1] == 0:
        raise FileFormatError(f"{key!r} has shape {joints.shape}: no frames or no joints", path)
    return joints


def _check_finite_joints(joints: np.ndarray, names: list[str] | None, path: str, lines: list[int] | None) -> None:
    bad = np.isinf(joints)  # NaN marks a missing joint
    if bad.any():
        t, j, c = (int(i) for i in np.argwhere(bad)[0])
        who = f"joint {j}" + (f" ({names[j]!r})" if names else "")
        raise FileFormatError(
            f"infinite value {joints[t, j, c]} at frame {t} (0-based), {who}, coordinate {_AXES[c]}; "
            f"{int(bad.sum())} infinite value(s) in all (a missing joint is NaN)",
            path,
            None if lines is None else lines[t],
        )


def _read_joints_csv(path: str) -> tuple[np.ndarray, list[str], list[int]]:
    rows = _csv_rows(path)
    (hline, header), data = rows[0], rows[1:]
    if _looks_numeric(header):
        raise FileFormatError(
            "the first row holds numbers; a header row is required (<joint>_x,<joint>_y,<joint>_z per joint, "
            "an optional leading 'frame' column)",
            path,
            hline,
        )
    start = 1 if header[0].lower() == "frame" else 0
    if not data:
        raise FileFormatError("no data rows after the header: expected one row per frame", path, hline)
    conf_cols = [i for i, h in enumerate(header) if i >= start and h.endswith("_c")]
    keep = [i for i in range(len(header)) if i not in conf_cols]
    names = _csv_groups([header[i] for i in keep], hline, path, _AXES, start)
    values = _csv_values(data, header, path, missing_ok=True)  # (T, columns); empty/NA cells: missing joints
    conf = None
    if conf_cols:
        by_name = {header[i][:-2]: i for i in conf_cols}
        stray = sorted(set(by_name) - set(names))
        if stray:
            raise FileFormatError(f"confidence columns {[n + '_c' for n in stray]} name no joint", path, hline)
        conf = np.ones((len(data), len(names)))
        for j, n in enumerate(names):
            if n in by_name:
                conf[:, j] = values[:, by_name[n]]
    xyz = values[:, keep][:, start:]  # (T, 3J)
    return xyz.reshape(len(data), len(names), 3), names, [line for line, _ in data], conf


def _bvh_end_site_aliases(skeleton: Skeleton) -> dict[str, str]:
    """Skeleton end-site name -> the name the BVH reader gives it (``<parent>_end``, ``<parent>_end2``...)."""
    out: dict[str, str] = {}
    for p in range(skeleton.num_joints):
        ends = [c for c in skeleton.children[p] if skeleton.kinds[c] == "end" and not skeleton.children[c]]
        for k, c in enumerate(ends):
            out[skeleton.joint_names[c]] = f"{skeleton.joint_names[p]}_end" + (str(k + 1) if k else "")
    return out


def _map_to_skeleton(
    joints: np.ndarray, names: list[str] | None, skeleton: Skeleton, path: str, bvh_end_sites: bool
) -> tuple[np.ndarray, list[str]]:
    J = skeleton.num_joints
    if names is None:
        if joints.shape[1] != J:
            raise ShapeError(
                f"{path}: has {joints.shape[1]} joints, the skeleton '{skeleton.name}' has {J} "
                f"(joint_names not given, cannot map by name)"
            )
        return joints, list(skeleton.joint_names)
    if names == list(skeleton.joint_names):
        return joints, names
    file_names = list(names)
    if bvh_end_sites:
        present = set(file_names)
        for sk_name, bvh_name in _bvh_end_site_aliases(skeleton).items():
            if sk_name not in present and bvh_name in present:
                file_names[file_names.index(bvh_name)] = sk_name
    missing = [n for n in skeleton.joint_names if n not in set(file_names)]
    if missing:
        raise ShapeError(
            f"{path}: joints {missing} of skeleton '{skeleton.name}' are missing from the file, whose joints are "
            f"{names}"
        )
    idx = skeleton.remap_from(file_names)
    return joints[:, idx], list(skeleton.joint_names)


# ----------------------------------------------------------------------------------------------- joints out


def save_joints(
    path: str | os.PathLike,
    joints: torch.Tensor | np.ndarray,
    joint_names: Sequence[str],
    fps: float | None = None,
) -> None:
    """Write joint positions as ``.npz`` or ``.csv`` (the layouts :func:`load_joints` reads), atomically.

    Args:
        path: the output file; its extension picks the format.
        joints: (T, J, 3) positions, metres, finite.
        joint_names: ``J`` distinct names (the CSV header needs them; they must not be empty or hold commas).
        fps: frames per second, written to ``.npz`` (a CSV has no place for it).
    """
    spath = os.fspath(path)
    ext = _extension(spath, (".npz", ".csv"), "joints")
    p = as_tensor(joints, "joints", torch.float64).detach().cpu()
    names = [str(n) for n in joint_names]
    if p.dim() != 3 or p.shape[0] < 1 or p.shape[-1] != 3 or p.shape[1] != len(names):
        raise ShapeError(f"joints: expected shape (T, {len(names)}, 3) for {len(names)} joint names, "
                         f"got {tuple(p.shape)}")  # fmt: skip
    check_finite(p, "joints")
    if len(set(names)) != len(names) or any(not n or "," in n or "\n" in n for n in names):
        raise KineposeError(f"joint_names: expected distinct non-empty names without commas, got {names}")
    if fps is not None and not (np.isfinite(fps) and fps > 0):
        raise KineposeError(f"fps: expected a positive finite number, got {fps}")
    arr = p.numpy()
    if ext == ".npz":
        arrays = {"joints": arr, "joint_names": np.array(names, dtype=str)}
        if fps is not None:
            arrays["fps"] = np.float64(fps)
        atomic_write(spath, lambda f: np.savez(f, **arrays), binary=True)
        return
    T = arr.shape[0]
    table = np.concatenate([np.arange(T, dtype=np.float64)[:, None], arr.reshape(T, -1)], axis=1)
    header = ["frame"] + [f"{n}_{a}" for n in names for a in "xyz"]

    def write_csv(f: IO) -> None:
        f.write(",".join(header) + "\n")
        np.savetxt(f, table, fmt=["%d"] + ["%.17g"] * (table.shape[1] - 1), delimiter=",")

    atomic_write(spath, write_csv, binary=False)


# ----------------------------------------------------------------------------------------------- rotations out


def save_rotations(
    path: str | os.PathLike,
    skeleton: Skeleton,
    local_quat: torch.Tensor | np.ndarray,
    root_pos: torch.Tensor | np.ndarray,
    fps: float = 30.0,
    observable: torch.Tensor | np.ndarray | Sequence[bool] | None = None,
    joints: torch.Tensor | np.ndarray | None = None,
    bvh_options: Mapping[str, Any] | None = None,
    determined: torch.Tensor | np.ndarray | None = None,
    determined_global: torch.Tensor | np.ndarray | None = None,
    valid: torch.Tensor | np.ndarray | None = None,
) -> None:
    """Write per-joint rotations to ``.npz``, ``.bvh``, ``.csv`` or ``.json``, atomically.

    Layouts in the module docstring. Everything is validated before a file is touched; on any error an
    existing file at ``path`` is left unchanged and no temporary file remains.

    Args:
        path: the output file; its extension picks the format.
        skeleton: the skeleton the rotations drive (names and parents are written).
        local_quat: (T, J, 4) w,x,y,z unit local rotations, every joint (identity for end sites).
        root_pos: (T, 3) root positions, metres.
        fps: frames per second, positive.
        observable: optional (J,) bools, True where a joint's rotation is determined by the input (written
            to ``.npz`` and ``.json``; all False when not given).
        joints: optional (T, J, 3) positions, metres (e.g. forward kinematics of the result), written to
            ``.npz`` and ``.json``.
        bvh_options: for a ``.bvh`` output, :func:`~kinepose.data.formats.bvh.write_bvh`'s ``rotation_order``,
            ``scale`` (file units per metre: 100 writes centimetres) and ``channels_per_joint``; e.g. those of the
            input file (:meth:`~kinepose.data.formats.bvh.BVH.channel_layout`) to keep its layout. Ignored otherwise.
        determined, determined_global: optional (J,) bools: the positions fix the joint's local (its parent's
            twist included) or global rotation (:class:`~kinepose.kinematics.ik.IKResult`); ``.npz``/``.json``.
        valid: optional (T, J) bools: ``determined`` in that frame (False where a joint it needs is missing).

    Raises:
        FileFormatError: unknown extension, or the file cannot be written.
        ShapeError, NonFiniteError, KineposeError: invalid inputs (nothing is written).
    """
    spath = os.fspath(path)
    ext = _extension(spath, SUPPORTED_OUTPUTS, "rotations")
    q, rp, obs, pos, fps = _check_rotations(skeleton, local_quat, root_pos, fps, observable, joints)
    flags = {}
    for key, value, shape in (("determined", determined, (skeleton.num_joints,)),
                              ("determined_global", determined_global, (skeleton.num_joints,)),
                              ("valid", valid, q.shape[:2])):  # fmt: skip
        if value is not None:
            arr = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
            if arr.shape != shape or arr.dtype != bool:
                raise KineposeError(f"{key}: expected {shape} booleans, got {arr.dtype} {arr.shape}")
            flags[key] = arr
    options = dict(bvh_options or {})
    unknown = sorted(set(options) - {"rotation_order", "scale", "channels_per_joint"})
    if unknown:
        raise KineposeError(f"bvh_options: unknown key(s) {unknown}; known: rotation_order, scale, channels_per_joint")
    if ext == ".bvh":
        try:
            write_bvh(spath, skeleton, q, rp, fps, **options)
        except OSError as exc:
            raise FileFormatError(f"cannot write ({exc.strerror or exc})", spath) from exc
        return
    names, parents = list(skeleton.joint_names), list(skeleton.parents)
    if ext == ".npz":
        arrays = {
            "local_quat": q,
            "root_pos": rp,
            "joint_names": np.array(names, dtype=str),
            "parents": np.array(parents, dtype=np.int64),
            "observable": obs,
            "fps": np.float64(fps),
        }
        if pos is not None:
            arrays["joints"] = pos
        arrays.update(flags)
        atomic_write(spath, lambda f: np.savez(f, **arrays), binary=True)
    elif ext == ".json":
        doc: dict[str, Any] = {
            "format": _FORMAT,
            "version": _VERSION,
            "fps": fps,
            "joint_names": names,
            "parents": parents,
            "observable": obs.tolist(),
            "quaternion_order": "wxyz",
            "units": "metres",
            "root_pos": rp.tolist(),
            "local_quat": q.tolist(),
        }
        if pos is not None:
            doc["joints"] = pos.tolist()
        doc.update({k: v.tolist() for k, v in flags.items()})
        atomic_write(spath, lambda f: json.dump(doc, f, allow_nan=False), binary=False)
    else:
        header = ["frame", "root_x", "root_y", "root_z"] + [f"{n}_{s}" for n in names for s in _QUAT]
        T = q.shape[0]
        table = np.concatenate([np.arange(T, dtype=np.float64)[:, None], rp, q.reshape(T, -1)], axis=1)
        fmt = ["%d"] + ["%.9g"] * (table.shape[1] - 1)

        def write_csv(f: IO) -> None:
            f.write(",".join(header) + "\n")
            np.savetxt(f, table, fmt=fmt, delimiter=",")

        atomic_write(spath, write_csv, binary=False)


def _check_rotations(
    skeleton: Skeleton,
    local_quat: torch.Tensor | np.ndarray,
    root_pos: torch.Tensor | np.ndarray,
    fps: float,
    observable: torch.Tensor | np.ndarray | Sequence[bool] | None,
    joints: torch.Tensor | np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None, float]:
    """Validate :func:`save_rotations`' inputs; return float64 (T, J, 4), (T, 3), bool (J,), (T, J, 3) or None."""
    J = skeleton.num_joints
    q, rp = check_motion_arrays(skeleton, local_quat, root_pos, min_frames=1, all_unit=True)
    T = q.shape[0]
    try:
        fps = float(fps)
    except (TypeError, ValueError) as exc:
        raise KineposeError(f"fps: expected a positive number, got {fps!r}") from exc
    if not (np.isfinite(fps) and fps > 0):
        raise KineposeError(f"fps: expected a positive finite number, got {fps}")
    if observable is None:
        obs = np.zeros(J, dtype=bool)
    else:
        obs_t = observable.detach().cpu().numpy() if isinstance(observable, torch.Tensor) else np.asarray(observable)
        if obs_t.shape != (J,) or obs_t.dtype.kind not in "biuf" or not np.isin(obs_t, (0, 1)).all():
            raise ShapeError(
                f"observable: expected ({J},) booleans (one per joint of skeleton '{skeleton.name}'), "
                f"got shape {obs_t.shape} dtype {obs_t.dtype}"
            )
        obs = obs_t.astype(bool)
    pos = None
    if joints is not None:
        p = as_tensor(joints, "joints", torch.float64).detach().cpu()
        if tuple(p.shape) != (T, J, 3):
            raise ShapeError(f"joints: expected shape ({T}, {J}, 3), got {tuple(p.shape)}")
        check_finite(p, "joints")
        pos = p.numpy()
    return q.numpy(), rp.numpy(), obs, pos, fps
