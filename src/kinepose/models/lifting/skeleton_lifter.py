"""``skeleton_lifter``: ours. 2D keypoints -> a skeleton (bone rotations, bone lengths) -> forward kinematics.

What it does differently from the rivals (``mlp``, ``pose_transformer``, ``tcn``), and why:

- **The output is a skeleton.** Every bone ``j`` (parent ``p``) gets a rotation ``L_j`` relative to its parent
  bone's frame, composed down the tree (``G_j = G_p L_j``, the root's ``G`` relative to the camera), and a length
  ``l_j``; the joints are ``x_j = x_p + l_j G_j u_j`` with ``u_j`` the template's rest direction of that bone. The
  rotation sits on the bone, not on the parent joint, so that bones sharing a parent (hips, shoulders) move
  independently, as they do on another subject's rig. Bone lengths are one vector per window (pooled over its
  frames), and over a whole clip (:meth:`SkeletonLifter.forward_sequence`) one vector per clip: the median of the
  windows' (offline) or the running mean of the frames so far (causal); bone lengths are constant over a clip by
  construction.
- **Input invariant to where and how large the subject is in the image.** Each window's keypoints are centred on
  the visible joints' centroid and divided by their spread (one scale per window); the centroid track and the log
  scale go in as three extra numbers per frame.
- **Temporal, with a dense loss.** A pre-norm Transformer over the window's frames (one token per frame; causal
  variants mask the future) predicts every frame's skeleton, so a window trains ``W`` outputs, not one
  (``aux["frames"]``).
- ``window == 1`` is the single-frame variant.
"""

from __future__ import annotations

import torch
from torch import nn

from kinepose.geometry.rotations import matrix_to_quat, quat_canonical, sixd_to_matrix
from kinepose.models.layers import AttentionEncoder, check_positive
from kinepose.models.lifting.base import Lifter, LiftOutput
from kinepose.models.lifting.registry import register_lifter
from kinepose.skeleton.core import Skeleton

__all__ = ["SkeletonLifter", "decode_skeleton"]


