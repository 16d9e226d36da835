"""Rendered sets from motion clips: labels agree with the images' cameras and the clips' kinematics, perturbation
touches only the named joints, saving round-trips, workers do not change the result."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kinepose.data.sources.deepmimic import load_deepmimic
from kinepose.errors import KineposeError
from kinepose.geometry.rotations import quat_to_matrix
from kinepose.kinematics.fk import forward_kinematics
from kinepose.render import RenderConfig
from kinepose.render.dataset import load_rendered_set, render_motion_set
from kinepose.skeleton.presets import get_skeleton

SK = get_skeleton("humanoid")
CFG = RenderConfig(image_size=(40, 32), occluder_prob=0.0)


@pytest.fixture(scope="module")
def clips():
    return {c: load_deepmimic(c).slice(0, 12) for c in ("walk", "kick")}


@pytest.fixture(scope="module")
def rset(clips):
    return render_motion_set(SK, clips, 2, frames_per_view=3, config=CFG, seed=3, progress=False)


def test_shapes_and_views(rset):
    assert rset.images.shape == (12, 32, 40, 3) and rset.images.dtype == np.uint8
    assert list(rset.view) == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert list(rset.clip[:6]) == ["walk"] * 6 and list(rset.clip[6:]) == ["kick"] * 6
    # a view is consecutive frames, and they share one camera
    for v in range(4):
        f = rset.frame[rset.view == v]
        assert list(np.diff(f)) == [1, 1]
        assert np.ptp(rset.R[rset.view == v], axis=0).max() == 0


def test_labels_agree_with_camera_and_kinematics(rset, clips):
    xc = rset.joints_cam.astype(np.float64)
    K = rset.K.astype(np.float64)
    uv = xc[..., :2] / xc[..., 2:] * np.stack([K[:, 0, 0], K[:, 1, 1]], -1)[:, None] + K[:, None, :2, 2]
    np.testing.assert_allclose(uv, rset.joints_2d, atol=2e-3)
    for i in (0, 7):
        m = clips[str(rset.clip[i])]
        fk = forward_kinematics(SK, m.local_quat[rset.frame[i]], m.root_pos[rset.frame[i]])
        R, t = rset.R[i].astype(np.float64), rset.t[i].astype(np.float64)
        np.testing.assert_allclose(fk.positions.numpy() @ R.T + t, xc[i], atol=1e-4)
        np.testing.assert_allclose(R @ fk.global_rotmat.numpy(), rset.global_cam[i], atol=1e-5)


def test_perturb_turns_only_the_named_joints(clips):
    s = render_motion_set(SK, clips, 1, config=CFG, seed=5, perturb=("neck", "left_ankle"), perturb_deg=30.0,
                          progress=False)  # fmt: skip
    for i in range(len(s)):
        true = clips[str(s.clip[i])].local_quat[s.frame[i]].float()
        got = torch.from_numpy(s.local_quat[i])
        d = (quat_to_matrix(got) - quat_to_matrix(true)).abs().amax((-1, -2))  # (J,)
        moved = {SK.joint_names[j] for j in torch.nonzero(d > 1e-4).flatten().tolist()}
        assert moved == {"neck", "left_ankle"}


def test_deterministic_across_workers_and_save_load(rset, clips, tmp_path):
    again = render_motion_set(SK, clips, 2, frames_per_view=3, config=CFG, seed=3, workers=2, progress=False)
    np.testing.assert_array_equal(again.images, rset.images)
    np.testing.assert_array_equal(again.joints_2d, rset.joints_2d)
    path = tmp_path / "set.npz"
    rset.save(path)
    back = load_rendered_set(path)
    assert back.skeleton == "humanoid"
    np.testing.assert_array_equal(back.images, rset.images)
    np.testing.assert_array_equal(back.clip, rset.clip)
    sub = back.subset(back.view == 1)
    assert len(sub) == 3 and (sub.view == 1).all()


def test_bad_input(clips, tmp_path):
    with pytest.raises(KineposeError, match="views"):
        render_motion_set(SK, clips, 0, config=CFG, progress=False)
    with pytest.raises(KineposeError, match="perturb"):
        render_motion_set(SK, clips, 1, config=CFG, perturb=("head",), progress=False)
    with pytest.raises(KineposeError, match="fewer than frames_per_view"):
        render_motion_set(SK, clips, 1, frames_per_view=50, config=CFG, progress=False)
    bad = tmp_path / "x.npz"
    np.savez(bad, images=np.zeros(1))
    with pytest.raises(KineposeError, match="missing"):
        load_rendered_set(bad)
    junk = tmp_path / "junk.npz"
    junk.write_text("not a zip")
    with pytest.raises(KineposeError, match="not a readable rendered set"):
        load_rendered_set(junk)
