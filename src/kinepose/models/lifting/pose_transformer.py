"""The research notes' PoseTransformer: single-frame 2D-to-3D lifting with one token per joint.

The notes (``seeds/003``, "3D Hand Pose Estimation with Transformers", part 1) adapt ViT to a skeleton: every
joint is a "patch". Architecture, as there: a linear embedding of each joint's (x, y) to ``embed_dim`` = 32, a
learned positional encoding (1, J, 32), 4 pre-LayerNorm encoder blocks (8 heads, MLP ratio 2, qkv bias), a final
LayerNorm and a linear head 32 -> 3 per joint. What we add, for every rival alike: the visibility weights each
joint's embedded token (before the positional encoding, so an invisible joint keeps its identity but carries no
position) and masks invisible joints as attention keys. J comes from the skeleton, so the same family serves
hands (21 joints), bodies (15, 17) or any other tree.
"""

from __future__ import annotations

import torch
from torch import nn

from kinepose.errors import KineposeError
from kinepose.models.layers import check_positive
from kinepose.models.lifting.base import Lifter, LiftOutput
from kinepose.models.lifting.registry import register_lifter
from kinepose.skeleton.core import Skeleton

__all__ = ["PoseTransformer", "PoseTransformerBlock"]


class PoseTransformerBlock(nn.Module):
    """Pre-LayerNorm encoder block (timm ViT ``Block``) with a per-sample key mask and returned attention.

    ``x = x + Dropout(Proj(Attn(LN(x))))`` then ``x = x + MLP(LN(x))`` with a GELU MLP.
    (:class:`kinepose.models.layers.AttentionBlock` is close but takes one (N, N) mask for the whole batch, has no
    ``qkv_bias`` switch and an integer MLP ratio, hence this block.)

    Args:
        dim: token size, divisible by ``heads``.
        heads: attention heads.
        mlp_ratio: MLP hidden size relative to ``dim``.
        qkv_bias: bias in the query/key/value projection.
        dropout: dropout on the attention output and in the MLP (not on the returned weights).
    """

    def __init__(self, dim: int, heads: int, mlp_ratio: float, qkv_bias: bool, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        hidden = int(dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.drop = nn.Dropout(dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim), nn.Dropout(dropout)
        )

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Args:
            x: (B, N, dim) tokens.
            key_mask: optional (B, N) boolean, True where a token may NOT be attended to (as a key). A sample must
                keep at least one key.

        Returns:
            (B, N, dim) tokens and (B, heads, N, N) attention weights (rows sum to 1).
        """
        B, N, C = x.shape
        qkv = self.qkv(self.norm1(x)).reshape(B, N, 3, self.heads, C // self.heads)  # (B, N, 3, H, C/H)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, H, N, C/H)
        logits = (q @ k.transpose(-2, -1)) * self.scale  # (B, H, N, N)
        if key_mask is not None:
            logits = logits.masked_fill(key_mask[:, None, None, :], float("-inf"))
        attn = logits.softmax(dim=-1)  # (B, H, N, N)
        out = (attn @ v).transpose(1, 2).reshape(B, N, C)  # (B, H, N, C/H) -> (B, N, H, C/H) -> (B, N, C)
        x = x + self.drop(self.proj(out))
        x = x + self.mlp(self.norm2(x))
        return x, attn


@register_lifter("pose_transformer")
class PoseTransformer(Lifter):
    """The notes' PoseTransformer (single frame, one token per joint).

    Input (B, 1, J, 2) screen-normalized keypoints and (B, 1, J) visibility; output (B, J, 3) root-relative camera
    frame joints of that frame, and the attention maps of every block over the joints.

    Visibility: a joint's embedded token is multiplied by its visibility, and joints with visibility 0 are masked as
    attention keys (no query attends to them; their own queries still read the visible joints, which is how their
    position is inferred). A frame with no visible joint has nothing to mask against: its attention is left
    unmasked (the tokens are then the positional encodings alone), so it gives a finite prior pose, not NaN.

    Args:
        skeleton: the skeleton (J joints in and out).
        window: must be 1 (the notes' model is single-frame).
        embed_dim: token size (32 in the notes).
        depth: encoder blocks (4).
        heads: attention heads per block (8; ``embed_dim`` must be divisible by it).
        mlp_ratio: MLP hidden size relative to ``embed_dim`` (2).
        dropout: dropout in the blocks (0 in the notes).
        qkv_bias: bias in the query/key/value projections.
    """

    def __init__(
        self,
        skeleton: Skeleton,
        window: int = 1,
        embed_dim: int = 32,
        depth: int = 4,
        heads: int = 8,
        mlp_ratio: float = 2.0,
        dropout: float = 0.0,
        qkv_bias: bool = True,
    ) -> None:
        if int(window) != 1:
            raise KineposeError(f"window: pose_transformer is single-frame, window must be 1, got {window}")
        super().__init__(skeleton, window=1, causal=False)
        check_positive(embed_dim=embed_dim, depth=depth, heads=heads)
        if embed_dim % heads:
            raise KineposeError(f"embed_dim ({embed_dim}) must be divisible by heads ({heads})")
        if not mlp_ratio > 0:
            raise KineposeError(f"mlp_ratio must be > 0, got {mlp_ratio}")
        if not 0.0 <= dropout < 1.0:
            raise KineposeError(f"dropout must be in [0, 1), got {dropout}")
        J = skeleton.num_joints
        self.embed = nn.Linear(2, embed_dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, J, embed_dim))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)  # ViT's initialization
        self.blocks = nn.ModuleList(
            PoseTransformerBlock(embed_dim, heads, mlp_ratio, qkv_bias, dropout) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(embed_dim)
        self.head = nn.Linear(embed_dim, 3)

    def forward(self, keypoints: torch.Tensor, visibility: torch.Tensor | None = None) -> LiftOutput:
        """Args:
            keypoints: (B, 1, J, 2) screen-normalized 2D keypoints.
            visibility: optional (B, 1, J) in [0, 1]; None means all visible.

        Returns:
            :class:`LiftOutput` with ``joints`` (B, J, 3) and ``attention``: ``depth`` tensors (B, heads, J, J).
        """
        self.check_input(keypoints, visibility)
        x = self.normalize_input(keypoints, visibility)[:, 0]  # (B, J, 2)
        tokens = self.embed(x)  # (B, J, C)
        key_mask = None
        if visibility is not None or not bool(torch.isfinite(keypoints).all()):
            vis = self.effective_visibility(keypoints, visibility)[:, 0].to(tokens.dtype)  # (B, J)
            tokens = tokens * vis[..., None]
            key_mask = vis <= 0  # (B, J)
            key_mask = key_mask & ~key_mask.all(dim=-1, keepdim=True)  # nothing visible: attend to everything
        tokens = tokens + self.pos_embed
        attention = []
        for block in self.blocks:
            tokens, attn = block(tokens, key_mask)
            attention.append(attn)
        raw = self.head(self.norm(tokens))  # (B, J, 3)
        return LiftOutput(joints=self.denormalize_output(raw), attention=attention, attention_over="joints")
