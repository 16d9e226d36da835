"""A motion clip on a skeleton: local rotations plus root translation over frames."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from kinepose._validation import check_finite, check_joints
from kinepose.kinematics import forward_kinematics
from kinepose.rotations import check_unit_quat
from kinepose.skeleton import Skeleton

__all__ = ["Motion"]


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
