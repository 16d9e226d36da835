"""POTTER, a pooling-attention image backbone in pure torch (no torchvision), with the interface of
:class:`kinepose.models.vision.backbones.Backbone`.

POTTER is "POTTER: Pooling Attention Transformer for Efficient Human Mesh Recovery" (Zheng et al., CVPR 2023). This
module follows the official code, github.com/zczcwh/POTTER, ``image_classification/models/poolattnformer.py``
(``PoolAttn``, ``PoolFormerBlock``, ``PoolAttnFormer``; the same ``PoolAttn`` is in
``human_mesh_recovery/hybrik/models/pool/poolattnformer_HR.py``), written anew without timm:

- the Pooling Attention Module (:class:`PoolAttn`): *patch-wise* pooling attention average-pools the (B, C, H, W) map
  along the width to (B, C, H, r) and along the height to (B, C, r, W) (``AdaptiveAvgPool2d((None, r))`` and
  ``((r, None))``) and multiplies the two, (H, r) @ (r, W) -> a rank-r (H, W) attention map per channel; *embed-wise*
  pooling attention does the same for every patch on its C channels seen as a (segments, C / segments) matrix. Each is
  followed by a depthwise 3x3 conv; their sum is normalized (GroupNorm, 1 group) and goes through a third depthwise
  3x3 conv. The official code uses r = 4 (``pool_rank``; the paper's figure draws r = 1, the outer product of the row
  and column means) and 32 segments (``segments``);
- the POTTER block (:class:`PotterBlock`): ``x + ls1 * PoolAttn(GN(x))``, then ``x + ls2 * MLP(GN(x))``, the MLP two
  1x1 convs with a GELU between (expansion ``mlp_ratio``), layer scale initialized to 1e-5, optional stochastic depth;
- the hierarchical 4-stage layout of PoolFormer: stages of ``layers`` blocks at widths ``dims``, 3x3 stride-2 patch
  embeddings between stages, and a GroupNorm on each stage's output (the official ``fork_feat`` dense-prediction mode:
  the normalized map is returned, the un-normalized one goes on to the next stage).

Differences from the official network, so that all five strides (2, 4, 8, 16, 32) of :class:`Backbone` exist: the
official first patch embedding (7x7 conv, stride 4, from RGB) is replaced by a stem (3x3 conv stride 2 to
``stem_channels``, GroupNorm, GELU: stage 0, stride 2) and a 3x3 stride-2 patch embedding into stage 1 (stride 4);
there is no classifier head. The official ``poolattnformer_s12`` (layers (2, 2, 6, 2), dims (64, 128, 320, 512))
has 12,021,672 parameters with its 1000-class head (its README says 12M); ``create_potter("potter_s12")`` has
11,519,680 (the arithmetic is in the tests).

No ImageNet weights for POTTER ship here (the official README leaves its download links empty): ``pretrained=True``
fails unless ``weights`` names a state dict file of this module (one saved from :meth:`PotterBackbone.state_dict`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace

import torch
import torch.nn.functional as F
from torch import nn

from kinepose.errors import KineposeError

__all__ = ["POTTER_CONFIGS", "PoolAttn", "PotterBackbone", "PotterBlock", "PotterConfig", "create_potter"]


@dataclass(frozen=True)
class PotterConfig:
    """The shape of a POTTER backbone.

    Args:
        layers: number of POTTER blocks in each of the 4 stages.
        dims: channels of the 4 stages (strides 4, 8, 16, 32); each divisible by ``segments``.
        stem_channels: channels of the stride-2 stem (stage 0).
        mlp_ratio: hidden width of the MLP over its input width.
        pool_rank: r, the size the patch-wise and embed-wise poolings pool to (the rank of the attention maps).
        segments: number of channel segments of the embed-wise pooling attention.
        layer_scale_init: initial layer scale, or None for no layer scale.
        drop_path_rate: stochastic depth of the last block (linear from 0 over the blocks).
    """

    layers: tuple[int, int, int, int]
    dims: tuple[int, int, int, int]
    stem_channels: int = 32
    mlp_ratio: float = 4.0
    pool_rank: int = 4
    segments: int = 32
    layer_scale_init: float | None = 1e-5
    drop_path_rate: float = 0.0


#: name -> config; ``potter_s12`` is the official S12 size, ``potter_xs`` a small one for CPU training
POTTER_CONFIGS: dict[str, PotterConfig] = {
    "potter_s12": PotterConfig(layers=(2, 2, 6, 2), dims=(64, 128, 320, 512)),
    "potter_s24": PotterConfig(layers=(4, 4, 12, 4), dims=(64, 128, 320, 512)),
    "potter_xs": PotterConfig(layers=(2, 2, 2, 2), dims=(32, 64, 128, 256)),
}


def _group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with one group (normalizes over C, H, W), POTTER's and PoolFormer's norm."""
    return nn.GroupNorm(1, channels)


