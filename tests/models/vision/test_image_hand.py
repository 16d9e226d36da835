"""Image crop -> 3D hand (kinepose.models.vision.image_hand, kinepose.training.image_hand): shapes with the wrist at
0, gradients to the backbone unless frozen, cached features = images, names and errors, the Ego-Exo4D evaluation,
the rendered hand crops and a short training run. The POTTER path runs everywhere; torchvision's needs the vision
extra."""

from __future__ import annotations

import numpy as np
import pytest
import roma
import torch

from kinepose.data.lifting import hand_clips
from kinepose.errors import KineposeError, ShapeError
from kinepose.models.vision import list_backbones
from kinepose.models.vision.features import extract_features
from kinepose.models.vision.image_hand import ImageHand, create_image_hand, image_hand_backbones
from kinepose.models.vision.potter import POTTER_CONFIGS, create_potter
from kinepose.skeleton.presets import get_skeleton
from kinepose.training.image_hand import (
    cache_features,
    evaluate_hands,
    hand_crops,
    hand_motions,
    predict_hands,
    render_hand_crops,
    train_hand_head,
    train_image_hand,
)

SK = get_skeleton("hand21")


needs_vision = pytest.mark.vision  # skipped where torchvision does not import (tests/conftest.py)


@pytest.fixture(scope="module")
def motions():
    return hand_motions(3, 20, seed=5)


@pytest.fixture(scope="module")
def crops(motions):
    """12 rendered 32 px hand crops of 3 per-bone scaled hands."""
    return hand_crops(render_hand_crops(motions, 4, image_size=32, seed=1, progress=False))


def _potter(**kw) -> ImageHand:
    torch.manual_seed(0)
    return create_image_hand("potter_xs", SK, hidden=32, **kw)


def test_shapes_and_the_wrist_at_zero(crops):
    model = _potter(grid=2).eval()
    x = torch.rand(3, 3, 32, 32)
    out = model(x)
    assert out.shape == (3, 21, 3) and torch.isfinite(out).all()
    assert torch.equal(out[:, 0], torch.zeros(3, 3)) and out[:, 1:].abs().sum() > 0
    assert model.in_features == 256 * 4
    u8 = model(torch.from_numpy(crops.images[:2]))  # (B, H, W, 3) uint8, as rendered
    assert u8.shape == (2, 21, 3) and torch.equal(u8[:, 0], torch.zeros(2, 3))
    small = _potter(grid=0, stage=2, image_size=16)
    assert small.in_features == 64 and small(x).shape == (3, 21, 3)
    with pytest.raises(KineposeError, match="exactly one of images"):
        model()
    with pytest.raises(KineposeError, match="exactly one of images"):
        model(x, features=torch.zeros(3, 1024))
    with pytest.raises(ShapeError, match=r"features must be \(B, 1024\), got \(3, 7\)"):
        model(features=torch.zeros(3, 7))
    with pytest.raises(ShapeError, match=r"uint8 images must be \(B, H, W, 3\)"):
        model(torch.zeros(2, 3, 32, 32, dtype=torch.uint8))
    with pytest.raises(KineposeError, match="stage 5 out of range"):
        _potter(stage=5)


@pytest.mark.parametrize("freeze", [False, True])
def test_gradients_reach_the_backbone_unless_frozen(freeze):
    model = _potter(freeze=freeze)
    model.train()
    model(torch.rand(2, 3, 32, 32)).square().sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.head.parameters())
    grads = [p.grad for p in model.backbone.parameters()]
    if freeze:
        assert model.frozen and not model.backbone.training and all(g is None for g in grads)
    else:
        # the stem and the last stage (the GroupNorms of the other stages' outputs are unused: PotterBackbone)
        assert model.backbone.stem[0].weight.grad.abs().sum() > 0
        assert model.backbone.potter_stages[-1].embed.weight.grad.abs().sum() > 0


