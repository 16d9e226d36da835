"""Martinez et al.'s baseline lifter ("A simple yet effective baseline for 3d human pose estimation", ICCV 2017).

One frame's 2D keypoints, flattened, go through a Linear to ``linear_size`` = 1024 (+ BatchNorm, ReLU, Dropout, as
in the paper's Figure 1 and its reference code), then ``num_blocks`` = 2 residual blocks of two
(Linear, BatchNorm, ReLU, Dropout 0.5) each, then a Linear to the J * 3 outputs. The paper's max-norm weight
constraint is a training choice and is left to the optimizer.
"""

from __future__ import annotations

import torch
from torch import nn

from kinepose.errors import KineposeError
from kinepose.models.layers import check_positive
from kinepose.models.lifting.base import Lifter, LiftOutput
from kinepose.models.lifting.registry import register_lifter
from kinepose.skeleton.core import Skeleton

__all__ = ["MartinezBlock", "MartinezLifter"]


def _linear_bn_relu(in_features: int, out_features: int, dropout: float) -> list[nn.Module]:
    return [nn.Linear(in_features, out_features), nn.BatchNorm1d(out_features), nn.ReLU(), nn.Dropout(dropout)]


class MartinezBlock(nn.Module):
    """``x + (Linear, BatchNorm, ReLU, Dropout) x 2 (x)`` on (B, size) features."""

    def __init__(self, size: int, dropout: float) -> None:
        super().__init__()
        self.layers = nn.Sequential(*_linear_bn_relu(size, size, dropout), *_linear_bn_relu(size, size, dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.layers(x)


@register_lifter("mlp")
class MartinezLifter(Lifter):
    """Martinez et al. 2017's residual MLP, single frame.

    Input per joint: the standardized (x, y) and, with ``use_visibility``, the visibility (J * 3 inputs). Martinez
    feeds only (x, y); the visibility tells a missing joint (coordinates zeroed) from one at the mean position,
    the same for every rival.

    Args:
        skeleton: the skeleton (J joints in and out).
        window: must be 1 (single frame).
        linear_size: width of the hidden layers (1024).
        num_blocks: residual blocks (2).
        dropout: dropout after every hidden layer (0.5).
        use_visibility: add the visibility as a third input per joint.
    """

    def __init__(
        self,
        skeleton: Skeleton,
        window: int = 1,
        linear_size: int = 1024,
        num_blocks: int = 2,
        dropout: float = 0.5,
        use_visibility: bool = True,
    ) -> None:
        if int(window) != 1:
            raise KineposeError(f"window: mlp is single-frame, window must be 1, got {window}")
        super().__init__(skeleton, window=1, causal=False)
        check_positive(linear_size=linear_size)
        check_positive(minimum=0, num_blocks=num_blocks)
        if not 0.0 <= dropout < 1.0:
            raise KineposeError(f"dropout must be in [0, 1), got {dropout}")
        self.use_visibility = bool(use_visibility)
        J = skeleton.num_joints
        self.inp = nn.Sequential(*_linear_bn_relu(J * (3 if self.use_visibility else 2), linear_size, dropout))
        self.blocks = nn.Sequential(*(MartinezBlock(linear_size, dropout) for _ in range(num_blocks)))
        self.out = nn.Linear(linear_size, J * 3)

    def forward(self, keypoints: torch.Tensor, visibility: torch.Tensor | None = None) -> LiftOutput:
        """Args:
            keypoints: (B, 1, J, 2) screen-normalized 2D keypoints.
            visibility: optional (B, 1, J) in [0, 1]; None means all visible.

        Returns:
            :class:`LiftOutput` with ``joints`` (B, J, 3).
        """
        self.check_input(keypoints, visibility)
        B, J = keypoints.shape[0], self.num_joints
        x = self.normalize_input(keypoints, visibility)[:, 0]  # (B, J, 2)
        if self.use_visibility:
            vis = self.effective_visibility(keypoints, visibility)[:, 0].to(x.dtype)  # (B, J)
            x = torch.cat([x, vis[..., None]], dim=-1)  # (B, J, 3)
        raw = self.out(self.blocks(self.inp(x.reshape(B, -1))))  # (B, J*C) -> (B, J*3)
        return LiftOutput(joints=self.denormalize_output(raw.reshape(B, J, 3)))  # (B, J*3) -> (B, J, 3)
