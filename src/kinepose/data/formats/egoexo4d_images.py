"""Ego-Exo4D hand crops: the undistorted Aria frames of an :class:`~kinepose.data.formats.egoexo4d.EgoExoHandClip`
cut around each annotated hand's bounding box, as the benchmark's POTTER baseline does.

Frames are ``img_dir/{split}/{take_name}/{frame_number:06d}.jpg`` (the benchmark's data preparation writes the
undistorted 512 x 512 images there; its ``ego4d_dataset.py`` reads them so). A crop is the square around the box's
centre whose side is the box's longer side times ``scale`` (1.25 in the benchmark), resized to ``size`` x ``size``
(bilinear, OpenCV ``warpAffine``; outside the image is black); the 2D keypoints come mapped into the crop.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from kinepose.data.formats.egoexo4d import EgoExoHandClip
from kinepose.errors import FileFormatError, KineposeError

__all__ = ["EgoExoHandCrops", "crop_affine", "egoexo4d_frame_path", "egoexo4d_hand_crops"]


@dataclass
class EgoExoHandCrops:
    """The crops of one hand clip. ``images`` (N, size, size, 3) uint8 RGB; ``index`` (N,) positions in the clip's
    frames; ``frames`` (N,) frame numbers; ``keypoints_2d`` (N, 21, 2) in crop pixels (NaN where missing);
    ``affine`` (N, 2, 3) image -> crop pixels; ``joints_3d`` and ``valid_3d`` of those frames."""

    images: np.ndarray
    index: np.ndarray
    frames: np.ndarray
    keypoints_2d: np.ndarray
    affine: np.ndarray
    joints_3d: np.ndarray
    valid_3d: np.ndarray


def egoexo4d_frame_path(img_dir: str | os.PathLike, split: str, take_name: str, frame: int) -> str:
    """``img_dir/{split}/{take_name}/{frame:06d}.jpg``."""
    return os.path.join(os.fspath(img_dir), split, take_name, f"{int(frame):06d}.jpg")


def crop_affine(bbox: np.ndarray, size: int, scale: float = 1.25) -> np.ndarray:
    """(2, 3) affine from image pixels to the ``size`` x ``size`` crop of ``bbox`` = x1, y1, x2, y2 (module
    docstring): ``u' = k (u - c) + size / 2`` with ``k = size / (scale * max(w, h))``."""
    x1, y1, x2, y2 = (float(v) for v in bbox)
    side = scale * max(x2 - x1, y2 - y1)
    if not np.isfinite(side) or side <= 0:
        raise KineposeError(f"bbox {list(bbox)}: not a box with a positive width or height")
    k = size / side
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    return np.array([[k, 0.0, size / 2 - k * cx], [0.0, k, size / 2 - k * cy]])


def egoexo4d_hand_crops(clip: EgoExoHandClip, img_dir: str | os.PathLike, split: str, size: int = 224,
                        scale: float = 1.25, skip_missing: bool = False) -> EgoExoHandCrops:  # fmt: skip
    """Crops of every frame where the hand is annotated (visible, finite bbox).

    Raises:
        FileFormatError: a frame's image is missing (unless ``skip_missing``, as the benchmark skips them) or
            cannot be decoded, naming the file.
        KineposeError: no take name (the annotation file's ``metadata`` lacks ``take_name``), bad ``size``.
    """
    import cv2

    if size < 8:
        raise KineposeError(f"size: expected at least 8 pixels, got {size}")
    if clip.take_name is None:
        raise KineposeError(f"take {clip.take_uid}: no take_name in the annotations' metadata, so no image folder")
    rows, images, affines = [], [], []
    for i in np.flatnonzero(clip.visible & np.isfinite(clip.bbox).all(-1)):
        path = egoexo4d_frame_path(img_dir, split, clip.take_name, clip.frames[i])
        if not os.path.isfile(path):
            if skip_missing:
                continue
            raise FileFormatError(f"frame {int(clip.frames[i])} of take {clip.take_uid}: image not found", path)
        img = cv2.imread(path, cv2.IMREAD_COLOR)
        if img is None:
            raise FileFormatError("not a readable image (OpenCV cannot decode it)", path)
        A = crop_affine(clip.bbox[i], size, scale)
        crop = cv2.warpAffine(img, A, (size, size), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))
        rows.append(i)
        images.append(cv2.cvtColor(crop, cv2.COLOR_BGR2RGB))
        affines.append(A)
    idx = np.array(rows, dtype=np.int64)
    A = np.stack(affines) if affines else np.zeros((0, 2, 3))
    kp = clip.keypoints_2d[idx]  # (N, 21, 2)
    kp_crop = np.einsum("nij,nkj->nki", A[..., :2], kp) + A[:, None, :, 2]
    return EgoExoHandCrops(
        images=np.stack(images) if images else np.zeros((0, size, size, 3), np.uint8), index=idx,
        frames=clip.frames[idx], keypoints_2d=kp_crop, affine=A, joints_3d=clip.joints_3d[idx],
        valid_3d=clip.valid_3d[idx],
    )  # fmt: skip
