"""Photos and videos to joint rotations: MediaPipe -> temporal repair -> layout -> calibration -> analytic IK.

:func:`video_to_rotations` runs the whole chain; :func:`landmarks_to_rotations` is its kinepose part (everything
after MediaPipe), for landmarks already detected.

**Coordinates.** MediaPipe's world landmarks (and a lifter's camera-frame output) are y-down: x right, y down,
z away from the camera. kinepose's world is y-up with the subject's rest pose facing +z and its left at +x.
:func:`y_down_to_y_up` maps ``(x, y, z) -> (x, -y, -z)``: a rotation by 180 deg about x (determinant +1, so the
subject's handedness is kept); a subject facing the camera then faces +z with its left at +x, as at rest.
MediaPipe's world landmarks are hip-centred (hand-centred for hands), so the root stays near the origin: the
output has the subject's motion relative to its hips, not its path through the scene.

**Body.** ``mediapipe_pose`` (33) -> ``humanoid`` (15) through :func:`~kinepose.skeleton.convert_layout`
(root = mid-hips, chest = the mean of hips and shoulders, neck = mid-shoulders; docs/layouts.md).
**Hand.** ``mediapipe_hand`` -> ``kinepose_hand21``, the ``hand21`` preset (a right hand): a left hand is solved
as its mirror image (x -> -x), and the output describes that mirrored, right hand.

**Missing joints.** A landmark whose visibility is below ``min_visibility``, or of a frame where nothing was
detected, is missing (NaN), never zero; a virtual joint with a missing source is missing. Short gaps are filled
and long ones stay missing (:mod:`kinepose.frontends.tracking`); IK solves each frame from what is present and
``valid`` says which rotations the positions determined.

**Lifter.** With ``lifter=RUN`` the 3D comes from a trained kinepose lifter
(:func:`kinepose.models.lifting.inference.lift_keypoints`) fed with MediaPipe's 2D image landmarks mapped onto the
lifter's skeleton; swaps, outliers and gaps are repaired in 2D before lifting, smoothing after it.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np
import torch

from kinepose.errors import KineposeError
from kinepose.frontends.mediapipe import Landmarks, Media, detect
from kinepose.frontends.tracking import RepairReport, one_euro, repair_sequence, subject_changes, swap_labels
from kinepose.kinematics.calibration import calibrate_skeleton
from kinepose.kinematics.fk import forward_kinematics
from kinepose.kinematics.ik import analytic_ik
from kinepose.skeleton import Skeleton, convert_layout, get_layout, get_skeleton

__all__ = [
    "PredictResult", "Timings", "import_lifter", "landmarks_to_rotations", "video_to_rotations", "y_down_to_y_up",
]  # fmt: skip

#: target -> (MediaPipe layout, kinepose layout, skeleton preset)
TARGETS = {"body": ("mediapipe_pose", "humanoid", "humanoid"), "hand": ("mediapipe_hand", "kinepose_hand21", "hand21")}


def y_down_to_y_up(points: np.ndarray) -> np.ndarray:
    """``(..., 3)`` points from a y-down frame (x right, y down, z away from the camera: MediaPipe's world
    landmarks, a camera frame) to kinepose's y-up world: ``(x, y, z) -> (x, -y, -z)``, a 180 deg rotation about x."""
    return np.asarray(points, dtype=np.float64) * np.array([1.0, -1.0, -1.0])


@dataclass
class Timings:
    """Wall time of each stage, seconds in all (divide by ``frames`` for per-frame figures).

    ``mediapipe`` is MediaPipe's own ``process`` calls; ``decode`` reading the frames; ``lift`` a lifter's network.
    The kinepose part (:attr:`kinepose`) is ``repair + layout + calibration + ik`` (IK includes the forward
    kinematics of the output). ``startup`` is paid once per process, not per frame: the first call of the compiled
    IK kernel (Numba loads it from its cache, about 0.5 s), timed on a one-frame solve before the clip's.
    """

    frames: int
    startup: float = 0.0
    decode: float = 0.0
    mediapipe: float = 0.0
    lift: float = 0.0
    repair: float = 0.0
    layout: float = 0.0
    calibration: float = 0.0
    ik: float = 0.0

    @property
    def kinepose(self) -> float:
        return self.repair + self.layout + self.calibration + self.ik

    def per_frame_ms(self) -> dict[str, float]:
        """Milliseconds per frame of every stage and of the kinepose part."""
        n = max(self.frames, 1)
        keys = ("decode", "mediapipe", "lift", "repair", "layout", "calibration", "ik", "kinepose")
        return {k: 1000.0 * getattr(self, k) / n for k in keys}

    @property
    def overhead(self) -> float:
        """kinepose's time as a fraction of MediaPipe's (the target is at most 0.10)."""
        return self.kinepose / self.mediapipe if self.mediapipe > 0 else float("nan")


