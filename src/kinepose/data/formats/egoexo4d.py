"""Ego-Exo4D hand ego-pose annotations (the benchmark's ground-truth JSON files) and their camera poses.

Annotation file (what the benchmark's ``handpose/data_preparation`` writes, such as
``ego_pose_gt_anno_train_public.json``)::

    {take_uid: {frame_number (a string of an int): {
        "right_hand_2d": [[x, y], ...21],        # pixels on the undistorted 512 x 512 Aria image
        "right_hand_3d": [[x, y, z], ...21],     # metres, in the Aria camera frame
        "right_hand_bbox": [x1, y1, x2, y2],     # pixels
        "right_hand_valid_3d": [true, ...21],
        "left_hand_2d": ..., "left_hand_3d": ..., "left_hand_bbox": ..., "left_hand_valid_3d": ...,
        "metadata": {"take_uid": ..., "take_name": ..., "frame_number": ...}}}}

A hand that is not annotated in a frame has empty lists ``[]``; a joint that is not is NaN (JSON ``NaN``) or
``null``, either for the joint (``null``) or its coordinates. ``metadata`` and other keys are not read. Every
frame must hold the same keys of a hand as the file's first frame (checked, so a key missing from one frame is
an error): the test split's public file holds only ``*_hand_bbox``, which reads with NaN 2D/3D and no valid
joint. The benchmark keeps the wrist's 3D position even where ``valid_3d`` marks it invalid (its wrist-relative
protocol needs it); a joint that ``valid_3d`` marks valid must be finite.

Joint order (21 per hand, checked against the benchmark's ``dataloader.py`` and ``utils.joint_dist_angle_check``):
wrist, then thumb, index, middle, ring, pinky with four joints each, ``<finger>_1`` (next to the wrist) to
``<finger>_4`` (the tip). That is **exactly** MediaPipe's ``HandLandmark`` order, layout ``mediapipe_hand``
(thumb_1..4 = thumb CMC, MCP, IP, tip; <finger>_1..4 = MCP, PIP, DIP, tip) and kinepose's ``kinepose_hand21``
(hand21 preset; Ego-Exo4D's pinky is its ``little``): index ``j`` here is joint ``j`` there, no reordering.
Hands come right then left (the benchmark's ``HAND_ORDER``).

Camera-pose file (``camera_path``), one of:

- per take: ``{take_uid: CAMERA, ...}``, where every take of the annotation file must appear;
- one take: ``CAMERA`` alone, for an annotation file of a single take;

where ``CAMERA`` is ``{"camera_intrinsics": 3x3, "camera_extrinsics": {frame_number: 3x4 [R|t], ...}}`` or
Ego-Exo4D's raw ``annotations/ego_pose/hand/camera_pose/<take_uid>.json`` layout, ``{camera_name: CAMERA,
..., "metadata": ...}``, from which the single camera named ``aria*`` is taken. The extrinsics map world to
camera (``p_cam = R p_world + t``, metres); a frame without extrinsics gets NaN ones.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from kinepose.data.formats._common import _read_json
from kinepose.errors import FileFormatError, KineposeError

__all__ = ["EGOEXO4D_HAND_JOINTS", "HANDS", "NUM_HAND_JOINTS", "EgoExoHandClip", "load_egoexo4d_hands"]

#: The hands, in the benchmark's order.
HANDS = ("right", "left")
NUM_HAND_JOINTS = 21
#: Ego-Exo4D's joint names (without the ``right_``/``left_`` prefix), in file order = ``mediapipe_hand``'s order.
EGOEXO4D_HAND_JOINTS = (
    "wrist",
    *(f"{f}_{k}" for f in ("thumb", "index", "middle", "ring", "pinky") for k in range(1, 5)),
)
_FIELDS = ("2d", "3d", "bbox", "valid_3d")


@dataclass
class EgoExoHandClip:
    """One hand of one take, frames in increasing order.

    Attributes:
        take_uid: the take.
        hand: ``"right"`` or ``"left"``.
        frames: (T,) int64 frame numbers, increasing.
        keypoints_2d: (T, 21, 2) float64 pixels on the undistorted 512 x 512 image, NaN where missing.
        joints_3d: (T, 21, 3) float64 metres in the camera frame, NaN where missing.
        valid_3d: (T, 21) bool, the file's ``valid_3d`` (False where the hand is absent; in a file without
            ``*_valid_3d`` keys, the joints with a finite 3D position).
        visible: (T,) bool, the hand is annotated in the frame (any of its lists is non-empty).
        bbox: (T, 4) float64 ``x1, y1, x2, y2`` pixels, NaN where absent.
        K: (3, 3) float64 intrinsics of the take, or None without a camera file.
        extrinsics: (T, 3, 4) float64 world-to-camera ``[R|t]`` per frame (NaN where the file has none), or None.
        joint_names: the 21 Ego-Exo4D joint names (:data:`EGOEXO4D_HAND_JOINTS`), = layout ``mediapipe_hand``.
        take_name: the take's name from the first frame's ``metadata`` (the image folder's name,
            :func:`kinepose.data.formats.egoexo4d_images.egoexo4d_hand_crops`), or None when absent.
    """

    take_uid: str
    hand: str
    frames: np.ndarray
    keypoints_2d: np.ndarray
    joints_3d: np.ndarray
    valid_3d: np.ndarray
    visible: np.ndarray
    bbox: np.ndarray
    K: np.ndarray | None = None
    extrinsics: np.ndarray | None = None
    joint_names: tuple[str, ...] = EGOEXO4D_HAND_JOINTS
    take_name: str | None = None

    @property
    def num_frames(self) -> int:
        return len(self.frames)


def load_egoexo4d_hands(
    annotation_path: str | os.PathLike,
    camera_path: str | os.PathLike | None = None,
    hands: Sequence[str] | str = HANDS,
) -> list[EgoExoHandClip]:
    """Read an Ego-Exo4D hand-pose annotation file (and optionally its camera poses); see the module docstring.

    Args:
        annotation_path: the annotation JSON, ``{take_uid: {frame_number: {...}}}``.
        camera_path: optional camera-pose JSON (per-take or single-take, module docstring) giving ``K`` and
            ``extrinsics``.
        hands: which hands to read, ``"right"`` and/or ``"left"`` (a single string is one hand).

    Returns:
        One :class:`EgoExoHandClip` per (take, hand): takes in file order, hands in the order of ``hands``.

    Raises:
        FileFormatError: unreadable or invalid JSON, a wrong structure, shape or value (the message names the
            file, take, frame and key), a take missing from the camera file.
        KineposeError: bad ``hands``.
    """
    hands = _check_hands(hands)
    apath = os.fspath(annotation_path)
    doc = _read_json(apath)
    if not isinstance(doc, dict) or not doc:
        raise FileFormatError(f"expected a non-empty object {{take_uid: {{frame_number: {{...}}}}}}, "
                              f"got {_kind(doc)}", apath)  # fmt: skip
    cameras = _read_cameras(os.fspath(camera_path), list(doc)) if camera_path is not None else None
    schema = _schema(doc, hands, apath)
    clips = []
    for take, frames_doc in doc.items():
        if not isinstance(frames_doc, dict) or not frames_doc:
            raise FileFormatError(f"take {take}: expected a non-empty object {{frame_number: {{...}}}}, "
                                  f"got {_kind(frames_doc)}", apath)  # fmt: skip
        numbers = {k: _frame_number(k, f"take {take}", apath) for k in frames_doc}
        order = sorted(frames_doc, key=numbers.__getitem__)
        frames = np.array([numbers[k] for k in order], dtype=np.int64)
        if len(set(frames.tolist())) != len(frames):
            raise FileFormatError(f"take {take}: two frame keys name the same frame number", apath)
        K = extr = None
        if cameras is not None:
            K, by_frame = cameras[take]
            extr = np.stack([by_frame.get(int(f), np.full((3, 4), np.nan)) for f in frames])  # (T, 3, 4)
        for hand in hands:
            rows = [_hand(frames_doc[k], take, k, hand, schema[hand], apath) for k in order]
            kp2, kp3, valid, vis, box = (np.stack(a) for a in zip(*rows, strict=True))
            own = (None if a is None else a.copy() for a in (K, extr))  # no array shared between clips
            meta = frames_doc[order[0]].get("metadata") if isinstance(frames_doc[order[0]], dict) else None
            name = meta.get("take_name") if isinstance(meta, dict) else None
            clips.append(EgoExoHandClip(str(take), hand, frames.copy(), kp2, kp3, valid, vis, box, *own,
                                        take_name=None if name is None else str(name)))  # fmt: skip
    return clips


# ----------------------------------------------------------------------------------------------- annotations


def _check_hands(hands: Sequence[str] | str) -> tuple[str, ...]:
    out = (hands,) if isinstance(hands, str) else tuple(hands)
    if not out or any(h not in HANDS for h in out) or len(set(out)) != len(out):
        raise KineposeError(f"hands: expected distinct values among {HANDS}, got {hands!r}")
    return out


def _kind(value: Any) -> str:
    return "an empty object" if value == {} else type(value).__name__


def _frame_number(key: str, where: str, path: str) -> int:
    try:
        return int(key)
    except ValueError:
        raise FileFormatError(f"{where}: frame key {key!r} is not an integer frame number", path) from None


def _schema(doc: dict, hands: tuple[str, ...], path: str) -> dict[str, tuple[str, ...]]:
    """The ``<hand>_hand_*`` keys of the file's first frame, per hand (every frame must hold the same)."""
    take, frames_doc = next(iter(doc.items()))
    if not isinstance(frames_doc, dict) or not frames_doc:
        raise FileFormatError(f"take {take}: expected a non-empty object {{frame_number: {{...}}}}, "
                              f"got {_kind(frames_doc)}", path)  # fmt: skip
    frame, first = next(iter(frames_doc.items()))
    if not isinstance(first, dict):
        raise FileFormatError(f"take {take} frame {frame}: expected an object, got {_kind(first)}", path)
    schema = {h: tuple(f for f in _FIELDS if f"{h}_hand_{f}" in first) for h in hands}
    for h in hands:
        if not schema[h]:
            want = ", ".join(f"{h}_hand_{f}" for f in _FIELDS)
            raise FileFormatError(f"take {take} frame {frame}: missing key '{h}_hand_3d' (no key of the {h} hand; "
                                  f"expected {want})", path)  # fmt: skip
    return schema


