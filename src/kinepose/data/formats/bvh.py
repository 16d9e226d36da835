"""Biovision Hierarchy (BVH) motion files: a robust reader and an exact, atomic writer.

BVH semantics, as used by the CMU (cgspeed) conversions, MotionBuilder and Blender:

- A joint's ``CHANNELS`` list its per-frame values in file order. Rotation channels are degrees and
  compose **in the listed order as intrinsic rotations**: ``Zrotation Xrotation Yrotation`` with values
  ``(a, b, c)`` is the local rotation ``R = Rz(a) @ Rx(b) @ Ry(c)`` (column vectors), which is
  :func:`kinepose.geometry.rotations.euler_to_matrix` with the upper-case (intrinsic) order ``'ZXY'``.
- Position channels (``Xposition`` ...) may appear on any joint, in any order, mixed with rotation
  channels. They **replace** the matching components of the joint's ``OFFSET`` for that frame (the root
  usually has them; some files have them on every joint). Where they sit among the rotation channels
  does not matter: a joint's translation is always applied in its parent's frame.
- ``End Site`` blocks have an ``OFFSET`` and no channels. The reader names them ``<parent>_end``
  (``<parent>_end2`` ... if that name is taken).

Joint order: the reader returns joints (end sites included) in **file order**, which is depth-first
and therefore topologically sorted. The writer emits joints depth-first, children in index order, and
returns the skeleton indices in file order, so ``positions_read == positions_written[..., order, :]``;
for a skeleton that is already depth-first (most are) ``order == list(range(J))``.

Units: nothing is converted unless asked. ``read_bvh(path, scale)``, :meth:`BVH.to_motion` and
:meth:`BVH.positions` all default to ``scale=1.0`` (file units). Pass :data:`CM_TO_M` (0.01) for files
in centimetres (e.g. ``Boxing_Toes.bvh``) and :data:`CMU_TO_M` for the CMU/cgspeed conversions, whose
unit is the ASF one, ``1 / 0.45`` inch. ``write_bvh(..., scale=100)`` writes centimetres.
"""

from __future__ import annotations

import dataclasses
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from kinepose._atomic import atomic_write
from kinepose.data.formats._bvh_reader import CHANNELS, BVHWarning, parse_bvh_lines
from kinepose.data.motion import Motion, check_motion_arrays
from kinepose.errors import FileFormatError, KineposeError, ShapeError
from kinepose.geometry.rotations import matrix_to_quat, quat_to_euler
from kinepose.skeleton.core import Skeleton
from kinepose.skeleton.files import detect_left_right, infer_lateral_axis
from kinepose.skeleton.presets import register_skeleton_reader

__all__ = [
    "BVH",
    "CMU_TO_M",
    "CM_TO_M",
    "ROTATION_ORDERS",
    "BVHWarning",
    "detect_left_right",
    "read_bvh",
    "read_bvh_skeleton",
    "write_bvh",
    "write_motion_bvh",
]

#: Metres per centimetre: ``read_bvh(path).to_motion(scale=CM_TO_M)`` for files in centimetres.
CM_TO_M = 0.01
#: Metres per unit of the CMU mocap BVH conversions (ASF lengths are inches / 0.45).
CMU_TO_M = 0.0254 / 0.45
#: The rotation orders the writer accepts (Tait-Bryan, intrinsic, as in the channel list).
ROTATION_ORDERS = ("XYZ", "XZY", "YXZ", "YZX", "ZXY", "ZYX")

_FMT = "%.10g"  # 1e-7 deg for angles below 1000 deg; positions to 10 significant digits


def _check_scale(scale: float, name: str = "scale") -> None:
    if not (np.isfinite(scale) and scale > 0):
        raise KineposeError(f"{name}: expected a positive finite number, got {scale}")


# ----------------------------------------------------------------------------------------------- data


