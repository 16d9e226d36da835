"""``headpose_dual`` on real torchvision backbones (the vision venv): image forward, gradients into the backbone,
frozen backbones, and the crop a real photo gets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("torchvision")

from kinepose.models.headpose import create_headpose_dual
from kinepose.training.headpose import fit_headpose, predict_headpose


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2"])
def test_dual_on_images_reaches_the_backbone(name):
    torch.manual_seed(0)
    net = create_headpose_dual(name)
    out = net(torch.rand(2, 3, 64, 64))
    assert out.ypr.shape == (2, 3) and out.face.shape == (2, 1404) and out.pose.shape == (2, 99)
    out.ypr.sum().backward()
    first = next(net.backbone.parameters())
    assert first.grad is not None and first.grad.abs().sum() > 0


def test_frozen_backbone_trains_only_the_heads():
    torch.manual_seed(0)
    net = create_headpose_dual("resnet18", freeze=True)
    before = {k: v.clone() for k, v in net.backbone.state_dict().items()}
    imgs = (np.random.default_rng(0).random((16, 48, 48, 3)) * 255).astype(np.uint8)
    ypr = np.random.default_rng(1).uniform(-0.5, 0.5, (16, 3))
    fit = fit_headpose(net, imgs, ypr, kind="images", steps=3, batch_size=4, aux_weight=0.0)
    assert fit.steps == 3
    for k, v in net.backbone.state_dict().items():
        torch.testing.assert_close(v, before[k])  # weights and BatchNorm statistics untouched
    assert predict_headpose(net, imgs, kind="images").shape == (16, 3)


def test_pretrained_without_weights_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="resnet18"):
        create_headpose_dual("resnet18", pretrained=True, weights=str(tmp_path / "missing.pth"))
    with pytest.raises(ValueError, match="unknown backbone"):
        create_headpose_dual("resnet9000")


def test_an_image_run_mirrors_at_test_time_by_default(tmp_path):
    """load_estimator: flip TTA on for a headpose_dual run unless turned off; its answer is the mean rotation of the
    crop's answer and the mirrored answer on the mirrored crop."""
    from kinepose.frontends.headpose import load_estimator
    from kinepose.geometry.headpose import mean_ypr, mirror_ypr
    from kinepose.training.headpose import save_headpose_run

    torch.manual_seed(0)
    net = create_headpose_dual("mobilenet_v2", dropout=0.0)
    save_headpose_run(tmp_path / "run", net, {"model": "headpose_dual", "backbone": "mobilenet_v2", "dropout": 0.0,
                                              "image_size": 64})  # fmt: skip
    on, off = load_estimator(str(tmp_path / "run")), load_estimator(str(tmp_path / "run"), flip_tta=False)
    assert on.flip_tta and on.name.endswith("flip TTA") and not off.flip_tta and "flip" not in off.name
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)
    face = np.column_stack([rng.uniform(120, 200, 468), rng.uniform(80, 180, 468), rng.uniform(-20, 20, 468)])
    a = off.predict(rgb, face, None)
    from kinepose.frontends.headpose import head_crop

    crop = head_crop(rgb, face, 64, off._geometric.rotation(face[None])[0])
    b = mirror_ypr(predict_headpose(off.model, np.ascontiguousarray(crop[None, :, ::-1]), kind="images"))[0]
    np.testing.assert_allclose(on.predict(rgb, face, None), mean_ypr(np.stack([a, b])), atol=1e-6)
    assert not np.allclose(a, b, atol=1e-4)  # the untrained network is not mirror-consistent: the test can fail


def test_an_image_run_that_stops_on_its_steps_repeats_exactly():
    """Same seed, same steps, a time budget it does not reach: the same network to the last bit (the recipes that
    stop on their 12-minute cap instead anneal on time, so two runs differ: benchmarks/RESULTS.md measures by how
    much)."""
    g = np.random.default_rng(0)
    imgs, ypr = g.integers(0, 255, (48, 64, 64, 3), dtype=np.uint8), g.uniform(-0.5, 0.5, (48, 3))
    outs = []
    for _ in range(2):
        torch.manual_seed(0)
        net = create_headpose_dual("mobilenet_v2", dropout=0.2)
        fit = fit_headpose(net, imgs, ypr, kind="images", steps=12, batch_size=16, image_size=64, max_minutes=60)
        outs.append(predict_headpose(net, imgs[:8], kind="images"))
    assert fit.steps == 12
    np.testing.assert_array_equal(outs[0], outs[1])
    assert np.abs(outs[0]).max() > 0
