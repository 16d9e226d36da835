"""The kinematic tree: joint names, parents, joint kinds, rest offsets, left/right pairs.

A :class:`Skeleton` only holds data and answers questions about its structure; the maths lives in
:mod:`kinepose.kinematics` (forward kinematics) and :mod:`kinepose.kinematics.ik` (analytic inverse kinematics).

Joint kinds:

- ``"ball"``: 3 rotational degrees of freedom (a local rotation, any unit quaternion).
- ``"hinge"``: 1 degree of freedom about ``hinge_axes[j]`` (a unit vector in the parent's frame),
  optionally limited to ``limits[j] = (lower, upper)`` radians. Its local rotation is
  ``quat_about_axis(axis, angle)``.
- ``"end"``: an end site (finger tip, wrist marker): a point fixed to its parent, no rotation.

``offsets[j]`` is the position of joint ``j`` in its parent's frame at rest (metres); the root's
offset is its rest position. Joint positions are ``x_j = x_parent + G_parent @ offsets[j]`` where
``G`` are global rotations (column vectors).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import torch

from kinepose.errors import KineposeError

JOINT_KINDS = ("ball", "hinge", "end")

__all__ = ["JOINT_KINDS", "Skeleton"]


@dataclass(frozen=True, eq=False)
class Skeleton:
    """A kinematic tree.

    Args:
        name: preset or file name, used in messages.
        joint_names: ``J`` unique names.
        parents: ``J`` parent indices, topologically sorted (``parents[j] < j``), root ``-1`` first.
        offsets: ``(J, 3)`` rest offsets in the parent's frame, metres.
        kinds: ``J`` joint kinds, each one of :data:`JOINT_KINDS`.
        hinge_axes: ``(J, 3)`` unit hinge axes (rows of hinge joints; zeros elsewhere). Default zeros.
        limits: ``(J, 2)`` hinge limits in radians (``nan`` where there are none). Default nan.
        left_right: pairs of joint indices ``(left, right)`` that mirror each other.
        lateral_axis: the world axis (0, 1, 2 for x, y, z) that points from right to left or left to
            right at rest; mirroring negates it.
    """

    name: str
    joint_names: tuple[str, ...]
    parents: tuple[int, ...]
    offsets: np.ndarray
    kinds: tuple[str, ...]
    hinge_axes: np.ndarray | None = None
    limits: np.ndarray | None = None
    left_right: tuple[tuple[int, int], ...] = ()
    lateral_axis: int = 0
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        J = len(self.joint_names)
        object.__setattr__(self, "joint_names", tuple(str(n) for n in self.joint_names))
        object.__setattr__(self, "parents", tuple(int(p) for p in self.parents))
        object.__setattr__(self, "kinds", tuple(self.kinds))
        offsets = np.asarray(self.offsets, dtype=np.float64)
        object.__setattr__(self, "offsets", offsets)
        axes = np.zeros((J, 3)) if self.hinge_axes is None else np.asarray(self.hinge_axes, dtype=np.float64)
        object.__setattr__(self, "hinge_axes", axes)
        lim = np.full((J, 2), np.nan) if self.limits is None else np.asarray(self.limits, dtype=np.float64)
        object.__setattr__(self, "limits", lim)
        object.__setattr__(self, "left_right", tuple((int(a), int(b)) for a, b in self.left_right))
        for o in (offsets, axes, lim):
            o.setflags(write=False)
        self._validate()

    def _validate(self) -> None:
        n, J = self.name, len(self.joint_names)
        if J == 0:
            raise KineposeError(f"skeleton '{n}': no joints")
        if len(set(self.joint_names)) != J:
            dup = sorted({x for x in self.joint_names if self.joint_names.count(x) > 1})
            raise KineposeError(f"skeleton '{n}': duplicate joint names {dup}")
        for what, length in (("parents", len(self.parents)), ("kinds", len(self.kinds))):
            if length != J:
                raise KineposeError(f"skeleton '{n}': {what} has {length} entries, expected {J} (one per joint)")
        for what, arr, shp in (
            ("offsets", self.offsets, (J, 3)),
            ("hinge_axes", self.hinge_axes, (J, 3)),
            ("limits", self.limits, (J, 2)),
        ):
            if arr.shape != shp:
                raise KineposeError(f"skeleton '{n}': {what} has shape {arr.shape}, expected {shp}")
        if self.parents[0] != -1:
            raise KineposeError(f"skeleton '{n}': joint 0 ('{self.joint_names[0]}') must be the root (parent -1)")
        for j, p in enumerate(self.parents[1:], start=1):
            if not 0 <= p < j:
                raise KineposeError(
                    f"skeleton '{n}': parent of joint {j} ('{self.joint_names[j]}') is {p}; parents must be "
                    f"topologically sorted (0 <= parent < joint) with a single root -1 at index 0"
                )
        for j, k in enumerate(self.kinds):
            if k not in JOINT_KINDS:
                raise KineposeError(f"skeleton '{n}': joint '{self.joint_names[j]}' has unknown kind {k!r}")
            if k == "hinge" and abs(np.linalg.norm(self.hinge_axes[j]) - 1) > 1e-6:
                raise KineposeError(f"skeleton '{n}': hinge joint '{self.joint_names[j]}' needs a unit axis")
            if k == "end" and j == 0:
                raise KineposeError(f"skeleton '{n}': the root cannot be an end site")
        for j, p in enumerate(self.parents):
            if p >= 0 and self.kinds[p] == "end":
                raise KineposeError(
                    f"skeleton '{n}': joint '{self.joint_names[j]}' has end site '{self.joint_names[p]}' as parent"
                )
        if not np.isfinite(self.offsets).all():
            raise KineposeError(f"skeleton '{n}': offsets contain non-finite values")
        for a, b in self.left_right:
            if not (0 <= a < J and 0 <= b < J) or a == b:
                raise KineposeError(f"skeleton '{n}': bad left/right pair ({a}, {b})")
        if self.lateral_axis not in (0, 1, 2):
            raise KineposeError(f"skeleton '{n}': lateral_axis must be 0, 1 or 2")

    # ------------------------------------------------------------------------------------------- structure

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    def __len__(self) -> int:
        return self.num_joints

    def __repr__(self) -> str:
        counts = {k: self.kinds.count(k) for k in JOINT_KINDS}
        return f"Skeleton('{self.name}', {self.num_joints} joints: {counts})"

    def index(self, name: str) -> int:
        """Index of the joint called ``name``."""
        try:
            return self.joint_names.index(name)
        except ValueError:
            raise KineposeError(
                f"skeleton '{self.name}' has no joint named {name!r}; joints are {list(self.joint_names)}"
            ) from None

    def indices(self, names: Sequence[str]) -> list[int]:
        return [self.index(n) for n in names]

    @cached_property
    def children(self) -> tuple[tuple[int, ...], ...]:
        """``children[j]``: indices of the joints whose parent is ``j``."""
        out: list[list[int]] = [[] for _ in self.joint_names]
        for j, p in enumerate(self.parents):
            if p >= 0:
                out[p].append(j)
        return tuple(tuple(c) for c in out)

    @cached_property
    def rotated_joints(self) -> tuple[int, ...]:
        """Indices of the joints that carry a rotation (ball and hinge; not end sites)."""
        return tuple(j for j, k in enumerate(self.kinds) if k != "end")

    @cached_property
    def bones(self) -> tuple[tuple[int, int], ...]:
        """``(parent, child)`` index pairs, one per non-root joint."""
        return tuple((p, j) for j, p in enumerate(self.parents) if p >= 0)

    @cached_property
    def mirror_index(self) -> tuple[int, ...]:
        """Permutation that swaps each left joint with its right partner (identity elsewhere)."""
        perm = list(range(self.num_joints))
        for a, b in self.left_right:
            perm[a], perm[b] = b, a
        return tuple(perm)

    def bone_lengths(self) -> np.ndarray:
        """(J,) rest bone lengths, metres (the root's is its rest offset norm)."""
        return np.linalg.norm(self.offsets, axis=-1)

    def offsets_tensor(self, dtype: torch.dtype = torch.float32, device=None) -> torch.Tensor:
        """The rest offsets as a cached (J, 3) tensor."""
        key = ("offsets", dtype, str(device))
        if key not in self._cache:
            self._cache[key] = torch.tensor(np.array(self.offsets), dtype=dtype, device=device)
        return self._cache[key]

    def hinge_axes_tensor(self, dtype: torch.dtype = torch.float32, device=None) -> torch.Tensor:
        key = ("axes", dtype, str(device))
        if key not in self._cache:
            self._cache[key] = torch.tensor(np.array(self.hinge_axes), dtype=dtype, device=device)
        return self._cache[key]

    # ------------------------------------------------------------------------------------------- derive

    def with_offsets(self, offsets: np.ndarray, name: str | None = None) -> Skeleton:
        """A copy with other rest offsets (for example bone lengths measured on a subject)."""
        return Skeleton(
            name or self.name, self.joint_names, self.parents, offsets, self.kinds,
            self.hinge_axes, self.limits, self.left_right, self.lateral_axis,
        )  # fmt: skip

    def subset(self, names: Sequence[str], name: str | None = None) -> tuple[Skeleton, list[int]]:
        """Keep only ``names`` (in this skeleton's order); each kept joint's parent becomes its nearest kept
        ancestor and its offset the sum of the rest offsets in between (exact at rest).

        Returns:
            The new skeleton and the list of kept indices into this skeleton, so that
            ``joints[..., idx, :]`` maps positions from this skeleton to the subset.
        """
        keep = sorted(self.indices(names))
        if keep[0] != 0:
            raise KineposeError(f"subset of '{self.name}' must keep the root '{self.joint_names[0]}'")
        new_of = {old: i for i, old in enumerate(keep)}
        parents, offsets = [], []
        for old in keep:
            off = self.offsets[old].copy() if old else self.offsets[0].copy()
            p = self.parents[old]
            while p >= 0 and p not in new_of:
                off = off + self.offsets[p]  # exact at rest only: removed joints carry no rotation there
                p = self.parents[p]
            parents.append(-1 if p < 0 else new_of[p])
            offsets.append(off)
        kinds = []
        for old in keep:
            has_kept_child = any(new_of.get(c) is not None for c in self._descendants(old))
            kinds.append(self.kinds[old] if has_kept_child or self.kinds[old] == "end" else "end")
        lr = tuple((new_of[a], new_of[b]) for a, b in self.left_right if a in new_of and b in new_of)
        sk = Skeleton(
            name or f"{self.name}-subset", [self.joint_names[i] for i in keep], parents, np.array(offsets),
            kinds, self.hinge_axes[keep], self.limits[keep], lr, self.lateral_axis,
        )  # fmt: skip
        return sk, keep

    def _descendants(self, j: int) -> list[int]:
        out, stack = [], list(self.children[j])
        while stack:
            c = stack.pop()
            out.append(c)
            stack.extend(self.children[c])
        return out

    def remap_from(self, names: Sequence[str]) -> list[int]:
        """Indices into ``names`` (another joint order) for each of this skeleton's joints.

        ``joints_other[..., idx, :]`` reorders positions given in ``names`` order to this skeleton's order.
        Raises if one of this skeleton's joints is missing from ``names``.
        """
        pos = {n: i for i, n in enumerate(names)}
        missing = [n for n in self.joint_names if n not in pos]
        if missing:
            raise KineposeError(f"cannot map onto skeleton '{self.name}': missing joints {missing}")
        return [pos[n] for n in self.joint_names]

    def describe(self) -> str:
        """A human-readable table of the tree."""
        lines = [f"{self!r}", f"{'#':>3} {'joint':<18} {'parent':<18} {'kind':<6} {'offset (m)':<28} extra"]
        for j, n in enumerate(self.joint_names):
            p = self.parents[j]
            extra = ""
            if self.kinds[j] == "hinge":
                lo, hi = np.degrees(self.limits[j])
                extra = f"axis {np.round(self.hinge_axes[j], 3).tolist()} limits [{lo:.0f}, {hi:.0f}] deg"
            off = "(" + ", ".join(f"{v:+.3f}" for v in self.offsets[j]) + ")"
            parent = self.joint_names[p] if p >= 0 else "-"
            lines.append(f"{j:>3} {n:<18} {parent:<18} {self.kinds[j]:<6} {off:<28} {extra}")
        return "\n".join(lines)
