"""D3KE fine-tuned end to end (VideoD3KE): the frames path sees exactly the features the cached path caches, frozen
BatchNorm statistics stay as loaded, a short run trains backbone and head, the two paths refuse each other's data."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from kinepose.data.sources.deepmimic import load_deepmimic
from kinepose.errors import KineposeError
from kinepose.models.vision.d3ke import VideoD3KE, create_d3ke, virtual_markers
from kinepose.render import RenderConfig
from kinepose.render.dataset import render_motion_set
from kinepose.skeleton.presets import get_skeleton
from kinepose.training.d3ke import d3ke_frames, d3ke_windows, kinematics_errors, predict_d3ke, train_d3ke
from kinepose.training.schedule import warmup_cosine

SK = get_skeleton("humanoid")


needs_vision = pytest.mark.vision  # skipped where torchvision does not import (tests/conftest.py)


def test_warmup_cosine_by_hand():
    assert warmup_cosine(0.0) == pytest.approx(1e-3 / (0.05 + 1e-3))
    assert warmup_cosine(0.05) == pytest.approx(1.0)
    assert warmup_cosine(0.525) == pytest.approx(0.5)  # half way through the cosine
    assert warmup_cosine(1.0) == pytest.approx(0.0, abs=1e-12)
    assert warmup_cosine(0.3) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.25 / 0.95)))


@pytest.fixture(scope="module")
def rset():
    clips = {"walk": load_deepmimic("walk").slice(0, 12)}
    return render_motion_set(SK, clips, 3, frames_per_view=4, config=RenderConfig(image_size=(48, 48)), seed=2,
                             progress=False)  # fmt: skip


def _model(stage: int = 2, grid: int = 2, frozen_bn: bool = True, seed: int = 0) -> VideoD3KE:
    from kinepose.models.vision import create_backbone

    torch.manual_seed(seed)
    bb = create_backbone("mobilenet_v2")  # random weights: the tests are about the plumbing
    net = create_d3ke(SK, feature_dim=bb.channels[stage] * grid**2, temporal="tcn", d_model=32, layers=1, window=4,
                      dropout=0.0)  # fmt: skip
    return VideoD3KE(bb, net, stage=stage, grid=grid, frozen_bn=frozen_bn)


@needs_vision
def test_frames_path_equals_the_cached_feature_path(rset):
    from kinepose.models.vision.features import extract_features

    model = _model().eval()
    frames = d3ke_frames(rset, 32)
    assert frames.shape == (len(rset), 3, 32, 32) and frames.dtype == np.uint8
    cached = extract_features(model.backbone, iter(rset.images), 32, stage=2, grid=2)  # (N, F), what is cached
    with torch.no_grad():
        mine = model.features(torch.from_numpy(frames)[None])[0].numpy()
    # the only difference: frames stored as uint8 (half a grey level at most)
    np.testing.assert_allclose(mine, cached, atol=0.05 * np.abs(cached).max())
    assert np.corrcoef(mine.ravel(), cached.ravel())[0, 1] > 0.999
    d = d3ke_windows(rset, frames, SK, virtual_markers(SK))
    assert d.features.dtype == torch.uint8 and tuple(d.features.shape) == (3, 4, 3, 32, 32)


@needs_vision
def test_frozen_batchnorm_keeps_its_statistics_and_training_moves_both_parts(rset):
    d = d3ke_windows(rset, d3ke_frames(rset, 32), SK, virtual_markers(SK))
    joints = [j for j in SK.rotated_joints if j != 0]
    for frozen_bn in (True, False):
        model = _model(frozen_bn=frozen_bn)
        bn = next(m for m in model.backbone.modules() if isinstance(m, torch.nn.BatchNorm2d))
        stats = bn.running_mean.clone()
        conv = next(p for p in model.backbone.parameters()).detach().clone()
        head = model.d3ke.rot_head.weight.detach().clone()
        before = kinematics_errors(predict_d3ke(model, d), d, joints)
        info = train_d3ke(model, d, steps=40, batch_size=2, lr=3e-3, progress=False)
        after = kinematics_errors(predict_d3ke(model, d), d, joints)
        assert info["steps_done"] == 40
        assert torch.equal(bn.running_mean, stats) == frozen_bn
        assert not torch.equal(next(p for p in model.backbone.parameters()), conv)  # the backbone trained
        assert not torch.equal(model.d3ke.rot_head.weight, head)
        if frozen_bn:  # BatchNorm trained from scratch evaluates on running statistics that lag 40 steps behind
            assert after["mpjpe_mm"] < 0.6 * before["mpjpe_mm"], (before, after)


@needs_vision
def test_the_paths_refuse_each_others_data(rset):
    frames = d3ke_windows(rset, d3ke_frames(rset, 32), SK, virtual_markers(SK))
    feats = d3ke_windows(rset, np.zeros((len(rset), 8), np.float32), SK, virtual_markers(SK))
    with pytest.raises(KineposeError, match="a D3KE reads features, the windows hold frames"):
        train_d3ke(create_d3ke(SK, feature_dim=8, d_model=32, heads=2, layers=1, window=4), frames, steps=1)
    with pytest.raises(KineposeError, match="a VideoD3KE reads frames"):
        train_d3ke(_model(), feats, steps=1)
    with pytest.raises(KineposeError, match=r"stage 2 of mobilenet_v2 pooled to 2x2 gives 128 features, the D3KE "):
        VideoD3KE(_model().backbone, create_d3ke(SK, feature_dim=8, window=4), stage=2, grid=2)
    with pytest.raises(KineposeError, match="uint8 frames"):
        d3ke_windows(rset, np.zeros((len(rset), 3, 32, 32), np.float32), SK, virtual_markers(SK))