def test_cached_features_give_the_same_joints(crops):
    model = _potter(freeze=True, stage=3, grid=2).eval()
    images = torch.from_numpy(crops.images[:5])
    with torch.no_grad():
        direct = model(images)
        cached = cache_features(model, crops.images, batch_size=5)  # float16, as stored
        ref = extract_features(model.backbone, iter(crops.images[:5]), 32, stage=3, grid=2)  # the library's cache
        np.testing.assert_allclose(model.features(images).numpy(), ref, atol=1e-5)
        torch.testing.assert_close(model(features=torch.from_numpy(ref)), direct, atol=1e-5, rtol=0)
    assert cached.dtype == np.float16 and cached.shape == (12, 128 * 4)
    data = crops.with_features(cached)
    p = predict_hands(model, data, from_features=True)
    torch.testing.assert_close(p[:5], direct, atol=5e-3, rtol=0)  # float16 storage


def test_names_and_errors(tmp_path, monkeypatch):
    assert image_hand_backbones() == sorted([*list_backbones(), *POTTER_CONFIGS])
    with pytest.raises(KineposeError, match=r"unknown backbone 'resnet9'; available: efficientnet_b0, mobilenet_v2, "
                                            r"potter_s12, potter_s24, potter_xs, resnet101, resnet18"):  # fmt: skip
        create_image_hand("resnet9", SK)
    with pytest.raises(KineposeError, match=r"unknown option\(s\) \['width'\]"):
        create_image_hand("potter_xs", SK, width=3)
    with pytest.raises(KineposeError, match="no ImageNet weights for POTTER ship here"):
        create_image_hand("potter_xs", SK, pretrained=True)
    torch.manual_seed(1)
    path = tmp_path / "potter_xs.pt"
    torch.save(create_potter("potter_xs").state_dict(), path)
    loaded = create_image_hand("potter_xs", SK, pretrained=True, weights=path, freeze=True)
    torch.testing.assert_close(loaded.backbone.stem[0].weight, torch.load(path)["stem.0.weight"])
    # every torchvision name goes to create_backbone with the switches (built here as a tiny POTTER stand-in)
    seen = []

    def fake(name, pretrained, freeze, weights):
        seen.append((name, pretrained, freeze, weights))
        return create_potter("potter_xs", layers=(1, 1, 1, 1), freeze=freeze)

    monkeypatch.setattr("kinepose.models.vision.image_hand.create_backbone", fake)
    for name in list_backbones():
        assert create_image_hand(name, SK, freeze=True, hidden=8).frozen
    assert seen == [(n, False, True, None) for n in list_backbones()]


def test_evaluate_hands_is_the_egoexo4d_evaluation():
    g = torch.Generator().manual_seed(0)
    true = 0.05 * torch.randn(2, 21, 3, generator=g, dtype=torch.float64)
    pred = true.clone()
    pred[0, 5, 0] += 0.030  # 30 mm off on one joint of hand 0
    pred[1, 7, 1] -= 0.040  # 40 mm on one of hand 1
    r = evaluate_hands(pred, true)
    assert r["mpjpe_mm"] == pytest.approx((30 / 21 + 40 / 21) / 2)  # per hand over its 21 joints (wrist 0 too)
    valid = torch.ones(2, 21, dtype=torch.bool)
    valid[1, 11:] = False  # hand 1: joints 0-10 annotated
    assert evaluate_hands(pred, true, valid)["mpjpe_mm"] == pytest.approx((30 / 21 + 40 / 11) / 2)
    # moving the wrist moves every wrist-relative joint
    shifted = true.clone()
    shifted[:, 0, 2] += 0.021
    assert evaluate_hands(shifted, true)["mpjpe_mm"] == pytest.approx(21 * 20 / 21)  # 20 joints 21 mm off
    # PA-MPJPE: a rotated, scaled and translated copy of the truth is aligned back
    R = roma.random_rotmat(2, generator=g, dtype=torch.float64)
    sim = 1.3 * true @ R.transpose(-1, -2) + torch.tensor([0.1, -0.2, 0.5], dtype=torch.float64)
    r = evaluate_hands(sim, true)
    assert r["pa_mpjpe_mm"] < 1e-6 and r["mpjpe_mm"] > 10
    with pytest.raises(ShapeError, match=r"pred and true must both be \(N, J, 3\)"):
        evaluate_hands(pred[:, :20], true)


