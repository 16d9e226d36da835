"""Running a trained lifter on keypoints: whole clips, pixels in, camera-frame 3D out."""

from __future__ import annotations

import os

import numpy as np
import torch

from kinepose.errors import KineposeError, ShapeError
from kinepose.models.lifting.base import Lifter
from kinepose.models.lifting.files import load_lifter
from kinepose.skeleton.core import Skeleton

__all__ = ["lift_clip", "lift_keypoints", "lifter_skeleton"]

_CACHE: dict[str, tuple[float, Lifter]] = {}


def _lifter(run: str | os.PathLike | Lifter) -> Lifter:
    """A lifter object, or the one of a run folder / lifter.pt (kept until the file changes)."""
    if isinstance(run, Lifter):
        return run
    path = os.fspath(run)
    file = os.path.join(path, "lifter.pt") if os.path.isdir(path) else path
    mtime = os.path.getmtime(file) if os.path.exists(file) else -1.0
    hit = _CACHE.get(file)
    if hit is None or hit[0] != mtime:
        hit = (mtime, load_lifter(path))
        _CACHE[file] = hit
    return hit[1]


def lifter_skeleton(run: str | os.PathLike | Lifter) -> Skeleton:
    """The skeleton whose joints a lifter takes (2D) and gives (3D)."""
    return _lifter(run).skeleton


@torch.no_grad()
def lift_clip(model: Lifter, keypoints: torch.Tensor, visibility: torch.Tensor | None = None) -> torch.Tensor:
    """(T, J, 2) screen-normalized keypoints of one clip (NaN = missing) -> (T, J, 3) root-relative camera-frame
    joints, metres."""
    model.eval()
    return model.forward_sequence(keypoints[None], None if visibility is None else visibility[None])[0]


def lift_keypoints(
    run: str | os.PathLike | Lifter,
    keypoints_px: np.ndarray,
    visibility: np.ndarray | None,
    image_size: tuple[int, int],
) -> np.ndarray:
    """Lift a clip's pixel keypoints with a trained lifter.

    Args:
        run: a lifting run folder, its ``lifter.pt``, or a :class:`Lifter`.
        keypoints_px: (T, J, 2) pixels on the lifter's skeleton joints (NaN = missing).
        visibility: (T, J) in [0, 1] (0 = missing), or None.
        image_size: (width, height) of the images, pixels.

    Returns:
        (T, J, 3) root-relative joints in the camera frame (x right, y down, z forward), metres.
    """
    from kinepose.geometry.normalization import normalize_screen_coordinates

    model = _lifter(run)
    kp = torch.as_tensor(np.asarray(keypoints_px, dtype=np.float32))
    J = model.num_joints
    if kp.dim() != 3 or kp.shape[1:] != (J, 2):
        raise ShapeError(
            f"keypoints_px: expected (T, {J}, 2) on skeleton '{model.skeleton.name}', got {tuple(kp.shape)}"
        )
    vis = None
    if visibility is not None:
        vis = torch.as_tensor(np.asarray(visibility, dtype=np.float32))
        if vis.shape != kp.shape[:2]:
            raise ShapeError(f"visibility: expected shape {tuple(kp.shape[:2])}, got {tuple(vis.shape)}")
    w, h = (int(v) for v in image_size)
    if w <= 0 or h <= 0:
        raise KineposeError(f"image_size: expected positive (width, height), got {image_size}")
    norm = normalize_screen_coordinates(kp, w, h)
    return lift_clip(model, norm, vis).numpy()
