"""Image + joint fusion (the research notes' seed0 hybrids): pixels say what joint positions cannot.

Joint positions fix most rotations of a skeleton, but not those of segments without a child joint: the humanoid's
neck (where the head faces) and ankles (where the feet point). A picture shows them. :class:`FusionIK` takes
camera-frame 3D joints and image tokens (backbone features of the whole frame and of crops around the joints,
:func:`kinepose.models.vision.features.crop_boxes`) and predicts:

- for the joints the positions determine, the geometric answer (analytic IK, then ``fit_iterations`` steps of the
  least-squares skeleton fit), so it is never worse there than geometry;
- for the others, a global rotation in the camera frame from the network, turned into a local one through the
  parent's geometric global rotation (``local = G_parent^T G_pred``): the image says where the head faces in the
  camera, the joints where the chest is.

``variant`` picks how the two inputs meet (the notes' three hybrids and two references):

- ``concat``: each joint token is its own features concatenated with a projection of all image tokens, then
  self-attention over the joints;
- ``cross_attention``: a multi-input encoder, the joint branch and the image branch each self-attend, then
  ``layers`` blocks in which each branch attends to the other (both ways);
- ``aux_lengths``: ``concat`` plus an auxiliary decoder predicting every bone length from the image tokens
  (trained with ``aux['bone_lengths']`` against the true lengths);
- ``joints_only``: the same network without image tokens (the joints-only reference);
- ``image_only``: the first image token (the whole frame) alone; every rotation, the root's in the camera frame
  included, comes from the network (local rotations from predicted parent and child globals).

``frame`` picks the frame of the network's 6D output ``N`` for a learned joint ``j`` (only ``camera`` for
``image_only``, which has no fit):

- ``camera``: the camera-frame rotation itself, ``G_pred = N``;
- ``ray``: relative to the line of sight through the joint, ``G_pred = R_ray N`` with ``R_ray`` the shortest
  rotation taking the camera's optical axis to the ray through the joint's position (:func:`ray_rotation`). A crop
  shows a segment relative to that ray (a head at the top of the picture is seen from below), and it does not show
  where in the picture it was cut: in the camera frame that is an error the crop alone cannot undo;
- ``fit``: a correction of the fit's answer in the joint's own frame, ``G_pred = G_fit[j] N`` (``local = L_fit N``,
  the parent's rotation being the fit's);
- ``fit_camera``: a correction in the camera frame, ``G_pred = N G_fit[j]``.

For the two ``fit`` frames the last layer starts near the identity (its bias the identity's 6D, its weights scaled by
0.01), so an untrained network gives nearly the fit's answer (the rest pose for the neck and ankles) and training
moves away from it as far as the inputs say.

Joint token: standardized root-relative position, bone vector over the rest length, visibility, and the 6D global
rotation of the geometric solution (13 numbers), embedded and added to a learned per-joint embedding.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from kinepose.errors import KineposeError, ShapeError
from kinepose.geometry.rotations import matrix_to_quat, matrix_to_sixd, quat_to_matrix, sixd_to_matrix
from kinepose.kinematics.fitting import fit_skeleton
from kinepose.kinematics.ik import determined_mask
from kinepose.models.base import ModelOutput, PoseModel, scatter_rotations
from kinepose.models.layers import AttentionEncoder, bone_vectors, check_choice, check_positive
from kinepose.models.registry import build_checked
from kinepose.skeleton.core import Skeleton

__all__ = ["FRAMES", "VARIANTS", "CropEncoder", "CropFusion", "FusionIK", "MapEncoder", "create_crop_fusion",
           "create_fusion", "create_map_fusion", "ray_rotation"]  # fmt: skip

VARIANTS = ("concat", "cross_attention", "aux_lengths", "joints_only", "image_only")
FRAMES = ("camera", "ray", "fit", "fit_camera")


def ray_rotation(points: torch.Tensor) -> torch.Tensor:
    """(..., 3) camera-frame points (z > 0) -> (..., 3, 3) the shortest rotation taking the optical axis (0, 0, 1) to
    the unit ray through each point: ``R = I + [v]x + [v]x^2 / (1 + c)``, ``v = z x r``, ``c = z . r``."""
    r = torch.nn.functional.normalize(points, dim=-1)
    vx, vy, c = -r[..., 1], r[..., 0], r[..., 2]  # v = (0, 0, 1) x r = (-r_y, r_x, 0)
    z = torch.zeros_like(c)
    K = torch.stack([torch.stack([z, z, vy], -1), torch.stack([z, z, -vx], -1), torch.stack([-vy, vx, z], -1)], -2)
    eye = torch.eye(3, dtype=points.dtype, device=points.device).expand(K.shape)
    return eye + K + (K @ K) / (1.0 + c).clamp_min(1e-6)[..., None, None]


class CrossBlock(nn.Module):
    """Pre-norm cross-attention of ``x`` onto ``context``, then an MLP, both residual."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.norm_q, self.norm_kv, self.norm_mlp = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(2 * dim, dim))

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, N, dim) queries, (B, M, dim) context -> (B, N, dim) and (B, heads, N, M) attention weights."""
        kv = self.norm_kv(context)
        h, w = self.attn(self.norm_q(x), kv, kv, need_weights=True, average_attn_weights=False)
        x = x + h
        return x + self.mlp(self.norm_mlp(x)), w


def create_fusion(skeleton: Skeleton, **config) -> FusionIK:
    """A :class:`FusionIK` from config keys (unknown keys and wrong types named, as by ``create_model``)."""
    return build_checked(FusionIK, "fusion", skeleton, config)


class FusionIK(PoseModel):
    """Geometry for what positions determine, image + joints for the rest (module docstring). Not in the joints-only
    registry of ``kinepose train``: it needs image tokens (:mod:`kinepose.training.fusion` trains it).

    Args:
        skeleton: the skeleton.
        variant: one of :data:`VARIANTS`.
        image_features: size ``F`` of each image token (the backbone's pooled channels).
        image_tokens: number ``K`` of image tokens per frame (e.g. the whole frame and 3 joint crops).
        dim: token feature size.
        layers: self-attention blocks over the joints (and cross-attention blocks for ``cross_attention``).
        heads: attention heads.
        dropout: dropout probability.
        fit_iterations: least-squares fit steps after analytic IK in the geometric part.
        frame: one of :data:`FRAMES` (module docstring): the camera's, the line of sight's, or a correction of the
            fit's answer in the joint's (``fit``) or the camera's (``fit_camera``) frame.
    """

    family = "fusion"

    def __init__(
        self,
        skeleton: Skeleton,
        variant: str = "cross_attention",
        image_features: int = 1280,
        image_tokens: int = 4,
        dim: int = 128,
        layers: int = 2,
        heads: int = 4,
        dropout: float = 0.0,
        fit_iterations: int = 2,
        frame: str = "camera",
    ) -> None:
        super().__init__(skeleton, window=1, causal=True)
        check_choice("variant", variant, VARIANTS)
        check_choice("frame", frame, FRAMES)
        if variant == "image_only" and frame != "camera":
            raise KineposeError(f"fusion: frame={frame!r} needs the joints, which image_only does not read")
        check_positive(image_features=image_features, image_tokens=image_tokens, dim=dim, layers=layers)
        check_positive(0, fit_iterations=fit_iterations)
        J = skeleton.num_joints
        self.variant, self.fit_iterations, self.frame = variant, int(fit_iterations), frame
        self.image_features, self.image_tokens = int(image_features), int(image_tokens)
        rotated = list(skeleton.rotated_joints)
        det = determined_mask(skeleton, local=True)
        # joints whose rotation comes from the network (all of them without joint input)
        learned = [j for j in rotated if variant == "image_only" or not det[j]]
        if not learned:
            raise KineposeError(f"fusion: every rotation of skeleton {skeleton.name!r} is fixed by its joint positions")
        self.learned = learned
        self.register_buffer("learned_index", torch.tensor(learned), persistent=False)
        self.register_buffer("rotated_index", torch.tensor(rotated), persistent=False)
        self.register_buffer(
            "rest_lengths", torch.tensor(skeleton.bone_lengths(), dtype=torch.float32).clamp_min(1e-3), persistent=False
        )
        uses_image = variant != "joints_only"
        uses_joints = variant != "image_only"
        if uses_image:
            self.image_norm = nn.LayerNorm(image_features)
            self.image_proj = nn.Linear(image_features, dim)
            self.image_embedding = nn.Parameter(0.02 * torch.randn(image_tokens, dim))
        if uses_joints:
            self.joint_embed = nn.Sequential(nn.Linear(13, dim), nn.ReLU(), nn.Linear(dim, dim))
            self.joint_embedding = nn.Parameter(0.02 * torch.randn(J, dim))
        if variant in ("concat", "aux_lengths"):
            self.image_summary = nn.Linear(image_tokens * dim, dim)
            self.merge = nn.Sequential(nn.Linear(2 * dim, dim), nn.ReLU())
        if uses_joints:
            self.mixer = AttentionEncoder(dim, layers, heads, dropout)
        if variant == "cross_attention":
            self.image_encoder = AttentionEncoder(dim, 1, heads, dropout)
            self.joints_to_image = nn.ModuleList(CrossBlock(dim, heads, dropout) for _ in range(layers))
            self.image_to_joints = nn.ModuleList(CrossBlock(dim, heads, dropout) for _ in range(layers))
        if variant == "aux_lengths":
            self.length_decoder = nn.Sequential(nn.Linear(image_tokens * dim, dim), nn.ReLU(), nn.Linear(dim, J))
        if variant == "image_only":
            self.image_mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.ReLU(), nn.Dropout(dropout),
                                           nn.Linear(2 * dim, dim), nn.ReLU())  # fmt: skip
            self.query = nn.Parameter(0.02 * torch.randn(len(learned), dim))
        self.rot_head = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, 6))
        if frame.startswith("fit"):  # start at the identity: the fit's answer
            last = self.rot_head[-1]
            with torch.no_grad():
                last.weight.mul_(0.01)
                last.bias.copy_(matrix_to_sixd(torch.eye(3)))

    # ----------------------------------------------------------------------------------------------- inputs
    def _check_image(self, image_tokens: torch.Tensor | None, batch: int) -> torch.Tensor | None:
        if self.variant == "joints_only":
            return None
        K, F = self.image_tokens, self.image_features
        if image_tokens is None:
            raise KineposeError(f"fusion ({self.variant}): pass image_tokens of shape (B, {K}, {F})")
        if tuple(image_tokens.shape) != (batch, K, F):
            raise ShapeError(f"image_tokens: expected shape ({batch}, {K}, {F}), got {tuple(image_tokens.shape)}")
        return image_tokens

    def geometry(self, joints: torch.Tensor, visibility: torch.Tensor | None):
        """(B, J, 3) camera-frame joints -> the fitted :class:`~kinepose.kinematics.ik.IKResult` (no gradient)."""
        with torch.no_grad():
            return fit_skeleton(self.geometry_skeleton, joints.detach().double(), iterations=self.fit_iterations,
                                weights=None if visibility is None else visibility.double())  # fmt: skip

    def joint_tokens(self, joints: torch.Tensor, visibility: torch.Tensor | None, geo_global: torch.Tensor):
        """(B, 1, J, 3), (B, 1, J), (B, J, 3, 3) -> (B, J, dim)."""
        x = self.normalize(joints, visibility)[:, 0]  # (B, J, 3)
        vis = joints.new_ones(x.shape[:2]) if visibility is None else visibility[:, 0].to(x.dtype)  # (B, J)
        bones = bone_vectors(self.skeleton, joints[:, 0], vis)  # (B, J, 3)
        six = matrix_to_sixd(geo_global.to(x.dtype))  # (B, J, 6)
        return self.joint_embed(torch.cat([x, bones, vis[..., None], six], dim=-1)) + self.joint_embedding

    # ---------------------------------------------------------------------------------------------- forward
    def forward(
        self,
        joints: torch.Tensor,
        visibility: torch.Tensor | None = None,
        image_tokens: torch.Tensor | None = None,
    ) -> ModelOutput:
        """Args:
            joints: (B, 1, J, 3) camera-frame positions, metres (for ``image_only`` only their root is used, as the
                root position).
            visibility: optional (B, 1, J) mask.
            image_tokens: (B, K, F) backbone features (not for ``joints_only``).

        Returns:
            :class:`ModelOutput`: local rotations (the root's in the camera frame), root position, attention maps,
            ``aux['global_pred']`` (B, L, 3, 3) the network's camera-frame rotations of the joints it predicts,
            ``aux['learned_local']`` (B, L, 3, 3) their local rotations as matrices (the loss reads these: the
            gradient of the quaternion conversion is not finite everywhere),
            ``aux['bone_lengths']`` (B, J) for ``aux_lengths``.
        """
        self.check_input(joints, visibility)
        B = joints.shape[0]
        img = self._check_image(image_tokens, B)
        v = self.variant
        attention: list[torch.Tensor] = []
        aux: dict = {}
        if img is not None:
            m = self.image_proj(self.image_norm(img.to(joints.dtype))) + self.image_embedding  # (B, K, dim)
        if v == "image_only":
            g = self.image_mlp(m[:, 0])  # (B, dim)
            h = g[:, None] + self.query  # (B, L, dim)
            G_pred = sixd_to_matrix(self.rot_head(h))  # (B, L, 3, 3)
            return self._image_only_output(joints, G_pred, attention)
        vis = None if visibility is None else visibility[:, 0]
        geo = self.geometry(joints[:, 0], vis)
        geo_global = geo.global_rotmat.to(joints.dtype)  # (B, J, 3, 3)
        h = self.joint_tokens(joints, visibility, geo_global)  # (B, J, dim)
        if v in ("concat", "aux_lengths"):
            summary = self.image_summary(m.flatten(1))  # (B, dim)
            h = self.merge(torch.cat([h, summary[:, None].expand_as(h)], dim=-1))
            if v == "aux_lengths":
                aux["bone_lengths"] = self.rest_lengths * torch.exp(0.2 * torch.tanh(self.length_decoder(m.flatten(1))))
        h, w = self.mixer(h)
        attention += w
        if v == "cross_attention":
            m, _ = self.image_encoder(m)
            for to_img, to_joints in zip(self.joints_to_image, self.image_to_joints, strict=True):
                h_new, w = to_img(h, m)  # joints attend to the image
                m, _ = to_joints(m, h)  # the image attends to the joints
                h = h_new
                attention.append(w)
        G_pred = sixd_to_matrix(self.rot_head(h[:, self.learned_index]))  # (B, L, 3, 3)
        if self.frame == "ray":  # relative to the line of sight through the joint
            G_pred = ray_rotation(joints[:, 0, self.learned_index]) @ G_pred
        elif self.frame == "fit":  # a correction in the joint's frame: G_fit N
            G_pred = geo_global[:, self.learned_index] @ G_pred
        elif self.frame == "fit_camera":  # a correction in the camera frame: N G_fit
            G_pred = G_pred @ geo_global[:, self.learned_index]
        local = _local_from_globals(geo, G_pred, self.learned, self.skeleton.parents, joints.dtype)
        quat_local = scatter_rotations(self.skeleton, matrix_to_quat(local[:, self.rotated_index]))
        aux.update(global_pred=G_pred, learned_local=local[:, self.learned_index],
                   geometric_quat=geo.local_quat.to(joints.dtype))  # fmt: skip
        return ModelOutput(quat_local, geo.root_pos.to(joints.dtype), attention=attention or None, aux=aux)

    def _image_only_output(self, joints: torch.Tensor, G_pred: torch.Tensor, attention) -> ModelOutput:
        J = self.num_joints
        eye = torch.eye(3, dtype=G_pred.dtype, device=G_pred.device)
        glob = [eye.expand(G_pred.shape[0], 3, 3)] * J
        for i, j in enumerate(self.learned):
            glob[j] = G_pred[:, i]
        for j, p in enumerate(self.skeleton.parents):  # end sites and unrotated joints follow their parent
            if j not in self.learned and p >= 0:
                glob[j] = glob[p]
        local = [glob[j] if p < 0 else glob[p].transpose(-1, -2) @ glob[j] for j, p in enumerate(self.skeleton.parents)]
        R = torch.stack(local, 1)[:, self.rotated_index]  # (B, R, 3, 3)
        quat_local = scatter_rotations(self.skeleton, matrix_to_quat(R))
        aux = {"global_pred": G_pred, "learned_local": torch.stack(local, 1)[:, self.learned_index]}
        return ModelOutput(quat_local, joints[:, 0, 0], attention=None, aux=aux)

    def learned_targets(self, global_cam: torch.Tensor) -> torch.Tensor:
        """(B, J, 3, 3) true camera-frame global rotations -> (B, L, 3, 3) those of the joints the network predicts."""
        return global_cam[:, self.learned_index]


def _local_from_globals(geo, G_pred: torch.Tensor, learned: list[int], parents, dtype) -> torch.Tensor:
    """(B, J, 3, 3) local rotations: the geometric ones, those of ``learned`` joints from the predicted global rotation
    and the parent's geometric global rotation."""
    local = list(quat_to_matrix(geo.local_quat.to(dtype)).unbind(1))
    Gg = geo.global_rotmat.to(dtype)
    for i, j in enumerate(learned):
        p = parents[j]
        local[j] = G_pred[:, i] if p < 0 else Gg[:, p].transpose(-1, -2) @ G_pred[:, i]
    return torch.stack(local, 1)


class CropEncoder(nn.Module):
    """A small CNN trained from scratch, end to end with the fusion network, on joint crops: (B, K, 3, S, S) uint8 or
    [0, 1] float -> (B, K, features). Four 3x3 stride-2 conv blocks (BatchNorm, ReLU) then a linear layer on the
    flattened map, which keeps the layout (where the face sits in the head crop is what says where it faces). One
    encoder per crop slot (``separate=True``) or one shared by all of them (the fusion network's token embedding
    tells the slots apart). In training, ``jitter`` scales a random brightness and contrast change per crop."""

    def __init__(self, crops: int, size: int = 64, width: int = 32, features: int = 256, separate: bool = True,
                 jitter: float = 0.15) -> None:  # fmt: skip
        super().__init__()
        self.jitter = float(jitter)
        check_positive(crops=crops, size=size, width=width, features=features)
        if size % 16:
            raise KineposeError(f"CropEncoder: size must be a multiple of 16, got {size}")
        self.crops, self.size, self.features, self.separate = int(crops), int(size), int(features), bool(separate)

        def cnn() -> nn.Sequential:
            chans = [3, width, 2 * width, 4 * width, 4 * width]
            layers: list[nn.Module] = []
            for a, b in itertools.pairwise(chans):
                layers += [nn.Conv2d(a, b, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(b), nn.ReLU()]
            layers += [nn.Flatten(), nn.Linear(4 * width * (size // 16) ** 2, features)]
            return nn.Sequential(*layers)

        self.nets = nn.ModuleList(cnn() for _ in range(crops if separate else 1))

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        K, S = self.crops, self.size
        if crops.dim() != 5 or tuple(crops.shape[1:]) != (K, 3, S, S):
            raise ShapeError(f"crops: expected shape (B, {K}, 3, {S}, {S}), got {tuple(crops.shape)}")
        x = crops.float() / 255.0 if crops.dtype == torch.uint8 else crops.float()
        if self.training and self.jitter > 0:  # brightness and contrast per crop: lighting is not a cue
            B = x.shape[0]
            gain = 1.0 + self.jitter * torch.randn(B, K, 1, 1, 1, device=x.device)
            x = (x - 0.5) * gain + self.jitter * 0.5 * torch.randn(B, K, 1, 1, 1, device=x.device)
        else:
            x = x - 0.5
        if self.separate:
            return torch.stack([net(x[:, k]) for k, net in enumerate(self.nets)], 1)
        B = x.shape[0]
        return self.nets[0](x.flatten(0, 1)).reshape(B, K, -1)


class MapEncoder(nn.Module):
    """A small CNN, trained with the fusion network, on the cached feature maps of joint crops from an early stage
    of a frozen pretrained backbone (:func:`kinepose.training.fusion.crop_feature_maps`, e.g. ImageNet MobileNetV2's
    stride-8 map): (B, K, C, S, S) -> (B, K, features), ``S`` = ``size``. The full-resolution layers then run once
    per crop, not once per step, and they are ImageNet's. Per crop slot (one network each): BatchNorm of the input
    maps, 3x3 stride-2 conv blocks (BatchNorm, ReLU) of ``width`` channels down to 4x4 or less, a 3x3 block of
    ``2 width``, then dropout (``dropout``, in training) and a linear layer on the flattened map (which keeps the
    layout, as :class:`CropEncoder` does). Cached maps allow no photometric jitter (:class:`CropEncoder` has it)."""

    def __init__(self, crops: int, channels: int, size: int, width: int = 64, features: int = 256,
                 dropout: float = 0.0) -> None:  # fmt: skip
        super().__init__()
        check_positive(crops=crops, channels=channels, size=size, width=width, features=features)
        if not 0.0 <= dropout < 1.0:
            raise KineposeError(f"MapEncoder: dropout (map_dropout) must be in [0, 1), got {dropout}")
        self.crops, self.channels, self.size, self.features = int(crops), int(channels), int(size), int(features)

        def cnn() -> nn.Sequential:
            layers: list[nn.Module] = [nn.BatchNorm2d(channels)]
            c, s = channels, size
            while s > 4:
                layers += [nn.Conv2d(c, width, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
                c, s = width, (s + 1) // 2
            layers += [nn.Conv2d(c, 2 * width, 3, padding=1, bias=False), nn.BatchNorm2d(2 * width), nn.ReLU(),
                       nn.Flatten(), nn.Dropout(dropout), nn.Linear(2 * width * s * s, features)]  # fmt: skip
            return nn.Sequential(*layers)

        self.nets = nn.ModuleList(cnn() for _ in range(crops))

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        K, C, S = self.crops, self.channels, self.size
        if maps.dim() != 5 or tuple(maps.shape[1:]) != (K, C, S, S):
            raise ShapeError(f"crop feature maps: expected shape (B, {K}, {C}, {S}, {S}), got {tuple(maps.shape)}")
        x = maps.float()
        return torch.stack([net(x[:, k]) for k, net in enumerate(self.nets)], 1)


class CropFusion(nn.Module):
    """:class:`CropEncoder` (or :class:`MapEncoder`) + :class:`FusionIK`, trained together: called as the fusion
    model with ``image_tokens`` the (B, K, 3, S, S) crops (:func:`kinepose.models.vision.features.joint_crops`), or
    their (B, K, C, h, w) feature maps for a :class:`MapEncoder`."""

    def __init__(self, fusion: FusionIK, encoder: CropEncoder | MapEncoder) -> None:
        super().__init__()
        if (fusion.image_tokens, fusion.image_features) != (encoder.crops, encoder.features):
            raise KineposeError(
                f"CropFusion: the fusion model reads {fusion.image_tokens} tokens of {fusion.image_features}, the "
                f"encoder gives {encoder.crops} of {encoder.features}"
            )
        self.fusion, self.encoder = fusion, encoder

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self._modules["fusion"], name)  # variant, learned_index, skeleton, set_normalization...

    def forward(self, joints: torch.Tensor, visibility: torch.Tensor | None = None,
                image_tokens: torch.Tensor | None = None) -> ModelOutput:  # fmt: skip
        if image_tokens is None:
            raise KineposeError("CropFusion: pass the joint crops (or their feature maps) as image_tokens")
        return self.fusion(joints, visibility, self.encoder(image_tokens))


def create_crop_fusion(skeleton: Skeleton, crops: int, size: int = 64, width: int = 32, features: int = 256,
                       separate: bool = True, **config) -> CropFusion:  # fmt: skip
    """A :class:`CropFusion`: ``config`` goes to :func:`create_fusion` (``image_tokens``/``image_features`` set)."""
    enc = CropEncoder(crops, size, width, features, separate)
    return CropFusion(create_fusion(skeleton, image_tokens=crops, image_features=features, **config), enc)


def create_map_fusion(skeleton: Skeleton, crops: int, channels: int, size: int, width: int = 64,
                      features: int = 256, map_dropout: float = 0.0, **config) -> CropFusion:  # fmt: skip
    """A :class:`CropFusion` on cached crop feature maps of ``channels`` x ``size`` x ``size`` (:class:`MapEncoder`,
    its dropout ``map_dropout``); ``config`` goes to :func:`create_fusion` (``image_tokens``/``image_features`` set)."""
    enc = MapEncoder(crops, channels, size, width, features, map_dropout)
    return CropFusion(create_fusion(skeleton, image_tokens=crops, image_features=features, **config), enc)