@dataclass
class PredictResult:
    """What :func:`video_to_rotations` returns.

    Attributes:
        joints: ``(T, J, 3)`` repaired, smoothed joint positions IK solved, metres, y-up; NaN = missing.
        local_quat: ``(T, J, 4)`` w,x,y,z local rotations (rest where nothing determined them).
        root_pos: ``(T, 3)`` root positions, metres.
        positions: ``(T, J, 3)`` forward kinematics of the rotations on ``skeleton`` (finite everywhere).
        skeleton: the skeleton solved on (the template calibrated to the subject's bone lengths).
        template: the preset (or lifter) skeleton before calibration.
        fps: frames per second.
        detected: ``(T,)`` bool, MediaPipe found the subject.
        valid: ``(T, J)`` bool, the positions determined the joint's local rotation in that frame.
        determined, determined_global: ``(J,)`` bool (:class:`~kinepose.kinematics.ik.IKResult`).
        timings: :class:`Timings`.
        repair: the :class:`~kinepose.frontends.tracking.RepairReport` (on MediaPipe's landmarks).
        landmarks: MediaPipe's raw output.
        mirrored: ``(T,)`` bool, frames solved as the mirror image (left hands on the right-hand preset).
    """

    joints: np.ndarray
    local_quat: np.ndarray
    root_pos: np.ndarray
    positions: np.ndarray
    skeleton: Skeleton
    template: Skeleton
    fps: float
    detected: np.ndarray
    valid: np.ndarray
    determined: np.ndarray
    determined_global: np.ndarray
    timings: Timings
    repair: RepairReport
    landmarks: Landmarks
    mirrored: np.ndarray

    @property
    def num_frames(self) -> int:
        return int(self.local_quat.shape[0])


def import_lifter():
    """``(lift_keypoints, lifter_skeleton)`` of :mod:`kinepose.models.lifting.inference`; an ImportError naming it."""
    try:
        from kinepose.models.lifting.inference import lift_keypoints, lifter_skeleton
    except ImportError as exc:
        raise ImportError(f"the lifter's inference module kinepose.models.lifting.inference is not available "
                          f"({exc})") from exc  # fmt: skip
    return lift_keypoints, lifter_skeleton


def _lifter_layout(skeleton: Skeleton) -> str:
    """The keypoint layout whose joints are the lifter skeleton's, in its order (``hand21`` is also the name of an
    alias of ``mediapipe_hand``, whose names differ: the layout is matched by its joints, not by name alone)."""
    from kinepose.skeleton.layouts import list_layouts

    lay = None
    for name in [skeleton.name, *list_layouts()]:
        try:
            cand = get_layout(name)
        except KineposeError:
            continue
        if tuple(cand.joint_names) == tuple(skeleton.joint_names):
            lay = cand
            break
    if lay is None:
        raise KineposeError(f"lifter: its skeleton '{skeleton.name}' is not a keypoint layout kinepose can map "
                            f"MediaPipe's landmarks onto (same joint names, same order; docs/layouts.md)")  # fmt: skip
    return lay.name


