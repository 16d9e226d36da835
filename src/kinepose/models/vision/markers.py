"""Virtual markers: points fixed on a skeleton's segments, off the bone axis, so that a segment's twist about its
bone shows in their positions (the joints alone do not give it). D3KE (:mod:`kinepose.models.vision.d3ke`) predicts
and is trained on them."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from kinepose.errors import KineposeError, ShapeError
from kinepose.models.layers import check_positive
from kinepose.skeleton.core import Skeleton

__all__ = ["MarkerSet", "marker_positions", "virtual_markers"]


@dataclass(frozen=True, eq=False)
class MarkerSet:
    """Points fixed in the local frames of joints (virtual markers).

    Marker ``m`` sits at ``p[joint[m]] + G[joint[m]] @ (offset[m] * s[child[m]])`` (:func:`marker_positions`).

    Attributes:
        joint: ``M`` indices of the joint whose frame carries each marker.
        offset: (M, 3) position in that frame at rest, metres.
        names: ``M`` names, ``"{joint name}_m{k}"``.
        child: ``M`` indices of the child joint whose bone (``joint -> child``) the marker lies along; the scale of
            that bone, ``scales[..., child[m]]``, scales the offset.
    """

    joint: tuple[int, ...]
    offset: np.ndarray
    names: tuple[str, ...]
    child: tuple[int, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "joint", tuple(int(j) for j in self.joint))
        object.__setattr__(self, "child", tuple(int(c) for c in self.child))
        object.__setattr__(self, "names", tuple(str(n) for n in self.names))
        offset = np.array(self.offset, dtype=np.float64)
        M = len(self.joint)
        if offset.shape != (M, 3) or len(self.names) != M or len(self.child) != M:
            raise ShapeError(
                f"MarkerSet: {M} joints need offset of shape ({M}, 3), {M} names and {M} children; got offset "
                f"{offset.shape}, {len(self.names)} names, {len(self.child)} children"
            )
        offset.setflags(write=False)
        object.__setattr__(self, "offset", offset)

    def __len__(self) -> int:
        return len(self.joint)


def virtual_markers(skeleton: Skeleton, per_segment: int = 3, radius_fraction: float = 0.15) -> MarkerSet:
    """``per_segment`` virtual markers on every body segment of ``skeleton``.

    A segment is the bone from joint ``j`` to a child ``c``, for every joint with at least one child of non-zero rest
    offset; with several children, the one with the longest offset (ties: the lowest index), e.g. the humanoid's
    chest -> right shoulder. Its markers are fixed in ``j``'s frame, so they follow ``j``'s global rotation. With
    ``b = offsets[c]``, ``L = |b|``, ``u = b / L``, marker ``k`` (0-based) is at

        ``(k + 1) / (per_segment + 1) * b + radius_fraction * L * (cos(a_k) e0 + sin(a_k) e1)``,
        ``a_k = 2 pi k / per_segment``,

    where ``e0`` is the world axis least aligned with ``u`` (ties: x before y before z) made perpendicular to ``u``
    (Gram-Schmidt) and ``e1 = u x e0``. The markers climb the bone and turn by ``360 / per_segment`` degrees (120 for
    3) about it from one to the next, so that three or more of them are not collinear and a twist of the segment
    about its bone moves them (joint positions alone do not show it). Joints without a child bone (the humanoid's
    neck and ankles) carry no markers.

    Args:
        skeleton: the skeleton.
        per_segment: markers per segment (>= 1).
        radius_fraction: sideways distance from the bone over the bone length (> 0 to see twist).

    Returns:
        A :class:`MarkerSet`, segments in joint order, ``per_segment`` markers each.
    """
    check_positive(per_segment=per_segment)
    if not (radius_fraction >= 0 and math.isfinite(radius_fraction)):
        raise KineposeError(f"virtual_markers: radius_fraction must be finite and >= 0, got {radius_fraction}")
    lengths = skeleton.bone_lengths()
    joint, child, names, offset = [], [], [], []
    for j, kids in enumerate(skeleton.children):
        kids = [c for c in kids if lengths[c] > 1e-9]
        if not kids:
            continue
        c = max(kids, key=lambda i: (lengths[i], -i))  # longest child bone, the lowest index on ties
        b, L = skeleton.offsets[c], float(lengths[c])
        u = b / L
        ref = np.eye(3)[int(np.argmin(np.abs(u)))]
        e0 = ref - (ref @ u) * u
        e0 /= np.linalg.norm(e0)
        e1 = np.cross(u, e0)
        for k in range(per_segment):
            a = 2 * np.pi * k / per_segment
            side = radius_fraction * L * (np.cos(a) * e0 + np.sin(a) * e1)
            joint.append(j)
            child.append(c)
            names.append(f"{skeleton.joint_names[j]}_m{k}")
            offset.append((k + 1) / (per_segment + 1) * b + side)
    if not joint:
        raise KineposeError(f"virtual_markers: skeleton {skeleton.name!r} has no bone of non-zero length")
    return MarkerSet(tuple(joint), np.array(offset), tuple(names), tuple(child))


def marker_positions(
    global_rotmat: torch.Tensor,
    positions: torch.Tensor,
    markers: MarkerSet,
    scales: torch.Tensor | None = None,
) -> torch.Tensor:
    """Marker positions from forward kinematics: ``p_j + G_j @ (offset * s)`` with ``j = markers.joint[m]`` and
    ``s = scales[..., markers.child[m]]``, the scale of the bone the marker lies along (1 without ``scales``).

    Args:
        global_rotmat: (..., J, 3, 3) global joint rotations.
        positions: (..., J, 3) joint positions, metres.
        markers: the :class:`MarkerSet`.
        scales: optional (..., J) bone scales (``scales[..., c]`` scales the bone ``parent(c) -> c``); leading dims
            broadcast against those of ``positions`` (e.g. (B, 1, J) per sequence with (B, T, J, 3) positions).

    Returns:
        (..., M, 3) marker positions.
    """
    J = positions.shape[-2] if positions.dim() >= 2 else -1
    if positions.dim() < 2 or positions.shape[-1] != 3:
        raise ShapeError(f"marker_positions: positions must have shape (..., J, 3), got {tuple(positions.shape)}")
    if global_rotmat.shape[-3:] != (J, 3, 3):
        raise ShapeError(
            f"marker_positions: global_rotmat must have shape (..., {J}, 3, 3) to match positions "
            f"{tuple(positions.shape)}, got {tuple(global_rotmat.shape)}"
        )
    if max(*markers.joint, *markers.child) >= J:
        raise ShapeError(f"marker_positions: the markers refer to joint {max(*markers.joint, *markers.child)}, "
                         f"positions have {J} joints")  # fmt: skip
    if scales is not None and scales.shape[-1] != J:
        raise ShapeError(f"marker_positions: scales must have shape (..., {J}), got {tuple(scales.shape)}")
    dev, dtype = positions.device, positions.dtype
    joint = torch.tensor(markers.joint, device=dev)
    off = torch.tensor(np.array(markers.offset), dtype=dtype, device=dev)  # (M, 3)
    if scales is not None:
        off = off * scales[..., torch.tensor(markers.child, device=dev), None].to(dtype)  # (..., M, 3)
    G = global_rotmat[..., joint, :, :]  # (..., M, 3, 3)
    return positions[..., joint, :] + (G @ off[..., None])[..., 0]
