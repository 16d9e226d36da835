"""Base class and output type shared by every model family.

Every model maps a window of joint positions ``(B, T, J, 3)`` (metres, world frame, ``T`` equal to the
model's :attr:`PoseModel.window`; single-frame models have ``window == 1``) and an optional visibility
mask ``(B, T, J)`` to the rotations of **one** frame of that window (:attr:`PoseModel.target_index`:
the last frame for causal models, the centre for offline ones).

Normalization statistics live in buffers (``mean``, ``std`` of root-relative joint positions), so they
are saved and loaded with the weights: call :meth:`PoseModel.set_normalization` once with training data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from kinepose._validation import check_joints
from kinepose.errors import KineposeError, ShapeError
from kinepose.geometry.rotations import quat_identity
from kinepose.kinematics.fk import project_to_joint_kinds
from kinepose.skeleton.core import Skeleton

__all__ = ["ModelOutput", "PoseModel", "scatter_rotations"]


@dataclass
class ModelOutput:
    """What a model predicts for the target frame of each window.

    Attributes:
        local_quat: (B, J, 4) w,x,y,z local rotations of every joint; end sites are the identity and
            hinges pure rotations about their axis.
        root_pos: (B, 3) root position, metres.
        joints: (B, J, 3) denoised joint positions, metres, for models that estimate them (else None).
        attention: attention maps for plots, one (B, heads, queries, keys) tensor per layer, or None.
        aux: anything else a family wants to expose (e.g. predicted limb lengths).
    """

    local_quat: torch.Tensor
    root_pos: torch.Tensor
    joints: torch.Tensor | None = None
    attention: list[torch.Tensor] | None = None
    aux: dict = field(default_factory=dict)


def scatter_rotations(skeleton: Skeleton, rot_quat: torch.Tensor) -> torch.Tensor:
    """(B, R, 4) quaternions of the skeleton's rotated joints -> (B, J, 4) for every joint (end sites
    identity), hinges projected onto their axis."""
    R = len(skeleton.rotated_joints)
    if rot_quat.shape[-2:] != (R, 4):
        raise ShapeError(f"rot_quat: expected (..., {R}, 4) for the {R} rotated joints, got {tuple(rot_quat.shape)}")
    out = quat_identity((*rot_quat.shape[:-2], skeleton.num_joints), dtype=rot_quat.dtype, device=rot_quat.device)
    out = out.index_copy(-2, torch.tensor(skeleton.rotated_joints, device=rot_quat.device), rot_quat)
    return project_to_joint_kinds(skeleton, out)


class PoseModel(nn.Module):
    """Base of all model families.

    Args:
        skeleton: the skeleton whose joints come in and whose rotations go out.
        window: number of input frames (1 for single-frame models).
        causal: for ``window > 1``: predict the last frame (real time) instead of the centre one.
    """

    family: str = "base"

    def __init__(self, skeleton: Skeleton, window: int = 1, causal: bool = True) -> None:
        super().__init__()
        if window < 1:
            raise KineposeError(f"window must be >= 1, got {window}")
        self.skeleton = skeleton
        self.subject: Skeleton | None = None  # the input's own proportions (see geometry_skeleton); not saved
        self.window = int(window)
        self.causal = bool(causal)
        J = skeleton.num_joints
        self.register_buffer("mean", torch.zeros(J, 3))
        self.register_buffer("std", torch.ones(J, 3))

    @property
    def geometry_skeleton(self) -> Skeleton:
        """The skeleton whose bone lengths the model's geometry (fit, noise estimate, FK) uses: the subject's
        calibrated copy of :attr:`skeleton` when one is set (:func:`kinepose.inference.predict_clip` sets it
        from the clip), else the template itself."""
        return self.subject if self.subject is not None else self.skeleton

    def set_subject(self, subject: Skeleton | None) -> None:
        """Use ``subject`` (the template with other rest offsets) in the geometry; ``None`` goes back to the
        template. Raises if its joints, parents or kinds differ from the template's."""
        if subject is not None:
            sk = self.skeleton
            if (subject.joint_names, subject.parents, subject.kinds) != (sk.joint_names, sk.parents, sk.kinds):
                raise KineposeError(
                    f"subject skeleton '{subject.name}' does not have the joints, parents and kinds of the model's "
                    f"skeleton '{sk.name}'"
                )
        self.subject = subject

    @property
    def num_joints(self) -> int:
        return self.skeleton.num_joints

    @property
    def num_rotated(self) -> int:
        return len(self.skeleton.rotated_joints)

    @property
    def target_index(self) -> int:
        """Index in the window of the frame whose rotations are predicted."""
        return self.window - 1 if self.causal or self.window == 1 else self.window // 2

    @property
    def receptive_field(self) -> int:
        """Frames the model sees; the data pipeline pads clips by this much (VideoPose3D convention)."""
        return self.window

    @torch.no_grad()
    def set_normalization(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Store (J, 3) mean and std of root-relative joint positions (std floored at 1 mm)."""
        self.mean.copy_(torch.as_tensor(mean, dtype=self.mean.dtype))
        self.std.copy_(torch.as_tensor(std, dtype=self.std.dtype).clamp_min(1e-3))

    def check_input(self, joints: torch.Tensor, visibility: torch.Tensor | None = None) -> None:
        check_joints(joints, "joints", self.num_joints, self.skeleton.name)
        if joints.dim() != 4 or joints.shape[1] != self.window:
            raise ShapeError(
                f"joints: {self.family} expects windows of shape (B, {self.window}, {self.num_joints}, 3), "
                f"got {tuple(joints.shape)}"
            )
        if visibility is not None and visibility.shape != joints.shape[:-1]:
            raise ShapeError(f"visibility: expected shape {tuple(joints.shape[:-1])}, got {tuple(visibility.shape)}")

    def normalize(self, joints: torch.Tensor, visibility: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, J, 3) world positions -> root-relative (of each frame's root), standardized; invisible
        joints set to 0."""
        rel = joints - joints[..., :1, :]  # (B, T, J, 3)
        x = (rel - self.mean) / self.std
        if visibility is not None:
            x = x * visibility[..., None].to(x.dtype)
        return x

    def forward(self, joints: torch.Tensor, visibility: torch.Tensor | None = None) -> ModelOutput:
        raise NotImplementedError

    def config(self) -> dict:
        """The constructor arguments (besides the skeleton) that rebuild this model."""
        return dict(self._config)  # set by the registry
