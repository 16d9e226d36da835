"""Pose transforms for data augmentation: left/right mirroring.

Mirroring reflects the world across the plane orthogonal to the skeleton's ``lateral_axis`` and
swaps every left joint with its right partner. A reflection ``M`` turns a rotation ``R`` into
``M R M``; for a w,x,y,z quaternion that keeps ``w`` and the lateral component and negates the other
two vector components.

For a left/right symmetric skeleton (``is_mirror_symmetric``), mirrored rotations drive the same
skeleton to the mirrored positions: ``FK(mirror_rotations(q), mirror_root(r)) == mirror_positions(FK(q, r))``.
"""

from __future__ import annotations

import numpy as np
import torch

from kinepose._validation import as_tensor, check_joints
from kinepose.errors import KineposeError
from kinepose.skeleton.core import Skeleton

__all__ = [
    "add_joint_noise",
    "is_mirror_symmetric",
    "mirror_positions",
    "mirror_root",
    "mirror_rotations",
    "mirrored_skeleton",
]


def add_joint_noise(joints: torch.Tensor, noise_mm: float, generator: torch.Generator) -> torch.Tensor:
    """``joints`` (..., 3) metres plus i.i.d. Gaussian noise of ``noise_mm`` millimetres per coordinate, drawn
    from ``generator`` in ``joints``' dtype (the same seed gives the same noise everywhere in kinepose)."""
    if not noise_mm >= 0:
        raise ValueError(f"noise_mm: must be >= 0, got {noise_mm}")
    return joints + (noise_mm / 1000.0) * torch.randn(joints.shape, generator=generator, dtype=joints.dtype)


def _reflection(axis: int) -> np.ndarray:
    m = np.ones(3)
    m[axis] = -1.0
    return m


def mirror_positions(skeleton: Skeleton, joints: torch.Tensor) -> torch.Tensor:
    """(..., J, 3) positions -> mirrored positions (lateral coordinate negated, left/right swapped)."""
    joints = as_tensor(joints, "joints")
    check_joints(joints, "joints", skeleton.num_joints, skeleton.name)
    m = torch.tensor(_reflection(skeleton.lateral_axis), dtype=joints.dtype, device=joints.device)
    return (joints * m)[..., list(skeleton.mirror_index), :]


def mirror_root(skeleton: Skeleton, root_pos: torch.Tensor) -> torch.Tensor:
    """(..., 3) root positions -> mirrored root positions."""
    m = torch.tensor(_reflection(skeleton.lateral_axis), dtype=root_pos.dtype, device=root_pos.device)
    return root_pos * m


def mirror_rotations(skeleton: Skeleton, local_quat: torch.Tensor) -> torch.Tensor:
    """(..., J, 4) w,x,y,z local rotations -> rotations of the mirrored motion (``M R M``, left/right swapped)."""
    local_quat = as_tensor(local_quat, "local_quat")
    check_joints(local_quat, "local_quat", skeleton.num_joints, skeleton.name, channels=4)
    sign = np.concatenate([[1.0], -_reflection(skeleton.lateral_axis)])  # w kept, -M on the vector part
    s = torch.tensor(sign, dtype=local_quat.dtype, device=local_quat.device)
    q = (local_quat * s)[..., list(skeleton.mirror_index), :]
    return torch.where(q[..., :1] < 0, -q, q)


def mirrored_skeleton(skeleton: Skeleton) -> Skeleton:
    """The mirror image of ``skeleton`` (offsets reflected, left/right partners' data swapped, hinge axes
    mapped so that a positive angle still bends the same way)."""
    m = _reflection(skeleton.lateral_axis)
    perm = list(skeleton.mirror_index)
    offsets = (skeleton.offsets * m)[perm]
    axes = (-skeleton.hinge_axes * m)[perm]  # axial vectors: M a det(M) = -M a
    if perm != list(range(skeleton.num_joints)) and any(
        skeleton.parents[perm[j]] >= 0 and perm[skeleton.parents[perm[j]]] != skeleton.parents[j]
        for j in range(skeleton.num_joints)
    ):
        raise KineposeError(f"skeleton '{skeleton.name}': left/right pairs do not map the tree onto itself")
    return Skeleton(f"{skeleton.name}-mirrored", skeleton.joint_names, skeleton.parents, offsets,
                    skeleton.kinds, axes, skeleton.limits[perm], skeleton.left_right,
                    skeleton.lateral_axis)  # fmt: skip


def is_mirror_symmetric(skeleton: Skeleton, atol: float = 1e-6) -> bool:
    """True if the skeleton equals its mirror image (so mirrored rotations drive the same skeleton)."""
    try:
        mir = mirrored_skeleton(skeleton)
    except KineposeError:
        return False
    return bool(
        np.allclose(mir.offsets, skeleton.offsets, atol=atol)
        and np.allclose(mir.hinge_axes, skeleton.hinge_axes, atol=atol)
    )
