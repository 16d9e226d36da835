"""Settings of the training-image renderer: :class:`RenderConfig`, explicit :class:`Occluder` objects, part names."""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral
from typing import Any

import numpy as np

from kinepose.errors import KineposeError

__all__ = ["BACKGROUNDS", "OCCLUDER_KINDS", "PART_NAMES", "Occluder", "RenderConfig"]

#: Names of the part-map values: ``labels.part_map == PART_NAMES.index("face")`` selects the face patch.
PART_NAMES: tuple[str, ...] = (
    "background",
    "head",
    "face",
    "neck",
    "torso",
    "pelvis",
    "upper_arm",
    "forearm",
    "hand",
    "palm",
    "back_of_hand",
    "thigh",
    "shin",
    "foot",
    "toes",
    "finger",
    "limb",
    "occluder",
)
BACKGROUNDS = ("flat", "gradient", "noise", "stripes")
OCCLUDER_KINDS = ("box", "disc", "sphere")


def _pair(name: str, value: Any, lo: float = -math.inf, hi: float = math.inf) -> tuple[float, float]:
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError) as exc:
        raise KineposeError(f"{name}: expected a (low, high) pair of numbers, got {value!r}") from exc
    if not (math.isfinite(a) and math.isfinite(b) and lo <= a <= b <= hi):
        raise KineposeError(f"{name}: expected finite {lo} <= low <= high <= {hi}, got ({a}, {b})")
    return a, b


@dataclass(frozen=True)
class RenderConfig:
    """How training images are drawn (all ranges are ``(low, high)``, sampled uniformly per image).

    Attributes:
        image_size: ``(width, height)`` in pixels; cameras passed to the renderer must have this size.
        backgrounds: background kinds to draw from uniformly, some of :data:`BACKGROUNDS`.
        occluder_prob: probability that an image gets a random occluder in front of the subject.
        occluder_kinds: occluder shapes to draw from, some of :data:`OCCLUDER_KINDS`.
        occluder_size: occluder diameter as a fraction of the image width.
        ambient: ambient light level.
        diffuse: Lambert light level.
        light_cone_deg: angle between the light direction and the direction towards the camera.
        thickness: whole-subject scale of limb radii and body ellipsoids.
        part_jitter: per-segment-group radius factor ``1 +- part_jitter``.
        noise_std: standard deviation of Gaussian pixel noise, in 0-255 units (0: none).
        supersample: render at ``supersample`` times the resolution and box-filter down (anti-aliasing);
            labels and the part map refer to the final resolution.
        visibility_margin: a joint is visible when nothing at its pixel is nearer than its depth minus
            ``visibility_margin`` times its joint radius (or the front-most surface there is its own segment).
    """

    image_size: tuple[int, int] = (128, 128)
    backgrounds: tuple[str, ...] = BACKGROUNDS
    occluder_prob: float = 0.5
    occluder_kinds: tuple[str, ...] = OCCLUDER_KINDS
    occluder_size: tuple[float, float] = (0.12, 0.35)
    ambient: tuple[float, float] = (0.25, 0.5)
    diffuse: tuple[float, float] = (0.5, 0.85)
    light_cone_deg: tuple[float, float] = (0.0, 70.0)
    thickness: tuple[float, float] = (0.85, 1.2)
    part_jitter: float = 0.1
    noise_std: float = 0.0
    supersample: int = 1
    visibility_margin: float = 1.5

    def __post_init__(self) -> None:
        size = self.image_size
        if isinstance(size, str) or not hasattr(size, "__len__") or len(size) != 2:
            raise KineposeError(f"image_size: expected (width, height) in pixels, got {size!r}")
        for v in size:
            if isinstance(v, bool) or not isinstance(v, Integral) or int(v) <= 0:
                raise KineposeError(f"image_size: expected two positive ints (width, height), got {size!r}")
        object.__setattr__(self, "image_size", (int(size[0]), int(size[1])))
        for name, allowed in (("backgrounds", BACKGROUNDS), ("occluder_kinds", OCCLUDER_KINDS)):
            v = tuple(getattr(self, name))
            if not v or any(k not in allowed for k in v):
                raise KineposeError(f"{name}: expected a non-empty subset of {allowed}, got {v!r}")
            object.__setattr__(self, name, v)
        if not 0.0 <= float(self.occluder_prob) <= 1.0:
            raise KineposeError(f"occluder_prob: expected a probability in [0, 1], got {self.occluder_prob!r}")
        object.__setattr__(self, "occluder_size", _pair("occluder_size", self.occluder_size, 0.0, 10.0))
        object.__setattr__(self, "ambient", _pair("ambient", self.ambient, 0.0, 2.0))
        object.__setattr__(self, "diffuse", _pair("diffuse", self.diffuse, 0.0, 2.0))
        object.__setattr__(self, "light_cone_deg", _pair("light_cone_deg", self.light_cone_deg, 0.0, 180.0))
        object.__setattr__(self, "thickness", _pair("thickness", self.thickness, 1e-3, 100.0))
        for name in ("part_jitter", "noise_std", "visibility_margin"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v < math.inf:
                raise KineposeError(f"{name}: expected a finite number >= 0, got {v!r}")
        if self.part_jitter >= 1:
            raise KineposeError(f"part_jitter: expected a number in [0, 1), got {self.part_jitter!r}")
        ss = self.supersample
        if isinstance(ss, bool) or not isinstance(ss, Integral) or not 1 <= ss <= 8:
            raise KineposeError(f"supersample: expected an int in [1, 8], got {ss!r}")


@dataclass
class Occluder:
    """An explicit occluding object, in world coordinates (metres).

    Attributes:
        kind: ``"box"``, ``"disc"`` or ``"sphere"``.
        center: ``(3,)`` world position.
        size: sphere/disc radius, or box half extents ``(3,)`` (one number: a cube).
        rotation: ``(3, 3)`` world rotation of the local axes (a disc's normal is its local ``z``); default
            identity.
        color: RGB in ``[0, 1]``.
    """

    kind: str
    center: Any
    size: Any
    rotation: Any = None
    color: Any = (0.5, 0.5, 0.5)

    def __post_init__(self) -> None:
        if self.kind not in OCCLUDER_KINDS:
            raise KineposeError(f"occluder kind: expected one of {OCCLUDER_KINDS}, got {self.kind!r}")
        c = np.asarray(self.center, dtype=np.float64)
        if c.shape != (3,) or not np.isfinite(c).all():
            raise KineposeError(f"occluder center: expected 3 finite numbers, got {self.center!r}")
        s = np.broadcast_to(np.asarray(self.size, dtype=np.float64), (3,)).copy()
        if not (np.isfinite(s).all() and (s > 0).all()):
            raise KineposeError(f"occluder size: expected positive finite sizes, got {self.size!r}")
        R = np.eye(3) if self.rotation is None else np.asarray(self.rotation, dtype=np.float64)
        if R.shape != (3, 3) or not np.isfinite(R).all():
            raise KineposeError(f"occluder rotation: expected a finite (3, 3) matrix, got shape {R.shape}")
        col = np.asarray(self.color, dtype=np.float64)
        if col.shape != (3,) or not np.isfinite(col).all():
            raise KineposeError(f"occluder color: expected 3 numbers in [0, 1], got {self.color!r}")
        self.center, self.size, self.rotation, self.color = c, s, R, np.clip(col, 0, 1)
