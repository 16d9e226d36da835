"""Building blocks shared by the model families.

- :class:`AttentionBlock` / :class:`AttentionEncoder`: pre-norm self-attention (multi-head attention +
  MLP, both residual) that return their attention weights, optionally restricted by a boolean mask.
  Seed0 runs them over joint tokens, the sequence model over frame tokens.
- :func:`make_rnn`: an LSTM or GRU whose output feature size equals its input size.
- :func:`dense_block`: Linear (+ LayerNorm) + ReLU + Dropout.
- :func:`bone_vectors`: child-minus-parent vectors divided by the rest bone length (about unit length).
- :func:`tree_neighbourhood`: the k-hop neighbourhood of every joint in the kinematic tree.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from kinepose.errors import KineposeError
from kinepose.skeleton.core import Skeleton

__all__ = [
    "AttentionBlock",
    "AttentionEncoder",
    "bone_vectors",
    "check_choice",
    "check_positive",
    "dense_block",
    "make_rnn",
    "tree_neighbourhood",
]


def check_choice(name: str, value: str, choices: Sequence[str]) -> None:
    """Raise ``KineposeError`` naming ``name`` and the accepted values unless ``value`` is one of them."""
    if value not in choices:
        raise KineposeError(f"{name}: unknown value {value!r}; choose one of {', '.join(choices)}")


def check_positive(minimum: int = 1, **values: int) -> None:
    """Raise ``KineposeError`` for the first keyword argument below ``minimum``."""
    for name, value in values.items():
        if int(value) < minimum:
            raise KineposeError(f"{name} must be >= {minimum}, got {value}")


def dense_block(in_features: int, out_features: int, dropout: float, norm: bool = False) -> nn.Sequential:
    """Linear (+ LayerNorm, batch-size-1 safe, unlike BatchNorm) + ReLU + Dropout, on (..., in_features)."""
    layers: list[nn.Module] = [nn.Linear(in_features, out_features)]
    if norm:
        layers.append(nn.LayerNorm(out_features))
    layers += [nn.ReLU(), nn.Dropout(dropout)]
    return nn.Sequential(*layers)


class AttentionBlock(nn.Module):
    """Pre-norm transformer encoder layer that also returns its attention weights.

    ``x = x + Dropout(MHA(LN(x)))`` then ``x = x + MLP(LN(x))``. The attention weights themselves are not
    dropped out, so the returned maps are exact softmax rows (they sum to 1) in train and eval mode.

    Args:
        dim: token feature size (divisible by ``heads``).
        heads: number of attention heads.
        dropout: dropout on the attention output and in the MLP.
        mlp_ratio: hidden size of the MLP relative to ``dim``.
    """

    def __init__(self, dim: int, heads: int = 4, dropout: float = 0.1, mlp_ratio: int = 4) -> None:
        super().__init__()
        check_positive(dim=dim, heads=heads)
        if dim % heads:
            raise KineposeError(f"dim ({dim}) must be divisible by heads ({heads})")
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, dropout=0.0, batch_first=True)
        self.drop = nn.Dropout(dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, mlp_ratio * dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(mlp_ratio * dim, dim)
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Args:
            x: (B, N, dim) tokens.
            mask: optional (N, N) boolean, True where query ``i`` may NOT attend to key ``j``.

        Returns:
            (B, N, dim) tokens and (B, heads, N, N) attention weights.
        """
        h = self.norm1(x)
        a, weights = self.attn(h, h, h, attn_mask=mask, need_weights=True, average_attn_weights=False)
        x = x + self.drop(a)
        x = x + self.drop(self.mlp(self.norm2(x)))
        return x, weights


class AttentionEncoder(nn.Module):
    """A stack of :class:`AttentionBlock` followed by a final LayerNorm.

    Args:
        dim: token feature size.
        layers: number of blocks.
        heads: attention heads per block.
        dropout: see :class:`AttentionBlock`.
    """

    def __init__(self, dim: int, layers: int, heads: int = 4, dropout: float = 0.1) -> None:
        super().__init__()
        check_positive(layers=layers)
        self.blocks = nn.ModuleList(AttentionBlock(dim, heads, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(B, N, dim) tokens -> (B, N, dim) tokens and one (B, heads, N, N) weight tensor per block."""
        weights = []
        for block in self.blocks:
            x, w = block(x, mask)
            weights.append(w)
        return self.norm(x), weights


def make_rnn(kind: str, dim: int, layers: int, bidirectional: bool, dropout: float) -> nn.LSTM | nn.GRU:
    """A batch-first LSTM or GRU mapping (B, N, dim) -> (B, N, dim).

    Bidirectional ones use ``dim // 2`` hidden units per direction (so ``dim`` must be even).
    """
    check_choice("encoder", kind, ("lstm", "gru"))
    check_positive(dim=dim, layers=layers)
    if bidirectional and dim % 2:
        raise KineposeError(f"dim ({dim}) must be even for a bidirectional {kind}")
    cls = nn.LSTM if kind == "lstm" else nn.GRU
    hidden = dim // 2 if bidirectional else dim
    # Recurrent dropout only exists between layers; torch warns if it is set for a single layer.
    return cls(dim, hidden, layers, batch_first=True, bidirectional=bidirectional, dropout=dropout * (layers > 1))


def bone_vectors(skeleton: Skeleton, joints: torch.Tensor, visibility: torch.Tensor | None = None) -> torch.Tensor:
    """Per-joint bone vectors to the parent, scaled to about unit length.

    Args:
        skeleton: the kinematic tree.
        joints: (..., J, 3) positions, metres (any translation; only differences are used).
        visibility: optional (..., J) mask; a bone is zero where either of its ends is invisible.

    Returns:
        (..., J, 3) ``(x_j - x_parent(j)) / rest_length(j)``; the root's row is zero.
    """
    parents = torch.tensor([max(p, 0) for p in skeleton.parents], device=joints.device)
    rest = skeleton.offsets_tensor(joints.dtype, joints.device).norm(dim=-1).clamp_min(1e-3)  # (J,)
    bones = (joints - joints[..., parents, :]) / rest[:, None]  # (..., J, 3), root row is 0
    if visibility is not None:
        vis = visibility.to(joints.dtype)
        bones = bones * (vis * vis[..., parents])[..., None]
    return bones


def tree_neighbourhood(skeleton: Skeleton, hops: int = 1) -> torch.Tensor:
    """(J, J) boolean: True where joint ``j`` lies within ``hops`` edges of joint ``i`` in the tree
    (self, parent and children for ``hops == 1``), from powers of the adjacency matrix with self loops."""
    check_positive(graph_hops=hops)
    J = skeleton.num_joints
    adj = torch.eye(J, dtype=torch.float64)
    for p, c in skeleton.bones:
        adj[p, c] = adj[c, p] = 1.0
    reach = torch.linalg.matrix_power(adj, hops)  # (J, J), > 0 within ``hops`` edges
    return reach > 0
