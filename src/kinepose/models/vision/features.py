"""Backbone features of a stream of frames, batched (``kinepose features``), and of crops centred on joints.

:func:`joint_crops` cuts a square around every joint's 2D position (side ``scale`` times the subject's 2D extent),
resampled to ``size`` pixels: what the fusion models read for a joint (the head around the neck, the foot around
the ankle). :func:`crop_features` runs a backbone on them.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch

from kinepose.errors import KineposeError
from kinepose.geometry.crops import crop_boxes
from kinepose.models.vision.backbones import Backbone

__all__ = ["crop_boxes", "crop_features", "extract_features", "frames_to_tensor", "joint_crops"]


def frames_to_tensor(frames: list[np.ndarray], size: int) -> torch.Tensor:
    """(H, W, 3) uint8 RGB frames -> (B, 3, size, size) float in [0, 1] (bilinear resize, antialiased)."""
    x = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 255.0
    return torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


@torch.no_grad()
def extract_features(backbone: Backbone, frames: Iterable[np.ndarray], size: int = 224, batch_size: int = 32,
                     stage: int = -1, total: int | None = None, progress: bool = False,
                     grid: int = 0) -> np.ndarray:  # fmt: skip
    """Pooled features (N, C) float32 of stage ``stage`` for every frame, ``batch_size`` frames per pass. With
    ``grid > 0`` the map is averaged to ``grid x grid`` cells instead of its global mean (N, C * grid^2): the
    layout, where a limb is in the frame, stays."""
    from tqdm.auto import tqdm

    backbone.eval()
    out: list[np.ndarray] = []
    batch: list[np.ndarray] = []
    bar = tqdm(total=total, unit="frame", desc=f"features ({backbone.name})", disable=not progress)

    def flush() -> None:
        x = frames_to_tensor(batch, size)
        if grid > 0:
            f = torch.nn.functional.adaptive_avg_pool2d(backbone.stages(x, stage)[-1], grid).flatten(1)
        else:
            f = backbone(x, stage)
        out.append(f.float().numpy())
        bar.update(len(batch))
        batch.clear()

    for frame in frames:
        batch.append(frame)
        if len(batch) == batch_size:
            flush()
    if batch:
        flush()
    bar.close()
    if not out:
        raise KineposeError("features: no frames to read")
    return np.concatenate(out)


def joint_crops(images: torch.Tensor, centres: torch.Tensor, side: torch.Tensor, size: int = 64) -> torch.Tensor:
    """Square crops, bilinear, zero outside the image.

    Args:
        images: (B, H, W, 3) uint8 or (B, 3, H, W) float in [0, 1].
        centres: (B, K, 2) crop centres in pixels (pixel centres at integers), e.g. from :func:`crop_boxes`.
        side: (B,) crop sides in pixels (one per image).
        size: crop side in pixels after resampling.

    Returns:
        (B, K, 3, size, size) float crops in [0, 1].
    """
    if images.dtype == torch.uint8:
        if images.dim() != 4 or images.shape[-1] != 3:
            raise KineposeError(f"joint_crops: uint8 images must be (B, H, W, 3), got {tuple(images.shape)}")
        images = images.permute(0, 3, 1, 2).float() / 255.0  # (B, 3, H, W)
    if images.dim() != 4 or images.shape[1] != 3:
        raise KineposeError(f"joint_crops: images must be (B, 3, H, W), got {tuple(images.shape)}")
    B, _, H, W = images.shape
    if centres.dim() != 3 or centres.shape[0] != B or centres.shape[-1] != 2:
        raise KineposeError(f"joint_crops: centres must be ({B}, K, 2), got {tuple(centres.shape)}")
    if side.shape != (B,):
        raise KineposeError(f"joint_crops: side must be ({B},), got {tuple(side.shape)}")
    centres, half = centres.to(images.dtype), 0.5 * side.to(images.dtype)
    K = centres.shape[1]
    lin = torch.linspace(-1.0, 1.0, size, dtype=images.dtype) * (1 - 1 / size)  # crop pixel centres
    gy, gx = torch.meshgrid(lin, lin, indexing="ij")  # (size, size)
    px = centres[..., 0, None, None] + half[:, None, None, None] * gx  # (B, K, size, size) pixels
    py = centres[..., 1, None, None] + half[:, None, None, None] * gy
    # grid_sample's normalized coordinates with align_corners=False: -1 and 1 are the outer image edges
    grid = torch.stack([(2 * px + 1) / W - 1, (2 * py + 1) / H - 1], dim=-1)  # (B, K, size, size, 2)
    src = images[:, None].expand(B, K, 3, H, W).reshape(B * K, 3, H, W)
    out = torch.nn.functional.grid_sample(src, grid.reshape(B * K, size, size, 2), mode="bilinear",
                                          padding_mode="zeros", align_corners=False)  # fmt: skip
    return out.reshape(B, K, 3, size, size)


@torch.no_grad()
def crop_features(backbone: Backbone, images: np.ndarray, centres: np.ndarray, side: np.ndarray, size: int = 64,
                  batch_size: int = 64, stage: int = -1, progress: bool = False) -> np.ndarray:  # fmt: skip
    """Pooled backbone features of :func:`joint_crops` of every image: (N, K, C) float16, ``batch_size`` images per
    pass; ``centres`` (N, K, 2) and ``side`` (N,) in pixels."""
    from tqdm.auto import tqdm

    backbone.eval()
    N = len(images)
    out = []
    for a in tqdm(range(0, N, batch_size), desc=f"crop features ({backbone.name})", unit="batch",
                  disable=not progress, leave=False):  # fmt: skip
        sl = slice(a, a + batch_size)
        crops = joint_crops(torch.from_numpy(np.asarray(images[sl])), torch.as_tensor(centres[sl]),
                            torch.as_tensor(side[sl]), size)  # fmt: skip
        b, k = crops.shape[:2]
        f = backbone(crops.flatten(0, 1), stage)  # (b * k, C)
        out.append(f.reshape(b, k, -1).half().numpy())
    if not out:
        raise KineposeError("crop_features: no images")
    return np.concatenate(out)