@dataclass
class BVH:
    """The content of a BVH file, joints (end sites included) in file order.

    Attributes:
        joint_names: ``J`` names; end sites are called ``<parent>_end``.
        parents: ``J`` parent indices, root ``-1`` first, topologically sorted.
        offsets: (J, 3) float64 ``OFFSET`` rows in file units (times ``read_bvh``'s ``scale``).
        channels: per joint, its channel names (``'Xposition'`` ... ``'Zrotation'``), file order.
        end_site: ``J`` flags, True for ``End Site`` blocks.
        frame_time: seconds per frame.
        motion: (T, C) float64 channel values in file order; rotations in degrees, positions in file
            units (times ``read_bvh``'s ``scale``).
        path: the file read, if any.
    """

    joint_names: list[str]
    parents: list[int]
    offsets: np.ndarray
    channels: list[list[str]]
    end_site: list[bool]
    frame_time: float
    motion: np.ndarray
    path: str | None = None

    def __post_init__(self) -> None:
        self.offsets = np.asarray(self.offsets, dtype=np.float64)
        self.motion = np.asarray(self.motion, dtype=np.float64)
        J = len(self.joint_names)
        for what, n in (
            ("parents", len(self.parents)),
            ("channels", len(self.channels)),
            ("end_site", len(self.end_site)),
        ):
            if n != J:
                raise KineposeError(f"BVH: {what} has {n} entries, expected {J} (one per joint)")
        if self.offsets.shape != (J, 3):
            raise ShapeError(f"BVH: offsets must be ({J}, 3), got {self.offsets.shape}")
        C = sum(len(c) for c in self.channels)
        if self.motion.ndim != 2 or self.motion.shape[1] != C:
            raise ShapeError(f"BVH: motion must be (T, {C}) for {C} channels, got {self.motion.shape}")
        for chans in self.channels:
            for c in chans:
                if c not in CHANNELS.values():
                    raise KineposeError(f"BVH: unknown channel {c!r}; expected one of {sorted(CHANNELS.values())}")

    # ------------------------------------------------------------------------------------------- sizes

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    @property
    def num_frames(self) -> int:
        return int(self.motion.shape[0])

    @property
    def name(self) -> str:
        return Path(self.path).stem if self.path else "bvh"

    @property
    def fps(self) -> float:
        """``1 / frame_time``, snapped to the nearest integer when within 1e-4 of it (``.0083333`` -> 120)."""
        fps = 1.0 / self.frame_time
        r = round(fps)
        return float(r) if r > 0 and abs(fps - r) <= 1e-4 * fps else fps

    def channel_start(self) -> list[int]:
        """Per joint, the column of its first channel in :attr:`motion`."""
        out, c = [], 0
        for chans in self.channels:
            out.append(c)
            c += len(chans)
        return out

    def rotation_orders(self) -> list[str]:
        """Per joint, the letters of its rotation channels in file order (``'ZXY'``; ``''`` for end sites)."""
        return ["".join(c[0] for c in chans if c.endswith("rotation")) for chans in self.channels]

    def channel_layout(self) -> tuple[str, int]:
        """``(rotation_order, channels_per_joint)`` for :func:`write_bvh` to lay a motion out as this file does: the
        rotation order shared by every joint with rotation channels (``'ZXY'`` if they differ or are not one of
        :data:`ROTATION_ORDERS`), and 6 if every non-root joint with channels has position channels too, else 3."""
        orders = {o for o in self.rotation_orders() if o}
        order = orders.pop() if len(orders) == 1 else "ZXY"
        chans = [c for j, c in enumerate(self.channels) if j and c]
        six = bool(chans) and all(any(x.endswith("position") for x in c) for c in chans)
        return (order if order in ROTATION_ORDERS else "ZXY"), (6 if six else 3)

    def slice(self, start: int, stop: int | None = None) -> BVH:
        """A copy holding frames ``start:stop``."""
        return dataclasses.replace(
            self,
            motion=self.motion[start:stop].copy(),
            offsets=self.offsets.copy(),
            channels=[list(c) for c in self.channels],
        )

    # ------------------------------------------------------------------------------------------- kinematics

    def local_rotmat(self) -> np.ndarray:
        """(T, J, 3, 3) local rotations: the rotation channels composed in listed order (intrinsic)."""
        T, J = self.num_frames, self.num_joints
        R = np.broadcast_to(np.eye(3), (T, J, 3, 3)).copy()
        for j, (chans, start) in enumerate(zip(self.channels, self.channel_start(), strict=True)):
            for k, c in enumerate(chans):
                if c.endswith("rotation"):
                    R[:, j] = R[:, j] @ _axis_rotmat(c[0], np.radians(self.motion[:, start + k]))
        return R

    def local_translations(self) -> np.ndarray:
        """(T, J, 3) per-frame offsets: ``OFFSET``, components with position channels replaced."""
        t = np.broadcast_to(self.offsets, (self.num_frames, self.num_joints, 3)).copy()
        for j, (chans, start) in enumerate(zip(self.channels, self.channel_start(), strict=True)):
            for k, c in enumerate(chans):
                if c.endswith("position"):
                    t[:, j, "XYZ".index(c[0])] = self.motion[:, start + k]
        return t

    def positions(self, scale: float = 1.0) -> torch.Tensor:
        """(T, J, 3) float64 joint positions by the file's own forward kinematics, times ``scale``.

        Exact for every file: position channels on any joint are honoured.
        """
        _check_scale(scale)
        R, t = self.local_rotmat(), self.local_translations()
        G = np.empty_like(R)
        X = np.empty_like(t)
        for j, p in enumerate(self.parents):
            if p < 0:
                G[:, j], X[:, j] = R[:, j], t[:, j]
            else:
                X[:, j] = X[:, p] + np.einsum("tab,tb->ta", G[:, p], t[:, j])
                G[:, j] = G[:, p] @ R[:, j]
        return torch.from_numpy(X * scale)

    # ------------------------------------------------------------------------------------------- conversion

    def skeleton(self, scale: float = 1.0) -> Skeleton:
        """The rest skeleton: joints ``'ball'``, end sites ``'end'``, ``OFFSET`` rows times ``scale``.

        ``left_right`` pairs come from the names (:func:`detect_left_right`); ``lateral_axis`` is the axis
        along which the first pair whose rest positions differ differs most (0 if none does).
        """
        _check_scale(scale)
        kinds = ["end" if e else "ball" for e in self.end_site]
        names = list(self.joint_names)
        pairs = detect_left_right(names)
        offsets = self.offsets * scale
        lateral = infer_lateral_axis(offsets, self.parents, pairs)
        return Skeleton(self.name, names, self.parents, offsets, kinds, left_right=pairs, lateral_axis=lateral)

    def to_motion(self, scale: float = 1.0, dtype: torch.dtype = torch.float64) -> Motion:
        """A :class:`Motion` on :meth:`skeleton`: (T, J, 4) w,x,y,z local rotations, (T, 3) root positions.

        Args:
            scale: multiplies offsets and positions (``CM_TO_M`` for centimetres, ``CMU_TO_M`` for CMU).
            dtype: of the tensors (float64 keeps round trips exact).

        A non-root joint whose position channels differ from its ``OFFSET`` cannot be represented by a
        fixed-offset skeleton: the rest offset is kept and a :class:`BVHWarning` names the joints
        (:meth:`positions` stays exact). Channels that merely repeat the ``OFFSET`` are exact and silent.
        """
        t = self.local_translations()
        moving = [
            self.joint_names[j]
            for j in range(1, self.num_joints)
            if any(c.endswith("position") for c in self.channels[j])
            and not np.allclose(t[:, j], self.offsets[j], rtol=0, atol=1e-9 * max(1.0, np.abs(t[:, j]).max()))
        ]
        if moving:
            warnings.warn(
                f"{self.path or self.name}: non-root joints {moving} have per-frame position channels that a "
                f"fixed-offset Skeleton cannot hold; to_motion keeps their OFFSET (BVH.positions() is exact)",
                BVHWarning,
                stacklevel=2,
            )
        local_quat = matrix_to_quat(torch.from_numpy(self.local_rotmat())).to(dtype)  # (T, J, 4)
        root_pos = torch.from_numpy(t[:, 0] * scale).to(dtype)  # (T, 3)
        meta = {"source": self.path, "format": "bvh", "frame_time": self.frame_time}
        return Motion(self.skeleton(scale), local_quat, root_pos, self.fps, self.name, meta)


