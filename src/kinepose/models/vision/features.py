"""Backbone features of a stream of frames, batched (``kinepose features``)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch

from kinepose.errors import KineposeError
from kinepose.models.vision.backbones import Backbone

__all__ = ["extract_features", "frames_to_tensor"]


def frames_to_tensor(frames: list[np.ndarray], size: int) -> torch.Tensor:
    """(H, W, 3) uint8 RGB frames -> (B, 3, size, size) float in [0, 1] (bilinear resize, antialiased)."""
    x = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 255.0
    return torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


@torch.no_grad()
def extract_features(backbone: Backbone, frames: Iterable[np.ndarray], size: int = 224, batch_size: int = 32,
                     stage: int = -1, total: int | None = None, progress: bool = False) -> np.ndarray:  # fmt: skip
    """Pooled features (N, C) float32 of stage ``stage`` for every frame, ``batch_size`` frames per pass."""
    from tqdm.auto import tqdm

    backbone.eval()
    out: list[np.ndarray] = []
    batch: list[np.ndarray] = []
    bar = tqdm(total=total, unit="frame", desc=f"features ({backbone.name})", disable=not progress)

    def flush() -> None:
        out.append(backbone(frames_to_tensor(batch, size), stage).float().numpy())
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