class DropPath(nn.Module):
    """Stochastic depth: in training, zeroes a sample's residual branch with probability ``p`` (rescaling the rest)."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)  # (B, 1, 1, 1)
        return x * mask / keep


class PoolAttn(nn.Module):
    """The Pooling Attention Module: patch-wise plus embed-wise pooling attention, (B, C, H, W) -> (B, C, H, W).

    Args:
        dim: channels C.
        pool_rank: r, the size the poolings pool to.
        segments: the embed-wise attention sees each patch's C channels as a (segments, C / segments) matrix.
    """

    def __init__(self, dim: int, pool_rank: int = 4, segments: int = 32) -> None:
        super().__init__()
        if dim % segments:
            raise KineposeError(f"POTTER: channels {dim} are not divisible by the {segments} segments of PoolAttn")
        self.pool_rank = int(pool_rank)
        self.segments = int(segments)
        self.norm = _group_norm(dim)
        self.proj0 = nn.Conv2d(dim, dim, 3, 1, 1, groups=dim)  # after the patch-wise attention
        self.proj1 = nn.Conv2d(dim, dim, 3, 1, 1, groups=dim)  # after the embed-wise attention
        self.proj2 = nn.Conv2d(dim, dim, 3, 1, 1, groups=dim)  # after their normalized sum

    def patch_attention(self, x: torch.Tensor) -> torch.Tensor:
        """Patch-wise pooling attention: (B, C, H, W) -> (B, C, H, W), per channel the product of the map pooled
        along the width, (H, r), and the map pooled along the height, (r, W)."""
        r = self.pool_rank
        rows = F.adaptive_avg_pool2d(x, (x.shape[-2], r))  # (B, C, H, r)
        cols = F.adaptive_avg_pool2d(x, (r, x.shape[-1]))  # (B, C, r, W)
        return rows @ cols  # (B, C, H, W)

    def embed_attention(self, x: torch.Tensor) -> torch.Tensor:
        """Embed-wise pooling attention: (B, C, H, W) -> (B, C, H, W), per patch the same pooled product on its
        channels seen as a (segments, C / segments) matrix."""
        b, c, h, w = x.shape
        r, s = self.pool_rank, self.segments
        e = x.reshape(b, c, h * w).transpose(1, 2).reshape(b, h * w, s, c // s)  # (B, HW, S, C / S)
        rows = F.adaptive_avg_pool2d(e, (s, r))  # (B, HW, S, r)
        cols = F.adaptive_avg_pool2d(e, (r, c // s))  # (B, HW, r, C / S)
        out = rows @ cols  # (B, HW, S, C / S)
        return out.reshape(b, h * w, c).transpose(1, 2).reshape(b, c, h, w)  # (B, C, H, W)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.norm(self.proj0(self.patch_attention(x)) + self.proj1(self.embed_attention(x)))
        return self.proj2(out)


class Mlp(nn.Module):
    """Two 1x1 convs with a GELU between: (B, C, H, W) -> (B, C, H, W)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(dim, hidden, 1)
        self.act = nn.GELU()
        self.fc2 = nn.Conv2d(hidden, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class PotterBlock(nn.Module):
    """The Pooling Attention Transformer block: PoolAttn then MLP, each pre-normed (GroupNorm), layer-scaled and
    residual. (B, C, H, W) -> (B, C, H, W).

    Args:
        dim: channels C.
        mlp_ratio: MLP hidden width over C.
        pool_rank: see :class:`PoolAttn`.
        segments: see :class:`PoolAttn`.
        layer_scale_init: initial layer scale, or None for none.
        drop_path: stochastic depth probability of both residual branches.
    """

    def __init__(self, dim: int, mlp_ratio: float = 4.0, pool_rank: int = 4, segments: int = 32,
                 layer_scale_init: float | None = 1e-5, drop_path: float = 0.0) -> None:  # fmt: skip
        super().__init__()
        self.norm1 = _group_norm(dim)
        self.token_mixer = PoolAttn(dim, pool_rank, segments)
        self.norm2 = _group_norm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        if layer_scale_init is not None:
            self.layer_scale_1 = nn.Parameter(torch.full((dim,), float(layer_scale_init)))
            self.layer_scale_2 = nn.Parameter(torch.full((dim,), float(layer_scale_init)))
        else:
            self.layer_scale_1 = self.layer_scale_2 = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.token_mixer(self.norm1(x))
        if self.layer_scale_1 is not None:
            a = self.layer_scale_1.view(1, -1, 1, 1) * a
        x = x + self.drop_path(a)
        m = self.mlp(self.norm2(x))
        if self.layer_scale_2 is not None:
            m = self.layer_scale_2.view(1, -1, 1, 1) * m
        return x + self.drop_path(m)


class PotterStage(nn.Module):
    """A stride-2 patch embedding (3x3 conv), POTTER blocks, and the GroupNorm of the returned map. ``forward``:
    (B, C_in, H, W) -> (the map going on, the normalized map returned), both (B, C, H / 2, W / 2)."""

    def __init__(self, in_channels: int, dim: int, blocks: list[nn.Module]) -> None:
        super().__init__()
        self.embed = nn.Conv2d(in_channels, dim, 3, 2, 1)
        self.blocks = nn.Sequential(*blocks)
        self.norm = _group_norm(dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.blocks(self.embed(x))
        return x, self.norm(x)


def _init_weights(m: nn.Module) -> None:
    """The official init of the MLP's 1x1 convs (truncated normal, std 0.02, zero bias); other layers keep
    PyTorch's defaults, as there."""
    if isinstance(m, Mlp):
        for conv in (m.fc1, m.fc2):
            nn.init.trunc_normal_(conv.weight, std=0.02)
            nn.init.zeros_(conv.bias)


class PotterBackbone(nn.Module):
    """A POTTER backbone cut into 5 stages (strides 2, 4, 8, 16, 32): the stem, then 4 POTTER stages. ``forward``:
    (B, 3, H, W) RGB in [0, 1] -> (B, C) pooled features; :meth:`stages`: the feature map of every stage. With
    ``freeze`` its weights do not train and the module stays in eval mode. The GroupNorms of stages 1 to 3 normalize
    the maps :meth:`stages` returns, not those going on to the next stage, so a loss on the last stage alone leaves
    them without gradients (``find_unused_parameters`` for DistributedDataParallel).

    Args:
        name: the config's name (reported in errors).
        config: the shape of the network.
        freeze: whether to freeze every parameter.
    """

    def __init__(self, name: str, config: PotterConfig, freeze: bool = False) -> None:
        super().__init__()
        if len(config.layers) != 4 or len(config.dims) != 4 or min(config.layers) < 1:
            raise KineposeError(f"backbone {name}: POTTER needs 4 stages of at least one block, got layers "
                                f"{tuple(config.layers)} and dims {tuple(config.dims)}")  # fmt: skip
        self.name = name
        self.config = config
        c0 = config.stem_channels
        self.stem = nn.Sequential(nn.Conv2d(3, c0, 3, 2, 1), _group_norm(c0), nn.GELU())
        total = sum(config.layers)
        stages, k, cin = [], 0, c0
        for n, dim in zip(config.layers, config.dims, strict=True):
            blocks = []
            for _ in range(n):
                dpr = config.drop_path_rate * k / max(total - 1, 1)
                blocks.append(PotterBlock(dim, config.mlp_ratio, config.pool_rank, config.segments,
                                          config.layer_scale_init, dpr))  # fmt: skip
                k += 1
            stages.append(PotterStage(cin, dim, blocks))
            cin = dim
        self.potter_stages = nn.ModuleList(stages)
        self.channels = (c0, *config.dims)
        self.out_features = self.channels[-1]
        self.frozen = bool(freeze)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1), persistent=False)
        self.apply(_init_weights)
        if self.frozen:
            self.freeze()

    def freeze(self) -> None:
        """Stop every parameter training and put the module in eval mode, for good."""
        self.frozen = True
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> PotterBackbone:
        return super().train(mode and not self.frozen)

    def _check(self, images: torch.Tensor) -> None:
        if images.dim() != 4 or images.shape[1] != 3:
            raise KineposeError(f"backbone {self.name}: images must be (B, 3, H, W) RGB in [0, 1], got "
                                f"{tuple(images.shape)}")  # fmt: skip

    def stages(self, images: torch.Tensor, upto: int = -1) -> list[torch.Tensor]:
        """(B, 3, H, W) -> the feature map of each stage up to ``upto`` (default all), (B, C_s, H / s, W / s) with
        strides s = 2, 4, 8, 16, 32 (rounded up for sizes not divisible by s)."""
        self._check(images)
        n = 1 + len(self.potter_stages)
        if not -n <= upto < n:
            raise KineposeError(f"backbone {self.name}: stage {upto} out of range ({n} stages: 0 to {n - 1})")
        last = upto % n
        x = self.stem((images - self.mean) / self.std)  # (B, C0, H / 2, W / 2)
        out = [x]
        for stage in self.potter_stages[:last]:
            x, y = stage(x)
            out.append(y)
        return out

    def forward(self, images: torch.Tensor, stage: int = -1) -> torch.Tensor:
        """(B, 3, H, W) -> (B, C) the spatial mean of stage ``stage`` 's feature map (default the last)."""
        return self.stages(images, stage)[-1].mean((-2, -1))


