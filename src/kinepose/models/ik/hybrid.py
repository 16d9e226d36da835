"""Hybrid IK: geometry for what joint positions determine, a network for the rest.

1. An encoder (an MLP for one frame; a Transformer, LSTM or GRU over a window of frames) reads the
   standardized joints, their visibility and how far each bone's length is from the skeleton's.
2. A denoising head adds a correction to the target frame's joints (zero at initialization), scaled by
   a gate ``s / (s + noise_scale)`` where ``s`` is the frame's RMS bone-length deviation from the
   skeleton: joints that fit the skeleton exactly carry no measurable noise and pass unchanged.
3. Geometry solves the denoised joints: analytic IK, then ``fit_iterations`` Levenberg-Marquardt steps
   of skeleton fitting (:func:`kinepose.kinematics.fitting.fit_skeleton`), maximum a posteriori under a Gaussian
   pose prior learned from the training rotations (:meth:`HybridIK.set_pose_prior`), weighted by the
   noise level the frame's bone lengths reveal (none for clean joints). No gradient flows through this
   step; the denoiser learns from its own position loss.
4. A residual head rotates each rotated joint away from the geometric solution (zero at
   initialization). It predicts what positions cannot say: joints without a child point (neck, ankles),
   the twist of straight limbs, pose priors under noise. ``residual_mask`` (a buffer, set from
   validation data after training by :func:`kinepose.training.select_residual_joints`) switches it off
   for joints where it does not help, so those keep the geometric answer.

With clean joints the geometry alone is exact, so the output's forward kinematics reproduces the input.
"""

from __future__ import annotations

import roma
import torch
from torch import nn

from kinepose.errors import KineposeError
from kinepose.geometry.rotations import matrix_to_quat, matrix_to_sixd, quat_to_matrix
from kinepose.kinematics.fitting import PosePrior, bone_length_deviation, fit_skeleton
from kinepose.models.base import ModelOutput, PoseModel, scatter_rotations
from kinepose.models.layers import AttentionEncoder, check_choice, check_positive, dense_block, make_rnn
from kinepose.models.registry import register_model
from kinepose.skeleton.core import Skeleton

__all__ = ["HybridIK"]

ENCODERS = ("mlp", "transformer", "lstm", "gru")


