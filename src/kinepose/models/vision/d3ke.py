"""D3KE, direct image-to-kinematics: a video window of backbone features -> joint rotations, bone scales, joints and
virtual markers through a differentiable skeleton.

D3KE is "Towards single camera human 3D-kinematics" (Bittner et al., Sensors 2023; official code
github.com/mbittner/D3KE: an image backbone, a strided Transformer with d_model 256 and 8 heads over a 243-frame
window). The network does not regress joint positions. Per frame it regresses the local rotation of every rotated
joint and the root's position in the camera frame, per sequence one scale factor per bone; a skeleton model (forward
kinematics with scaled rest offsets, :func:`kinepose.kinematics.fk.forward_kinematics_matrix`) turns them into joint
positions and virtual markers, and the loss compares those, the scales and the rotations with the truth
(:func:`d3ke_loss`). Every step is differentiable, so the position losses train the rotations and scales.

Here (pure torch; the backbone is not part of this module, :class:`D3KE` reads precomputed per-frame features):

- temporal network, one of :data:`TEMPORAL`: ``transformer`` (a pre-norm ``nn.TransformerEncoder`` with a learned
  positional embedding; a frame-to-frame encoder with one output per input frame instead of the official strided
  Transformer that pools the window to its centre frame), ``tcn`` (residual dilated 1-D convolutions, kernel 3,
  dilations 1, 3, 9, ..., same-length padding, as VideoPose3D's without the striding) or ``lstm`` (bidirectional);
- heads: 6D rotations (the first two columns, Zhou et al.) of :attr:`Skeleton.rotated_joints`, the root's relative to
  the camera; the root position as ``(x / z, y / z, log z)``, offset so that an untrained net puts it at z = 3 m;
  bone scales ``exp(scale_range * tanh(raw))`` from the temporal features averaged over the window;
- virtual markers (:func:`virtual_markers`): three points per body segment, off the bone axis, so that the twist of a
  segment about its bone shows in the markers (the joints alone do not give it).

:data:`D3KE_CONFIGS` holds two recipes, ``cpu`` and ``gpu`` (the official sizes), with the backbone each expects.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import roma
import torch
import torch.nn.functional as F
from torch import nn

from kinepose.errors import KineposeError, ShapeError
from kinepose.geometry.rotations import matrix_to_quat, sixd_to_matrix
from kinepose.kinematics.fk import forward_kinematics_matrix
from kinepose.models.layers import check_choice, check_positive
from kinepose.models.registry import build_checked
from kinepose.models.vision.markers import MarkerSet, marker_positions, virtual_markers
from kinepose.skeleton.core import Skeleton

__all__ = [
    "D3KE",
    "D3KE_CONFIGS",
    "TEMPORAL",
    "D3KEOutput",
    "MarkerSet",
    "VideoD3KE",
    "create_d3ke",
    "d3ke_loss",
    "marker_positions",
    "virtual_markers",
]

TEMPORAL = ("transformer", "tcn", "lstm")

# Recipes (documentation; the backbone runs outside this module and its pooled features come in as ``features``).
# Build one with ``create_d3ke(skeleton, **{k: v for k, v in D3KE_CONFIGS[name].items() if k != "backbone"})``.
D3KE_CONFIGS: dict[str, dict] = {
    "cpu": dict(
        backbone="mobilenet_v2", feature_dim=1280, temporal="transformer", d_model=128, heads=4, layers=2, window=27
    ),
    # the official sizes; "resnext101_32x8d" (also 2048 features) is the reproduction's swap for the backbone
    "gpu": dict(
        backbone="resnext50_32x4d", feature_dim=2048, temporal="transformer", d_model=256, heads=8, layers=4, window=243
    ),
}


# ---------------------------------------------------------------------------------------------- temporal nets
class _TCNBlock(nn.Module):
    """Pre-norm residual block on (B, T, C): ``x + Conv1x1(Dropout(GELU(DilatedConv3(LN(x)))))``, same length."""

    def __init__(self, dim: int, dilation: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.conv = nn.Conv1d(dim, dim, 3, dilation=dilation, padding=dilation)
        self.mix = nn.Conv1d(dim, dim, 1)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(x).transpose(1, 2)  # (B, C, T)
        h = self.mix(self.drop(F.gelu(self.conv(h))))
        return x + h.transpose(1, 2)


class _BiLSTM(nn.Module):
    """Bidirectional LSTM on (B, T, C) with ``C // 2`` hidden units each way (output (B, T, C))."""

    def __init__(self, dim: int, layers: int, dropout: float) -> None:
        super().__init__()
        self.lstm = nn.LSTM(dim, dim // 2, num_layers=layers, batch_first=True, bidirectional=True,
                            dropout=dropout if layers > 1 else 0.0)  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lstm(x)[0]


