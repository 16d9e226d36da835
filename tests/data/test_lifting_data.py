"""Lifting data: real motion mapped onto the humanoid, cameras, detection-like noise, clip-level splits."""

from __future__ import annotations

import os

import pytest
import torch

from kinepose.data.lifting import (
    ASSIMP_BVH,
    KeypointNoise,
    add_keypoint_noise,
    body_clips,
    joint_noise_scale,
    lifting_split,
    normalization_stats,
    sample_batch,
    view_clips,
)
from kinepose.errors import KineposeError
from kinepose.geometry.camera_sampling import CameraRanges
from kinepose.geometry.cameras import project
from kinepose.geometry.normalization import image_coordinates
from kinepose.kinematics.fk import bone_lengths
from kinepose.skeleton.presets import get_skeleton

HAS_BVH = os.path.exists(os.path.join(ASSIMP_BVH, "01_01.bvh"))
CAMS = CameraRanges.from_config({"distance_m": [3, 6], "focal_px": [800, 1600], "image_size": [1000, 800]})


@pytest.fixture(scope="module")
def walk():
    return body_clips(["walk", "kick"], bvh=())


def test_deepmimic_clips_resampled_to_30_fps(walk):
    from kinepose.data.sources.deepmimic import load_deepmimic

    assert walk["walk"].fps == pytest.approx(30.0, abs=0.1)
    dance = body_clips(["dance_b"], bvh=())["dance_b"]  # a 60 fps capture, every other frame
    raw = load_deepmimic("dance_b")
    assert dance.num_frames == (raw.num_frames + 1) // 2
    torch.testing.assert_close(dance.joints[1], raw.positions()[2].float())


@pytest.mark.skipif(not HAS_BVH, reason="Debian's assimp-testmodels (CMU BVH) not installed")
def test_cmu_and_boxing_mapped_onto_the_humanoid():
    clips = body_clips([], bvh=("cmu_01_01", "boxing"))
    sk = get_skeleton("humanoid")
    for name, frames in (("cmu_01_01", 2752 // 4), ("boxing", 1024)):
        c = clips[name]
        assert c.joints.shape[1:] == (15, 3) and abs(c.num_frames - frames) <= 1
        L = bone_lengths(sk, c.joints).median(0).values  # (J,) metres
        thigh = L[sk.index("right_knee")]
        shin = L[sk.index("right_ankle")]
        assert 0.35 < float(thigh) < 0.5 and 0.35 < float(shin) < 0.5  # adult legs, so the units are right
        # y up: the head end of the trunk above the root in almost every frame
        assert float((c.joints[:, sk.index("neck"), 1] > c.joints[:, 0, 1]).float().mean()) > 0.95
        # rigid bones on CMU's rig; the boxing file animates joint offsets too (its shins change by up to ~2 cm)
        assert float(bone_lengths(sk, c.joints).std(0)[1:].max()) < (2e-3 if name == "cmu_01_01" else 3e-2)


def test_split_is_clip_level_and_refuses_overlap():
    with pytest.raises(KineposeError, match="'walk' is in both data.train and data.test"):
        lifting_split({"kind": "body", "train": ["walk"], "val": [], "test": ["walk"]})
    with pytest.raises(KineposeError, match="unknown BVH lifting clip 'nope'"):
        lifting_split({"kind": "body", "train": ["nope"], "val": [], "test": []})
    train, val, test = lifting_split({"kind": "hand", "seed": 3, "hand_sequences": {"train": 2, "val": 1, "test": 2,
                                                                                    "length": 10}})  # fmt: skip
    assert [len(p) for p in (train, val, test)] == [2, 1, 2]
    again = lifting_split(
        {"kind": "hand", "seed": 4, "hand_sequences": {"train": 2, "val": 1, "test": 2, "length": 10}}
    )
    torch.testing.assert_close(test[0].joints, again[2][0].joints)  # the test set does not depend on the seed
    assert not torch.allclose(train[0].joints, again[0][0].joints)


def test_batch_targets_are_the_camera_frame_of_the_projected_pixels(walk):
    g = torch.Generator().manual_seed(0)
    b = sample_batch([walk["walk"]], 16, 5, 2, CAMS, KeypointNoise(), g)
    assert b.keypoints.shape == (16, 5, 15, 2) and b.target.shape == (16, 5, 15, 3)
    torch.testing.assert_close(b.target[..., 0, :], torch.zeros(16, 5, 3))
    px = image_coordinates(b.keypoints, 1000, 800)
    torch.testing.assert_close(px, b.pixels, atol=1e-3, rtol=0)
    # every joint of the target frame lies in the image (the cameras look at the subject)
    assert bool(((px[:, 2] >= 0) & (px[:, 2, :, :1] <= 1000) & (px[:, 2, :, 1:] <= 800)).all())


def test_noise_outliers_swaps_and_missing():
    sk = get_skeleton("humanoid")
    g = torch.Generator().manual_seed(1)
    px = torch.rand(64, 10, 15, 2, generator=g) * 500
    noisy, vis = add_keypoint_noise(sk, px, KeypointNoise(missing_prob=0.2), g)
    assert abs(float(1 - vis.mean()) - 0.2) < 0.02
    assert bool(torch.isnan(noisy[vis == 0]).all()) and bool(torch.isfinite(noisy[vis > 0]).all())
    swapped, _ = add_keypoint_noise(sk, px, KeypointNoise(swap_prob=1.0), g)
    torch.testing.assert_close(swapped, px[:, :, list(sk.mirror_index)])
    out, _ = add_keypoint_noise(sk, px, KeypointNoise(outlier_prob=0.1, outlier_px=50.0), g)
    moved = (out - px).norm(dim=-1)
    assert abs(float((moved > 0).float().mean()) - 0.1) < 0.02 and float(moved.max()) <= 50.0 + 1e-3
    gauss, _ = add_keypoint_noise(sk, px, KeypointNoise(sigma_px=(4.0, 4.0)), g)
    assert abs(float((gauss - px).std()) - 4.0) < 0.1
    det = joint_noise_scale(sk, "detector")
    assert det[sk.index("right_hip")] == 1.5 and det[sk.index("chest")] == 1.0
    with pytest.raises(KineposeError, match="unknown joint"):
        joint_noise_scale(sk, {"elbow": 2.0})
    with pytest.raises(KineposeError, match="noise: unknown key"):
        KeypointNoise.from_config({"sigma": 1})


def test_views_are_fixed_by_the_seed_and_stats_ignore_missing(walk):
    a = view_clips([walk["kick"]], CAMS, KeypointNoise(sigma_px=2.0, missing_prob=0.1), views=2, seed=5)
    b = view_clips([walk["kick"]], CAMS, KeypointNoise(sigma_px=2.0, missing_prob=0.1), views=2, seed=5)
    assert [v.name for v in a] == ["kick@0", "kick@1"]
    torch.testing.assert_close(a[1].keypoints, b[1].keypoints, equal_nan=True)
    seen = torch.isfinite(a[0].pixels)
    clean = project(walk["kick"].joints, a[0].camera)
    assert float((clean - a[0].pixels)[seen].abs().max()) < 15.0  # 2 px noise: within 7 sigma
    assert abs(float(1 - seen.float().mean()) - 0.1) < 0.03
    g = torch.Generator().manual_seed(2)
    batch = sample_batch([walk["walk"]], 256, 1, 0, CAMS, KeypointNoise(missing_prob=0.3), g)
    mean, std, _out_mean, out_std = normalization_stats(batch)
    assert torch.isfinite(mean).all() and torch.isfinite(std).all()
    assert float(out_std[0].abs().max()) == 0.0  # the root is the origin of the target