def _hand(
    frame_doc: Any, take: str, frame: str, hand: str, fields: tuple[str, ...], path: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool, np.ndarray]:
    """One hand of one frame: (21, 2), (21, 3), (21,) bool valid, visible, (4,) bbox."""
    where = f"take {take} frame {frame}"
    if not isinstance(frame_doc, dict):
        raise FileFormatError(f"{where}: expected an object, got {_kind(frame_doc)}", path)
    for f in fields:
        if f"{hand}_hand_{f}" not in frame_doc:
            raise FileFormatError(f"{where}: missing key '{hand}_hand_{f}' (the file's first frame has it)", path)
    extra = [f"{hand}_hand_{f}" for f in _FIELDS if f not in fields and f"{hand}_hand_{f}" in frame_doc]
    if extra:
        raise FileFormatError(f"{where}: key {extra[0]!r} that the file's first frame lacks", path)
    J = NUM_HAND_JOINTS
    kp2 = _points(frame_doc.get(f"{hand}_hand_2d", []), 2, f"{where}: {hand}_hand_2d", path)
    kp3 = _points(frame_doc.get(f"{hand}_hand_3d", []), 3, f"{where}: {hand}_hand_3d", path)
    box = _bbox(frame_doc.get(f"{hand}_hand_bbox", []), f"{where}: {hand}_hand_bbox", path)
    raw_valid = frame_doc.get(f"{hand}_hand_valid_3d", [])
    visible = any(frame_doc.get(f"{hand}_hand_{f}") not in ([], None) for f in fields)
    if "valid_3d" in fields and raw_valid != []:
        valid = _flags(raw_valid, f"{where}: {hand}_hand_valid_3d", path)
        bad = np.flatnonzero(valid & ~np.isfinite(kp3).all(-1))
        if bad.size:
            raise FileFormatError(f"{where}: {hand}_hand_valid_3d marks joint {int(bad[0])} "
                                  f"({EGOEXO4D_HAND_JOINTS[bad[0]]}) valid but {hand}_hand_3d has no finite "
                                  f"position for it", path)  # fmt: skip
    elif "valid_3d" not in fields:
        valid = np.isfinite(kp3).all(-1)  # no valid flags in the file: the finite joints
    elif np.isfinite(kp3).any():
        raise FileFormatError(f"{where}: {hand}_hand_valid_3d is [] but {hand}_hand_3d is not", path)
    else:
        valid = np.zeros(J, dtype=bool)
    return kp2, kp3, valid, visible, box


