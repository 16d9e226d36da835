"""IKNet: a single-frame MLP from joint positions to joint rotations.

After IKNet (Zhou et al., "Monocular Real-time Hand Shape and Motion Capture using Multi-modal Data",
CVPR 2020): the input is the flattened pose together with its bone directions, the output one rotation
per rotated joint through a single flat head.

Input features per frame (always the same size, so one network serves masked and unmasked data):

- ``J * 3`` standardized root-relative positions (:meth:`PoseModel.normalize`),
- ``(J - 1) * 3`` bone vectors ``x_child - x_parent`` divided by the rest bone length (about unit),
- ``J`` visibility flags (ones when no mask is given), so a masked joint differs from one at the root.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from kinepose.models.base import ModelOutput, PoseModel, scatter_rotations
from kinepose.models.heads import RotationHead
from kinepose.models.layers import bone_vectors, check_positive, dense_block
from kinepose.models.registry import register_model
from kinepose.skeleton.core import Skeleton

__all__ = ["IKNet"]


@register_model("iknet")
class IKNet(PoseModel):
    """Single-frame MLP (``window == 1``).

    Args:
        skeleton: the skeleton whose joints come in and whose rotations go out.
        hidden: width of every hidden layer.
        layers: number of Linear + LayerNorm + ReLU + Dropout blocks (>= 1).
        dropout: dropout probability after each block.
        head: rotation parametrization of the output, ``quat``, ``6d`` or ``euler``.
    """

    def __init__(
        self, skeleton: Skeleton, hidden: int = 512, layers: int = 3, dropout: float = 0.1, head: str = "6d"
    ) -> None:
        super().__init__(skeleton, window=1, causal=True)
        check_positive(hidden=hidden, layers=layers)
        J = skeleton.num_joints
        self.in_features = J * 3 + (J - 1) * 3 + J
        sizes = [self.in_features] + [hidden] * layers
        self.mlp = nn.Sequential(*(dense_block(a, b, dropout, norm=True) for a, b in itertools.pairwise(sizes)))
        self.head = RotationHead(hidden, self.num_rotated, head, per_joint=False)

    def features(self, joints: torch.Tensor, visibility: torch.Tensor | None = None) -> torch.Tensor:
        """(B, 1, J, 3) joints and optional (B, 1, J) mask -> (B, in_features) network input."""
        x = self.normalize(joints, visibility)[:, 0]  # (B, J, 3)
        B, J = x.shape[:2]
        vis = joints.new_ones(B, J) if visibility is None else visibility[:, 0].to(x.dtype)  # (B, J)
        bones = bone_vectors(self.skeleton, joints[:, 0], vis)[:, 1:]  # (B, J-1, 3), the root has no bone
        return torch.cat([x.reshape(B, J * 3), bones.reshape(B, (J - 1) * 3), vis], dim=-1)  # (B, in_features)

    def forward(self, joints: torch.Tensor, visibility: torch.Tensor | None = None) -> ModelOutput:
        """Args:
            joints: (B, 1, J, 3) positions, metres.
            visibility: optional (B, 1, J) mask, 1 where the joint was observed.

        Returns:
            :class:`ModelOutput` with (B, J, 4) w,x,y,z ``local_quat`` and (B, 3) ``root_pos``.
        """
        self.check_input(joints, visibility)
        h = self.mlp(self.features(joints, visibility))  # (B, hidden)
        rot = self.head(h)  # (B, R, 4)
        return ModelOutput(local_quat=scatter_rotations(self.skeleton, rot), root_pos=joints[:, self.target_index, 0])