def _axis_rotmat(axis: str, angle: np.ndarray) -> np.ndarray:
    """(T, 3, 3) rotations by ``angle`` (T,) radians about the X, Y or Z axis (column vectors)."""
    c, s = np.cos(angle), np.sin(angle)
    one, zero = np.ones_like(angle), np.zeros_like(angle)
    rows = {
        "X": ((one, zero, zero), (zero, c, -s), (zero, s, c)),
        "Y": ((c, zero, s), (zero, one, zero), (-s, zero, c)),
        "Z": ((c, -s, zero), (s, c, zero), (zero, zero, one)),
    }[axis]
    return np.stack([np.stack(r, axis=-1) for r in rows], axis=-2)


# ----------------------------------------------------------------------------------------------- reader


def read_bvh(path: str | os.PathLike, scale: float = 1.0) -> BVH:
    """Parse a BVH file.

    Tokens may be split over lines arbitrarily in the hierarchy; each frame is one line. A header
    ``Frames:`` count that disagrees with the frame lines present gives a :class:`BVHWarning` and the
    frames present are used.

    Args:
        path: the ``.bvh`` file.
        scale: multiplies offsets and position channels (default 1: file units).

    Raises:
        FileFormatError: with the 1-based line, on a missing HIERARCHY/ROOT/MOTION, unbalanced braces,
            joints nested more than :data:`~kinepose.data.formats._bvh_reader.MAX_DEPTH` deep, a bad OFFSET,
            an unknown channel name, a ``Frame Time`` that is not positive or whose frame rate is infinite,
            a frame line with the wrong number of values, a non-numeric or non-finite value.
    """
    _check_scale(scale)
    spath = os.fspath(path)
    with open(spath, encoding="utf-8", errors="replace") as f:
        lines = f.read().splitlines()
    bvh = BVH(*parse_bvh_lines(lines, spath), spath)
    if scale != 1.0:
        with np.errstate(over="ignore"):  # checked just below
            bvh.offsets *= scale
            for chans, start in zip(bvh.channels, bvh.channel_start(), strict=True):
                for k, c in enumerate(chans):
                    if c.endswith("position"):
                        bvh.motion[:, start + k] *= scale
        if not (np.isfinite(bvh.offsets).all() and np.isfinite(bvh.motion).all()):
            raise FileFormatError(f"offsets or positions times scale={scale} exceed the float64 range", spath)
    return bvh


