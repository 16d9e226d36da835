"""COCO keypoint annotation files (``person_keypoints_<split>.json``, https://cocodataset.org/#format-data).

::

    {"images": [{"id": 397133, "file_name": "000000397133.jpg", ...}, ...],
     "annotations": [{"id": 200887, "image_id": 397133, "category_id": 1,
                      "keypoints": [x1, y1, v1, ..., x17, y17, v17], "num_keypoints": 15,
                      "bbox": [x, y, w, h], "iscrowd": 0, ...}, ...],
     "categories": [{"id": 1, "name": "person", "keypoints": ["nose", "left_eye", ...], "skeleton": [...]}]}

Pixels, origin at the top-left corner of the image. ``v`` is 0 (not labelled: ``x = y = 0``), 1 (labelled,
not visible) or 2 (labelled and visible); keypoints with ``v = 0`` come back NaN. Every annotation is read,
crowd ones included (``iscrowd``; their keypoints are all unlabelled). ``num_keypoints`` is not read: it is
``(visibility > 0).sum(-1)``. The keypoint order is the one of every keypoint category, which must be
kinepose's ``coco17`` layout, name for name after normalizing spelling (case, ``_``, ``-`` and spaces ignored).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kinepose.data.formats._common import _read_json
from kinepose.errors import FileFormatError
from kinepose.skeleton.layouts import convert_layout, get_layout

__all__ = ["CocoKeypoints", "load_coco_keypoints"]

_LAYOUT = "coco17"


@dataclass
class CocoKeypoints:
    """The keypoint annotations of a COCO file, one row per annotation, in file order.

    Attributes:
        annotation_ids: (N,) int64 annotation ``id``.
        image_ids: (N,) int64 ``image_id``.
        file_names: ``N`` image file names (the ``images`` entry of each annotation's image).
        keypoints: (N, 17, 2) float64 pixels ``x, y``, NaN where ``v == 0``.
        visibility: (N, 17) int64 ``v`` in {0, 1, 2}.
        bbox: (N, 4) float64 ``x, y, width, height`` pixels (COCO's box convention).
        iscrowd: (N,) bool.
        path: the file read.
        layout: ``"coco17"``, the keypoint order (:func:`kinepose.skeleton.layouts.get_layout`).
    """

    annotation_ids: np.ndarray
    image_ids: np.ndarray
    file_names: list[str]
    keypoints: np.ndarray
    visibility: np.ndarray
    bbox: np.ndarray
    iscrowd: np.ndarray
    path: str = ""
    layout: str = field(default=_LAYOUT)

    def __len__(self) -> int:
        return len(self.annotation_ids)

    def to_layout(self, dst: str, strict: bool = False) -> np.ndarray:
        """The keypoints in another layout (:func:`~kinepose.skeleton.layouts.convert_layout`, which handles 2D).

        Args:
            dst: the target layout (``"h36m17"``: pelvis = mid-hips, as MotionBERT's ``coco2h36m``...).
            strict: raise if ``dst`` has joints COCO cannot give, instead of returning them NaN.

        Returns:
            (N, J_dst, 2) float64 pixels; NaN where a source keypoint is unlabelled or ``dst``'s joint cannot
            be formed.
        """
        return np.asarray(convert_layout(self.keypoints, self.layout, dst, strict=strict))


def load_coco_keypoints(path: str | os.PathLike) -> CocoKeypoints:
    """Read a COCO keypoint annotation file (format in the module docstring).

    Args:
        path: the ``.json`` file.

    Returns:
        :class:`CocoKeypoints`, one row per annotation.

    Raises:
        FileFormatError: not JSON, a missing key, a keypoint category whose names are not ``coco17``'s (naming
            the first mismatch), an annotation whose ``keypoints`` is not 51 numbers or whose ``v`` is not 0, 1
            or 2, or whose image is not in ``images`` (naming the annotation id).
    """
    spath = os.fspath(path)
    doc = _read_json(spath)
    if not isinstance(doc, dict):
        raise FileFormatError(f"expected an object with 'images', 'annotations' and 'categories', got "
                              f"{type(doc).__name__} (a results list is not an annotation file)", spath)  # fmt: skip
    for key in ("images", "annotations", "categories"):
        if key not in doc:
            raise FileFormatError(f"missing key {key!r} (a COCO keypoint file has images, annotations, categories)",
                                  spath)  # fmt: skip
        if not isinstance(doc[key], list):
            raise FileFormatError(f"{key!r}: expected a list, got {type(doc[key]).__name__}", spath)
    keypoint_cats = _check_categories(doc["categories"], spath)
    names = _image_names(doc["images"], spath)
    J = get_layout(_LAYOUT).num_joints
    anns = doc["annotations"]
    N = len(anns)
    ann_ids, img_ids = np.zeros(N, dtype=np.int64), np.zeros(N, dtype=np.int64)
    kp, vis = np.zeros((N, J, 2)), np.zeros((N, J), dtype=np.int64)
    bbox, crowd, files = np.zeros((N, 4)), np.zeros(N, dtype=bool), []
    for i, ann in enumerate(anns):
        if not isinstance(ann, dict):
            raise FileFormatError(f"annotations[{i}]: expected an object, got {type(ann).__name__}", spath)
        for key in ("id", "image_id", "keypoints", "bbox"):
            if key not in ann:
                who = f"annotation id {ann['id']}" if "id" in ann else f"annotations[{i}]"
                raise FileFormatError(f"{who}: missing key {key!r}", spath)
        who = f"annotation id {ann['id']}"
        ann_ids[i] = _int(ann["id"], f"annotations[{i}]: id", spath)
        img_ids[i] = _int(ann["image_id"], f"{who}: image_id", spath)
        if "category_id" in ann and keypoint_cats and ann["category_id"] not in keypoint_cats:
            raise FileFormatError(f"{who}: category_id {ann['category_id']!r} is not a keypoint category "
                                  f"(those are {sorted(keypoint_cats)})", spath)  # fmt: skip
        if img_ids[i] not in names:
            raise FileFormatError(f"{who}: image_id {img_ids[i]} is not in 'images'", spath)
        files.append(names[int(img_ids[i])])
        raw = _numbers(ann["keypoints"], f"{who}: keypoints", spath)
        if raw.shape != (3 * J,):
            raise FileFormatError(f"{who}: keypoints has {raw.size} values, expected {3 * J} (x, y, v for "
                                  f"{J} keypoints)", spath)  # fmt: skip
        xyv = raw.reshape(J, 3)
        if not np.isin(xyv[:, 2], (0, 1, 2)).all():
            bad = int(np.flatnonzero(~np.isin(xyv[:, 2], (0, 1, 2)))[0])
            v = ann["keypoints"][3 * bad + 2]
            raise FileFormatError(f"{who}: keypoint {bad} has visibility {v!r}, expected 0, 1 or 2", spath)
        vis[i] = xyv[:, 2].astype(np.int64)
        kp[i] = np.where(vis[i][:, None] == 0, np.nan, xyv[:, :2])
        box = _numbers(ann["bbox"], f"{who}: bbox", spath)
        if box.shape != (4,):
            raise FileFormatError(f"{who}: bbox has {box.size} values, expected 4 (x, y, width, height)", spath)
        bbox[i] = box
        crowd[i] = bool(ann.get("iscrowd", 0))
    return CocoKeypoints(ann_ids, img_ids, files, kp, vis, bbox, crowd, spath)


# ----------------------------------------------------------------------------------------------- helpers


def _norm(name: Any) -> str:
    """Spelling-free form of a keypoint name: ``Left-Eye``, ``left eye``, ``leftEye`` -> ``lefteye``."""
    return "".join(ch for ch in str(name).lower() if ch.isalnum())


def _check_categories(categories: list, path: str) -> set:
    """Ids of the categories with ``keypoints``; each one's names must be coco17's (normalized)."""
    want = get_layout(_LAYOUT).joint_names
    ids = set()
    for c, cat in enumerate(categories):
        if not isinstance(cat, dict) or "keypoints" not in cat:
            continue
        who = f"category {cat.get('id', c)!r} ({cat.get('name', '?')!r})"
        names = cat["keypoints"]
        if not isinstance(names, list) or len(names) != len(want):
            n = len(names) if isinstance(names, list) else type(names).__name__
            raise FileFormatError(f"{who}: has {n} keypoint names, layout '{_LAYOUT}' has {len(want)}", path)
        for j, (got, exp) in enumerate(zip(names, want, strict=True)):
            if _norm(got) != _norm(exp):
                raise FileFormatError(f"{who}: keypoint {j} is {got!r}, layout '{_LAYOUT}' has {exp!r} there", path)
        ids.add(cat.get("id"))
    if not ids:
        raise FileFormatError("no category has 'keypoints' names: not a keypoint annotation file", path)
    return ids


def _image_names(images: list, path: str) -> dict[int, str]:
    out = {}
    for i, img in enumerate(images):
        if not isinstance(img, dict) or "id" not in img or "file_name" not in img:
            raise FileFormatError(f"images[{i}]: expected an object with 'id' and 'file_name'", path)
        out[_int(img["id"], f"images[{i}]: id", path)] = str(img["file_name"])
    return out


def _int(value: Any, what: str, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value % 1:
        raise FileFormatError(f"{what}: expected an integer, got {value!r}", path)
    return int(value)


def _numbers(value: Any, what: str, path: str) -> np.ndarray:
    if not isinstance(value, list) or any(isinstance(x, bool) or not isinstance(x, (int, float)) for x in value):
        raise FileFormatError(f"{what}: expected a flat list of numbers", path)
    arr = np.array(value, dtype=np.float64)
    if not np.isfinite(arr).all():
        raise FileFormatError(f"{what}: non-finite value", path)
    return arr