# ------------------------------------------------------------------------------------------------------ model
@dataclass
class D3KEOutput:
    """What :class:`D3KE` predicts for (B, T) frames of J joints and M markers (camera frame, metres).

    Attributes:
        local_rotmat: (B, T, J, 3, 3) rotations relative to the parent, the root's relative to the camera; identity
            for the joints that carry no rotation (end sites).
        local_quat: (B, T, J, 4) the same as w,x,y,z quaternions (w >= 0); not for losses (its gradient is not
            finite at every rotation), use ``local_rotmat``.
        root_pos: (B, T, 3) root position.
        scales: (B, J) bone scale factors, ``scales[:, j]`` for the bone ``parent(j) -> j`` (the root's is 1).
        joints: (B, T, J, 3) joint positions, forward kinematics with rest offsets times ``scales``.
        global_rotmat: (B, T, J, 3, 3) joint rotations relative to the camera.
        markers: (B, T, M, 3) virtual marker positions.
        rotated_joints: the joints that carry a rotation (the angle loss reads these; None: all).
    """

    local_rotmat: torch.Tensor
    local_quat: torch.Tensor
    root_pos: torch.Tensor
    scales: torch.Tensor
    joints: torch.Tensor
    global_rotmat: torch.Tensor
    markers: torch.Tensor
    rotated_joints: tuple[int, ...] | None = None


def create_d3ke(skeleton: Skeleton, **config) -> D3KE:
    """A :class:`D3KE` from config keys (unknown keys and wrong types named, as by ``create_model``)."""
    if "feature_dim" not in config:
        raise KineposeError("model 'd3ke': config key feature_dim (the backbone's feature size) is required")
    return build_checked(D3KE, "d3ke", skeleton, config)


