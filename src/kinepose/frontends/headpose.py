"""Photos and videos to head pose: yaw, pitch, roll and the rotation per frame, and a cervical range of motion.

:func:`estimate_headpose` runs MediaPipe FaceMesh (and Pose, for the landmark network) on every frame, then one
of the estimators of :func:`load_estimator`:

- ``"geometric"``: the Kabsch fit of the 468 landmarks to the mean face bundled with kinepose (no learning; the
  mean face of the 12 synthetic identities, ``models/headpose/assets/mean_face.npy``);
- a run folder of ``headpose_landmarks`` (MediaPipe landmarks -> MLP) or ``headpose_dual`` (the image network; the
  frame is cropped around the face as the synthetic training images were framed).

Angles follow :mod:`kinepose.geometry.headpose`: yaw > 0 turned to the subject's left, pitch > 0 chin up
(extension), roll > 0 tilted towards the left shoulder. :func:`range_of_motion` reads what a cervical assessment
reads from a video: maximum rotation left and right, flexion and extension, lateral bending left and right.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from kinepose.errors import KineposeError

if TYPE_CHECKING:
    from kinepose.frontends.mediapipe import Media

__all__ = ["Estimator", "HeadPoseTrack", "draw_head_axes", "estimate_headpose", "load_estimator", "range_of_motion"]

ASSETS = os.path.join(os.path.dirname(os.path.dirname(__file__)), "models", "headpose", "assets")
#: Framing of the synthetic training images (:func:`kinepose.render.heads.render_head`): the image side in metres
#: at the head (a 0.24 m head spans 56 % on average), where the head's rotation centre sits in the image, and the
#: mean forehead-to-chin distance (landmarks 10 to 152) of the 12 identities, which gives the pixels per metre.
CROP_SIDE_M, CROP_PIVOT, FOREHEAD_CHIN_M = 0.24 / 0.56, (0.50, 0.40), 0.157


@dataclass
class HeadPoseTrack:
    """Head pose per frame.

    Attributes:
        ypr: ``(T, 3)`` radians (yaw, pitch, roll), NaN where no face was found.
        rotation: ``(T, 3, 3)`` camera from head, NaN where no face was found.
        found: ``(T,)`` bool; num_faces: ``(T,)`` faces FaceMesh saw (the largest is used).
        face_centre: ``(T, 2)`` pixels, the face landmarks' centroid (NaN without a face); face_size: ``(T,)`` px.
        fps: a video's frame rate, None for images; model: the estimator's name; source: the input.
        files: the image file of each frame (empty for a video).
        seconds: ``{"mediapipe": s, "model": s}`` in all.
    """

    ypr: np.ndarray
    rotation: np.ndarray
    found: np.ndarray
    num_faces: np.ndarray
    face_centre: np.ndarray
    face_size: np.ndarray
    fps: float | None
    model: str
    source: str
    files: tuple[str, ...] = ()
    seconds: dict = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return int(self.found.shape[0])


class Estimator:
    """What :func:`load_estimator` returns: ``predict(rgb, face, pose)`` -> ``(3,)`` yaw, pitch, roll radians."""

    name = ""
    needs_pose = False

    def predict(self, rgb: np.ndarray, face: np.ndarray, pose: np.ndarray | None) -> np.ndarray:
        raise NotImplementedError


class _Geometric(Estimator):
    def __init__(self, mean_face: np.ndarray, name: str = "geometric") -> None:
        from kinepose.models.headpose import GeometricHeadPose

        self.model, self.name = GeometricHeadPose(mean_face), name

    def predict(self, rgb, face, pose):
        return self.model.predict(face[None])[0]


class _Run(Estimator):
    def __init__(self, folder: str, flip_tta: bool | None = None) -> None:
        from kinepose.training.headpose import load_headpose_run

        self.model, self.config = load_headpose_run(folder)
        self.kind = self.config["model"]
        self.needs_pose = self.kind == "headpose_landmarks"
        # measured (benchmarks/headpose_ensemble.py): mirroring helps the image network, not the landmark one
        self.flip_tta = self.kind == "headpose_dual" if flip_tta is None else bool(flip_tta)
        self.name = f"{self.kind} ({folder})" + (", flip TTA" if self.flip_tta else "")
        if self.kind == "headpose_dual":  # the crop is centred on the head's rotation centre: the fit says where
            from kinepose.models.headpose import GeometricHeadPose

            self._geometric = GeometricHeadPose(np.load(os.path.join(ASSETS, "mean_face.npy")).astype(np.float64))

    def predict(self, rgb, face, pose):
        from kinepose.models.headpose import landmark_vector
        from kinepose.training.headpose import predict_headpose

        if self.kind == "headpose_landmarks":
            p = np.full((33, 3), np.nan) if pose is None else pose
            x, kind = landmark_vector(face[None], p[None]), "vectors"
        else:
            R = self._geometric.rotation(face[None])[0]
            x, kind = head_crop(rgb, face, int(self.config.get("image_size", 112)), R)[None], "images"
        return predict_headpose(self.model, x, kind=kind, flip_tta=self.flip_tta)[0]


def head_crop(rgb: np.ndarray, face: np.ndarray, size: int, R: np.ndarray) -> np.ndarray:
    """``(size, size, 3)`` crop framed as the synthetic training images: the same metres per image side and the head's
    rotation centre at the same place, whatever the pose (replicated border).

    Args:
        rgb: ``(H, W, 3)`` uint8.
        face: ``(468, 3)`` FaceMesh pixels (z scaled like x: the forehead-to-chin distance does not shrink with pitch).
        size: output side, pixels.
        R: ``(3, 3)`` the head's rotation (the geometric fit's), which places the rotation centre behind the face.
    """
    import cv2

    from kinepose.render.heads import PIVOT

    px_per_m = float(np.linalg.norm(face[10] - face[152])) / FOREHEAD_CHIN_M
    pivot = face[:, :2].mean(0) + (np.asarray(R)[:2] @ PIVOT) * px_per_m  # the face centroid is -PIVOT from it
    side = CROP_SIDE_M * px_per_m
    x0, y0 = pivot[0] - CROP_PIVOT[0] * side, pivot[1] - CROP_PIVOT[1] * side
    n = max(round(side), 1)
    M = np.array([[1.0, 0.0, -x0], [0.0, 1.0, -y0]]) * (n / side)  # crop at (about) full resolution ...
    crop = cv2.warpAffine(rgb, M, (n, n), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)  # ... then shrink with area averaging


def load_estimator(model: str, flip_tta: bool | None = None) -> Estimator:
    """``"geometric"`` or a run folder (``headpose_landmarks`` / ``headpose_dual``); errors name what is wrong.

    Args:
        flip_tta: a run's answer averaged with its mirrored answer on the mirrored input
            (:func:`kinepose.training.headpose.predict_headpose`); ``None``: on for ``headpose_dual`` runs (where
            it was measured to help), off for ``headpose_landmarks`` runs (where it did not). Not for
            ``"geometric"``.
    """
    if model == "geometric":
        if flip_tta:
            raise KineposeError("flip_tta (--flip-tta) averages a network's answers on a picture and on its mirror; "
                                "the geometric fit has none to average: use it with a run folder")  # fmt: skip
        path = os.path.join(ASSETS, "mean_face.npy")
        if not os.path.isfile(path):
            raise KineposeError(f"--model geometric: the bundled mean face {path} is missing (reinstall kinepose)")
        return _Geometric(np.load(path).astype(np.float64))
    if not os.path.isdir(model):
        raise KineposeError(f"--model: {model}: expected 'geometric' or a head-pose run folder (kinepose train "
                            "configs/headpose_*.yaml writes one)")  # fmt: skip
    return _Run(model, flip_tta)


def estimate_headpose(media: Media | str | os.PathLike, estimator: Estimator, progress: bool = False) -> HeadPoseTrack:
    """Head pose of every frame of a :class:`~kinepose.frontends.mediapipe.Media` (or a path)."""
    from tqdm.auto import tqdm

    from kinepose.frontends.face import FaceLandmarker
    from kinepose.frontends.mediapipe import open_media

    media = media if hasattr(media, "frames") else open_media(media)
    ypr, nf, cen, size = [], [], [], []
    t_mp = t_model = 0.0
    bar = tqdm(total=media.num_frames, unit="frame", desc="head pose", disable=not progress, leave=False)
    with FaceLandmarker(max_faces=5, pose=estimator.needs_pose, static=media.kind != "video") as fl:
        for rgb in media.frames():
            t0 = time.perf_counter()
            r = fl.process(rgb)
            t1 = time.perf_counter()
            t_mp += t1 - t0
            nf.append(r.num_faces)
            if r.face is None:
                ypr.append(np.full(3, np.nan))
                cen.append(np.full(2, np.nan))
                size.append(np.nan)
            else:
                ypr.append(np.asarray(estimator.predict(rgb, r.face, r.pose), dtype=np.float64))
                cen.append(r.face[:, :2].mean(0))
                size.append(float(np.linalg.norm(r.face[10] - r.face[152])))
            t_model += time.perf_counter() - t1
            bar.update(1)
    bar.close()
    if not ypr:
        from kinepose.errors import FileFormatError

        raise FileFormatError("the video has no frames", media.path)
    from kinepose.geometry.headpose import ypr_to_matrix

    Y = np.asarray(ypr)
    found = np.isfinite(Y).all(1)
    R = np.full((len(Y), 3, 3), np.nan)
    if found.any():
        R[found] = ypr_to_matrix(Y[found])
    return HeadPoseTrack(Y, R, found, np.asarray(nf), np.asarray(cen), np.asarray(size), media.fps, estimator.name,
                         media.path, tuple(media.files), {"mediapipe": t_mp, "model": t_model})  # fmt: skip


def range_of_motion(track: HeadPoseTrack, smooth: int = 5) -> dict[str, Any]:
    """Cervical range of motion, degrees, over the frames with a face.

    Each angle is median-filtered over ``smooth`` frames first (a single-frame detector glitch is not a range),
    within each run of consecutive frames with a face (runs shorter than ``smooth`` stay as they are).

    Returns:
        ``rotation_left`` (max yaw), ``rotation_right`` (-min yaw), ``extension`` (max pitch), ``flexion``
        (-min pitch), ``lateral_bending_left`` (max roll), ``lateral_bending_right`` (-min roll), each with the
        frame where it was reached, plus ``frames_used``, ``frames_smoothed`` and ``runs``. Values are negative
        when the head never crossed neutral on that side.
    """
    ok = np.nonzero(track.found)[0]
    if len(ok) == 0:
        raise KineposeError(f"{track.source}: no face found in any frame, no range of motion")
    from scipy.ndimage import median_filter

    deg = np.degrees(track.ypr[ok])
    runs = np.split(np.arange(len(ok)), np.flatnonzero(np.diff(ok) > 1) + 1)  # consecutive frames with a face
    filtered = 0
    for run in runs:  # never across a gap: the frames on either side of it are not neighbours
        if smooth > 1 and len(run) >= smooth:
            deg[run] = median_filter(deg[run], size=(smooth, 1), mode="nearest")
            filtered += len(run)
    out: dict = {"frames_used": len(ok), "smooth_frames": int(smooth), "frames_smoothed": filtered,
                 "runs": len(runs)}  # fmt: skip
    for key, col, sign in (("rotation_left", 0, 1), ("rotation_right", 0, -1), ("extension", 1, 1),
                           ("flexion", 1, -1), ("lateral_bending_left", 2, 1),
                           ("lateral_bending_right", 2, -1)):  # fmt: skip
        i = int(np.argmax(sign * deg[:, col]))
        out[key] = {"deg": float(sign * deg[i, col]), "frame": int(ok[i])}
    return out


def draw_head_axes(rgb: np.ndarray, ypr: np.ndarray, centre: np.ndarray, length: float) -> np.ndarray:
    """The head's axes drawn on a copy of ``rgb`` (orthographic): red = subject's left (x), green = down (y),
    blue = where the face points (-z)."""
    import cv2

    from kinepose.geometry.headpose import ypr_to_matrix

    out = np.ascontiguousarray(rgb).copy()
    R = ypr_to_matrix(np.asarray(ypr, dtype=np.float64))
    c = np.asarray(centre, dtype=np.float64)
    for axis, colour in ((R[:, 0], (255, 0, 0)), (R[:, 1], (0, 255, 0)), (-R[:, 2], (0, 0, 255))):
        tip = c + length * axis[:2]
        cv2.line(
            out, tuple(int(v) for v in c), tuple(int(v) for v in tip), colour, max(2, int(length / 30)), cv2.LINE_AA
        )
    return out
