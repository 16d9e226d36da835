"""A motion clip on a skeleton: local rotations plus root translation over frames."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from kinepose._validation import as_tensor, check_finite, check_joints
from kinepose.errors import KineposeError, ShapeError
from kinepose.geometry.rotations import check_unit_quat
from kinepose.kinematics.fk import forward_kinematics
from kinepose.skeleton.core import Skeleton

__all__ = ["Motion", "check_motion_arrays", "replay_on_skeleton"]


def check_motion_arrays(
    skeleton: Skeleton, local_quat, root_pos, min_frames: int = 0, all_unit: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate a clip's rotations and root positions before writing them anywhere.

    Args:
        skeleton: the skeleton the rotations drive.
        local_quat: (T, J, 4) w,x,y,z rotations (tensor or array).
        root_pos: (T, 3) root positions.
        min_frames: the least T accepted.
        all_unit: require unit quaternions for every joint (else only for rotated joints).

    Returns:
        float64 CPU tensors ``(local_quat, root_pos)``.
    """
    J = skeleton.num_joints
    q = as_tensor(local_quat, "local_quat", torch.float64).detach().cpu()
    check_joints(q, "local_quat", J, skeleton.name, channels=4)
    if q.dim() != 3 or q.shape[0] < min_frames:
        more = f" with T >= {min_frames}" if min_frames else ""
        raise ShapeError(f"local_quat: expected shape (T, {J}, 4){more}, got {tuple(q.shape)}")
    T = q.shape[0]
    rp = as_tensor(root_pos, "root_pos", torch.float64).detach().cpu()
    if tuple(rp.shape) != (T, 3):
        raise ShapeError(f"root_pos: expected shape ({T}, 3) to match local_quat's {T} frames, got {tuple(rp.shape)}")
    check_finite(q, "local_quat")
    check_finite(rp, "root_pos")
    check_unit_quat(q if all_unit else q[:, list(skeleton.rotated_joints)], "local_quat")
    return q, rp


@dataclass
class Motion:
    """A clip of ``T`` frames.

    Attributes:
        skeleton: the skeleton the rotations drive.
        local_quat: (T, J, 4) w,x,y,z local rotations (identity for end sites).
        root_pos: (T, 3) root positions, metres.
        fps: frames per second.
        name: clip name (file stem).
        meta: free-form extras (source file, loop mode...).
    """

    skeleton: Skeleton
    local_quat: torch.Tensor
    root_pos: torch.Tensor
    fps: float
    name: str = ""
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_joints(self.local_quat, f"{self.name or 'motion'}.local_quat", self.skeleton.num_joints,
                     self.skeleton.name, channels=4)  # fmt: skip
        if self.local_quat.dim() != 3:
            raise ValueError(f"{self.name}: local_quat must be (T, J, 4), got {tuple(self.local_quat.shape)}")
        if self.root_pos.shape != (self.local_quat.shape[0], 3):
            raise ValueError(
                f"{self.name}: root_pos must be (T, 3) = ({self.local_quat.shape[0]}, 3), "
                f"got {tuple(self.root_pos.shape)}"
            )
        check_finite(self.local_quat, f"{self.name}.local_quat")
        check_finite(self.root_pos, f"{self.name}.root_pos")
        check_unit_quat(self.local_quat, f"{self.name}.local_quat")
        if not self.fps > 0:
            raise ValueError(f"{self.name}: fps must be positive, got {self.fps}")

    @property
    def num_frames(self) -> int:
        return int(self.local_quat.shape[0])

    @property
    def frame_time(self) -> float:
        return 1.0 / self.fps

    def positions(self) -> torch.Tensor:
        """(T, J, 3) joint positions by forward kinematics, metres."""
        return forward_kinematics(self.skeleton, self.local_quat, self.root_pos, check=False).positions

    def slice(self, start: int, stop: int | None = None) -> Motion:
        return Motion(self.skeleton, self.local_quat[start:stop], self.root_pos[start:stop], self.fps,
                      self.name, dict(self.meta))  # fmt: skip

    def __repr__(self) -> str:
        return f"Motion('{self.name}', {self.num_frames} frames at {self.fps:g} fps on {self.skeleton!r})"


def replay_on_skeleton(motion: Motion, skeleton: Skeleton, option: str = "skeleton", scale_root: bool = True) -> Motion:
    """``motion`` replayed on ``skeleton``: each joint takes the rotation of the clip's joint of the same name (bone
    lengths and rest directions are the skeleton's), hinges projected onto their axes. With ``scale_root`` the
    root path is scaled by the ratio of the two skeletons' rest heights below the root (y up: a skeleton with
    legs 1.2 times as long walks 1.2 times as high and as far, so its feet stay on the ground); else unchanged.

    Raises:
        KineposeError: naming ``option``, when a joint of ``skeleton`` is not in the clip or the roots differ.
    """
    from kinepose.kinematics.fk import project_to_joint_kinds

    names = motion.skeleton.joint_names
    missing = [n for n in skeleton.joint_names if n not in names]
    if missing:
        raise KineposeError(f"{option}: joints {missing} of skeleton '{skeleton.name}' are not in the clip's "
                            f"skeleton '{motion.skeleton.name}' ({list(names)}); rotations are matched by joint "
                            f"name")  # fmt: skip
    if skeleton.joint_names[0] != names[0]:
        raise KineposeError(f"{option}: the root of skeleton '{skeleton.name}' is {skeleton.joint_names[0]!r}, the "
                            f"clip's is {names[0]!r}; the root path needs the same root")  # fmt: skip
    if skeleton is motion.skeleton:
        return motion
    idx = [names.index(n) for n in skeleton.joint_names]
    q = project_to_joint_kinds(skeleton, motion.local_quat[:, idx])
    root = motion.root_pos
    if scale_root:
        from kinepose.kinematics.fk import rest_pose

        def depth(sk: Skeleton) -> float:
            p = rest_pose(sk, dtype=torch.float64)
            return float(p[0, 1] - p[:, 1].min())

        old, new = depth(motion.skeleton), depth(skeleton)
        if old > 1e-6 and new > 1e-6:
            root = root * (new / old)
    return Motion(skeleton, q, root, motion.fps, motion.name, {**motion.meta, "skeleton": skeleton.name})