def _lift(lm: Landmarks, lifter, src: str, min_visibility: float, fps: float, causal: bool, max_gap: int, smooth,
          timings: Timings) -> tuple[np.ndarray, Skeleton, RepairReport, str]:  # fmt: skip
    """2D repair, the lifter, y-up, smoothing: ``(joints (T, J, 3), template, report, dst layout)``."""
    lift_keypoints, lifter_skeleton = import_lifter()
    template = lifter_skeleton(lifter)
    dst = _lifter_layout(template)
    t0 = time.perf_counter()
    kp = lm.image.copy()  # (T, J, 2) px
    vis = np.where(lm.detected[:, None], lm.visibility, 0.0)
    kp[vis < min_visibility] = np.nan
    left = lm.handedness == "left"
    kp[left, :, 0] = lm.size[0] - kp[left, :, 0]  # a left hand's mirror image: a right hand in the image
    pairs = get_layout(src).left_right
    kp, report = repair_sequence(kp, pairs, fps, depth_axis=None, causal=causal, max_gap=max_gap, smooth=False,
                                 breaks=subject_changes(kp))  # fmt: skip
    sw = report.swapped
    vis[sw] = swap_labels(vis[sw][..., None], pairs)[..., 0]  # a visibility goes with its landmark's label
    own = (vis >= min_visibility) & ~report.outliers  # the detector's own points; filled ones get min_visibility
    vis = np.where(own, vis, np.where(report.filled, min_visibility, 0.0))
    # convert_layout maps (..., J, 2) points linearly; the confidence channel of a virtual joint is its sources' min
    both = convert_layout(np.concatenate([kp, vis[..., None]], -1), src, dst, confidence=True)  # (T, Jl, 3)
    kp_l, vis_l = both[..., :2], np.where(np.isfinite(both[..., :2]).all(-1), both[..., 2], 0.0)
    timings.repair += time.perf_counter() - t0
    t0 = time.perf_counter()
    lifted = np.asarray(lift_keypoints(lifter, kp_l, vis_l, lm.size), dtype=np.float64)  # NaN/vis 0 = missing
    timings.lift += time.perf_counter() - t0
    if lifted.shape != (*kp_l.shape[:2], 3):
        raise KineposeError(f"lifter: lift_keypoints returned shape {lifted.shape}, expected {(*kp_l.shape[:2], 3)}")
    t0 = time.perf_counter()
    joints = y_down_to_y_up(lifted)  # camera frame (x right, y down, z forward) -> y-up
    joints[vis_l <= 0] = np.nan  # a joint the lifter was not shown stays missing, as in the world path
    if smooth:
        joints = one_euro(joints, fps, causal=causal)
    timings.repair += time.perf_counter() - t0
    return joints, template, report, dst