def read_bvh_skeleton(path: str | os.PathLike, scale: float = 1.0) -> Skeleton:
    """The rest skeleton of a BVH file's ``HIERARCHY``: ``read_bvh(path).skeleton(scale)`` (see :meth:`BVH.skeleton`),
    without the reader's warnings about the motion (a wrong ``Frames:`` count does not matter here).

    This is what ``load_skeleton("x.bvh", scale)`` (:mod:`kinepose.skeleton.presets`) and ``--skeleton x.bvh`` read.
    """
    _check_scale(scale)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BVHWarning)
        try:
            bvh = read_bvh(path)
        except OSError as exc:
            raise FileFormatError(f"cannot read ({exc.strerror or exc})", os.fspath(path)) from exc
    return bvh.skeleton(scale)


register_skeleton_reader(".bvh", read_bvh_skeleton)  # load_skeleton lives below the data layer: it cannot import us


# ----------------------------------------------------------------------------------------------- writer


def _depth_first(skeleton: Skeleton) -> list[int]:
    order: list[int] = []
    stack = [0]
    while stack:
        j = stack.pop()
        order.append(j)
        stack.extend(reversed(skeleton.children[j]))
    return order


def write_bvh(
    path: str | os.PathLike,
    skeleton: Skeleton,
    local_quat: torch.Tensor | np.ndarray,
    root_pos: torch.Tensor | np.ndarray,
    fps: float,
    rotation_order: str = "ZXY",
    scale: float = 1.0,
    channels_per_joint: int = 3,
) -> list[int]:
    """Write a motion on any skeleton to a BVH file, atomically (temporary file + ``os.replace``).

    The root gets ``Xposition Yposition Zposition`` and 3 rotation channels, other rotated joints 3
    rotation channels (6 with position channels repeating their offset if ``channels_per_joint=6``), end
    sites without children become ``End Site`` blocks (their names are lost: the reader calls them
    ``<parent>_end``). Inputs are validated before anything is written; on any failure an existing
    file at ``path`` is left untouched and no partial file remains.

    Args:
        path: the ``.bvh`` file to write.
        skeleton: the kinematic tree (metres).
        local_quat: (T, J, 4) w,x,y,z unit local rotations (end-site entries ignored).
        root_pos: (T, 3) root positions, metres.
        fps: frames per second.
        rotation_order: channel order of the rotations, one of :data:`ROTATION_ORDERS` (intrinsic).
        scale: multiplies offsets and positions (100 writes centimetres).
        channels_per_joint: 3 (rotations) or 6 (positions too) for non-root joints.

    Returns:
        The skeleton joint indices in file order (depth-first, children in index order), so that joint
        ``k`` of the file read back is ``skeleton`` joint ``order[k]``.
    """
    q, rp = _check_write_args(skeleton, local_quat, root_pos, fps, rotation_order, scale, channels_per_joint)
    order = _depth_first(skeleton)
    header, data = _bvh_content(skeleton, q, rp, fps, order, rotation_order, scale, channels_per_joint)

    def write(f) -> None:
        f.write("\n".join(header) + "\n")
        np.savetxt(f, data, fmt=_FMT, delimiter=" ")

    atomic_write(path, write)
    return order


