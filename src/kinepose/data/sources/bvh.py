"""The ``bvh`` source: train on your own motion-capture files.

Recipe keys (section ``data``; see ``docs/training_own_bvh.md``)::

    dataset: bvh
    files: [mocap/*.bvh]         # paths or globs; each file is cut into parts by `split`
    units: cmu                   # m | cm | mm | inch | cmu (1/0.45 inch, the CMU conversions) | metres per unit
    split: {train: [0.0, 0.8], val: [0.8, 0.9], test: [0.9, 1.0]}   # fractions of every file in `files`
    train: []                    # files (or globs) that train whole
    val: [mocap/walk_02.bvh]     # files that validate whole
    test: [mocap/run_*.bvh]      # files held out whole
    mirror: true                 # add mirrored copies of the training motion (where left/right pairs exist)
    bone_scale: [0.9, 1.1]       # add copies of the training motion with every bone scaled at random
    bone_scale_copies: 1         # how many such copies per training clip
    hinges: false                # the recipe's skeleton: joints that turn about one axis only become hinges
    seed: 0                      # (top level) seeds the bone scales

**Splits.** A file named in ``train``, ``val`` or ``test`` goes whole into that part (a file in two parts is an
error). Every other file of ``files`` is cut by frame ranges: ``split.<part> = [a, b]`` takes frames
``round(a T)`` to ``round(b T)`` of a ``T``-frame file; the ranges lie in ``[0, 1]`` and must not overlap; a
part left out (or ``[x, x]``) gets nothing. Without ``split`` such files train whole. Training and validation
must end up non-empty; the test part may be empty.

**One skeleton.** Every file must have the same joints (names, order) and parents; the first training file's
skeleton is the recipe's (:func:`bvh_skeleton`). Bone lengths may differ between files (another subject): each
clip keeps its own, and its positions come from its own skeleton.

**Mirroring** (:func:`mirror_motion`) reflects positions across the plane orthogonal to the skeleton's
lateral axis and swaps left and right joints; the rotations become ``M R M`` (left/right swapped) and the
copy lives on the mirrored skeleton (offsets reflected and swapped), so its forward kinematics are exactly the
mirrored positions even for a rig that is not left/right symmetric (CMU's is not: up to 15 mm apart).

**Hinges** (``data.hinges``, :func:`fit_hinges`): joints that only ever turn about one axis in the training part
(knees, elbows... driven through 3 channels) become hinges of the recipe's skeleton, so that analytic IK takes the
twist of the bone above them from the bend; the clips themselves keep their ball joints.

**Bone-length augmentation** (:func:`scale_bones`) multiplies every bone's rest offset by its own factor drawn
uniformly from ``bone_scale``; the rotations are kept, so the copy is a consistent pose of a differently
proportioned body (its positions are recomputed by forward kinematics).

Errors name the file and the key (:class:`~kinepose.errors.KineposeError`).
"""

from __future__ import annotations

import glob
import itertools
import math
import os
import warnings
from collections.abc import Callable, Sequence

import torch

from kinepose.data.formats.bvh import CMU_TO_M, BVHWarning, read_bvh
from kinepose.data.motion import Motion
from kinepose.data.transforms import mirror_root, mirror_rotations, mirrored_skeleton
from kinepose.errors import FileFormatError, KineposeError
from kinepose.geometry.rotations import quat_to_axis_angle
from kinepose.skeleton.core import Skeleton

__all__ = [
    "PARTS",
    "UNITS",
    "bvh_skeleton",
    "bvh_split",
    "check_same_skeleton",
    "expand_files",
    "file_split",
    "fit_hinges",
    "load_bvh_motion",
    "mirror_motion",
    "scale_bones",
    "units_scale",
]

#: Metres per file unit for ``data.units``.
UNITS = {"m": 1.0, "cm": 0.01, "mm": 0.001, "inch": 0.0254, "cmu": CMU_TO_M}
PARTS = ("train", "val", "test")


def units_scale(units: str | float, key: str = "data.units") -> float:
    """Metres per file unit: a name of :data:`UNITS` or a positive number."""
    if isinstance(units, bool):
        raise KineposeError(f"{key}: expected one of {', '.join(UNITS)} or metres per unit, got {units!r}")
    if isinstance(units, int | float):
        if not (math.isfinite(units) and units > 0):
            raise KineposeError(f"{key}: metres per unit must be a positive finite number, got {units!r}")
        return float(units)
    if isinstance(units, str) and units.lower() in UNITS:
        return UNITS[units.lower()]
    raise KineposeError(f"{key}: unknown unit {units!r}; use one of {', '.join(UNITS)} or metres per unit (a number)")