def _points(value: Any, channels: int, what: str, path: str) -> np.ndarray:
    """A list of 21 points (or ``[]``: absent) -> (21, channels) float64, NaN for null/NaN; inf is an error."""
    J = NUM_HAND_JOINTS
    if value == [] or value is None:
        return np.full((J, channels), np.nan)
    if not isinstance(value, list):
        raise FileFormatError(f"{what}: expected a list of {J} [{', '.join('xyz'[:channels])}] points or [], "
                              f"got {_kind(value)}", path)  # fmt: skip
    if len(value) != J:
        raise FileFormatError(f"{what} has {len(value)} joints, expected {J}", path)
    rows = [[None] * channels if p is None else p for p in value]  # a null joint: missing
    for j, p in enumerate(rows):
        if not isinstance(p, list) or len(p) != channels:
            n = len(p) if isinstance(p, list) else _kind(p)
            raise FileFormatError(f"{what}: joint {j} has {n} coordinates, expected {channels}", path)
    arr = _floats(rows, what, path)
    if np.isinf(arr).any():
        j = int(np.argwhere(np.isinf(arr))[0][0])
        raise FileFormatError(f"{what}: joint {j} has an infinite coordinate (a missing joint is NaN or null)", path)
    arr[np.isnan(arr).any(-1)] = np.nan  # one missing coordinate: the joint is missing
    return arr


