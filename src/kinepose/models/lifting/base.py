"""Base class and output of the 2D-to-3D lifters (``kinepose.models.lifting``).

A lifter maps a window of 2D keypoints ``(B, T, J, 2)`` on a skeleton's joints, in VideoPose3D's screen
normalization (:func:`kinepose.geometry.normalization.normalize_screen_coordinates`: ``x / w * 2 - [1, h / w]``), with a
visibility ``(B, T, J)`` in [0, 1] (0 = missing joint; its coordinates are ignored), to the **root-relative 3D joints
in the camera frame** of one frame of that window (:attr:`Lifter.target_index`): metres, OpenCV axes (x right,
y down, z forward), the root joint at the origin.

Before a network sees them, every frame's keypoints are centred on their visible joints' centroid and divided by
their spread (:func:`kinepose.geometry.normalization.centre_keypoints`), then standardized: with random cameras the
subject's size in the image varies about 4x (distance and focal length), which VideoPose3D's four fixed Human3.6M
cameras never asked of its models. Every rival gets this same input; ours (``skeleton_lifter``) centres its own
way (one scale per window, plus the centroid track and the log scale as features: its module docstring).

Normalization statistics live in buffers (``in_mean``/``in_std`` of the centred 2D input, ``out_mean``/``out_std``
of the root-relative 3D output), so they are saved and loaded with the weights: call
:meth:`Lifter.set_normalization` once with training data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from kinepose.errors import KineposeError, ShapeError
from kinepose.geometry.normalization import centre_keypoints
from kinepose.skeleton.core import Skeleton

__all__ = ["LiftOutput", "Lifter"]


@dataclass
class LiftOutput:
    """What a lifter predicts for the target frame of each window.

    Attributes:
        joints: (B, J, 3) root-relative joints in the camera frame, metres (root at the origin).
        attention: attention maps for plots, one (B, heads, queries, keys) tensor per layer, or None.
        attention_over: what the attention's tokens are: ``"joints"`` or ``"frames"`` (None without attention).
        local_quat: (B, J, 4) w,x,y,z rotations relative to the parent (the root's relative to the camera), for
            lifters whose output is a skeleton; else None.
        bone_lengths: (B, J) length of the bone from each joint's parent to it (root 0), metres, for skeleton
            lifters; else None.
        aux: anything else a family wants to expose.
    """

    joints: torch.Tensor
    attention: list[torch.Tensor] | None = None
    attention_over: str | None = None
    local_quat: torch.Tensor | None = None
    bone_lengths: torch.Tensor | None = None
    aux: dict = field(default_factory=dict)


class Lifter(nn.Module):
    """Base of all lifter families.

    Args:
        skeleton: the skeleton whose joints come in (2D) and go out (3D).
        window: number of input frames (1 for single-frame lifters).
        causal: for ``window > 1``: predict the last frame (real time) instead of the centre one.
    """

    family: str = "base"

    def __init__(self, skeleton: Skeleton, window: int = 1, causal: bool = False) -> None:
        super().__init__()
        if int(window) < 1:
            raise KineposeError(f"window must be >= 1, got {window}")
        self.skeleton = skeleton
        self.window = int(window)
        self.causal = bool(causal)
        #: the 2D fit of whole clips after lifting (a :class:`~kinepose.models.lifting.refine.RefineConfig`, or None:
        #: off); any family takes it as the ``refine`` config key (:func:`~kinepose.models.lifting.create_lifter`)
        self.refine = None
        J = skeleton.num_joints
        self.register_buffer("in_mean", torch.zeros(J, 2))
        self.register_buffer("in_std", torch.ones(J, 2))
        self.register_buffer("out_mean", torch.zeros(J, 3))
        self.register_buffer("out_std", torch.ones(J, 3))

    @property
    def num_joints(self) -> int:
        return self.skeleton.num_joints

    @property
    def target_index(self) -> int:
        """Index in the window of the frame whose joints are predicted."""
        return self.window - 1 if self.causal or self.window == 1 else self.window // 2

    @property
    def receptive_field(self) -> int:
        """Frames the lifter sees; the data pipeline pads clips by this much (VideoPose3D convention)."""
        return self.window

    @torch.no_grad()
    def set_normalization(
        self, in_mean: torch.Tensor, in_std: torch.Tensor, out_mean: torch.Tensor, out_std: torch.Tensor
    ) -> None:
        """Store the (J, 2) statistics of the screen-normalized input and the (J, 3) ones of the root-relative
        output (std floored at 1e-3: the root's output std is 0)."""
        for name, value in (("in_mean", in_mean), ("in_std", in_std), ("out_mean", out_mean), ("out_std", out_std)):
            buf = getattr(self, name)
            value = torch.as_tensor(value, dtype=buf.dtype)
            if value.shape != buf.shape:
                raise ShapeError(f"{name}: expected shape {tuple(buf.shape)}, got {tuple(value.shape)}")
            buf.copy_(value.clamp_min(1e-3) if name.endswith("std") else value)

    def check_input(self, keypoints: torch.Tensor, visibility: torch.Tensor | None = None) -> None:
        J = self.num_joints
        if keypoints.dim() != 4 or keypoints.shape[1] != self.window or keypoints.shape[2:] != (J, 2):
            raise ShapeError(
                f"keypoints: {self.family} expects windows of shape (B, {self.window}, {J}, 2) on skeleton "
                f"'{self.skeleton.name}', got {tuple(keypoints.shape)}"
            )
        if visibility is not None and visibility.shape != keypoints.shape[:-1]:
            raise ShapeError(f"visibility: expected shape {tuple(keypoints.shape[:-1])}, got {tuple(visibility.shape)}")

    def normalize_input(self, keypoints: torch.Tensor, visibility: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, J, 2) screen-normalized keypoints -> centred per frame, standardized; missing joints (visibility 0
        or NaN) set to 0."""
        x, v = centre_keypoints(keypoints, visibility)
        return (x - self.in_mean) / self.in_std * v[..., None]

    @staticmethod
    def effective_visibility(keypoints: torch.Tensor, visibility: torch.Tensor | None) -> torch.Tensor:
        """(B, T, J) visibility in [0, 1] with NaN-coordinate joints at 0 (so ``visibility=None`` with NaN joints
        still marks them missing)."""
        finite = torch.isfinite(keypoints).all(-1).to(keypoints.dtype)
        if visibility is None:
            return finite
        return torch.nan_to_num(visibility.to(keypoints.dtype), nan=0.0) * finite

    def denormalize_output(self, raw: torch.Tensor) -> torch.Tensor:
        """(B, J, 3) standardized -> root-relative metres, the root at the origin."""
        joints = raw * self.out_std + self.out_mean
        return joints - joints[..., :1, :]

    def forward(self, keypoints: torch.Tensor, visibility: torch.Tensor | None = None) -> LiftOutput:
        raise NotImplementedError

    def forward_sequence(self, keypoints: torch.Tensor, visibility: torch.Tensor | None = None) -> torch.Tensor:
        """Every frame of whole clips: (B, T, J, 2) -> (B, T, J, 3). Edges replicate the first and last frame.

        The family's clip output (:meth:`_lift_sequence`), then, when ``refine`` is set, each clip fitted to its 2D
        keypoints (:func:`kinepose.models.lifting.refine.refine_joints`: every bone free, one length per clip).
        ``skeleton_lifter`` overrides this with its own fit, which keeps its rigid groups."""
        out = self._lift_sequence(keypoints, visibility)
        if not self._fits_clips():
            return out
        from kinepose.models.lifting.refine import refine_joints

        return refine_joints(self.skeleton.parents, keypoints, visibility, out, self.refine, self.skeleton.left_right)

    def _fits_clips(self) -> bool:
        """Whether :meth:`forward_sequence` ends with the 2D fit (``refine`` set, with steps); refused on a causal
        lifter, whose output must not depend on future frames."""
        if self.refine is None or self.refine.steps == 0:
            return False
        if self.causal:
            raise KineposeError(f"{self.family}: refine fits whole clips (future frames too); a causal lifter cannot "
                                "use it (set lifter.refine = None)")  # fmt: skip
        return True

    def _lift_sequence(self, keypoints: torch.Tensor, visibility: torch.Tensor | None = None) -> torch.Tensor:
        """The family's whole-clip output, before any fit. The default slides :meth:`forward` over all windows at
        once; convolutional families override it with one pass over the padded clip."""
        from kinepose.data.datasets import window_index

        B, T = keypoints.shape[:2]
        idx = window_index(T, self.window, self.target_index).to(keypoints.device)  # (T, W)
        kp = keypoints[:, idx].reshape(B * T, self.window, *keypoints.shape[2:])  # (B*T, W, J, 2)
        vis = None if visibility is None else visibility[:, idx].reshape(B * T, self.window, visibility.shape[-1])
        return self(kp, vis).joints.reshape(B, T, self.num_joints, 3)

    def config(self) -> dict:
        """The constructor arguments (besides the skeleton) that rebuild this lifter, with the 2D fit's settings as
        they are now (``lifter.refine`` may be set after construction)."""
        from dataclasses import asdict

        cfg = dict(self._config)  # set by the registry
        if self.refine is not None:
            cfg["refine"] = asdict(self.refine)
        elif "refine" in cfg:
            cfg["refine"] = False
        return cfg
