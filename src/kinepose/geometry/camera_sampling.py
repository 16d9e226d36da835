"""Random virtual cameras around a subject, and the config section (``cameras:``) that describes their ranges.

Angles in the config are degrees (``*_deg``), converted to radians here; distances metres, focal lengths and
image sizes pixels. Cameras follow :mod:`kinepose.geometry.cameras` (OpenCV frame, y-up world).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from numbers import Integral
from typing import Any

import torch

from kinepose.errors import KineposeError, ShapeError
from kinepose.geometry.cameras import Camera, _image_size, _vec3, look_at_camera

__all__ = ["CameraRanges", "random_cameras"]


def _as_range(name: str, value: Any) -> tuple[float, float]:
    """A ``[low, high]`` pair (or one number for a fixed value) as floats, checked."""
    if isinstance(value, bool) or isinstance(value, str):
        raise KineposeError(f"{name}: expected a number or a [low, high] pair, got {value!r}")
    try:
        lo, hi = (float(value), float(value)) if isinstance(value, int | float) else (float(v) for v in value)
    except (TypeError, ValueError) as exc:
        raise KineposeError(f"{name}: expected a number or a [low, high] pair, got {value!r}") from exc
    if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
        raise KineposeError(f"{name}: expected finite low <= high, got [{lo}, {hi}]")
    return lo, hi


@dataclass(frozen=True)
class CameraRanges:
    """Ranges of virtual cameras around a subject (the ``cameras:`` section of a config); see :func:`random_cameras`.

    Every ``*_deg``, ``*_m``, ``*_px`` range is a ``(low, high)`` pair sampled uniformly (one number means a
    fixed value). ``image_size`` is ``(width, height)`` in pixels.
    """

    yaw_deg: tuple[float, float] = (-180.0, 180.0)
    pitch_deg: tuple[float, float] = (-10.0, 30.0)
    distance_m: tuple[float, float] = (3.0, 6.0)
    focal_px: tuple[float, float] = (800.0, 1600.0)
    image_size: tuple[int, int] = (1000, 1000)
    roll_deg: tuple[float, float] = (0.0, 0.0)
    principal_jitter_px: float = 0.0
    dist_scale: float = 0.0

    def __post_init__(self) -> None:
        for name in ("yaw_deg", "pitch_deg", "distance_m", "focal_px", "roll_deg"):
            object.__setattr__(self, name, _as_range(name, getattr(self, name)))
        if not (-90 < self.pitch_deg[0] and self.pitch_deg[1] < 90):
            raise KineposeError(f"pitch_deg: expected values strictly inside (-90, 90), got {list(self.pitch_deg)}")
        for name in ("distance_m", "focal_px"):
            if getattr(self, name)[0] <= 0:
                raise KineposeError(f"{name}: expected positive values, got {list(getattr(self, name))}")
        size = self.image_size
        if isinstance(size, str) or not isinstance(size, Sequence) or len(size) != 2:
            raise KineposeError(f"image_size: expected [width, height] in pixels, got {size!r}")
        size = (_image_size("image_size[0] (width)", size[0]), _image_size("image_size[1] (height)", size[1]))
        object.__setattr__(self, "image_size", size)
        for name in ("principal_jitter_px", "dist_scale"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v < math.inf:
                raise KineposeError(f"{name}: expected a number >= 0, got {v!r}")
            object.__setattr__(self, name, float(v))
        if self.principal_jitter_px >= min(size) / 2:
            raise KineposeError(f"principal_jitter_px: must be below half the image size {size}")

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None) -> CameraRanges:
        """From a config mapping (keys as the fields); a missing key keeps its default, an unknown one raises."""
        config = dict(config or {})
        known = [f.name for f in cls.__dataclass_fields__.values()]
        for key in config:
            if key not in known:
                raise KineposeError(f"cameras: unknown key {key!r}; expected some of {known}")
        return cls(**config)

    def to_config(self) -> dict[str, Any]:
        """The plain-list (YAML/JSON-safe) form read by :meth:`from_config`."""
        return {n: list(v) if isinstance(v, tuple) else v for n, v in self.__dict__.items()}

    def sample(
        self,
        n: int,
        center: Any,
        *,
        generator: torch.Generator | None = None,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> Camera:
        """``n`` random cameras (batch shape ``(n,)``) looking at ``center`` ``(3,)`` or ``(n, 3)``."""
        if isinstance(n, bool) or not isinstance(n, Integral) or n < 0:
            raise KineposeError(f"n: expected an int >= 0, got {n!r}")
        c = _vec3(center, "center").to(torch.float64)
        if c.ndim > 2 or (c.ndim == 2 and c.shape[0] != n):
            raise ShapeError(f"center: expected shape (3,) or ({n}, 3), got {tuple(c.shape)}")
        # One draw of all 12 numbers per camera, in float64 on the CPU: the same seed gives the same cameras
        # whatever the dtype, device or ranges.
        u = torch.rand(n, 12, generator=generator, dtype=torch.float64)  # (n, 12)

        def lerp(r: tuple[float, float], col: int) -> torch.Tensor:
            return r[0] + (r[1] - r[0]) * u[:, col]

        yaw, pitch = torch.deg2rad(lerp(self.yaw_deg, 0)), torch.deg2rad(lerp(self.pitch_deg, 1))
        direction = torch.stack([pitch.cos() * yaw.sin(), pitch.sin(), pitch.cos() * yaw.cos()], dim=-1)  # (n, 3)
        eye = c + lerp(self.distance_m, 2)[:, None] * direction
        w, h = self.image_size
        pp = torch.tensor([w / 2, h / 2], dtype=torch.float64) + self.principal_jitter_px * (2 * u[:, 5:7] - 1)
        scale = torch.tensor([1.0, 0.5, 0.1, 0.1, 0.25], dtype=torch.float64) * self.dist_scale
        cam = look_at_camera(
            eye,
            c.expand_as(eye),
            focal_px=lerp(self.focal_px, 3),
            image_size=(w, h),
            principal_point=pp,
            dist=scale * (2 * u[:, 7:12] - 1),
            roll=torch.deg2rad(lerp(self.roll_deg, 4)),
        )
        return cam.to(device=device, dtype=dtype or torch.get_default_dtype())


def random_cameras(
    n: int,
    center: Any,
    *,
    yaw_deg: tuple[float, float] = (-180.0, 180.0),
    pitch_deg: tuple[float, float] = (-10.0, 30.0),
    distance_m: tuple[float, float] = (3.0, 6.0),
    focal_px: tuple[float, float] = (800.0, 1600.0),
    image_size: tuple[int, int] = (1000, 1000),
    roll_deg: tuple[float, float] = (0.0, 0.0),
    principal_jitter_px: float = 0.0,
    dist_scale: float = 0.0,
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> Camera:
    """``n`` virtual cameras (batch ``(n,)``) around a subject, each looking at its centre.

    A camera sits at ``center + d * (cos(pitch) sin(yaw), sin(pitch), cos(pitch) cos(yaw))`` in the y-up
    world: ``yaw`` about world ``y`` from ``+z`` towards ``+x``, ``pitch > 0`` above the centre looking down,
    ``d`` the distance to the centre. It looks at the centre (see :func:`look_at_camera`), then rolls by
    ``roll``. ``fx = fy = focal``; the principal point is the image centre plus ``U(-j, j)`` per axis. With
    ``s = dist_scale``: ``k1 ~ U(-s, s)``, ``k2 ~ U(-s/2, s/2)``, ``p1, p2 ~ U(-s/10, s/10)``,
    ``k3 ~ U(-s/4, s/4)``. The centre always projects to the principal point, inside the image.

    Args:
        n: Number of cameras.
        center: Subject centres ``(3,)`` or ``(n, 3)``, metres.
        yaw_deg, pitch_deg, distance_m, focal_px, roll_deg: ``(low, high)`` uniform ranges.
        image_size: ``(width, height)`` in pixels.
        principal_jitter_px: Half-width ``j`` of the principal-point jitter, pixels.
        dist_scale: Scale ``s`` of the random distortion (0: none).
        generator: Seeded CPU generator for reproducible cameras.
        dtype, device: Of the returned camera tensors (default dtype, CPU).
    """
    ranges = CameraRanges(
        yaw_deg=yaw_deg,
        pitch_deg=pitch_deg,
        distance_m=distance_m,
        focal_px=focal_px,
        image_size=image_size,
        roll_deg=roll_deg,
        principal_jitter_px=principal_jitter_px,
        dist_scale=dist_scale,
    )
    return ranges.sample(n, center, generator=generator, dtype=dtype, device=device)
