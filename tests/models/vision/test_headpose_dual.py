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
