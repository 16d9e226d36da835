"""Forward kinematics, bone lengths and retargeting on a :class:`~kinepose.skeleton.Skeleton`.

All functions are batched over any leading dimensions and differentiable. Rotations are given for
**every** joint, ``(..., J, 4)`` w,x,y,z quaternions (the ones of end sites are ignored), so that joint
``j``'s data is always at index ``j``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from kinepose._validation import as_tensor, check_finite, check_joints
from kinepose.geometry.rotations import (
    check_unit_quat,
    matrix_to_quat,
    quat_about_axis,
    quat_canonical,
    quat_identity,
    quat_to_matrix,
)
from kinepose.skeleton.core import Skeleton

__all__ = [
    "FKOutput",
    "bone_lengths",
    "forward_kinematics",
    "forward_kinematics_matrix",
    "hinge_angles",
    "project_to_joint_kinds",
    "random_pose",
    "rest_pose",
    "retarget",
]


@dataclass
class FKOutput:
    """Result of forward kinematics.

    Attributes:
        positions: (..., J, 3) joint positions, metres.
        global_rotmat: (..., J, 3, 3) joint rotations relative to the world.
    """

    positions: torch.Tensor
    global_rotmat: torch.Tensor

    @property
    def global_quat(self) -> torch.Tensor:
        """(..., J, 4) w,x,y,z global rotations."""
        return matrix_to_quat(self.global_rotmat)


def forward_kinematics_matrix(
    skeleton: Skeleton,
    local_rotmat: torch.Tensor,
    root_pos: torch.Tensor | None = None,
    offsets: torch.Tensor | None = None,
) -> FKOutput:
    """Forward kinematics from local rotation matrices.

    Args:
        skeleton: the kinematic tree.
        local_rotmat: (..., J, 3, 3) rotations relative to the parent (end-site entries ignored).
        root_pos: (..., 3) root position; default the root's rest offset.
        offsets: (..., J, 3) or (J, 3) rest offsets overriding the skeleton's (per-subject bone lengths).

    Returns:
        :class:`FKOutput` with positions ``x_j = x_parent + G_parent @ offsets[j]`` and ``G_j = G_parent @ L_j``.
    """
    J = skeleton.num_joints
    if local_rotmat.shape[-3:] != (J, 3, 3):
        check_joints(local_rotmat.flatten(-2), "local_rotmat", J, skeleton.name, channels=9)
    dtype, device = local_rotmat.dtype, local_rotmat.device
    batch = local_rotmat.shape[:-3]
    off = skeleton.offsets_tensor(dtype, device) if offsets is None else offsets.to(dtype)
    if off.shape[-2:] != (J, 3):
        check_joints(off, "offsets", J, skeleton.name)
    if root_pos is None:
        root_pos = off[..., 0, :].expand(*batch, 3)
    globals_: list[torch.Tensor] = []
    positions: list[torch.Tensor] = []
    for j, p in enumerate(skeleton.parents):
        if p < 0:
            G = local_rotmat[..., j, :, :]
            x = root_pos.expand(*batch, 3)
        else:
            Gp = globals_[p]
            x = positions[p] + (Gp @ off[..., j, :, None])[..., 0]  # (..., 3)
            G = Gp if skeleton.kinds[j] == "end" else Gp @ local_rotmat[..., j, :, :]
        globals_.append(G)
        positions.append(x)
    return FKOutput(torch.stack(positions, dim=-2), torch.stack(globals_, dim=-3))


def forward_kinematics(
    skeleton: Skeleton,
    local_quat: torch.Tensor,
    root_pos: torch.Tensor | None = None,
    offsets: torch.Tensor | None = None,
    check: bool = True,
) -> FKOutput:
    """Forward kinematics from local w,x,y,z quaternions.

    Args:
        skeleton: the kinematic tree.
        local_quat: (..., J, 4) unit quaternions relative to the parent (end-site entries ignored).
        root_pos: (..., 3) root position; default the root's rest offset.
        offsets: optional (..., J, 3) rest offsets overriding the skeleton's.
        check: validate shapes, finiteness and unit norm (turn off inside training loops).
    """
    local_quat = as_tensor(local_quat, "local_quat")
    if check:
        check_joints(local_quat, "local_quat", skeleton.num_joints, skeleton.name, channels=4)
        check_finite(local_quat, "local_quat")
        check_unit_quat(local_quat[..., list(skeleton.rotated_joints), :], "local_quat")
        if root_pos is not None:
            root_pos = as_tensor(root_pos, "root_pos", local_quat.dtype)
            check_finite(root_pos, "root_pos")
    return forward_kinematics_matrix(skeleton, quat_to_matrix(local_quat), root_pos, offsets)


def rest_pose(skeleton: Skeleton, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(J, 3) joint positions with every local rotation the identity."""
    return forward_kinematics(skeleton, quat_identity((skeleton.num_joints,), dtype=dtype)).positions


