"""D3KE on rendered windows (kinepose.training.d3ke): windows grouped by view in frame order, the subject's bone
scales and markers as targets, metrics zero on the truth, a short training run, bad feature rows named."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kinepose.data.motion import replay_on_skeleton
from kinepose.data.sources.deepmimic import load_deepmimic
from kinepose.errors import KineposeError
from kinepose.models.vision.d3ke import create_d3ke, virtual_markers
from kinepose.render import RenderConfig
from kinepose.render.dataset import render_motion_set
from kinepose.skeleton.presets import get_skeleton
from kinepose.training.d3ke import d3ke_windows, kinematics_errors, predict_d3ke, train_d3ke

SK = get_skeleton("humanoid")
FACTORS = np.linspace(0.9, 1.12, SK.num_joints)[:, None]


@pytest.fixture(scope="module")
def rset():
    subject = SK.with_offsets(np.array(SK.offsets) * FACTORS, name="scaled")
    clips = {"walk": replay_on_skeleton(load_deepmimic("walk").slice(0, 20), subject)}
    return render_motion_set(SK, clips, 3, frames_per_view=5, config=RenderConfig(image_size=(32, 32)), seed=1,
                             progress=False)  # fmt: skip


def test_windows_scales_and_markers(rset):
    feats = np.random.default_rng(0).normal(size=(len(rset), 8)).astype(np.float32)
    markers = virtual_markers(SK)
    d = d3ke_windows(rset, feats, SK, markers)
    assert d.features.shape == (3, 5, 8) and d.joints.shape == (3, 5, SK.num_joints, 3)
    assert d.markers.shape == (3, 5, len(markers), 3)
    # bones of the subject over the template's: the factors (root 1; zero-length offsets 1)
    rest = SK.bone_lengths()
    want = np.where(rest > 1e-6, FACTORS[:, 0], 1.0)
    want[0] = 1.0
    np.testing.assert_allclose(d.scales.numpy(), np.broadcast_to(want, (3, SK.num_joints)), rtol=1e-5)
    # each window is one view, frames in order, features in the set's row order
    first = np.flatnonzero(rset.view == rset.view[0])
    np.testing.assert_array_equal(
        d.features[0].float().numpy(), feats[first[np.argsort(rset.frame[first])]].astype(np.float16)
    )
    np.testing.assert_allclose(d.joints[0].numpy(), rset.joints_cam[first[np.argsort(rset.frame[first])]], atol=1e-6)
    truth = {"joints": d.joints, "markers": d.markers, "local_rotmat": d.local_rotmat}
    err = kinematics_errors(truth, d, [j for j in SK.rotated_joints if j != 0])
    assert max(err.values()) < 1e-3  # degrees and mm; the float32 arcsine near 0 gives about 1e-4 deg
    with pytest.raises(KineposeError, match=r"features must be \(15, F\)"):
        d3ke_windows(rset, feats[:-1], SK, markers)


def test_short_training_lowers_the_loss(rset):
    feats = np.random.default_rng(1).normal(size=(len(rset), 8)).astype(np.float32)
    d = d3ke_windows(rset, feats, SK, virtual_markers(SK))
    torch.manual_seed(0)
    model = create_d3ke(SK, feature_dim=8, d_model=32, heads=2, layers=1, window=5, dropout=0.0)
    joints = [j for j in SK.rotated_joints if j != 0]
    before = kinematics_errors(predict_d3ke(model, d), d, joints)
    info = train_d3ke(model, d, steps=60, batch_size=3, lr=3e-3, progress=False)
    after = kinematics_errors(predict_d3ke(model, d), d, joints)
    assert info["steps_done"] == 60
    assert after["mpjpe_mm"] < 0.7 * before["mpjpe_mm"], (before, after)
    with pytest.raises(KineposeError, match="windows of 5 frames, the model takes 4"):
        train_d3ke(create_d3ke(SK, feature_dim=8, d_model=32, heads=2, layers=1, window=4), d, steps=1)