def _floats(value: Any, what: str, path: str) -> np.ndarray:
    if any(isinstance(x, (str, bool)) for x in _flatten(value)):
        raise FileFormatError(f"{what}: expected numbers (or null/NaN), found a string or boolean", path)
    try:
        return np.array(value, dtype=np.float64)  # null -> NaN
    except (TypeError, ValueError) as exc:
        raise FileFormatError(f"{what}: expected numbers ({exc})", path) from None


def _flatten(value: Any) -> list:
    out, stack = [], [value]
    while stack:
        v = stack.pop()
        if isinstance(v, list):
            stack.extend(v)
        else:
            out.append(v)
    return out


def _bbox(value: Any, what: str, path: str) -> np.ndarray:
    if value == [] or value is None:
        return np.full(4, np.nan)
    if not isinstance(value, list) or len(value) != 4:
        n = f"{len(value)} values" if isinstance(value, list) else _kind(value)
        raise FileFormatError(f"{what} has {n}, expected 4 (x1, y1, x2, y2) or []", path)
    box = _floats(value, what, path)
    if not np.isfinite(box).all():
        raise FileFormatError(f"{what}: non-finite value in {box.tolist()}", path)
    return box


def _flags(value: Any, what: str, path: str) -> np.ndarray:
    J = NUM_HAND_JOINTS
    if not isinstance(value, list) or len(value) != J:
        n = f"{len(value)} joints" if isinstance(value, list) else _kind(value)
        raise FileFormatError(f"{what} has {n}, expected {J} booleans or []", path)
    if any(v is not None and v not in (0, 1) for v in value):  # True/False (== 1/0); null: not valid
        raise FileFormatError(f"{what}: expected booleans, got {value}", path)
    return np.array([bool(v) for v in value], dtype=bool)