class D3KE(nn.Module):
    """Per-frame backbone features -> local rotations, root position, bone scales, joints and markers (module
    docstring).

    Args:
        skeleton: the skeleton model.
        feature_dim: size ``F`` of each frame's features.
        temporal: the temporal network, one of :data:`TEMPORAL`.
        d_model: feature size inside the temporal network (divisible by ``heads`` for ``transformer``, even for
            ``lstm``).
        heads: attention heads (``transformer``).
        layers: encoder layers, TCN blocks (dilations 1, 3, 9, ...) or LSTM layers.
        window: the most frames per input (the length of the positional embedding).
        dropout: dropout probability in the temporal network.
        markers: the virtual markers; default :func:`virtual_markers` of ``skeleton``.
        scale_range: bone scales lie in ``[exp(-scale_range), exp(scale_range)]``.
    """

    def __init__(
        self,
        skeleton: Skeleton,
        feature_dim: int,
        temporal: str = "transformer",
        d_model: int = 256,
        heads: int = 8,
        layers: int = 3,
        window: int = 27,
        dropout: float = 0.1,
        markers: MarkerSet | None = None,
        scale_range: float = 0.3,
    ) -> None:
        super().__init__()
        check_choice("temporal", temporal, TEMPORAL)
        check_positive(feature_dim=feature_dim, d_model=d_model, heads=heads, layers=layers, window=window)
        if not 0.0 <= dropout < 1.0:
            raise KineposeError(f"d3ke: dropout must be in [0, 1), got {dropout}")
        if not (scale_range >= 0 and math.isfinite(scale_range)):
            raise KineposeError(f"d3ke: scale_range must be finite and >= 0, got {scale_range}")
        if temporal == "transformer" and d_model % heads:
            raise KineposeError(f"d3ke: d_model ({d_model}) must be divisible by heads ({heads})")
        if temporal == "lstm" and d_model % 2:
            raise KineposeError(f"d3ke: d_model ({d_model}) must be even for the bidirectional lstm")
        self.skeleton, self.markers = skeleton, markers if markers is not None else virtual_markers(skeleton)
        if max(*self.markers.joint, *self.markers.child) >= skeleton.num_joints:
            raise KineposeError(f"d3ke: the markers refer to joints beyond the {skeleton.num_joints} of "
                                f"skeleton {skeleton.name!r}")  # fmt: skip
        self.temporal, self.feature_dim, self.window = temporal, int(feature_dim), int(window)
        self.d_model, self.layers, self.scale_range = int(d_model), int(layers), float(scale_range)
        J, D = skeleton.num_joints, self.d_model
        rotated = skeleton.rotated_joints
        self.register_buffer("rotated_index", torch.tensor(rotated), persistent=False)

        self.input_norm = nn.LayerNorm(feature_dim)  # backbone features come at any scale
        self.embed = nn.Linear(feature_dim, D)
        if temporal == "transformer":
            self.pos_embedding = nn.Parameter(0.02 * torch.randn(window, D))
            layer = nn.TransformerEncoderLayer(D, heads, 2 * D, dropout, activation="gelu", batch_first=True,
                                               norm_first=True)  # fmt: skip
            self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        elif temporal == "tcn":
            self.encoder = nn.Sequential(*(_TCNBlock(D, 3**i, dropout) for i in range(layers)))
        else:
            self.encoder = _BiLSTM(D, layers, dropout)
        self.out_norm = nn.LayerNorm(D)

        # heads; small weights and biases at the rest pose, z = 3 m and scale 1, so that training starts from a
        # plausible skeleton in front of the camera
        self.rot_head = nn.Linear(D, 6 * len(rotated))
        self.root_head = nn.Linear(D, 3)  # (x / z, y / z, log z - log 3)
        self.scale_head = nn.Sequential(nn.Linear(D, D), nn.GELU(), nn.Linear(D, J))
        with torch.no_grad():
            for lin in (self.rot_head, self.root_head, self.scale_head[2]):
                lin.weight.mul_(0.01)
                lin.bias.zero_()
            self.rot_head.bias.copy_(torch.tensor([1.0, 0, 0, 0, 1, 0]).repeat(len(rotated)))  # identity columns
        self.log_z0 = math.log(3.0)

    @property
    def receptive_field(self) -> int:
        """Frames one output sees: the whole window except for the TCN (``1 + 2 * (1 + 3 + ... + 3**(layers-1))``)."""
        if self.temporal == "tcn":
            return 1 + sum(2 * 3**i for i in range(self.layers))
        return self.window

    def _check(self, features: torch.Tensor) -> None:
        if features.dim() != 3 or features.shape[-1] != self.feature_dim:
            raise ShapeError(f"d3ke: features must have shape (B, T, {self.feature_dim}), got {tuple(features.shape)}")
        if not 1 <= features.shape[1] <= self.window:
            raise ShapeError(
                f"d3ke: features of shape {tuple(features.shape)} have {features.shape[1]} frames; the model takes "
                f"1 to window = {self.window}"
            )

    def forward(self, features: torch.Tensor) -> D3KEOutput:
        """Args:
            features: (B, T, F) per-frame backbone features, ``T <= window``.

        Returns:
            :class:`D3KEOutput` of every frame.
        """
        self._check(features)
        B, T, _ = features.shape
        sk, J = self.skeleton, self.skeleton.num_joints
        x = self.embed(self.input_norm(features))  # (B, T, D)
        if self.temporal == "transformer":
            x = x + self.pos_embedding[:T]
        h = self.out_norm(self.encoder(x))  # (B, T, D)

        R = sixd_to_matrix(self.rot_head(h).reshape(B, T, -1, 6))  # (B, T, R, 3, 3)
        eye = torch.eye(3, dtype=R.dtype, device=R.device).expand(B, T, J, 3, 3)
        local = eye.index_copy(2, self.rotated_index, R)  # (B, T, J, 3, 3), identity at end sites

        u, v, w = self.root_head(h).unbind(-1)  # (B, T) each
        z = torch.exp(w + self.log_z0)
        root = torch.stack([u * z, v * z, z], dim=-1)  # (B, T, 3)

        s = torch.exp(self.scale_range * torch.tanh(self.scale_head(h.mean(1))))  # (B, J)
        scales = torch.cat([torch.ones_like(s[:, :1]), s[:, 1:]], dim=1)  # the root's offset is no bone
        offsets = sk.offsets_tensor(h.dtype, h.device) * scales[..., None]  # (B, J, 3)

        fk = forward_kinematics_matrix(sk, local, root, offsets[:, None])
        markers = marker_positions(fk.global_rotmat, fk.positions, self.markers, scales[:, None])  # (B, T, M, 3)
        return D3KEOutput(local, matrix_to_quat(local), root, scales, fk.positions, fk.global_rotmat, markers,
                          sk.rotated_joints)  # fmt: skip


