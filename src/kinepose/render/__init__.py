"""Offline renderer of labelled training images: a posed skeleton as shaded solids, seen by a pinhole camera.

Numpy ray casting on the CPU (no GPU, no network), deterministic given a seed. See :func:`render_pose` (one image),
:func:`render_clip` (frames of a clip), :class:`RenderConfig` (image size, backgrounds, occluders, lighting) and
:func:`camera_ranges_for` (random cameras framing a subject).
"""

from __future__ import annotations

from kinepose.render.body import Appearance, model_kind, sample_appearance
from kinepose.render.config import BACKGROUNDS, OCCLUDER_KINDS, PART_NAMES, Occluder, RenderConfig
from kinepose.render.renderer import ClipLabels, RenderLabels, make_rng, render_clip, render_pose
from kinepose.render.views import camera_ranges_for, render_views

__all__ = [
    "BACKGROUNDS",
    "OCCLUDER_KINDS",
    "PART_NAMES",
    "Appearance",
    "ClipLabels",
    "Occluder",
    "RenderConfig",
    "RenderLabels",
    "camera_ranges_for",
    "make_rng",
    "model_kind",
    "render_clip",
    "render_pose",
    "render_views",
    "sample_appearance",
]