def _check_write_args(
    skeleton: Skeleton,
    local_quat: torch.Tensor | np.ndarray,
    root_pos: torch.Tensor | np.ndarray,
    fps: float,
    rotation_order: str,
    scale: float,
    channels_per_joint: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate everything before a file is touched; return float64 CPU (T, J, 4) and (T, 3) tensors."""
    if rotation_order not in ROTATION_ORDERS:
        raise KineposeError(
            f"rotation_order: expected a Tait-Bryan order of the letters XYZ, one of {ROTATION_ORDERS} "
            f"(BVH channels compose intrinsically in the listed order), got {rotation_order!r}"
        )
    if channels_per_joint not in (3, 6):
        raise KineposeError(f"channels_per_joint: expected 3 or 6, got {channels_per_joint!r}")
    _check_scale(scale)
    _check_scale(fps, "fps")
    q, rp = check_motion_arrays(skeleton, local_quat, root_pos)
    for n in skeleton.joint_names:
        if not n or re.search(r"[\s{}]", n):
            raise KineposeError(
                f"skeleton '{skeleton.name}': joint name {n!r} cannot be written to BVH (empty, or holds "
                f"whitespace or braces)"
            )
    return q, rp


def _bvh_content(
    skeleton: Skeleton,
    q: torch.Tensor,
    root_pos: torch.Tensor,
    fps: float,
    order: list[int],
    rotation_order: str,
    scale: float,
    channels_per_joint: int,
) -> tuple[list[str], np.ndarray]:
    """The header lines (HIERARCHY to Frame Time) and the (T, C) frame values, joints in ``order``."""
    T, J = q.shape[:2]
    rotated = list(skeleton.rotated_joints)
    euler = np.zeros((T, J, 3))  # degrees; end-site entries stay 0 (their quaternions are ignored)
    euler[:, rotated] = np.degrees(quat_to_euler(q[:, rotated], rotation_order).numpy())
    offsets = skeleton.offsets * scale
    rot_names = [f"{a}rotation" for a in rotation_order]
    pos_names = ["Xposition", "Yposition", "Zposition"]
    lines, columns = ["HIERARCHY"], []
    depth: dict[int, int] = {}
    open_blocks: list[int] = []  # depths of the blocks not closed yet
    for j in order:
        p = skeleton.parents[j]
        d = depth[j] = 0 if p < 0 else depth[p] + 1
        while open_blocks and open_blocks[-1] >= d:
            lines.append("\t" * open_blocks.pop() + "}")
        ind = "\t" * d
        off = f"{ind}\tOFFSET " + " ".join(_FMT % v for v in offsets[j])
        open_blocks.append(d)
        if p >= 0 and skeleton.kinds[j] == "end" and not skeleton.children[j]:
            lines += [f"{ind}End Site", f"{ind}{{", off]
            continue
        lines += [f"{ind}{'ROOT' if p < 0 else 'JOINT'} {skeleton.joint_names[j]}", f"{ind}{{", off]
        if p < 0:
            chans, cols = pos_names + rot_names, [root_pos.numpy() * scale, euler[:, j]]
        elif channels_per_joint == 6:
            chans, cols = pos_names + rot_names, [np.broadcast_to(offsets[j], (T, 3)), euler[:, j]]
        else:
            chans, cols = rot_names, [euler[:, j]]
        lines.append(f"{ind}\tCHANNELS {len(chans)} {' '.join(chans)}")
        columns += cols
    lines += ["\t" * d + "}" for d in reversed(open_blocks)]
    lines += ["MOTION", f"Frames: {T}", f"Frame Time: {_FMT % (1.0 / fps)}"]
    return lines, np.concatenate(columns, axis=1)  # (T, C)


def write_motion_bvh(path: str | os.PathLike, motion: Motion, **kw) -> list[int]:
    """:func:`write_bvh` of a :class:`Motion` (its skeleton, rotations, root positions and fps)."""
    return write_bvh(path, motion.skeleton, motion.local_quat, motion.root_pos, motion.fps, **kw)
