"""Sequence model: a window of frames -> the rotations of one frame of it.

Each frame is embedded from its flattened standardized root-relative positions (``J * 3``) and its
visibility flags (``J``, ones without a mask) by one linear layer, plus a learned positional embedding
of its place in the window. A temporal encoder mixes the frames:

- ``transformer``: pre-norm self-attention blocks; every frame attends to every frame of the window.
  Causality comes from the window itself: a causal model's window ends at the target frame, so it only
  holds the past; an offline model's window is centred on it.
- ``lstm`` / ``gru``: unidirectional when causal, bidirectional when offline.

The feature of the target frame (:attr:`PoseModel.target_index`) goes through an MLP and a flat
rotation head.
"""

from __future__ import annotations

import torch
from torch import nn

from kinepose.models.base import ModelOutput, PoseModel, scatter_rotations
from kinepose.models.heads import RotationHead
from kinepose.models.layers import AttentionEncoder, check_choice, check_positive, dense_block, make_rnn
from kinepose.models.registry import register_model
from kinepose.skeleton.core import Skeleton

__all__ = ["ENCODERS", "SequenceModel"]

ENCODERS = ("transformer", "lstm", "gru")


@register_model("sequence")
class SequenceModel(PoseModel):
    """Temporal model over a window of ``window`` frames.

    Args:
        skeleton: the skeleton whose joints come in and whose rotations go out.
        window: number of input frames.
        causal: predict the last frame of the window (real time) instead of its centre.
        encoder: ``transformer``, ``lstm`` or ``gru``.
        dim: frame feature size.
        layers: attention blocks or recurrent layers.
        heads: attention heads (``transformer`` only).
        dropout: dropout probability.
        head: rotation parametrization of the output, ``quat``, ``6d`` or ``euler``.
    """

    def __init__(
        self,
        skeleton: Skeleton,
        window: int = 16,
        causal: bool = True,
        encoder: str = "transformer",
        dim: int = 128,
        layers: int = 3,
        heads: int = 4,
        dropout: float = 0.1,
        head: str = "6d",
    ) -> None:
        super().__init__(skeleton, window=window, causal=causal)
        check_choice("encoder", encoder, ENCODERS)
        check_positive(dim=dim, layers=layers)
        J = skeleton.num_joints
        self.encoder_kind = encoder
        self.embed = nn.Linear(J * 3 + J, dim)
        self.pos_embedding = nn.Parameter(0.02 * torch.randn(self.window, dim))
        self.drop = nn.Dropout(dropout)
        if encoder == "transformer":
            self.encoder: nn.Module = AttentionEncoder(dim, layers, heads, dropout)
        else:
            self.encoder = make_rnn(encoder, dim, layers, bidirectional=not self.causal, dropout=dropout)
        self.mlp = dense_block(dim, dim, dropout)
        self.head = RotationHead(dim, self.num_rotated, head, per_joint=False)

    def frame_features(self, joints: torch.Tensor, visibility: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, J, 3) joints and optional (B, T, J) mask -> (B, T, J * 4) per-frame network input."""
        x = self.normalize(joints, visibility)  # (B, T, J, 3)
        B, T, J = x.shape[:3]
        vis = joints.new_ones(B, T, J) if visibility is None else visibility.to(x.dtype)  # (B, T, J)
        return torch.cat([x.reshape(B, T, J * 3), vis], dim=-1)  # (B, T, J * 4)

    def forward(self, joints: torch.Tensor, visibility: torch.Tensor | None = None) -> ModelOutput:
        """Args:
            joints: (B, window, J, 3) positions, metres.
            visibility: optional (B, window, J) mask, 1 where the joint was observed.

        Returns:
            :class:`ModelOutput` with (B, J, 4) ``local_quat`` and (B, 3) ``root_pos`` of the target frame
            and, for the transformer, one (B, heads, window, window) attention map per layer.
        """
        self.check_input(joints, visibility)
        h = self.drop(self.embed(self.frame_features(joints, visibility)) + self.pos_embedding)  # (B, T, dim)
        attention = None
        if isinstance(self.encoder, AttentionEncoder):
            h, attention = self.encoder(h)  # (B, T, dim), [(B, heads, T, T)] * layers
        else:
            h, _ = self.encoder(h)  # (B, T, dim)
        rot = self.head(self.mlp(h[:, self.target_index]))  # (B, R, 4)
        return ModelOutput(
            local_quat=scatter_rotations(self.skeleton, rot),
            root_pos=joints[:, self.target_index, 0],
            attention=attention,
        )
