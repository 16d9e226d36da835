"""Random views of a clip: cameras that frame the subject, and :func:`render_views` (random frames, random cameras)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from kinepose.errors import KineposeError
from kinepose.geometry.camera_sampling import CameraRanges
from kinepose.geometry.cameras import Camera
from kinepose.render.config import RenderConfig
from kinepose.render.renderer import ClipLabels, make_rng, render_clip
from kinepose.skeleton import Skeleton

__all__ = ["camera_ranges_for", "render_views"]


def camera_ranges_for(
    extent_m: float,
    image_size: tuple[int, int],
    *,
    distance_m: tuple[float, float] | None = None,
    fill: tuple[float, float] = (0.55, 0.85),
    yaw_deg: tuple[float, float] = (-180.0, 180.0),
    pitch_deg: tuple[float, float] = (-10.0, 30.0),
) -> CameraRanges:
    """Camera ranges whose subject of size ``extent_m`` fills ``fill`` of the smaller image side.

    The distance range defaults to ``(2, 3.5) * extent_m``; focal lengths are chosen so that at those distances the
    subject spans between ``fill[0]`` and ``fill[1]`` of the image (``f = fill * side * d / extent``).
    """
    if not (isinstance(extent_m, int | float) and math.isfinite(extent_m) and extent_m > 0):
        raise KineposeError(f"extent_m: expected a positive size in metres, got {extent_m!r}")
    d = distance_m if distance_m is not None else (2.0 * extent_m, 3.5 * extent_m)
    side = min(image_size)
    mid_d = (d[0] + d[1]) / 2
    focal = (fill[0] * side * mid_d / extent_m, fill[1] * side * mid_d / extent_m)
    return CameraRanges(yaw_deg=yaw_deg, pitch_deg=pitch_deg, distance_m=d, focal_px=focal, image_size=image_size)


def render_views(
    skeleton: Skeleton,
    joints_world: Any,
    global_rotmat: Any,
    n: int,
    rng: np.random.Generator | torch.Generator | int | None = 0,
    config: RenderConfig | None = None,
    *,
    ranges: CameraRanges | None = None,
    same_subject: bool = False,
) -> tuple[np.ndarray, ClipLabels, np.ndarray]:
    """``n`` images of random frames of a clip (``(T, J, 3)`` joints, ``(T, J, 3, 3)`` rotations) from random cameras.

    Each camera looks at the mean joint of its frame. ``ranges`` default: :func:`camera_ranges_for` the clip's extent
    (largest bounding-box side of a frame, at least 0.1 m) at ``config.image_size``.

    Returns:
        ``images`` ``(n, H, W, 3)`` uint8, :class:`ClipLabels` and the frame index of each image ``(n,)``.
    """
    config = RenderConfig() if config is None else config
    x = np.asarray(joints_world.detach().cpu() if isinstance(joints_world, torch.Tensor) else joints_world, np.float64)
    if x.ndim != 3 or x.shape[1:] != (skeleton.num_joints, 3) or x.shape[0] == 0:
        raise KineposeError(f"joints_world: expected shape (T > 0, {skeleton.num_joints}, 3), got {x.shape}")
    if not np.isfinite(x).all():
        raise KineposeError("joints_world: contains NaN or infinite values")
    G = global_rotmat.detach().cpu() if isinstance(global_rotmat, torch.Tensor) else global_rotmat
    G = np.asarray(G, np.float64)
    if int(n) != n or n < 0:
        raise KineposeError(f"n: expected an int >= 0, got {n!r}")
    gen = make_rng(rng)
    if ranges is None:
        extent = max(float((x.max(axis=1) - x.min(axis=1)).max()), 0.1)
        ranges = camera_ranges_for(extent, config.image_size)
    if ranges.image_size != config.image_size:
        raise KineposeError(
            f"ranges: image_size {ranges.image_size} differs from config.image_size {config.image_size}"
        )
    frames = gen.integers(0, x.shape[0], int(n))
    centers = torch.as_tensor(x[frames].mean(axis=1))
    tg = torch.Generator().manual_seed(int(gen.integers(0, 2**62)))
    cams: Camera = ranges.sample(int(n), centers, generator=tg, dtype=torch.float64)
    images, labels = render_clip(
        skeleton, x[frames], G[frames], cams, int(gen.integers(0, 2**62)), config, same_subject=same_subject
    )
    return images, labels, frames
