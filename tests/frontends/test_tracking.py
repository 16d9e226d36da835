"""Temporal repair (kinepose.frontends.tracking) on real motion capture with injected detector faults, and the
kinepose part of the front end (landmarks -> rotations) on synthetic MediaPipe output. No MediaPipe needed.

The motion: DeepMimic clips (the humanoid's 15 joints), turned to face the camera at +z as MediaPipe's front/back
confusions do, either hip-centred 3D (MediaPipe's world landmarks) or projected by a pinhole camera (pixels).
The faults: a 30-frame whole-body left/right swap (labels swapped; in 3D the depth mirrored too, as MediaPipe's
world landmarks show it), single-frame flicker of single joints, gaps of missing frames.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from kinepose.data.sources.deepmimic import load_deepmimic
from kinepose.errors import KineposeError, ShapeError
from kinepose.frontends.mediapipe import Landmarks
from kinepose.frontends.pipeline import landmarks_to_rotations, y_down_to_y_up
from kinepose.frontends.tracking import (
    detect_swaps,
    fill_gaps,
    one_euro,
    reject_outliers,
    repair_sequence,
    subject_changes,
    swap_labels,
)
from kinepose.skeleton import get_layout, get_skeleton

SK = get_skeleton("humanoid")
LR = SK.left_right
LONG_CLIPS = ("cartwheel", "crawl", "dance_a", "dance_b", "getup_facedown", "getup_faceup", "jump", "roll", "spin")


def facing_camera(clip: str) -> np.ndarray:
    """(T, 15, 3) joints of a clip, turned about y so that the subject faces +z on average, root at 0 in frame 0."""
    x = load_deepmimic(clip).positions().numpy()
    lhip, rhip = SK.index("left_hip"), SK.index("right_hip")
    f = np.cross(x[:, lhip] - x[:, rhip], [0.0, 1.0, 0.0]).mean(0)  # facing = left x up
    a = -np.arctan2(f[0], f[2])
    rot = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    return (x - x[:1, :1]) @ rot.T


def project(x: np.ndarray) -> np.ndarray:
    """Pinhole camera at z = 5 m, height 1 m, looking at -z: (..., 3) metres -> (..., 2) pixels."""
    d = 5.0 - x[..., 2]
    return np.stack([500 + 800 * x[..., 0] / d, 500 - 800 * (x[..., 1] - 1.0) / d], axis=-1)


def inject_swap(x: np.ndarray, start: int, stop: int, depth_axis: int | None) -> tuple[np.ndarray, np.ndarray]:
    mask = np.zeros(len(x), bool)
    mask[start:stop] = True
    return np.where(mask[:, None, None], swap_labels(x, LR, depth_axis), x), mask


# ----------------------------------------------------------------------------------------------- hand-checked


def test_swap_labels_by_hand():
    x = np.array([[[0.0, 0.0, 0.5], [1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]])  # joints 1 and 2 a left/right pair
    np.testing.assert_array_equal(swap_labels(x, [(1, 2)]), [[[0, 0, 0.5], [4, 5, 6], [1, 2, 3]]])
    np.testing.assert_array_equal(swap_labels(x, [(1, 2)], depth_axis=2), [[[0, 0, -0.5], [4, 5, -6], [1, 2, -3]]])
    np.testing.assert_array_equal(swap_labels(swap_labels(x, [(1, 2)], 2), [(1, 2)], 2), x)  # an involution


def test_fill_gaps_by_hand():
    x = np.array([0.0, np.nan, np.nan, 3.0, np.nan, np.nan, np.nan, np.nan, 8.0, np.nan])[:, None, None]
    x = np.repeat(x, 2, axis=2)  # (10, 1, 2)
    out, mask = fill_gaps(x, max_gap=2)
    np.testing.assert_array_equal(out[:, 0, 0], [0, 1, 2, 3, np.nan, np.nan, np.nan, np.nan, 8, np.nan])
    assert mask[:, 0].tolist() == [False, True, True] + [False] * 7
    held, mask = fill_gaps(x, max_gap=2, causal=True)  # the last position held for at most 2 frames
    np.testing.assert_array_equal(held[:, 0, 0], [0, 0, 0, 3, 3, 3, np.nan, np.nan, 8, 8])
    assert mask[:, 0].sum() == 5
    assert np.isnan(fill_gaps(x, max_gap=1)[0][1:3]).all()  # a 2-frame gap is longer than max_gap=1
    breaks = np.zeros(10, bool)
    breaks[3] = True  # frame 3 shows another subject: nothing is interpolated into it
    assert np.isnan(fill_gaps(x, max_gap=2, breaks=breaks)[0][1:3]).all()


def test_one_euro_by_hand():
    """beta 0: an exponential smoother with alpha = 1 / (1 + fps / (2 pi f_c)); fps = 2 pi f_c gives alpha 1/2."""
    x = np.array([0.0, 1.0, 1.0, 1.0])[:, None, None] * np.ones((1, 1, 3))
    fps = 2 * np.pi
    fwd = one_euro(x, fps, min_cutoff=1.0, beta=0.0, causal=True)
    np.testing.assert_allclose(fwd[:, 0, 0], [0, 0.5, 0.75, 0.875])
    # offline: the mean with the backward pass [0.5, 1, 1, 1]
    np.testing.assert_allclose(one_euro(x, fps, min_cutoff=1.0, beta=0.0)[:, 0, 0], [0.25, 0.75, 0.875, 0.9375])
    gap = x.copy()
    gap[2] = np.nan  # a missing frame stays missing and the filter restarts after it
    out = one_euro(gap, fps, min_cutoff=1.0, beta=0.0, causal=True)
    assert np.isnan(out[2]).all() and out[3, 0, 0] == 1.0


def test_one_euro_offline_is_zero_phase_causal_lags():
    fps, f = 60.0, 1.0
    t = np.arange(600) / fps
    x = np.stack([np.sin(2 * np.pi * f * t)] * 3, -1)[:, None, :]  # (T, 1, 3)
    lags = np.arange(-15, 16)

    def lag(y: np.ndarray) -> int:
        a, b = x[100:-100, 0, 0], y[:, 0, 0]
        return int(lags[np.argmax([np.dot(a, b[100 + k : len(b) - 100 + k]) for k in lags])])

    # a first-order low-pass at 1.5 Hz delays a 1 Hz sine by atan(1 / 1.5) / (2 pi) s = 5.6 frames at 60 fps
    assert lag(one_euro(x, fps, min_cutoff=1.5, beta=0.0, causal=True)) in (5, 6)
    assert lag(one_euro(x, fps, min_cutoff=1.5, beta=0.0)) == 0


# ----------------------------------------------------------------------------------------------- swaps


@pytest.mark.parametrize("clip", LONG_CLIPS)
@pytest.mark.parametrize("space", ["3d", "2d"])
def test_a_30_frame_swap_is_found_and_repaired(clip, space):
    x = facing_camera(clip)
    pts, depth = (x - x[:, :1], 2) if space == "3d" else (project(x), None)
    T = len(pts)
    for start in (T // 3, T - 30):  # inside the clip and at its end
        bad, truth = inject_swap(pts, start, start + 30, depth)
        found = detect_swaps(bad, LR, depth_axis=depth)
        np.testing.assert_array_equal(found, truth, err_msg=f"{clip} {space}, swap at {start}")
        fixed = np.where(found[:, None, None], swap_labels(bad, LR, depth), bad)
        np.testing.assert_allclose(fixed, pts, atol=1e-12)
        np.testing.assert_array_equal(detect_swaps(bad, LR, depth_axis=depth, causal=True), truth)


@pytest.mark.parametrize("clip", ["dance_b", "jump", "getup_faceup"])
def test_a_clip_that_starts_swapped(clip):
    """Offline, the labelling most frames have wins: a swap over the first 30 frames is found. Causal, frames
    0-29 look right until frame 30 disagrees; from frame 60, when most frames have needed the swap, the labels
    are right again (frames 0-59 cannot be corrected in real time)."""
    x = facing_camera(clip)
    rel = x - x[:, :1]
    bad, truth = inject_swap(rel, 0, 30, 2)
    np.testing.assert_array_equal(detect_swaps(bad, LR, depth_axis=2), truth)
    causal = detect_swaps(bad, LR, depth_axis=2, causal=True)
    assert not causal[:30].any() and causal[30:60].all() and not causal[60:].any()


@pytest.mark.parametrize("clip", ["dance_b", "cartwheel", "roll", "walk", "kick", "punch", "spin"])
def test_no_swap_is_invented(clip):
    """Clean and noisy (10 mm) capture, as recorded (any heading) and facing the camera: nothing is swapped."""
    for x in (load_deepmimic(clip).positions().numpy(), facing_camera(clip)):
        rel = x - x[:, :1]
        noisy = rel + np.random.default_rng(0).normal(0.0, 0.01, rel.shape)
        for pts, depth in ((rel, 2), (noisy, 2), (project(x), None)):
            assert not detect_swaps(pts, LR, depth_axis=depth).any()
            assert not detect_swaps(pts, LR, depth_axis=depth, causal=True).any()


def test_another_subject_starts_a_new_segment():
    """Two clips back to back in the image, 3 m apart: the jump is a change of subject, found in the image."""
    a, b = project(facing_camera("dance_b")), project(facing_camera("jump") + np.array([3.0, 0.0, 0.0]))
    both = np.concatenate([a, b])
    changes = subject_changes(both)
    assert np.flatnonzero(changes).tolist() == [len(a)]
    bad, truth = inject_swap(both, len(a), len(a) + 30, None)  # the second subject starts swapped
    assert not detect_swaps(bad, LR, breaks=changes)[: len(a)].any()
    np.testing.assert_array_equal(detect_swaps(bad, LR, breaks=changes), truth)


# ----------------------------------------------------------------------------------------------- flicker, gaps


def test_flicker_is_rejected_and_restored():
    x = facing_camera("dance_b")
    rel = x - x[:, :1]
    g = np.random.default_rng(1)
    bad = rel.copy()
    frames, joints = g.choice(np.arange(5, len(x) - 5), 12, replace=False), g.integers(1, 15, 12)
    d = g.normal(size=(12, 3))
    bad[frames, joints] += 0.3 * d / np.linalg.norm(d, axis=-1, keepdims=True)  # 30 cm for one frame
    for causal in (False, True):
        clean, rejected = reject_outliers(bad, causal=causal)
        assert rejected[frames, joints].all(), "every flicker is rejected"
        assert rejected.sum() <= 12 + 0.01 * rejected.size, f"{rejected.sum() - 12} good positions rejected"
    clean, _ = reject_outliers(bad)
    filled, _ = fill_gaps(clean, max_gap=10)
    err = np.linalg.norm(filled[frames, joints] - rel[frames, joints], axis=-1)
    assert err.max() < 0.03, err  # interpolated from the neighbours: within 3 cm of the capture (60 fps)


def test_short_gaps_filled_long_gaps_left_missing():
    x = facing_camera("dance_b")
    rel = x - x[:, :1]
    bad = rel.copy()
    bad[20:25] = np.nan  # 5 frames: the detector lost the subject
    bad[60:100] = np.nan  # 40 frames, longer than max_gap
    bad[120:123, SK.index("left_wrist")] = np.nan  # one joint, 3 frames
    out, filled = fill_gaps(bad, max_gap=10)
    assert filled[20:25].all() and filled[120:123, SK.index("left_wrist")].all()
    assert np.isnan(out[60:100]).all() and not filled[60:100].any()
    assert np.linalg.norm(out[20:25] - rel[20:25], axis=-1).max() < 0.05
    np.testing.assert_array_equal(out[~filled & ~np.isnan(bad).any(-1)], rel[~filled & ~np.isnan(bad).any(-1)])


def test_repair_sequence_restores_the_clip_and_reports_it():
    """All faults at once, on 10 mm noise: the swap, the flicker and the short gap are repaired, the long gap is
    left missing, and the result is closer to the capture than the noisy input."""
    x = facing_camera("getup_faceup")
    rel = x - x[:, :1]
    g = np.random.default_rng(2)
    noisy = rel + g.normal(0.0, 0.01, rel.shape)
    bad, _ = inject_swap(noisy, 90, 120, 2)
    frames = np.array([30, 50, 140, 170])
    bad[frames, SK.index("right_knee")] += [0.0, 0.4, 0.0]
    bad[60:64] = np.nan
    bad[190:215] = np.nan
    out, rep = repair_sequence(bad, LR, fps=60.0, depth_axis=2)
    assert rep.swap_runs == [(90, 120)] and rep.swaps_repaired == 1
    assert rep.outliers[frames, SK.index("right_knee")].all()
    assert rep.filled[60:64].all() and rep.missing[190:215].all() and not rep.missing[:190].any()
    ok = ~rep.missing
    err_out = np.linalg.norm(out - rel, axis=-1)[ok].mean()
    err_in = np.linalg.norm(noisy - rel, axis=-1)[ok].mean()
    assert err_out < 0.7 * err_in, (err_out, err_in)
    s = rep.summary()
    assert s["swaps_repaired"] == 1 and s["swapped_frames"] == 30 and s["positions_missing"] == 25 * 15


def test_bad_inputs_raise_naming_the_argument():
    with pytest.raises(ShapeError, match="points"):
        detect_swaps(np.zeros((5, 3)), LR)
    with pytest.raises(KineposeError, match="infinite"):
        reject_outliers(np.full((5, 2, 3), np.inf))
    with pytest.raises(KineposeError, match="ratio"):
        detect_swaps(np.zeros((5, 15, 3)), LR, ratio=1.5)
    with pytest.raises(KineposeError, match="fps"):
        one_euro(np.zeros((5, 2, 3)), fps=0.0)
    with pytest.raises(ShapeError, match="breaks"):
        fill_gaps(np.zeros((5, 2, 3)), breaks=np.zeros(4, bool))


def test_tracking_imports_neither_mediapipe_nor_torch():
    code = "import sys, kinepose.frontends.tracking; print(sorted({'torch', 'mediapipe', 'cv2'} & set(sys.modules)))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert r.stdout.strip() == "[]", r.stderr


# ----------------------------------------------------------------------------------------------- landmarks -> IK

MP_BODY = {  # MediaPipe Pose landmark -> humanoid joint placed there
    11: "left_shoulder", 12: "right_shoulder", 13: "left_elbow", 14: "right_elbow", 15: "left_wrist",
    16: "right_wrist", 23: "left_hip", 24: "right_hip", 25: "left_knee", 26: "right_knee", 27: "left_ankle",
    28: "right_ankle",
}  # fmt: skip


def synthetic_landmarks(world_y_up: np.ndarray, layout: str, fps: float = 60.0) -> Landmarks:
    """Landmarks as MediaPipe would give them for these y-up joints: hip-centred, y down, z away."""
    T, J = world_y_up.shape[:2]
    world = y_down_to_y_up(world_y_up)  # the map is its own inverse
    image = 500 + 400 * world[..., :2]
    return Landmarks(layout, image, world, np.ones((T, J)), np.ones(T, bool), np.array([""] * T, dtype=object),
                     (1000, 1000), fps, np.full(T, 0.03), 0.0, "synthetic")  # fmt: skip


def test_body_landmarks_to_rotations():
    """The humanoid's limb joints placed on MediaPipe's landmarks; one knee invisible in some frames (MediaPipe
    still reports a position there: here the origin), the face at low visibility."""
    x = facing_camera("dance_b")
    mid = 0.5 * (x[:, SK.index("left_hip")] + x[:, SK.index("right_hip")])
    rel = x - mid[:, None]  # hip-centred, as MediaPipe's world landmarks
    pts = np.zeros((len(x), 33, 3))
    for m, name in MP_BODY.items():
        pts[:, m] = rel[:, SK.index(name)]
    lm = synthetic_landmarks(pts, "mediapipe_pose")
    lm.visibility[:, :11] = 0.1  # the face: not used by the humanoid, and missing anyway
    lm.visibility[40:70, 25] = 0.2  # left knee hidden for 30 frames (max_gap: 20 at 60 fps): its position is junk
    lm.world[40:70, 25] = 0.0
    r = landmarks_to_rotations(lm, "body", smooth=False)
    knee = SK.index("left_knee")
    assert np.isnan(r.joints[40:70, knee]).all(), "an invisible landmark is a missing joint, not the origin"
    assert not r.valid[40:70, SK.index("left_hip")].any()
    limbs = [SK.index(n) for n in MP_BODY.values()]
    ok = np.isfinite(r.joints).all(-1)
    err = np.linalg.norm(r.joints - rel, axis=-1)[:, limbs][ok[:, limbs]]
    assert np.median(err) < 1e-9 and err.max() < 0.05  # y-down -> y-up undone exactly; a few flicker repairs
    fk_err = np.linalg.norm(r.positions - r.joints, axis=-1)[ok]
    assert np.median(fk_err) < 0.01  # IK on the calibrated skeleton reproduces the joints
    assert r.local_quat.shape == (len(x), 15, 4) and np.isfinite(r.local_quat).all()
    t = r.timings
    assert t.frames == len(x) and t.mediapipe == pytest.approx(0.03 * len(x)) and 0 < t.kinepose < t.mediapipe


def test_hand_landmarks_to_rotations_and_left_hands_mirrored():
    from kinepose.data.sources.synthetic_hand import sample_hand_sequences

    m = sample_hand_sequences(1, 60, fps=30.0, generator=torch.Generator().manual_seed(0))[0]
    x = m.positions().numpy()
    x = x - x.mean(1, keepdims=True)  # hand-centred
    right = synthetic_landmarks(x, "mediapipe_hand", fps=30.0)
    right.handedness[:] = "right"
    left = synthetic_landmarks(x * [-1.0, 1.0, 1.0], "mediapipe_hand", fps=30.0)  # the mirror image: a left hand
    left.handedness[:] = "left"
    a = landmarks_to_rotations(right, "hand", smooth=False)
    b = landmarks_to_rotations(left, "hand", smooth=False)
    assert a.skeleton.num_joints == 21 and b.mirrored.all() and not a.mirrored.any()
    np.testing.assert_allclose(b.local_quat, a.local_quat, atol=1e-9)
    assert np.median(np.linalg.norm(a.positions - a.joints, axis=-1)) < 0.005


def test_nothing_detected_is_an_error_naming_the_source():
    lm = synthetic_landmarks(np.zeros((3, 33, 3)), "mediapipe_pose")
    lm.detected[:] = False
    with pytest.raises(KineposeError, match="synthetic: MediaPipe found no person in any of its 3 frame"):
        landmarks_to_rotations(lm, "body")
    with pytest.raises(KineposeError, match="layout 'mediapipe_pose' is not 'mediapipe_hand'"):
        landmarks_to_rotations(lm, "hand")


def test_lifter_path_maps_2d_onto_the_lifter_skeleton(monkeypatch):
    """A stand-in lifter (the real one is another module's) that returns the true camera-frame joints: the
    front end converts them to y-up and solves the same rotations as from world landmarks."""
    import types

    h36m = get_skeleton("h36m17")
    x = facing_camera("dance_b")
    mid = 0.5 * (x[:, SK.index("left_hip")] + x[:, SK.index("right_hip")])
    pts = np.zeros((len(x), 33, 3))
    for m, name in MP_BODY.items():
        pts[:, m] = x[:, SK.index(name)] - mid
    pts[:, :11] = pts[:, [11, 12]].mean(1, keepdims=True) + np.array([0.0, 0.25, 0.1])  # a head above the shoulders
    pts[:, [2, 5]] += [[0.03, 0.05, 0.0], [-0.03, 0.05, 0.0]]  # the eyes (H36M's head is their midpoint)
    lm = synthetic_landmarks(pts, "mediapipe_pose")
    left = [i for i, n in enumerate(get_layout("mediapipe_pose").joint_names) if n.startswith("left")]
    lm.visibility[:, left] = 0.9  # the right side 1.0
    lr = get_layout("mediapipe_pose").left_right
    lm.image[50:80], lm.visibility[50:80] = swap_labels(lm.image[50:80], lr), lm.visibility[50:80, swap_perm(lr)]
    seen = {}

    def lift_keypoints(run, keypoints_px, visibility, image_size):
        seen.update(run=run, shape=keypoints_px.shape, vis=visibility.shape, size=image_size, v=visibility)
        from kinepose.skeleton import convert_layout

        return convert_layout(lm.world, "mediapipe_pose", "h36m17")  # camera frame: y down, z away

    fake = types.ModuleType("kinepose.models.lifting.inference")
    fake.lift_keypoints, fake.lifter_skeleton = lift_keypoints, lambda run: h36m
    monkeypatch.setitem(sys.modules, "kinepose.models.lifting.inference", fake)
    r = landmarks_to_rotations(lm, "body", lifter="runs/lifter", smooth=False)
    v = seen.pop("v")
    assert seen == {"run": "runs/lifter", "shape": (len(x), 17, 2), "vis": (len(x), 17), "size": (1000, 1000)}
    assert r.repair.swap_runs == [(50, 80)]  # repaired in the image, visibility along with the labels
    np.testing.assert_array_equal(v[:, h36m.index("left_wrist")], 0.9)
    np.testing.assert_array_equal(v[:, h36m.index("right_wrist")], 1.0)
    assert r.skeleton.joint_names == h36m.joint_names
    want = y_down_to_y_up(convert_layout_world(lm))
    ok = np.isfinite(r.joints).all(-1)
    assert np.median(np.linalg.norm(r.joints - want, axis=-1)[ok]) < 1e-9


def swap_perm(left_right) -> list[int]:
    return [int(i) for i in swap_labels(np.arange(33.0)[:, None], left_right)[:, 0]]


def convert_layout_world(lm: Landmarks) -> np.ndarray:
    from kinepose.skeleton import convert_layout

    return convert_layout(lm.world, "mediapipe_pose", "h36m17")


def test_lifter_layouts_are_matched_by_joints():
    """A hand21 lifter maps MediaPipe's hand landmarks through kinepose_hand21 (hand21 is also an alias of
    mediapipe_hand, whose names differ), a humanoid lifter through humanoid."""
    from kinepose.frontends.pipeline import _lifter_layout
    from kinepose.skeleton.presets import get_skeleton

    assert _lifter_layout(get_skeleton("hand21")) == "kinepose_hand21"
    assert _lifter_layout(get_skeleton("humanoid")) == "humanoid"