def decode_skeleton(
    parents: tuple[int, ...], directions: torch.Tensor, local_rot: torch.Tensor, lengths: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Bone forward kinematics.

    Args:
        parents: J parent indices, root -1, topologically sorted.
        directions: (J, 3) unit rest direction of the bone ending at each joint (root's unused).
        local_rot: (..., J, 3, 3) rotation of each bone relative to its parent bone (the root's: to the camera).
        lengths: (..., J) bone lengths, metres (root's unused).

    Returns:
        (..., J, 3) joints with the root at the origin, and (..., J, 3, 3) global bone rotations.
    """
    G = [local_rot[..., 0, :, :]]
    X = [torch.zeros_like(local_rot[..., 0, :, 0])]
    for j in range(1, len(parents)):
        p = parents[j]
        g = G[p] @ local_rot[..., j, :, :]  # (..., 3, 3)
        G.append(g)
        X.append(X[p] + lengths[..., j, None] * (g @ directions[j]))
    return torch.stack(X, -2), torch.stack(G, -3)


@register_lifter("skeleton_lifter")
class SkeletonLifter(Lifter):
    """Ours: see the module docstring.

    Args:
        skeleton: the skeleton (its rest offsets give the bone directions and the length prior).
        window: frames per window (1 = single frame).
        causal: predict the last frame of the window from past frames only.
        dim: token size. layers, heads: of the Transformer over frames. dropout: in the blocks.
    """

    def __init__(
        self, skeleton: Skeleton, window: int = 27, causal: bool = False, dim: int = 128, layers: int = 3,
        heads: int = 4, dropout: float = 0.1,
    ) -> None:  # fmt: skip
        super().__init__(skeleton, window, causal)
        check_positive(dim=dim, layers=layers, heads=heads)
        J = skeleton.num_joints
        off = torch.tensor(skeleton.offsets, dtype=torch.float32)
        length = off.norm(dim=-1)
        self.register_buffer("directions", off / length.clamp_min(1e-9)[:, None], persistent=False)
        self.register_buffer("rest_lengths", length, persistent=False)
        self.embed = nn.Sequential(nn.Linear(3 * J + 3, dim), nn.GELU(), nn.Linear(dim, dim))
        self.pos = nn.Parameter(torch.zeros(1, self.window, dim))
        nn.init.trunc_normal_(self.pos, std=0.02)
        self.encoder = AttentionEncoder(dim, layers, heads, dropout)
        self.rot_head = nn.Linear(dim, 6 * J)
        self.len_head = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, J))
        with torch.no_grad():  # start at the rest pose and the template's lengths
            self.rot_head.weight.mul_(0.01)
            self.rot_head.bias.copy_(torch.tensor([1.0, 0, 0, 0, 1.0, 0]).repeat(J))
            self.len_head[-1].weight.mul_(0.01)
            self.len_head[-1].bias.zero_()
        mask = torch.triu(torch.ones(self.window, self.window, dtype=torch.bool), 1) if causal else None
        self.register_buffer("mask", mask, persistent=False)

    def _features(self, keypoints: torch.Tensor, visibility: torch.Tensor | None) -> torch.Tensor:
        """(B, W, J, 2), (B, W, J) -> (B, W, 3J + 3) centred, scale-normalized per-frame features."""
        finite = torch.isfinite(keypoints).all(-1)  # (B, W, J)
        v = finite.to(keypoints.dtype) if visibility is None else visibility * finite
        x = torch.nan_to_num(keypoints, nan=0.0)
        w = v[..., None]
        c = (x * w).sum(-2) / w.sum(-2).clamp_min(1.0)  # (B, W, 2) centroid of the visible joints
        rel = x - c[..., None, :]  # (B, W, J, 2)
        spread = (rel.square().sum(-1) * v).sum(-1) / v.sum(-1).clamp_min(1.0)  # (B, W)
        s = spread.mean(1, keepdim=True).sqrt().clamp_min(1e-4)  # (B, 1) one scale per window
        rel = rel / s[..., None, None] * w
        track = (c - c[:, self.target_index : self.target_index + 1]) / s[..., None]  # (B, W, 2)
        log_s = s.log()[..., None].expand(-1, x.shape[1], 1)  # (B, W, 1)
        return torch.cat([rel.flatten(-2), v, track, log_s], -1)

    def _frames(self, keypoints: torch.Tensor, visibility: torch.Tensor | None):
        """Per-frame rotations (B, W, J, 3, 3), per-frame pooled lengths (B, W, J) and attention maps."""
        tokens = self.embed(self._features(keypoints, visibility)) + self.pos  # (B, W, dim)
        tokens, attn = self.encoder(tokens, self.mask)
        B, W, _ = tokens.shape
        rot = sixd_to_matrix(self.rot_head(tokens).reshape(B, W, self.num_joints, 6))  # (B, W, J, 3, 3)
        if self.causal:  # each frame's lengths from the frames up to it
            pooled = tokens.cumsum(1) / torch.arange(1, W + 1, dtype=tokens.dtype, device=tokens.device)[:, None]
        else:
            pooled = tokens.mean(1, keepdim=True).expand(B, W, -1)
        lengths = self.rest_lengths * torch.exp(self.len_head(pooled))  # (B, W, J)
        return rot, lengths, attn

    def forward(self, keypoints: torch.Tensor, visibility: torch.Tensor | None = None) -> LiftOutput:
        self.check_input(keypoints, visibility)
        rot, lengths, attn = self._frames(keypoints, visibility)
        joints, _G = decode_skeleton(self.skeleton.parents, self.directions, rot, lengths)  # (B, W, J, 3)
        t = self.target_index
        return LiftOutput(
            joints=joints[:, t],
            attention=attn,
            attention_over="frames",
            local_quat=quat_canonical(matrix_to_quat(rot[:, t])),
            bone_lengths=lengths[:, t],
            aux={"frames": joints, "lengths": lengths},
        )

    def forward_sequence(self, keypoints: torch.Tensor, visibility: torch.Tensor | None = None) -> torch.Tensor:
        """Whole clips (B, T, J, 2) -> (B, T, J, 3), with one bone-length vector per clip (offline: the median over
        its frames) or per frame from the frames so far (causal: the running mean), so lengths never jump."""
        from kinepose.data.datasets import window_index

        B, T = keypoints.shape[:2]
        idx = window_index(T, self.window, self.target_index).to(keypoints.device)  # (T, W)
        kp = keypoints[:, idx].reshape(B * T, self.window, *keypoints.shape[2:])  # (B*T, W, J, 2)
        vis = None if visibility is None else visibility[:, idx].reshape(B * T, self.window, -1)
        rot, lengths, _ = self._frames(kp, vis)
        t = self.target_index
        rot = rot[:, t].reshape(B, T, self.num_joints, 3, 3)
        lengths = lengths[:, t].reshape(B, T, self.num_joints)
        if self.causal:
            n = torch.arange(1, T + 1, dtype=lengths.dtype, device=lengths.device)[:, None]
            lengths = lengths.cumsum(1) / n
        else:
            lengths = lengths.median(1, keepdim=True).values.expand(B, T, -1)
        return decode_skeleton(self.skeleton.parents, self.directions, rot, lengths)[0]