def test_hand_motions_are_the_lifting_hands_and_render(motions, crops):
    for m, c in zip(hand_motions(2, 10, seed=3).values(), hand_clips(2, 10, seed=3), strict=True):
        torch.testing.assert_close(m.positions().float(), c.joints)
    assert len(crops) == 12 and crops.images.shape == (12, 32, 32, 3) and crops.images.dtype == np.uint8
    assert crops.joints.shape == (12, 21, 3) and torch.equal(crops.joints[:, 0], torch.zeros(12, 3))
    # the labels are the hands' own: each crop's bone lengths are those of its clip's per-bone scaled skeleton
    parents = list(SK.parents)
    bones = (crops.joints[:, 1:] - crops.joints[:, [parents[j] for j in range(1, 21)]]).norm(dim=-1)  # (N, 20)
    want = torch.tensor(np.stack([motions[c].skeleton.bone_lengths()[1:] for c in crops.clip]), dtype=torch.float32)
    torch.testing.assert_close(bones, want, atol=1e-5, rtol=0)
    template = torch.tensor(SK.bone_lengths()[1:], dtype=torch.float32)
    assert (want / template).std(1).min() > 0.02  # per-bone scales, not one factor
    assert len(set(crops.clip.tolist())) == 3


def test_short_training_lowers_the_mpjpe(crops):
    model = _potter(stage=2, grid=2)  # up to stride 8: faster, the gradient still goes through the backbone
    stem0 = model.backbone.stem[0].weight.detach().clone()
    model.head.set_normalization(crops.joints.mean(0), crops.joints.std(0))
    before = evaluate_hands(predict_hands(model, crops), crops.joints)["mpjpe_mm"]
    info = train_image_hand(model, crops, steps=80, batch_size=12, lr=3e-3, jitter=0.0, progress=False)
    after = evaluate_hands(predict_hands(model, crops), crops.joints)["mpjpe_mm"]
    assert info["steps_done"] == 80
    # measured 84.5 -> 19.5 mm (the untrained model is the mean pose, 84.0); a broken gradient path stays at 84
    assert after < 0.45 * before, (before, after)
    assert not torch.equal(model.backbone.stem[0].weight, stem0)  # the backbone trained too
    with pytest.raises(KineposeError, match="the backbone is not frozen"):
        train_hand_head(model, crops.with_features(np.zeros((12, model.in_features))), steps=1)


def test_head_training_on_cached_features(crops):
    model = _potter(freeze=True, stage=3, grid=2)
    with pytest.raises(KineposeError, match="no cached features"):
        train_hand_head(model, crops, steps=1)
    data = crops.with_features(cache_features(model, crops.images))
    model.head.set_normalization(crops.joints.mean(0), crops.joints.std(0))
    before = evaluate_hands(predict_hands(model, data, from_features=True), crops.joints)["mpjpe_mm"]
    info = train_hand_head(model, data, steps=80, batch_size=12, lr=3e-3, progress=False)
    after = evaluate_hands(predict_hands(model, data, from_features=True), crops.joints)["mpjpe_mm"]
    assert info["steps_done"] == 80 and after < 0.45 * before, (before, after)  # measured: 84.8 -> 19.6 mm


@needs_vision
def test_torchvision_backbones():
    torch.manual_seed(0)
    model = create_image_hand("mobilenet_v2", SK, stage=3, grid=2, hidden=16, image_size=32)
    out = model(torch.rand(2, 3, 48, 48))  # resized to 32 px
    assert model.in_features == 96 * 4 and out.shape == (2, 21, 3) and torch.equal(out[:, 0], torch.zeros(2, 3))
    out.square().sum().backward()
    assert model.backbone.stage_modules[0][0][0].weight.grad.abs().sum() > 0
    frozen = create_image_hand("resnet18", SK, freeze=True, hidden=16)
    frozen(torch.rand(2, 3, 32, 32)).sum().backward()
    assert frozen.frozen and all(p.grad is None for p in frozen.backbone.parameters())