class VideoD3KE(nn.Module):
    """A backbone and :class:`D3KE` trained together, end to end, from frames: the fine-tuned D3KE.

    Each frame goes through ``backbone`` (a :class:`~kinepose.models.vision.backbones.Backbone`, pretrained or not),
    stage ``stage``'s map is averaged to ``grid x grid`` cells (as :func:`~kinepose.models.vision.features.
    extract_features` does for the cached, frozen path, so the two paths see the same features) and the window of
    features goes to ``d3ke``. With ``frozen_bn`` the backbone's BatchNorm layers keep their loaded statistics in
    training (the usual choice when fine-tuning ImageNet weights on small batches of correlated frames); a backbone
    trained from scratch needs ``frozen_bn=False``.

    Args:
        backbone: the image backbone (its parameters train unless it was created with ``freeze=True``).
        d3ke: the temporal network and skeleton model; its ``feature_dim`` must be ``channels[stage] * grid**2``.
        stage: backbone stage whose map is pooled.
        grid: cells per side of the pooled map (0: the global mean).
        frozen_bn: keep BatchNorm statistics as loaded while training.
    """

    def __init__(self, backbone: nn.Module, d3ke: D3KE, stage: int = 3, grid: int = 4, frozen_bn: bool = True) -> None:
        super().__init__()
        channels = backbone.channels[stage]
        want = channels * max(grid, 1) ** 2
        if d3ke.feature_dim != want:
            raise KineposeError(f"VideoD3KE: stage {stage} of {backbone.name} pooled to {grid}x{grid} gives {want} "
                                f"features, the D3KE model reads {d3ke.feature_dim}")  # fmt: skip
        self.backbone, self.d3ke = backbone, d3ke
        self.stage, self.grid, self.frozen_bn = int(stage), int(grid), bool(frozen_bn)

    @property
    def window(self) -> int:
        return self.d3ke.window

    @property
    def skeleton(self) -> Skeleton:
        return self.d3ke.skeleton

    def train(self, mode: bool = True) -> VideoD3KE:
        super().train(mode)
        if mode and self.frozen_bn:
            for m in self.backbone.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self

    def features(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, T, 3, S, S) uint8, or float in [0, 1] -> (B, T, F) pooled backbone features."""
        if frames.dim() != 5 or frames.shape[2] != 3:
            raise ShapeError(f"VideoD3KE: frames must be (B, T, 3, S, S), got {tuple(frames.shape)}")
        B, T = frames.shape[:2]
        x = frames.flatten(0, 1)
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
        fmap = self.backbone.stages(x, self.stage)[-1]
        f = F.adaptive_avg_pool2d(fmap, self.grid).flatten(1) if self.grid > 0 else fmap.mean((-2, -1))
        return f.reshape(B, T, -1)

    def forward(self, frames: torch.Tensor) -> D3KEOutput:
        """(B, T, 3, S, S) frames, ``T <= window`` -> :class:`D3KEOutput` of every frame."""
        return self.d3ke(self.features(frames))


# ------------------------------------------------------------------------------------------------------- loss
def d3ke_loss(
    out: D3KEOutput,
    target: dict,
    weights: tuple[float, float, float, float] = (1.0, 2.0, 0.1, 0.01),
    beta_angle_deg: float = 5.0,
    beta_scale: float = 0.05,
    beta_pos: float = 0.01,
) -> tuple[torch.Tensor, dict[str, float]]:
    """D3KE's loss: ``w1 * joints + w2 * markers + w3 * scales + w4 * angles``, each a mean smooth-L1.

    - ``joints``: smooth-L1 (``beta_pos`` metres) of every coordinate of the camera-frame joint positions (not root
      relative, as in the paper: the root position is trained by it too);
    - ``markers``: the same for the markers;
    - ``scales``: smooth-L1 (``beta_scale``) of the bone scales, bones only (joints 1 and up);
    - ``angles``: smooth-L1 (``beta_angle_deg``, in radians) of the geodesic angle (radians) between the predicted
      and true local rotation of every rotated joint (``out.rotated_joints``). The angle comes from the matrices
      (``roma.rotmat_geodesic_distance`` with its arcsine clamped to ``1 - 1e-6``, whose gradient stays finite near
      180 degrees); no quaternions, whose conversion has a NaN gradient at some rotations.

    The default weights are the official ones (1.0 joints, 2.0 markers, 0.1 scales, 0.01 angles).

    Args:
        out: the model's :class:`D3KEOutput`.
        target: ``joints`` (B, T, J, 3), ``markers`` (B, T, M, 3), ``scales`` (B, J), ``local_rotmat``
            (B, T, J, 3, 3), camera frame, metres.

    Returns:
        The total (a scalar tensor) and ``{"joints", "markers", "scales", "angles"}``, the unweighted terms as floats.
    """
    keys = ("joints", "markers", "scales", "local_rotmat")
    missing = [k for k in keys if k not in target]
    if missing:
        raise KineposeError(f"d3ke_loss: target lacks key(s) {missing}; it needs {list(keys)}")
    for k in keys:
        if tuple(target[k].shape) != tuple(getattr(out, k).shape):
            raise ShapeError(f"d3ke_loss: target[{k!r}] has shape {tuple(target[k].shape)}, the output "
                             f"{tuple(getattr(out, k).shape)}")  # fmt: skip
    if len(weights) != 4:
        raise KineposeError(f"d3ke_loss: weights must be 4 numbers (joints, markers, scales, angles), got {weights}")
    terms = {
        "joints": F.smooth_l1_loss(out.joints, target["joints"].to(out.joints), beta=beta_pos),
        "markers": F.smooth_l1_loss(out.markers, target["markers"].to(out.markers), beta=beta_pos),
        "scales": F.smooth_l1_loss(out.scales[:, 1:], target["scales"][:, 1:].to(out.scales), beta=beta_scale),
    }
    rot = list(range(out.local_rotmat.shape[2])) if out.rotated_joints is None else list(out.rotated_joints)
    R_pred, R_true = out.local_rotmat[:, :, rot], target["local_rotmat"][:, :, rot].to(out.local_rotmat)
    angle = roma.rotmat_geodesic_distance(R_pred, R_true, clamping=1 - 1e-6)  # (B, T, R)
    terms["angles"] = F.smooth_l1_loss(angle, torch.zeros_like(angle), beta=math.radians(beta_angle_deg))
    total = sum(w * t for w, t in zip(weights, terms.values(), strict=True))
    return total, {k: float(t.detach()) for k, t in terms.items()}