def landmarks_to_rotations(
    landmarks: Landmarks,
    target: str = "body",
    min_visibility: float = 0.5,
    fps: float | None = None,
    causal: bool = False,
    lifter: str | os.PathLike | None = None,
    smooth: bool = True,
    max_gap: int | None = None,
    calibrate: bool = True,
) -> PredictResult:
    """The kinepose part of :func:`video_to_rotations`, on landmarks already detected.

    Args:
        landmarks: MediaPipe's output (:func:`~kinepose.frontends.mediapipe.detect`) for ``target``.
        target: ``"body"`` (the ``humanoid`` skeleton) or ``"hand"`` (``hand21``).
        min_visibility: landmarks below this visibility are missing.
        fps: frames per second (default the video's, else 30).
        causal: every stage uses past frames only (real time); otherwise offline.
        lifter: a trained lifter run: lift the 2D image landmarks instead of using MediaPipe's world landmarks.
        smooth: run the One Euro filter.
        max_gap: the longest gap filled, frames (default a third of a second).
        calibrate: measure the subject's bone lengths on the clip (else keep the template's).

    Returns:
        :class:`PredictResult`.

    Raises:
        KineposeError: nothing detected in any frame, or bad arguments.
    """
    if target not in TARGETS:
        raise KineposeError(f"target: expected 'body' or 'hand', got {target!r}")
    src, dst, preset = TARGETS[target]
    if landmarks.layout != src:
        raise KineposeError(f"landmarks: layout '{landmarks.layout}' is not '{src}', the layout of target {target!r}")
    if not 0.0 <= min_visibility <= 1.0:
        raise KineposeError(f"min_visibility: expected a number in [0, 1], got {min_visibility}")
    if not landmarks.detected.any():
        what = "person" if target == "body" else "hand"
        raise KineposeError(f"{landmarks.source or 'landmarks'}: MediaPipe found no {what} in any of its "
                            f"{landmarks.num_frames} frame(s)")  # fmt: skip
    fps = float(fps or landmarks.fps or 30.0)
    max_gap = max(1, round(fps / 3)) if max_gap is None else max_gap
    lm, T = landmarks, landmarks.num_frames
    timings = Timings(T, decode=lm.decode_seconds, mediapipe=float(lm.seconds.sum()))
    mirrored = lm.handedness == "left"
    if lifter is not None:
        joints, template, report, dst = _lift(lm, lifter, src, min_visibility, fps, causal, max_gap, smooth, timings)
    else:
        template = get_skeleton(preset)
        t0 = time.perf_counter()
        pts = y_down_to_y_up(lm.world)  # (T, J, 3) metres
        pts[(lm.visibility < min_visibility) | ~lm.detected[:, None]] = np.nan
        pts[mirrored, :, 0] *= -1.0  # a left hand as its mirror image, a right hand
        breaks = subject_changes(lm.image)  # the image shows a jump to another person; hip-centred 3D cannot
        pts, report = repair_sequence(pts, get_layout(src).left_right, fps, depth_axis=2, causal=causal,
                                      max_gap=max_gap, smooth=smooth, breaks=breaks)  # fmt: skip
        timings.repair += time.perf_counter() - t0
        t0 = time.perf_counter()
        joints = convert_layout(pts, src, dst)  # (T, 15 or 21, 3)
        timings.layout += time.perf_counter() - t0
    t0 = time.perf_counter()
    x = torch.as_tensor(joints)
    skeleton = calibrate_skeleton(template, x, name=template.name) if calibrate else template
    timings.calibration += time.perf_counter() - t0
    t0 = time.perf_counter()
    analytic_ik(skeleton, x[:1].nan_to_num(0.0))  # the kernel's one-time load, kept out of the per-frame figures
    timings.startup += time.perf_counter() - t0
    t0 = time.perf_counter()
    ik = analytic_ik(skeleton, x)
    fk = forward_kinematics(skeleton, ik.local_quat, ik.root_pos, check=False).positions
    timings.ik += time.perf_counter() - t0
    return PredictResult(joints, ik.local_quat.numpy(), ik.root_pos.numpy(), fk.numpy(), skeleton, template, fps,
                         lm.detected.copy(), ik.valid.numpy(), ik.determined.numpy(), ik.determined_global.numpy(),
                         timings, report, lm, mirrored)  # fmt: skip


def video_to_rotations(
    source: str | os.PathLike | Media,
    target: str = "body",
    min_visibility: float = 0.5,
    fps: float | None = None,
    causal: bool = False,
    lifter: str | os.PathLike | None = None,
    smooth: bool = True,
    max_gap: int | None = None,
    calibrate: bool = True,
    hand: str | None = None,
    mirrored: bool = False,
    progress: bool = False,
) -> PredictResult:
    """A video, an image or a folder of images -> MediaPipe -> joint rotations on a kinepose skeleton.

    Args:
        source: a path (:func:`~kinepose.frontends.mediapipe.open_media`) or an opened :class:`Media`.
        target, min_visibility, fps, causal, lifter, smooth, max_gap, calibrate: as in
            :func:`landmarks_to_rotations`.
        hand: keep only the subject's ``"left"`` or ``"right"`` hand (target ``"hand"``); None for either.
        mirrored: the images are mirrored (selfie camera): MediaPipe's handedness is then taken as it is.
        progress: a progress bar over the frames.

    Returns:
        :class:`PredictResult`; its ``timings`` split MediaPipe's time from kinepose's.

    Example:
        ``r = video_to_rotations("demo.mp4")`` then
        ``save_rotations("demo.bvh", r.skeleton, r.local_quat, r.root_pos, fps=r.fps)``.
    """
    lm = detect(source, target, max_num_hands=2 if hand else 1, hand=hand, mirrored=mirrored, progress=progress)
    return landmarks_to_rotations(lm, target, min_visibility=min_visibility, fps=fps, causal=causal, lifter=lifter,
                                  smooth=smooth, max_gap=max_gap, calibrate=calibrate)  # fmt: skip
