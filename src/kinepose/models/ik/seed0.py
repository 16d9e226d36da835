"""Seed0: the research notes' per-joint token network (single frame).

Every joint becomes a token: its standardized root-relative position (3), its bone vector to the parent
divided by the rest bone length (3, zero for the root) and its visibility flag (1), embedded by
``Linear(7, dim) + ReLU`` plus a learned per-joint embedding. A mixer lets the joints exchange
information:

- ``lstm`` / ``gru``: a bidirectional recurrent net run over the joints in index order (the parents come
  before their children, so each direction sees one side of every bone);
- ``attention``: pre-norm self-attention blocks over all joints;
- ``graph``: the same blocks, each joint only attending to its ``graph_hops``-hop neighbourhood in the
  kinematic tree (self, parent and children for one hop).

Then per-joint dense layers and a rotation head shared by the rotated joints. Optional image features
(e.g. a ResNet's pooled (B, F) vector) are projected to ``dim`` and added to every token.
"""

from __future__ import annotations

import torch
from torch import nn

from kinepose.errors import KineposeError, ShapeError
from kinepose.models.base import ModelOutput, PoseModel, scatter_rotations
from kinepose.models.heads import RotationHead
from kinepose.models.layers import (
    AttentionEncoder,
    bone_vectors,
    check_choice,
    check_positive,
    dense_block,
    make_rnn,
    tree_neighbourhood,
)
from kinepose.models.registry import register_model
from kinepose.skeleton.core import Skeleton

__all__ = ["MIXERS", "Seed0"]

MIXERS = ("lstm", "gru", "attention", "graph")


@register_model("seed0")
class Seed0(PoseModel):
    """Per-joint tokens, a joint mixer, a shared per-joint rotation head (``window == 1``).

    Args:
        skeleton: the skeleton whose joints come in and whose rotations go out.
        dim: token feature size.
        mixer: ``lstm``, ``gru``, ``attention`` or ``graph`` (see the module docstring).
        mixer_layers: recurrent layers or attention blocks.
        heads: attention heads (``attention`` and ``graph`` mixers).
        graph_hops: neighbourhood radius, in tree edges, of the ``graph`` mixer.
        dense_layers: per-joint Linear + ReLU + Dropout layers after the mixer (>= 0).
        dropout: dropout probability.
        head: rotation parametrization of the output, ``quat``, ``6d`` or ``euler``.
        image_features: size ``F`` of optional per-image features given to :meth:`forward`; 0 for none.
    """

    def __init__(
        self,
        skeleton: Skeleton,
        dim: int = 256,
        mixer: str = "lstm",
        mixer_layers: int = 2,
        heads: int = 4,
        graph_hops: int = 1,
        dense_layers: int = 2,
        dropout: float = 0.1,
        head: str = "6d",
        image_features: int = 0,
    ) -> None:
        super().__init__(skeleton, window=1, causal=True)
        check_choice("mixer", mixer, MIXERS)
        check_positive(dim=dim, mixer_layers=mixer_layers)
        check_positive(0, dense_layers=dense_layers, image_features=image_features)
        J = skeleton.num_joints
        self.mixer_kind = mixer
        self.image_features = int(image_features)
        self.embed = nn.Sequential(nn.Linear(7, dim), nn.ReLU())
        self.joint_embedding = nn.Parameter(0.02 * torch.randn(J, dim))
        self.image_proj = nn.Linear(image_features, dim) if image_features else None
        if mixer in ("lstm", "gru"):
            self.mixer: nn.Module = make_rnn(mixer, dim, mixer_layers, bidirectional=True, dropout=dropout)
        else:
            self.mixer = AttentionEncoder(dim, mixer_layers, heads, dropout)
        # True where attention is forbidden; derived from the skeleton, so not saved in the state dict.
        blocked = ~tree_neighbourhood(skeleton, graph_hops) if mixer == "graph" else None
        self.register_buffer("attn_mask", blocked, persistent=False)
        self.dense = nn.Sequential(*(dense_block(dim, dim, dropout) for _ in range(dense_layers)))
        self.head = RotationHead(dim, self.num_rotated, head, per_joint=True)
        self.register_buffer("rotated_index", torch.tensor(skeleton.rotated_joints), persistent=False)

    def tokens(self, joints: torch.Tensor, visibility: torch.Tensor | None = None) -> torch.Tensor:
        """(B, 1, J, 3) joints and optional (B, 1, J) mask -> (B, J, 7) raw per-joint features."""
        x = self.normalize(joints, visibility)[:, 0]  # (B, J, 3)
        vis = joints.new_ones(x.shape[:2]) if visibility is None else visibility[:, 0].to(x.dtype)  # (B, J)
        bones = bone_vectors(self.skeleton, joints[:, 0], vis)  # (B, J, 3), zero for the root
        return torch.cat([x, bones, vis[..., None]], dim=-1)  # (B, J, 7)

    def forward(
        self,
        joints: torch.Tensor,
        visibility: torch.Tensor | None = None,
        image_features: torch.Tensor | None = None,
    ) -> ModelOutput:
        """Args:
            joints: (B, 1, J, 3) positions, metres.
            visibility: optional (B, 1, J) mask, 1 where the joint was observed.
            image_features: (B, F) features, required iff the model was built with ``image_features=F > 0``.

        Returns:
            :class:`ModelOutput` with (B, J, 4) ``local_quat``, (B, 3) ``root_pos`` and, for the
            ``attention``/``graph`` mixers, one (B, heads, J, J) attention map per layer.
        """
        self.check_input(joints, visibility)
        h = self.embed(self.tokens(joints, visibility)) + self.joint_embedding  # (B, J, dim)
        h = h + self._image_term(image_features, joints.shape[0])
        attention = None
        if isinstance(self.mixer, AttentionEncoder):
            h, attention = self.mixer(h, self.attn_mask)  # (B, J, dim), [(B, heads, J, J)] * layers
        else:
            h, _ = self.mixer(h)  # (B, J, dim): both directions concatenated
        h = self.dense(h[:, self.rotated_index])  # (B, R, dim)
        rot = self.head(h)  # (B, R, 4)
        return ModelOutput(
            local_quat=scatter_rotations(self.skeleton, rot),
            root_pos=joints[:, self.target_index, 0],
            attention=attention,
        )

    def _image_term(self, image_features: torch.Tensor | None, batch: int) -> torch.Tensor | float:
        """(B, F) image features -> (B, 1, dim) term added to every token (0 without image features)."""
        if self.image_proj is None:
            if image_features is not None:
                raise KineposeError("image_features given, but this seed0 model was built with image_features=0")
            return 0.0
        F = self.image_features
        if image_features is None:
            raise KineposeError(f"this seed0 model was built with image_features={F}; pass (B, {F}) image_features")
        if tuple(image_features.shape) != (batch, F):
            raise ShapeError(f"image_features: expected shape ({batch}, {F}), got {tuple(image_features.shape)}")
        return self.image_proj(image_features)[:, None]  # (B, 1, dim)