def create_potter(name: str = "potter_s12", freeze: bool = False, pretrained: bool = False,
                  weights: str | os.PathLike | None = None, **overrides) -> PotterBackbone:  # fmt: skip
    """POTTER backbone ``name`` (see :data:`POTTER_CONFIGS`), randomly initialized (deterministic given
    ``torch.manual_seed``) or loaded from ``weights``.

    Args:
        name: a key of :data:`POTTER_CONFIGS`.
        freeze: freeze every parameter (and keep eval mode).
        pretrained: ImageNet weights; none ship here, so this needs ``weights``.
        weights: path to a state dict of this module (``torch.save(backbone.state_dict(), path)``).
        **overrides: fields of :class:`PotterConfig` to change (``layers``, ``dims``, ``pool_rank``...).
    """
    if name not in POTTER_CONFIGS:
        raise KineposeError(f"unknown POTTER backbone {name!r}; available: {', '.join(sorted(POTTER_CONFIGS))}")
    known = {f.name for f in fields(PotterConfig)}
    bad = sorted(set(overrides) - known)
    if bad:
        raise KineposeError(f"POTTER backbone {name!r}: unknown options {bad}; known: {', '.join(sorted(known))}")
    if pretrained and weights is None:
        raise KineposeError(f"POTTER backbone {name!r}: no ImageNet weights for POTTER ship here (the official "
                            f"ones are not published offline); pass weights=PATH to a state dict of this module, "
                            f"or set pretrained: false")  # fmt: skip
    path = None
    if weights is not None:
        path = os.fspath(weights)
        if not os.path.isfile(path):
            raise KineposeError(f"POTTER backbone {name!r}: weights file {path!r} does not exist")
    config = replace(POTTER_CONFIGS[name], **overrides)
    model = PotterBackbone(name, config, freeze=False)
    if path is not None:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            model.load_state_dict(state)
        except Exception as exc:
            raise KineposeError(f"POTTER backbone {name!r}: {path} is not a state dict of this backbone "
                                f"({type(exc).__name__}: {str(exc)[:200]})") from exc  # fmt: skip
    if freeze:
        model.freeze()
    return model