@register_model("hybrid")
class HybridIK(PoseModel):
    """Analytic/least-squares IK plus learned denoising and residual rotations.

    Args:
        skeleton: the skeleton.
        window: input frames (1: single-frame model with an MLP encoder).
        causal: for windows, predict the last frame (real time) instead of the centre one.
        encoder: ``mlp`` (window 1), ``transformer``, ``lstm`` or ``gru`` (windows).
        dim: feature size.
        layers: MLP blocks, attention blocks or recurrent layers.
        heads: attention heads (``transformer``).
        dropout: dropout probability.
        denoise: learn a correction of the joints before the geometry.
        residual: learn residual rotations after the geometry.
        fit_iterations: Levenberg-Marquardt steps after analytic IK (0 = analytic IK only).
        noise_scale: metres; the denoising gate is half open at this RMS bone-length deviation.
        denoiser: ``offset`` (a correction added to the target frame) or, for windows, ``filter``: each
            joint becomes a weighted sum of its own positions over the window, weights predicted per
            joint and frame and constrained to sum to 1 (an adaptive linear filter; it can smooth and,
            for causal windows, extrapolate without lag). Starts as the identity. ``wiener``: the same
            kind of filter, one for all joints, whose weights depend only on the noise level the window's
            bone lengths reveal (a learned Wiener-style filter; few parameters, so it generalizes).
        filter_per_joint: ``filter`` weights per joint (else one set of weights for all joints).
    """

    def __init__(
        self,
        skeleton: Skeleton,
        window: int = 1,
        causal: bool = True,
        encoder: str = "mlp",
        dim: int = 256,
        layers: int = 3,
        heads: int = 4,
        dropout: float = 0.1,
        denoise: bool = True,
        residual: bool = True,
        fit_iterations: int = 4,
        noise_scale: float = 0.002,
        denoiser: str = "offset",
        filter_per_joint: bool = True,
    ) -> None:
        super().__init__(skeleton, window=window, causal=causal)
        check_choice("encoder", encoder, ENCODERS)
        check_choice("denoiser", denoiser, ("offset", "filter", "wiener"))
        if denoiser != "offset" and window == 1:
            raise KineposeError(f"hybrid: denoiser '{denoiser}' needs a window of several frames")
        self.denoiser_kind = denoiser
        if not residual and (not denoise or denoiser == "wiener"):
            raise KineposeError(
                "hybrid: with residual=false and "
                + ("denoise=false" if not denoise else "the wiener denoiser")
                + " the encoder would learn nothing; enable residual (or use the offset/filter denoiser)"
            )
        check_positive(dim=dim, layers=layers)
        if encoder == "mlp" and window != 1:
            raise KineposeError(
                f"hybrid: encoder 'mlp' reads one frame; use transformer, lstm or gru for window {window}"
            )
        J, R = skeleton.num_joints, len(skeleton.rotated_joints)
        self.encoder_kind, self.fit_iterations, self.noise_scale = encoder, int(fit_iterations), float(noise_scale)
        self.use_denoise, self.use_residual = bool(denoise), bool(residual)
        self.register_buffer("rest_lengths", torch.tensor(skeleton.bone_lengths(), dtype=torch.float32).clamp_min(1e-3))
        in_features = J * 3 + J + J  # positions, visibility, bone-length deviations
        if encoder == "mlp":
            blocks = [dense_block(in_features, dim, dropout, norm=True)]
            blocks += [dense_block(dim, dim, dropout, norm=True) for _ in range(layers - 1)]
            self.encoder = nn.Sequential(*blocks)
        else:
            self.embed = nn.Linear(in_features, dim)
            self.pos_embedding = nn.Parameter(0.02 * torch.randn(self.window, dim))
            if encoder == "transformer":
                self.encoder = AttentionEncoder(dim, layers, heads, dropout)
            else:
                self.encoder = make_rnn(encoder, dim, layers, bidirectional=not self.causal, dropout=dropout)
        if self.use_denoise:
            out = J * 3 if denoiser == "offset" else (J if filter_per_joint else 1) * self.window
            if denoiser == "wiener":
                self.denoise_head = nn.Sequential(nn.Linear(1, 32), nn.Tanh(), nn.Linear(32, self.window))
                last = self.denoise_head[-1]
            else:
                self.denoise_head = nn.Linear(dim, out)
                last = self.denoise_head
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
        if self.use_residual:
            self.residual_mlp = dense_block(dim + R * 6, dim, dropout)
            self.residual_out = nn.Linear(dim, R * 3)
            nn.init.zeros_(self.residual_out.weight)
            nn.init.zeros_(self.residual_out.bias)
        self.register_buffer("residual_mask", torch.ones(R))
        self.register_buffer("prior_mean", torch.zeros(J, 3))
        self.register_buffer("prior_std", torch.zeros(J, 3))  # all zero: no prior set

    @torch.no_grad()
    def set_pose_prior(self, prior: PosePrior | None) -> None:
        """Use ``prior`` (estimated from training rotations) in the skeleton fit; ``None`` removes it."""
        if prior is None:
            self.prior_std.zero_()
            return
        self.prior_mean.copy_(prior.mean.to(self.prior_mean.dtype))
        self.prior_std.copy_(prior.std.to(self.prior_std.dtype))

    @property
    def pose_prior(self) -> PosePrior | None:
        if not bool((self.prior_std > 0).any()):
            return None
        return PosePrior(self.prior_mean.double(), self.prior_std.double())

    def frame_features(self, joints: torch.Tensor, visibility: torch.Tensor | None) -> torch.Tensor:
        """(B, T, J, 3) -> (B, T, 3J + J + J) standardized positions, visibility, bone-length deviations."""
        x = self.normalize(joints, visibility)  # (B, T, J, 3)
        B, T, J = x.shape[:3]
        vis = joints.new_ones(B, T, J) if visibility is None else visibility.to(x.dtype)
        parents = torch.tensor([max(p, 0) for p in self.skeleton.parents], device=joints.device)
        lengths = (joints - joints[..., parents, :]).norm(dim=-1)  # (B, T, J), 0 for the root
        rest = self.rest_lengths
        if self.subject is not None:  # deviations from the subject's own lengths, not the template's
            rest = self.subject.offsets_tensor(rest.dtype, rest.device).norm(dim=-1).clamp_min(1e-3)
        dev = 10.0 * (lengths / rest - 1.0) * vis * vis[..., parents]
        dev[..., 0] = 0.0
        return torch.cat([x.reshape(B, T, J * 3), vis, dev], dim=-1)

    def noise_gate(self, target: torch.Tensor, visibility: torch.Tensor | None) -> torch.Tensor:
        """(B, J, 3) joints -> (B,) gate in [0, 1) from the RMS deviation of bone lengths from the skeleton's."""
        vis = None if visibility is None else visibility[:, self.target_index]
        s = bone_length_deviation(self.geometry_skeleton, target, vis)
        return s / (s + self.noise_scale)

    def fill_hidden(self, joints: torch.Tensor, visibility: torch.Tensor) -> torch.Tensor:
        """(B, J, 3) joints with hidden ones (visibility 0) placed at their parent plus the rest offset, so
        the geometry sees no zero-length bone; the fit then gives them no weight."""
        vis = visibility > 0
        out = list(joints.unbind(1))
        off = self.geometry_skeleton.offsets_tensor(joints.dtype, joints.device)
        for j, p in enumerate(self.skeleton.parents):
            if p >= 0:
                out[j] = torch.where(vis[:, j, None], out[j], out[p] + off[j])
        return torch.stack(out, 1)

    def encode(self, joints: torch.Tensor, visibility: torch.Tensor | None) -> tuple[torch.Tensor, list | None]:
        f = self.frame_features(joints, visibility)  # (B, T, F)
        if self.encoder_kind == "mlp":
            return self.encoder(f[:, 0]), None  # (B, dim)
        h = self.embed(f) + self.pos_embedding  # (B, T, dim)
        if self.encoder_kind == "transformer":
            h, attention = self.encoder(h)
            return h[:, self.target_index], attention
        h, _ = self.encoder(h)
        return h[:, self.target_index], None

    def forward(self, joints: torch.Tensor, visibility: torch.Tensor | None = None) -> ModelOutput:
        """Args:
            joints: (B, window, J, 3) positions, metres.
            visibility: optional (B, window, J) mask.

        Returns:
            :class:`ModelOutput` with rotations, root position, denoised ``joints`` (B, J, 3) and
            ``aux['geometric_quat']``, the geometric solution before the residual.
        """
        self.check_input(joints, visibility)
        h, attention = self.encode(joints, visibility)
        target = joints[:, self.target_index]  # (B, J, 3)
        if self.use_denoise:
            gate = self.noise_gate(target, visibility)[:, None, None]  # (B, 1, 1)
            if self.denoiser_kind == "offset":
                delta = self.denoise_head(h).reshape(target.shape) * self.std  # (B, J, 3) metres
            else:
                B, W, J = joints.shape[:3]
                if self.denoiser_kind == "wiener":
                    vis = None if visibility is None else visibility.flatten(0, 1)
                    level = (
                        bone_length_deviation(self.geometry_skeleton, joints.flatten(0, 1), vis).reshape(B, W).mean(1)
                    )
                    w = self.denoise_head(level[:, None] / 0.01).reshape(B, 1, W).expand(B, J, W)
                else:
                    w = self.denoise_head(h).reshape(B, -1, W).expand(B, J, W)  # (B, J, W)
                if visibility is None:
                    w = w - w.mean(-1, keepdim=True)  # sums to 0: target + delta is a filter summing to 1
                else:  # hidden frames of a joint get no weight; the visible ones still sum to 0
                    vis = visibility.transpose(1, 2).to(w.dtype)  # (B, J, W)
                    w = (w - (w * vis).sum(-1, keepdim=True) / vis.sum(-1, keepdim=True).clamp_min(1)) * vis
                delta = torch.einsum("bjw,bwjc->bjc", w, joints)  # (B, J, 3) = filtered - target
            denoised = target + gate * delta
        else:
            denoised = target
        weights = None if visibility is None else visibility[:, self.target_index]
        if weights is not None:
            denoised = self.fill_hidden(denoised, weights)
        with torch.no_grad():
            geo = fit_skeleton(self.geometry_skeleton, denoised.detach().double(), iterations=self.fit_iterations,
                               weights=None if weights is None else weights.double(),
                               prior=self.pose_prior)  # fmt: skip
        base = quat_to_matrix(geo.local_quat.to(joints.dtype))  # (B, J, 3, 3)
        rot_idx = list(self.skeleton.rotated_joints)
        base_rot = base[:, rot_idx]  # (B, R, 3, 3)
        if self.use_residual:
            feats = torch.cat([h, matrix_to_sixd(base_rot).flatten(1)], dim=-1)  # (B, dim + 6R)
            aa = self.residual_out(self.residual_mlp(feats)).reshape(-1, len(rot_idx), 3)  # (B, R, 3)
            aa = aa * self.residual_mask[:, None]
            rot = base_rot @ roma.rotvec_to_rotmat(aa)
        else:
            rot = base_rot
        local = scatter_rotations(self.skeleton, matrix_to_quat(rot))
        return ModelOutput(
            local_quat=local,
            root_pos=geo.root_pos.to(joints.dtype),
            joints=denoised,
            attention=attention,
            aux={"geometric_quat": geo.local_quat.to(joints.dtype)},
        )