def expand_files(patterns: Sequence[str] | str | None, key: str, suffixes: tuple[str, ...] = ()) -> list[str]:
    """Paths and globs -> existing files, in the order given (each glob sorted), without repeats.

    Raises:
        KineposeError: a pattern that matches no file, or a file with none of ``suffixes`` (naming ``key``).
    """
    if patterns is None:
        return []
    if isinstance(patterns, str):
        patterns = [patterns]
    if not isinstance(patterns, list | tuple) or not all(isinstance(p, str) for p in patterns):
        raise KineposeError(f"{key}: expected a list of paths or globs, got {patterns!r}")
    out: list[str] = []
    for pattern in patterns:
        path = os.path.expanduser(pattern)
        found = sorted(glob.glob(path)) if glob.has_magic(path) else ([path] if os.path.exists(path) else [])
        found = [f for f in found if os.path.isfile(f)]
        if not found:
            raise KineposeError(f"{key}: {pattern!r} matches no file (working folder {os.getcwd()})")
        for f in found:
            if suffixes and not f.lower().endswith(suffixes):
                raise KineposeError(f"{key}: {f} is not a {' or '.join(suffixes)} file")
            if f not in out:
                out.append(f)
    return out


def load_bvh_motion(path: str, scale: float = 1.0) -> Motion:
    """One BVH file as a :class:`Motion` in metres (``scale`` metres per file unit), float64."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", BVHWarning)  # a wrong Frames: count; the frames present are used
            bvh = read_bvh(path)
    except OSError as exc:
        raise FileFormatError(f"cannot read ({exc.strerror or exc})", path) from exc
    if bvh.num_frames == 0:
        raise FileFormatError("has no frames", path)
    return bvh.to_motion(scale)


def check_same_skeleton(motions: Sequence[Motion], paths: Sequence[str]) -> None:
    """All clips must share joint names (in order) and parents with the first one.

    Raises:
        KineposeError: naming the first file that differs and how.
    """
    ref, ref_path = motions[0].skeleton, paths[0]
    for m, p in zip(motions[1:], paths[1:], strict=True):
        sk = m.skeleton
        if sk.joint_names != ref.joint_names:
            extra = sorted(set(sk.joint_names) - set(ref.joint_names))[:5]
            lacks = sorted(set(ref.joint_names) - set(sk.joint_names))[:5]
            why = f"it has {sk.num_joints} joints, {ref_path} has {ref.num_joints}"
            if extra or lacks:
                why += f"; extra {extra}, lacking {lacks}"
            else:
                why += " (same names, another order)"
            raise KineposeError(f"{p}: not the skeleton of {ref_path} ({why}); every file of a recipe must share one")
        if sk.parents != ref.parents:
            j = next(i for i, (a, b) in enumerate(zip(sk.parents, ref.parents, strict=True)) if a != b)
            raise KineposeError(f"{p}: joint '{sk.joint_names[j]}' has parent index {sk.parents[j]}, but "
                                f"{ref.parents[j]} in {ref_path}; every file of a recipe must share one "
                                f"skeleton")  # fmt: skip


def mirror_motion(motion: Motion) -> Motion:
    """The left/right mirror image of a clip, on the mirrored skeleton (exact for asymmetric rigs too):
    ``mirror_motion(m).positions() == mirror_positions(m.skeleton, m.positions())``.

    Raises:
        KineposeError: the skeleton has no left/right pairs, or they do not map the tree onto itself.
    """
    sk = motion.skeleton
    if not sk.left_right:
        raise KineposeError(f"{motion.name}: skeleton '{sk.name}' has no left/right joint pairs to mirror")
    msk = mirrored_skeleton(sk)
    q = mirror_rotations(sk, motion.local_quat)
    r = mirror_root(sk, motion.root_pos)
    meta = dict(motion.meta, mirrored=True)
    return Motion(msk, q, r, motion.fps, f"{motion.name}-mirrored", meta)


def scale_bones(motion: Motion, low: float, high: float, generator: torch.Generator) -> Motion:
    """A copy of ``motion`` whose skeleton's rest offsets are each multiplied by a factor drawn uniformly from
    ``[low, high]`` (one per bone, from ``generator``); rotations and root positions are kept."""
    sk = motion.skeleton
    factors = low + (high - low) * torch.rand(sk.num_joints, generator=generator, dtype=torch.float64)
    offsets = sk.offsets * factors.numpy()[:, None]
    scaled = Skeleton(f"{sk.name}-bones", sk.joint_names, sk.parents, offsets, sk.kinds, sk.hinge_axes, sk.limits,
                      sk.left_right, sk.lateral_axis)  # fmt: skip
    meta = dict(motion.meta, bone_scale=factors.tolist())
    return Motion(scaled, motion.local_quat, motion.root_pos, motion.fps, f"{motion.name}-bones", meta)


def fit_hinges(
    motions: Sequence[Motion], tol: float = 1e-3, min_deg: float = 1.0, margin_deg: float = 10.0
) -> tuple[Skeleton, dict[str, dict]]:
    """The clips' skeleton with every joint that only ever turns about one axis made a hinge (no network: a
    statistic of the training rotations).

    Motion capture often drives 1-DOF joints through 3 channels (CMU's knees, elbows, wrists, toes and finger
    bases: ASF ``dof rx``). As ball joints, analytic IK cannot know the twist of the bone above them (the upper
    arm's); as hinges, its ``two_bone`` solver takes it from the bend. A rotated joint with a non-zero rest offset
    becomes a hinge when the rotation vectors of all frames lie on one line (second singular value at most ``tol``
    times the first) and it turns by more than ``min_deg``; its axis is that line (signed so that most angles are
    positive) and its limits the range seen, widened by ``margin_deg``.

    Args:
        motions: clips on one skeleton (use the unmirrored ones: a rig that is not left/right symmetric has other
            axes on its mirror image).

    Returns:
        ``(skeleton, hinges)``: the skeleton (named ``<name>-hinges``) and per new hinge ``{"axis": [x, y, z],
        "limits_deg": [lo, hi]}``.
    """
    sk = motions[0].skeleton
    aa = torch.cat([quat_to_axis_angle(m.local_quat.double()) for m in motions])  # (N, J, 3)
    kinds, axes, limits = list(sk.kinds), sk.hinge_axes.copy(), sk.limits.copy()
    found: dict[str, dict] = {}
    for j in sk.rotated_joints:
        if sk.kinds[j] != "ball" or math.hypot(*(float(c) for c in sk.offsets[j])) <= 1e-9:
            continue
        v = aa[:, j]  # (N, 3)
        _, sv, vt = torch.linalg.svd(v, full_matrices=False)
        if float(sv[0]) <= 0 or float(sv[1]) > tol * float(sv[0]):
            continue
        axis = vt[0]
        angle = v @ axis  # (N,) radians about the axis
        if float((angle > 0).double().mean()) < 0.5:
            axis, angle = -axis, -angle
        if math.degrees(float(angle.abs().max())) <= min_deg:
            continue
        margin = math.radians(margin_deg)
        kinds[j], axes[j] = "hinge", axis.numpy()
        limits[j] = [float(angle.min()) - margin, float(angle.max()) + margin]
        found[sk.joint_names[j]] = {"axis": [float(a) for a in axis],
                                    "limits_deg": [math.degrees(float(x)) for x in limits[j]]}  # fmt: skip
    out = Skeleton(f"{sk.name}-hinges", sk.joint_names, sk.parents, sk.offsets, kinds, axes, limits, sk.left_right,
                   sk.lateral_axis)  # fmt: skip
    return out, found


def _frame_ranges(split, key: str = "data.split") -> dict[str, tuple[float, float]]:
    if split is None or split == {}:
        return {"train": (0.0, 1.0)}
    if not isinstance(split, dict):
        raise KineposeError(f"{key}: expected a mapping like {{train: [0, 0.8], val: [0.8, 1.0]}}, got {split!r}")
    out: dict[str, tuple[float, float]] = {}
    for part, rng in split.items():
        if part not in PARTS:
            raise KineposeError(f"{key}: unknown part {part!r}; use {', '.join(PARTS)}")
        ok = (
            isinstance(rng, list | tuple)
            and len(rng) == 2
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in rng)
        )
        if not ok or not (0.0 <= rng[0] <= rng[1] <= 1.0):
            raise KineposeError(f"{key}.{part}: expected [a, b] with 0 <= a <= b <= 1 (fractions of each file), "
                                f"got {rng!r}")  # fmt: skip
        if rng[1] > rng[0]:
            out[part] = (float(rng[0]), float(rng[1]))
    spans = sorted((a, b, p) for p, (a, b) in out.items())
    for (a0, b0, p0), (a1, b1, p1) in itertools.pairwise(spans):
        if a1 < b0:
            raise KineposeError(f"{key}: {p0} [{a0}, {b0}] and {p1} [{a1}, {b1}] overlap; no frame may be in two parts")
    return out


def _assign(cfg: dict, suffixes: tuple[str, ...]) -> tuple[float, dict[str, list[str]], list[str]]:
    """(metres per unit, whole files per part, files cut by frame ranges), checked."""
    data = cfg["data"]
    scale = units_scale(data.get("units", "m"))
    whole = {part: expand_files(data.get(part), f"data.{part}", suffixes) for part in PARTS}
    seen: dict[str, str] = {}
    for part, files in whole.items():
        for f in files:
            real = os.path.realpath(f)
            if real in seen:
                raise KineposeError(f"data.{part}: {f} is also in data.{seen[real]}; a file can be in one part only")
            seen[real] = part
    cut = [f for f in expand_files(data.get("files"), "data.files", suffixes) if os.path.realpath(f) not in seen]
    if not cut and not any(whole.values()):
        raise KineposeError("data.files: no motion files given (list paths or globs in data.files or data.train)")
    return scale, whole, cut


def file_split(cfg: dict, load: Callable[[str, float], Motion], suffixes: tuple[str, ...]) -> tuple[list, list, list]:
    """(train, val, test) clips of a file-based recipe (the ``bvh`` and ``npz`` sources; see the module docstring).

    Args:
        cfg: the resolved recipe (``data`` keys, and ``seed``).
        load: ``load(path, metres_per_unit) -> Motion``.
        suffixes: accepted file endings (``(".bvh",)``).
    """
    data = cfg["data"]
    scale, whole, cut = _assign(cfg, suffixes)
    ranges = _frame_ranges(data.get("split"))

    parts: dict[str, list[Motion]] = {p: [] for p in PARTS}
    loaded: list[Motion] = []
    paths: list[str] = []

    def read(path: str) -> Motion:
        m = load(path, scale)
        loaded.append(m)
        paths.append(path)
        check_same_skeleton(loaded, paths)
        return m

    for part in PARTS:  # whole files
        parts[part] += [read(f) for f in whole[part]]
    for f in cut:  # frame ranges
        m = read(f)
        T = m.num_frames
        for part, (a, b) in ranges.items():
            start, stop = round(a * T), round(b * T)
            if stop > start:
                clip = m.slice(start, stop)
                clip.name = f"{m.name}[{start}:{stop}]"
                clip.meta = dict(m.meta, frames=(start, stop))
                parts[part].append(clip)
    for part in ("train", "val"):
        if not parts[part]:
            raise KineposeError(f"data: the {part} part is empty; name files in data.{part} or give data.split.{part}")

    train = list(parts["train"])
    if data.get("mirror", False) and train[0].skeleton.left_right:
        train += [mirror_motion(m) for m in parts["train"]]
    low, high = (float(v) for v in data.get("bone_scale", (1.0, 1.0)))
    if not (0 < low <= high and math.isfinite(high)):
        raise KineposeError(f"data.bone_scale: expected [low, high] with 0 < low <= high, got {[low, high]}")
    copies = int(data.get("bone_scale_copies", 1))
    if copies < 0:
        raise KineposeError(f"data.bone_scale_copies: must be >= 0, got {copies}")
    if (low, high) != (1.0, 1.0):
        g = torch.Generator().manual_seed(int(cfg.get("seed", 0)))
        base = list(train)
        train += [scale_bones(m, low, high, g) for _ in range(copies) for m in base]
    return train, parts["val"], parts["test"]


def bvh_split(cfg: dict) -> tuple[list[Motion], list[Motion], list[Motion]]:
    """The ``bvh`` source: see the module docstring for the keys."""
    return file_split(cfg, load_bvh_motion, (".bvh",))


def bvh_skeleton(cfg: dict) -> Skeleton:
    """The recipe's skeleton: that of its first training file (``data.train``, else ``data.files``), in metres."""
    return _first_file_skeleton(cfg, (".bvh",), lambda p, s: load_bvh_motion(p, s).skeleton)


def _first_file_skeleton(cfg: dict, suffixes: tuple[str, ...], read: Callable[[str, float], Skeleton]) -> Skeleton:
    """The skeleton of the file whose clip comes first in the training part (as :func:`file_split` orders them);
    with ``data.hinges``, its joints that turn about one axis only in the training part made hinges
    (:func:`fit_hinges`)."""
    data = cfg["data"]
    if data.get("hinges", False):
        plain = {**cfg, "data": {**data, "mirror": False, "bone_scale": [1.0, 1.0]}}
        load = _LOADERS[suffixes]
        return fit_hinges(file_split(plain, load, suffixes)[0])[0]
    scale, whole, cut = _assign(cfg, suffixes)
    ranges = _frame_ranges(data.get("split"))
    files = whole["train"] or (cut if "train" in ranges else [])
    if not files:
        raise KineposeError("data: the train part is empty; name files in data.train or give data.split.train")
    return read(files[0], scale)


#: suffixes -> loader, for sources that fit hinges on their training part (npz registers itself)
_LOADERS: dict[tuple[str, ...], Callable[[str, float], Motion]] = {(".bvh",): load_bvh_motion}
