"""Image crop -> 3D hand joints: :class:`ImageHand`, a backbone, its features pooled to a grid, then an MLP head.

The output is the hand's joints (B, J, 3) (J = 21 for the ``hand21`` skeleton) in metres, in the camera frame,
root-relative: joint 0 (the wrist) is exactly at the origin (the head predicts the other J - 1 joints and a row of
zeros is prepended), the convention of the Ego-Exo4D hand benchmark
(:func:`kinepose.metrics.positions.egoexo4d_mpjpe`).

The backbone is a torchvision :class:`~kinepose.models.vision.backbones.Backbone` (the ``vision`` extra) or a pure
torch :class:`~kinepose.models.vision.potter.PotterBackbone`; both give the feature map of any stage. The map of
stage ``stage`` is averaged to ``grid x grid`` cells (``grid = 0``: its global mean), flattened to ``F`` numbers
(``channels[stage] * grid^2``), and the :class:`HandHead` regresses the joints from them.

Two ways in, one model:

- ``model(images)``: (B, 3, H, W) float in [0, 1] or (B, H, W, 3) uint8 (a rendered set's images) -> joints; the
  gradient reaches the backbone unless it is frozen (end-to-end training);
- ``model(features=f)``: (B, F) features from :meth:`ImageHand.features` -> joints, the head alone. With a frozen
  backbone the features of a training set are computed once and cached
  (:func:`kinepose.training.image_hand.cache_features`) and only the head trains; both ways give the same joints.

:func:`create_image_hand` builds one by backbone name.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn

from kinepose.errors import KineposeError, ShapeError
from kinepose.models.layers import check_positive
from kinepose.models.vision.backbones import create_backbone, list_backbones
from kinepose.models.vision.potter import POTTER_CONFIGS, create_potter
from kinepose.skeleton.core import Skeleton

__all__ = ["HandHead", "ImageHand", "create_image_hand", "image_hand_backbones"]

#: the keyword arguments of :func:`create_image_hand` that go to :class:`ImageHand`
_MODEL_KEYS = ("layers", "dropout", "image_size")


class HandHead(nn.Module):
    """An MLP from pooled features to root-relative joints: (B, F) -> (B, J, 3), joint 0 at exactly 0.

    LayerNorm on the input (frozen ImageNet features have very uneven scales), ``layers`` hidden Linear + ReLU
    (+ dropout) blocks of width ``hidden``, then a Linear to the (J - 1) x 3 standardized coordinates of the joints
    but the root; :meth:`set_normalization` sets the mean and std they are standardized with (by default 0 and
    5 cm, about a hand's scale).

    Args:
        in_features: F, the size of the features.
        num_joints: J, joints of the skeleton (root first).
        hidden: width of the hidden layers.
        layers: number of hidden layers (0: a linear model on the normalized features).
        dropout: dropout probability after each hidden layer.
    """

    def __init__(self, in_features: int, num_joints: int, hidden: int = 512, layers: int = 2,
                 dropout: float = 0.0) -> None:  # fmt: skip
        super().__init__()
        check_positive(in_features=in_features, hidden=hidden)
        check_positive(2, num_joints=num_joints)
        check_positive(0, layers=layers)
        if not 0.0 <= dropout < 1.0:
            raise KineposeError(f"HandHead: dropout must be in [0, 1), got {dropout}")
        self.in_features, self.num_joints = int(in_features), int(num_joints)
        blocks: list[nn.Module] = [nn.LayerNorm(in_features)]
        width = in_features
        for _ in range(layers):
            blocks += [nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout)]
            width = hidden
        blocks.append(nn.Linear(width, 3 * (num_joints - 1)))
        self.mlp = nn.Sequential(*blocks)
        self.register_buffer("out_mean", torch.zeros(num_joints - 1, 3))
        self.register_buffer("out_std", torch.full((num_joints - 1, 3), 0.05))

    @torch.no_grad()
    def set_normalization(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Standardize the output with the (J, 3) mean and std of root-relative training joints (metres; the root's
        row is ignored, std floored at 1 mm)."""
        J = self.num_joints
        for name, value in (("mean", mean), ("std", std)):
            if tuple(value.shape) != (J, 3):
                raise ShapeError(f"HandHead.set_normalization: {name} must be ({J}, 3), got {tuple(value.shape)}")
        self.out_mean.copy_(torch.as_tensor(mean, dtype=self.out_mean.dtype)[1:])
        self.out_std.copy_(torch.as_tensor(std, dtype=self.out_std.dtype)[1:].clamp_min(1e-3))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(B, F) -> (B, J, 3) root-relative joints, metres, root row exactly zero."""
        if features.dim() != 2 or features.shape[1] != self.in_features:
            raise ShapeError(f"HandHead: features must be (B, {self.in_features}), got {tuple(features.shape)}")
        raw = self.mlp(features.to(self.out_mean.dtype)).reshape(-1, self.num_joints - 1, 3)  # (B, J - 1, 3)
        joints = raw * self.out_std + self.out_mean
        return torch.cat([joints.new_zeros(joints.shape[0], 1, 3), joints], dim=1)  # (B, J, 3)


class ImageHand(nn.Module):
    """Backbone -> stage ``stage`` map averaged to ``grid x grid`` cells -> :class:`HandHead` (module docstring).

    Args:
        backbone: a :class:`~kinepose.models.vision.backbones.Backbone` or
            :class:`~kinepose.models.vision.potter.PotterBackbone` (anything with ``channels``, ``stages(images,
            upto)`` and ``frozen``).
        skeleton: the hand skeleton (``hand21``); joint 0, the root, must be the wrist.
        stage: which stage's map to pool (0 to 4, or negative from the end; -1 the last, stride 32).
        grid: the map is averaged to ``grid x grid`` cells (0: the global mean), so ``F = channels[stage] * grid^2``.
        hidden: width of the head's hidden layers.
        layers: number of hidden layers of the head.
        dropout: dropout of the head.
        image_size: images are resized (bilinear, antialiased) to ``image_size x image_size`` before the backbone
            when they have another size; None keeps them as they come.
    """

    def __init__(self, backbone: nn.Module, skeleton: Skeleton, stage: int = -1, grid: int = 2, hidden: int = 512,
                 layers: int = 2, dropout: float = 0.0, image_size: int | None = None) -> None:  # fmt: skip
        super().__init__()
        channels = tuple(backbone.channels)
        n = len(channels)
        if not -n <= int(stage) < n:
            raise KineposeError(f"ImageHand: stage {stage} out of range for backbone {backbone.name!r} ({n} stages: "
                                f"0 to {n - 1})")  # fmt: skip
        check_positive(0, grid=grid)
        if image_size is not None:
            check_positive(image_size=image_size)
        if skeleton.parents[0] >= 0:
            raise KineposeError(f"ImageHand: joint 0 of skeleton {skeleton.name!r} must be the root (parent -1)")
        self.skeleton = skeleton
        self.backbone = backbone
        self.stage, self.grid = int(stage) % n, int(grid)
        self.image_size = None if image_size is None else int(image_size)
        self.in_features = channels[self.stage] * max(self.grid, 1) ** 2
        self.head = HandHead(self.in_features, skeleton.num_joints, hidden, layers, dropout)

    @property
    def num_joints(self) -> int:
        return self.skeleton.num_joints

    @property
    def frozen(self) -> bool:
        """Whether the backbone is frozen (then only the head trains, and cached features can stand in for images)."""
        return bool(getattr(self.backbone, "frozen", False))

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """(B, H, W, 3) uint8 or (B, 3, H, W) float in [0, 1] -> (B, 3, S, S) float in [0, 1] (``S = image_size``,
        or the input's size when None)."""
        if images.dtype == torch.uint8:
            if images.dim() != 4 or images.shape[-1] != 3:
                raise ShapeError(f"ImageHand: uint8 images must be (B, H, W, 3), got {tuple(images.shape)}")
            images = images.permute(0, 3, 1, 2).float() / 255.0  # (B, 3, H, W)
        elif images.dim() != 4 or images.shape[1] != 3 or not images.is_floating_point():
            raise ShapeError(f"ImageHand: images must be (B, 3, H, W) float in [0, 1] or (B, H, W, 3) uint8, got "
                             f"{tuple(images.shape)} {images.dtype}")  # fmt: skip
        S = self.image_size
        if S is not None and tuple(images.shape[-2:]) != (S, S):
            images = F.interpolate(images, size=(S, S), mode="bilinear", align_corners=False, antialias=True)
        return images

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Images (as :meth:`prepare` takes them) -> (B, F) the pooled features the head reads (the same numbers
        as :func:`kinepose.models.vision.features.extract_features` with this ``stage`` and ``grid``)."""
        fmap = self.backbone.stages(self.prepare(images), self.stage)[-1]  # (B, C, h, w)
        if self.grid == 0:
            return fmap.mean((-2, -1))  # (B, C)
        return F.adaptive_avg_pool2d(fmap, self.grid).flatten(1)  # (B, C * grid^2)

    def forward(self, images: torch.Tensor | None = None, features: torch.Tensor | None = None) -> torch.Tensor:
        """Exactly one of ``images`` (see :meth:`prepare`) or ``features`` (B, F) -> (B, J, 3) root-relative joints
        in the camera frame, metres, joint 0 exactly at the origin."""
        if (images is None) == (features is None):
            raise KineposeError("ImageHand: pass exactly one of images (B, 3, H, W) or features (B, F)")
        if features is None:
            features = self.features(images)
        return self.head(features)


def image_hand_backbones() -> list[str]:
    """Every backbone name :func:`create_image_hand` accepts: torchvision's and POTTER's."""
    return sorted([*list_backbones(), *POTTER_CONFIGS])


def create_image_hand(backbone: str, skeleton: Skeleton, pretrained: bool = False, freeze: bool = False,
                      weights: str | os.PathLike | None = None, stage: int = -1, grid: int = 2, hidden: int = 512,
                      **kw) -> ImageHand:  # fmt: skip
    """An :class:`ImageHand` on backbone ``backbone``.

    Args:
        backbone: a name of :func:`kinepose.models.vision.list_backbones` (torchvision, imported only now) or of
            :data:`kinepose.models.vision.potter.POTTER_CONFIGS` (pure torch).
        skeleton: the hand skeleton (``hand21``).
        pretrained: ImageNet weights from a local file (never downloaded;
            :func:`~kinepose.models.vision.backbones.find_weights`); none ship for POTTER, so there it needs
            ``weights``.
        freeze: freeze the backbone (its weights and BatchNorm statistics): only the head trains.
        weights: path to the backbone's weight file.
        stage, grid, hidden: see :class:`ImageHand`.
        **kw: ``layers``, ``dropout``, ``image_size`` of :class:`ImageHand`.

    Raises:
        KineposeError: an unknown backbone name (the valid ones listed) or keyword, POTTER ``pretrained`` without
            ``weights``, a missing weight file, torchvision not installed for a torchvision backbone.
    """
    bad = sorted(set(kw) - set(_MODEL_KEYS))
    if bad:
        raise KineposeError(f"create_image_hand: unknown option(s) {bad}; accepted: stage, grid, hidden, "
                            f"{', '.join(_MODEL_KEYS)}")  # fmt: skip
    if backbone in POTTER_CONFIGS:
        net = create_potter(backbone, freeze=freeze, pretrained=pretrained, weights=weights)
    elif backbone in list_backbones():
        net = create_backbone(backbone, pretrained=pretrained, freeze=freeze, weights=weights)
    else:
        raise KineposeError(f"create_image_hand: unknown backbone {backbone!r}; available: "
                            f"{', '.join(image_hand_backbones())}")  # fmt: skip
    return ImageHand(net, skeleton, stage=stage, grid=grid, hidden=hidden, **kw)