def bone_lengths(skeleton: Skeleton, joints: torch.Tensor) -> torch.Tensor:
    """(..., J) distance of each joint to its parent (0 for the root), metres."""
    joints = as_tensor(joints, "joints")
    check_joints(joints, "joints", skeleton.num_joints, skeleton.name)
    parents = torch.tensor([max(p, 0) for p in skeleton.parents], device=joints.device)
    return (joints - joints[..., parents, :]).norm(dim=-1)


def retarget(skeleton: Skeleton, joints: torch.Tensor, eps: float = 1e-9) -> torch.Tensor:
    """Keep each bone's direction but give it the skeleton's rest length (the root stays in place).

    Args:
        joints: (..., J, 3) positions, possibly of a person with other proportions.

    Returns:
        (..., J, 3) positions whose bone lengths are ``skeleton.bone_lengths()``. A zero-length input
        bone takes its rest direction.
    """
    joints = as_tensor(joints, "joints")
    check_joints(joints, "joints", skeleton.num_joints, skeleton.name)
    lengths = skeleton.bone_lengths()
    rest_dir = skeleton.offsets_tensor(joints.dtype, joints.device)
    out = [joints[..., 0, :]]
    for j, p in enumerate(skeleton.parents):
        if p < 0:
            continue
        d = joints[..., j, :] - joints[..., p, :]
        n = d.norm(dim=-1, keepdim=True)
        fallback = rest_dir[j] / max(float(lengths[j]), eps)
        unit = torch.where(n > eps, d / n.clamp_min(eps), fallback.expand_as(d))
        out.append(out[p] + float(lengths[j]) * unit)
    return torch.stack(out, dim=-2)


def hinge_angles(skeleton: Skeleton, local_quat: torch.Tensor) -> torch.Tensor:
    """(..., J) signed angle of each hinge joint about its axis (the twist part; 0 for other joints)."""
    axes = skeleton.hinge_axes_tensor(local_quat.dtype, local_quat.device)  # (J, 3)
    w = local_quat[..., 0]
    proj = (local_quat[..., 1:] * axes).sum(-1)
    ang = 2.0 * torch.atan2(proj, w)
    ang = torch.remainder(ang + torch.pi, 2 * torch.pi) - torch.pi
    hinge = torch.tensor([k == "hinge" for k in skeleton.kinds], device=local_quat.device)
    return torch.where(hinge, ang, torch.zeros_like(ang))


def project_to_joint_kinds(skeleton: Skeleton, local_quat: torch.Tensor, limits: bool = False) -> torch.Tensor:
    """Make (..., J, 4) rotations respect the joint kinds: hinges keep only the twist about their axis
    (clamped into the skeleton's limits with ``limits=True``), end sites become the identity, ball joints
    are unchanged (canonicalized)."""
    axes = skeleton.hinge_axes_tensor(local_quat.dtype, local_quat.device)
    ang = hinge_angles(skeleton, local_quat)
    if limits:
        lim = torch.as_tensor(np.array(skeleton.limits), dtype=ang.dtype, device=ang.device)
        lo = torch.nan_to_num(lim[:, 0], nan=-torch.pi)
        hi = torch.nan_to_num(lim[:, 1], nan=torch.pi)
        ang = torch.minimum(torch.maximum(ang, lo), hi)
    hinge_q = quat_about_axis(axes, ang)
    kinds = skeleton.kinds
    hinge = torch.tensor([k == "hinge" for k in kinds], device=local_quat.device)[:, None]
    end = torch.tensor([k == "end" for k in kinds], device=local_quat.device)[:, None]
    ident = quat_identity((skeleton.num_joints,), dtype=local_quat.dtype, device=local_quat.device)
    out = torch.where(hinge, hinge_q, local_quat)
    return quat_canonical(torch.where(end, ident, out))


def random_pose(
    skeleton: Skeleton,
    shape: tuple[int, ...] = (),
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
    margin: float = 0.15,
) -> torch.Tensor:
    """(*shape, J, 4) random local rotations the skeleton can take: uniform ball joints, hinge angles
    uniform inside their limits (``margin`` of the range kept clear at each end, so that analytic IK's
    two-bone solutions are told apart by the limits; (-pi, pi) without limits), identity end sites."""
    from kinepose.geometry.rotations import random_quat

    q = project_to_joint_kinds(skeleton, random_quat((*shape, skeleton.num_joints), generator=generator, dtype=dtype))
    axes = skeleton.hinge_axes_tensor(dtype)
    for j, k in enumerate(skeleton.kinds):
        if k == "hinge":
            lo, hi = skeleton.limits[j]
            lo = lo if np.isfinite(lo) else -np.pi
            hi = hi if np.isfinite(hi) else np.pi
            u = torch.rand(shape, generator=generator, dtype=dtype)
            q[..., j, :] = quat_about_axis(axes[j], lo + (hi - lo) * (margin + (1 - 2 * margin) * u))
    return q