# ----------------------------------------------------------------------------------------------- cameras


def _read_cameras(path: str, takes: list[str]) -> dict[str, tuple[np.ndarray, dict[int, np.ndarray]]]:
    """take -> ((3, 3) K, {frame number: (3, 4) extrinsics})."""
    doc = _read_json(path)
    if not isinstance(doc, dict):
        raise FileFormatError(f"expected an object (per take or one take's camera), got {_kind(doc)}", path)
    if any(t in doc for t in takes):  # per take
        missing = [t for t in takes if t not in doc]
        if missing:
            raise FileFormatError(f"take {missing[0]} of the annotation file has no camera entry "
                                  f"({len(missing)} take(s) missing)", path)  # fmt: skip
        return {t: _camera(doc[t], f"take {t}", path) for t in takes}
    if len(takes) != 1:
        raise FileFormatError(
            f"holds one take's camera (no key is a take of the annotation file) but the annotation file has "
            f"{len(takes)} takes; give {{take_uid: camera, ...}}",
            path,
        )
    return {takes[0]: _camera(doc, f"take {takes[0]}", path)}


def _camera(entry: Any, where: str, path: str) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    if not isinstance(entry, dict):
        raise FileFormatError(f"{where}: expected a camera object, got {_kind(entry)}", path)
    if "camera_intrinsics" not in entry:  # raw Ego-Exo4D camera_pose file: {camera_name: {...}, "metadata": ...}
        aria = [k for k, v in entry.items() if str(k).lower().startswith("aria") and isinstance(v, dict)]
        if len(aria) != 1:
            raise FileFormatError(f"{where}: missing key 'camera_intrinsics' (and not one 'aria*' camera among "
                                  f"{sorted(entry)[:8]})", path)  # fmt: skip
        where, entry = f"{where} camera {aria[0]}", entry[aria[0]]
        if "camera_intrinsics" not in entry:
            raise FileFormatError(f"{where}: missing key 'camera_intrinsics'", path)
    if "camera_extrinsics" not in entry:
        raise FileFormatError(f"{where}: missing key 'camera_extrinsics'", path)
    K = _matrix(entry["camera_intrinsics"], (3, 3), f"{where}: camera_intrinsics", path)
    ext = entry["camera_extrinsics"]
    if not isinstance(ext, Mapping):
        raise FileFormatError(f"{where}: camera_extrinsics: expected {{frame_number: 3x4}}, got {_kind(ext)}", path)
    by_frame = {}
    for key, value in ext.items():
        by_frame[_frame_number(key, f"{where}: camera_extrinsics", path)] = _matrix(
            value, (3, 4), f"{where}: camera_extrinsics frame {key}", path
        )
    return K, by_frame


def _matrix(value: Any, shape: tuple[int, int], what: str, path: str) -> np.ndarray:
    if not isinstance(value, list):
        raise FileFormatError(f"{what}: expected a {shape[0]}x{shape[1]} list of lists, got {_kind(value)}", path)
    arr = _floats(value, what, path)
    if arr.shape != shape:
        raise FileFormatError(f"{what} has shape {arr.shape}, expected {shape}", path)
    if not all(math.isfinite(x) for x in arr.ravel()):
        raise FileFormatError(f"{what}: non-finite value", path)
    return arr
