"""``skeleton_lifter``: ours. 2D keypoints -> a skeleton (bone rotations, bone lengths) -> forward kinematics.

What it does differently from the rivals (``mlp``, ``pose_transformer``, ``tcn``), and why:

- **The output is a skeleton.** Every bone ``j`` (parent ``p``) gets a unit direction ``d_j`` in the camera frame
  and a length ``l_j``, decoded by forward kinematics ``x_j = x_p + l_j d_j`` (:func:`decode_skeleton`); its rotation
  is the swing taking the template's rest direction to ``d_j``, composed down the tree into local rotations
  (:func:`bone_rotations`, ``LiftOutput.local_quat``). Directions are predicted in the camera frame rather than as
  rotations composed down the chain: a first version did that (6D rotation per bone relative to its parent bone)
  and its errors compounded towards the hands and feet (PA-MPJPE 85 mm against 64 mm of the 27-frame TCN at equal
  training time on the body benchmark). Bone lengths are one vector per window (pooled over its frames), and over
  a whole clip (:meth:`SkeletonLifter.forward_sequence`) one vector per clip: the median of the windows' (offline)
  or the running mean of the frames so far (causal; ``length_prior`` adds the template's lengths to that mean with
  the weight of that many frames, so the first frames' noisy guesses move it little); bone lengths are constant
  over a clip by construction offline. Bones
  that share a parent (the pelvis's spine and hips, the chest's neck and shoulders, a wrist's fingers) turn
  together: one rotation per group and frame, one shape (their rest directions) per window and per clip, so that
  the output is a pose of one skeleton and analytic IK on the calibrated subject reproduces it exactly.
- **Input invariant to where and how large the subject is in the image.** Each window's keypoints are centred on
  the visible joints' centroid and divided by their spread (one scale per window); the centroid track and the log
  scale go in as three extra numbers per frame.
- **Temporal, with a dense loss.** Each frame is encoded by a residual MLP (the single-frame rivals' strength),
  then a pre-norm Transformer over the window's frames (one token per frame; causal
  variants mask the future) predicts every frame's skeleton, so a window trains ``W`` outputs, not one
  (``aux["frames"]``).
- ``window == 1`` is the single-frame variant.
- **A pose bank for the fit (optional, no network):** with ``bank > 0`` the lifter keeps a bank of training views
  (a :class:`~kinepose.models.lifting.knn.KNNLifter`, filled by ``kinepose train``), and the 2D fit's direction
  prior becomes the normalized mix ``(1 - bank_weight) * network + bank_weight * k-NN`` of the network's bone
  directions and those of the mean 3D of the nearest training views. The network still starts the fit and sets
  the bone lengths, the size and the rigid groups. On the validation clips (5 px + outliers, MPJPE / PA-MPJPE mm)
  the mix at ``bank_weight`` 0.75 beat both ends: hand 15.3 / 7.2 against 18.9 / 8.9 (network prior only) and
  15.6 / 7.2 (k-NN prior only); body (with ``sigma_direction`` 0.3) 80.3 / 65.6 against 100.1 / 77.7 and 81.4 / 67.4.
"""

from __future__ import annotations

import torch
from torch import nn

from kinepose.errors import KineposeError
from kinepose.geometry.rotations import sixd_to_matrix
from kinepose.models.layers import AttentionEncoder, check_positive
from kinepose.models.lifting.base import Lifter, LiftOutput
from kinepose.models.lifting.knn import KNNLifter
from kinepose.models.lifting.refine import RefineConfig, fit_to_keypoints
from kinepose.models.lifting.registry import register_lifter
from kinepose.skeleton.core import Skeleton

__all__ = ["SkeletonLifter", "bone_directions", "bone_rotations", "decode_skeleton"]


def decode_skeleton(parents: tuple[int, ...], directions: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Bone forward kinematics: ``x_j = x_parent + l_j d_j``, the root at the origin.

    Args:
        parents: J parent indices, root -1, topologically sorted.
        directions: (..., J, 3) unit direction of the bone ending at each joint, camera frame (root's unused).
        lengths: (..., J) bone lengths, metres (root's unused).

    Returns:
        (..., J, 3) joints.
    """
    X = [torch.zeros_like(directions[..., 0, :])]
    for j in range(1, len(parents)):
        X.append(X[parents[j]] + lengths[..., j, None] * directions[..., j, :])
    return torch.stack(X, -2)


def bone_directions(parents: tuple[int, ...], joints: torch.Tensor) -> torch.Tensor:
    """(..., J, 3) joints -> (..., J, 3) unit direction of the bone ending at each joint (the root's: +z, unused),
    the inverse of :func:`decode_skeleton` for the directions. ``parents`` topologically sorted, root first."""
    P = torch.tensor(parents[1:], device=joints.device)
    bones = joints[..., 1:, :] - joints[..., P, :]
    unit = bones / bones.norm(dim=-1, keepdim=True).clamp_min(1e-9)
    root = torch.zeros_like(joints[..., :1, :])
    root[..., 2] = 1.0
    return torch.cat([root, unit], -2)


def bone_rotations(parents: tuple[int, ...], rest: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
    """Local rotations of a skeleton whose bones point along ``directions``: each bone's global rotation is the
    smallest one taking its rest direction to its direction (swing only: positions carry no twist), composed with
    its parent's; the local rotation is ``G_parent^T G_j``; the root's takes the mean of its children's rest
    directions to theirs.

    Args:
        parents: J parent indices. rest: (J, 3) unit rest directions. directions: (..., J, 3) unit directions.

    Returns:
        (..., J, 4) w,x,y,z local rotations (bone ``j``'s rotation stored at joint ``j``).
    """
    from kinepose.geometry.rotations import matrix_to_quat, quat_canonical

    def swing(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:  # (..., 3) unit vectors -> (..., 3, 3)
        c = (u * v).sum(-1, keepdim=True)
        k = torch.linalg.cross(u.expand_as(v), v)
        K = torch.zeros(*k.shape[:-1], 3, 3, dtype=k.dtype, device=k.device)
        K[..., 0, 1], K[..., 0, 2], K[..., 1, 2] = -k[..., 2], k[..., 1], -k[..., 0]
        K = K - K.transpose(-1, -2)
        eye = torch.eye(3, dtype=k.dtype, device=k.device)
        return eye + K + K @ K / (1 + c[..., None]).clamp_min(1e-6)  # Rodrigues, u -> v

    J = len(parents)
    G = [None] * J
    kids = [j for j in range(1, J) if parents[j] == 0]
    u0 = rest[kids].mean(0)
    v0 = directions[..., kids, :].mean(-2)
    G[0] = swing(u0 / u0.norm().clamp_min(1e-9), v0 / v0.norm(dim=-1, keepdim=True).clamp_min(1e-9))
    local = [G[0]]
    for j in range(1, J):
        G[j] = swing(rest[j], directions[..., j, :])
        local.append(G[parents[j]].transpose(-1, -2) @ G[j])
    return quat_canonical(matrix_to_quat(torch.stack(local, -3)))


class _ResidualMLP(nn.Module):
    """x + (Linear, LayerNorm, GELU, Dropout) x 2: one frame's pose features, as in Martinez et al.'s blocks."""

    def __init__(self, width: int, dropout: float) -> None:
        super().__init__()
        self.f = nn.Sequential(
            nn.Linear(width, width), nn.LayerNorm(width), nn.GELU(), nn.Dropout(dropout),
            nn.Linear(width, width), nn.LayerNorm(width), nn.GELU(), nn.Dropout(dropout),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.f(x)


@register_lifter("skeleton_lifter")
class SkeletonLifter(Lifter):
    """Ours: see the module docstring.

    Args:
        skeleton: the skeleton (its rest offsets give the bone directions and the length prior).
        window: frames per window (1 = single frame).
        causal: predict the last frame of the window from past frames only.
        dim: token size. layers, heads: of the Transformer over frames. dropout: in the blocks.
        width, frame_blocks: the per-frame encoder, a residual MLP (Martinez-style, LayerNorm) of this width.
        refine: fit whole clips to their 2D keypoints after lifting (:mod:`kinepose.models.lifting.refine`;
            offline only: :meth:`forward_sequence` of a non-causal lifter): ``True``, ``False``/``None`` (off, the
            default) or a mapping of :class:`~kinepose.models.lifting.refine.RefineConfig` fields. Settable after
            loading (``lifter.refine``).
        length_prior: causal only: the template's bone lengths count as this many frames in the running mean of the
            lengths over a clip (0: none). Body validation clip, 27 frames causal, 5 px + outliers: bone std 3.77 mm
            at 0, 1.03 at 300, 0.38 at 1,000 frames, MPJPE 163.8, 163.4 and 163.6 mm.
        bank: size of the pose bank of training views that guides the fit (module docstring; 0: none). bank_k:
            neighbours averaged. bank_weight: the k-NN's share of the fit's direction prior, in [0, 1].
    """

    def __init__(
        self, skeleton: Skeleton, window: int = 27, causal: bool = False, dim: int = 128, layers: int = 2,
        heads: int = 4, dropout: float = 0.1, width: int = 512, frame_blocks: int = 2, refine=None,
        bank: int = 0, bank_k: int = 8, bank_weight: float = 0.75, length_prior: float = 0.0,
    ) -> None:  # fmt: skip
        super().__init__(skeleton, window, causal)
        self.refine = RefineConfig.from_value(refine)
        check_positive(dim=dim, layers=layers, heads=heads, width=width, bank_k=bank_k)
        check_positive(minimum=0, frame_blocks=frame_blocks, bank=bank)
        if not 0.0 <= float(bank_weight) <= 1.0:
            raise KineposeError(f"skeleton_lifter: bank_weight must be in [0, 1], got {bank_weight!r}")
        self.bank_weight = float(bank_weight)
        if not 0.0 <= float(length_prior) < float("inf"):
            raise KineposeError(f"skeleton_lifter: length_prior must be a number of frames >= 0, got {length_prior!r}")
        self.length_prior = float(length_prior)
        #: the pose bank (a k-NN lifter's buffers, saved with the model) or None
        self.bank = KNNLifter(skeleton, k=bank_k, bank_size=bank) if bank else None
        J = skeleton.num_joints
        off = torch.tensor(skeleton.offsets, dtype=torch.float32)
        length = off.norm(dim=-1)
        self.register_buffer("directions", off / length.clamp_min(1e-9)[:, None], persistent=False)
        self.register_buffer("rest_lengths", length, persistent=False)
        self.embed = nn.Sequential(
            nn.Linear(3 * J + 3, width), *(_ResidualMLP(width, dropout) for _ in range(frame_blocks)),
            nn.Linear(width, dim),
        )  # fmt: skip
        self.pos = nn.Parameter(torch.zeros(1, self.window, dim))
        nn.init.trunc_normal_(self.pos, std=0.02)
        self.encoder = AttentionEncoder(dim, layers, heads, dropout)
        self.dir_head = nn.Linear(dim, 3 * J)
        self.len_head = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, J))
        # bones that share a parent (pelvis: spine and hips; chest: neck and shoulders; a wrist: the fingers) turn
        # together, one rotation per group and frame, with one shape per window (per clip over a whole clip), as
        # on a skeleton: analytic IK on the calibrated subject then reproduces the joints exactly
        kids = skeleton.children
        self.groups = [p for p in range(J) if len(kids[p]) > 1]
        self.grouped = [c for p in self.groups for c in kids[p]]
        self.register_buffer("group_of", torch.tensor([gi for gi, p in enumerate(self.groups) for _ in kids[p]],
                                                      dtype=torch.long), persistent=False)  # fmt: skip
        self.group_head = nn.Linear(dim, 6 * len(self.groups))
        self.shape_head = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, 3 * len(self.grouped)))
        with torch.no_grad():  # start at the rest pose and the template's lengths
            self.dir_head.weight.mul_(0.01)
            self.dir_head.bias.copy_(self.directions.flatten())
            self.len_head[-1].weight.mul_(0.01)
            self.len_head[-1].bias.zero_()
            self.group_head.weight.mul_(0.01)
            self.group_head.bias.copy_(torch.tensor([1.0, 0, 0, 0, 1.0, 0]).repeat(len(self.groups)))
            self.shape_head[-1].weight.mul_(0.01)
            self.shape_head[-1].bias.zero_()
        mask = torch.triu(torch.ones(self.window, self.window, dtype=torch.bool), 1) if causal else None
        self.register_buffer("mask", mask, persistent=False)

    def set_bank(self, knn: KNNLifter | None, weight: float | None = None) -> None:
        """Use a filled k-NN lifter's bank (same skeleton) as the fit's pose bank, or none; ``weight``: the new
        ``bank_weight``. Its size, ``k`` and the weight go into :meth:`config`, so saved lifters rebuild with it."""
        if knn is not None and (knn.skeleton.name != self.skeleton.name or int(knn.filled) == 0):
            raise KineposeError(
                "skeleton_lifter.set_bank: needs a filled knn lifter of the same skeleton "
                f"({self.skeleton.name!r}); got {knn.skeleton.name!r} with {int(knn.filled)} views"
            )
        self.bank = knn
        if weight is not None:
            if not 0.0 <= float(weight) <= 1.0:
                raise KineposeError(f"skeleton_lifter: bank_weight must be in [0, 1], got {weight!r}")
            self.bank_weight = float(weight)

    def fit_bank(self, keypoints: torch.Tensor, target: torch.Tensor) -> None:
        """Fill the pose bank from (N, J, 2) clean training keypoints and their (N, J, 3) root-relative 3D."""
        if self.bank is None:
            raise KineposeError("skeleton_lifter: no pose bank (bank: 0); build it with bank: N")
        self.bank.fit_bank(keypoints, target)

    def config(self) -> dict:
        """The constructor arguments as they are now: the fit's settings and the pose bank may be set after
        construction (``lifter.refine``, :meth:`set_bank`)."""
        cfg = super().config()
        cfg["bank"] = 0 if self.bank is None else int(self.bank.bank_2d.shape[0])
        if self.bank is not None:
            cfg["bank_k"] = self.bank.k
        cfg["bank_weight"] = self.bank_weight
        return cfg

    def _features(self, keypoints: torch.Tensor, visibility: torch.Tensor | None) -> torch.Tensor:
        """(B, W, J, 2), (B, W, J) -> (B, W, 3J + 3) centred, scale-normalized per-frame features."""
        finite = torch.isfinite(keypoints).all(-1)  # (B, W, J)
        # visibility is on/off, as in every lifter (a detector's confidence of 0.6 must not shrink a joint's offset)
        v = finite.to(keypoints.dtype) if visibility is None else (visibility > 0).to(keypoints.dtype) * finite
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

    def _compose(self, d: torch.Tensor, R: torch.Tensor, shape: torch.Tensor) -> torch.Tensor:
        """Free bone directions (..., J, 3), group rotations (..., G, 3, 3) and group shapes (..., C, 3) -> (..., J, 3)
        unit directions (grouped bones: their group's rotation of their shape direction)."""
        if not self.groups:
            return d
        shape = shape / shape.norm(dim=-1, keepdim=True).clamp_min(1e-6)
        grouped = (R[..., self.group_of, :, :] @ shape[..., None])[..., 0]  # (..., C, 3)
        return d.index_copy(-2, torch.tensor(self.grouped, device=d.device), grouped)

    def _frames(self, keypoints: torch.Tensor, visibility: torch.Tensor | None):
        """Per-frame free bone directions (B, W, J, 3), group rotations (B, W, G, 3, 3), pooled group shapes
        (B, W, C, 3) and lengths (B, W, J), and the attention maps."""
        tokens = self.embed(self._features(keypoints, visibility)) + self.pos  # (B, W, dim)
        tokens, attn = self.encoder(tokens, self.mask)
        B, W, _ = tokens.shape
        d = self.dir_head(tokens).reshape(B, W, self.num_joints, 3)  # (B, W, J, 3)
        d = d / d.norm(dim=-1, keepdim=True).clamp_min(1e-6)
        if self.causal:  # each frame's lengths from the frames up to it
            pooled = tokens.cumsum(1) / torch.arange(1, W + 1, dtype=tokens.dtype, device=tokens.device)[:, None]
        else:
            pooled = tokens.mean(1, keepdim=True).expand(B, W, -1)
        lengths = self.rest_lengths * torch.exp(self.len_head(pooled))  # (B, W, J)
        G, C = len(self.groups), len(self.grouped)
        R = sixd_to_matrix(self.group_head(tokens).reshape(B, W, G, 6))  # (B, W, G, 3, 3)
        shape = self.directions[self.grouped] + self.shape_head(pooled).reshape(B, W, C, 3)  # (B, W, C, 3)
        return d, R, shape, lengths, attn

    def forward(self, keypoints: torch.Tensor, visibility: torch.Tensor | None = None) -> LiftOutput:
        self.check_input(keypoints, visibility)
        d, R, shape, lengths, attn = self._frames(keypoints, visibility)
        d = self._compose(d, R, shape)
        joints = decode_skeleton(self.skeleton.parents, d, lengths)  # (B, W, J, 3)
        t = self.target_index
        return LiftOutput(
            joints=joints[:, t],
            attention=attn,
            attention_over="frames",
            local_quat=bone_rotations(self.skeleton.parents, self.directions, d[:, t].detach()),
            bone_lengths=lengths[:, t],
            aux={"frames": joints, "lengths": lengths},
        )

    def forward_sequence(self, keypoints: torch.Tensor, visibility: torch.Tensor | None = None) -> torch.Tensor:
        """Whole clips (B, T, J, 2) -> (B, T, J, 3), with one bone-length vector per clip (offline: the median over
        its frames) or per frame from the frames so far (causal: the running mean), so lengths never jump."""
        from kinepose.data.datasets import window_index

        B, T = keypoints.shape[:2]
        idx = window_index(T, self.window, self.target_index).to(keypoints.device)  # (T, W)

        def network(keypoints, visibility):  # each frame's (B, T, ...) bone directions, groups, shapes, lengths
            kp = keypoints[:, idx].reshape(B * T, self.window, *keypoints.shape[2:])  # (B*T, W, J, 2)
            vis = None if visibility is None else visibility[:, idx].reshape(B * T, self.window, -1)
            d, R, shape, lengths, _ = self._frames(kp, vis)
            t = self.target_index
            shape = shape[:, t].reshape(B, T, *shape.shape[2:])
            return (d[:, t].reshape(B, T, self.num_joints, 3), R[:, t].reshape(B, T, *R.shape[2:]),
                    shape / shape.norm(dim=-1, keepdim=True).clamp_min(1e-6),
                    lengths[:, t].reshape(B, T, self.num_joints))  # fmt: skip

        d, R, shape, lengths = network(keypoints, visibility)
        if self.causal:  # the running mean of what the frames so far say (and the template, as length_prior frames)
            n = torch.arange(1, T + 1, dtype=lengths.dtype, device=lengths.device)[:, None]
            lengths = (self.length_prior * self.rest_lengths + lengths.cumsum(1)) / (self.length_prior + n)
            shape = shape.cumsum(1) / n[..., None]
        else:  # one skeleton per clip
            lengths = lengths.median(1, keepdim=True).values.expand(B, T, -1)
            shape = shape.median(1, keepdim=True).values.expand_as(shape)
            if self._fits_clips():  # fit each clip to its 2D keypoints
                vis = self.effective_visibility(keypoints, visibility)

                def decode(dirs, lens):
                    return decode_skeleton(self.skeleton.parents, dirs, lens)

                prior = None
                if self.refine.flip and self.skeleton.left_right:  # the mirrored image's directions, mirrored back
                    m = list(self.skeleton.mirror_index)
                    sx = keypoints.new_tensor([-1.0, 1.0])
                    mirrored_vis = None if visibility is None else visibility[..., m]
                    df, Rf, sf, _ = network(keypoints[..., m, :] * sx, mirrored_vis)
                    sf = sf.median(1, keepdim=True).values.expand_as(sf)
                    back = self._compose(df, Rf, sf)[..., m, :] * keypoints.new_tensor([-1.0, 1.0, 1.0])
                    prior = back + self._compose(d, R, shape)
                    prior = prior / prior.norm(dim=-1, keepdim=True).clamp_min(1e-6)
                if self.bank is not None and self.bank_weight > 0:  # the nearest training views' bones mixed in
                    if int(self.bank.filled) == 0:
                        raise KineposeError("skeleton_lifter: the pose bank is empty (kinepose train fills it; "
                                            "or set_bank() a filled knn lifter)")  # fmt: skip
                    near = bone_directions(self.skeleton.parents, self.bank._lift_sequence(keypoints, visibility))
                    net = self._compose(d, R, shape) if prior is None else prior
                    prior = (1 - self.bank_weight) * net + self.bank_weight * near
                    prior = prior / prior.norm(dim=-1, keepdim=True).clamp_min(1e-6)
                return fit_to_keypoints(self._compose, decode, keypoints, vis, d, R, shape[:, 0], lengths[:, 0],
                                        self.refine, self.skeleton.left_right, prior)  # fmt: skip
        return decode_skeleton(self.skeleton.parents, self._compose(d, R, shape), lengths)
