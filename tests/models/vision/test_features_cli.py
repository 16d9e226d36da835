"""``kinepose features``: frames -> backbone features (.npz). Bad input fails with exit status 2 before anything is
written; the features equal the backbone's on the same frames (needs torchvision for the real run)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from matplotlib import cbook

from kinepose.cli import main

HOPPER = str(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


def test_bad_input_exits_2_and_writes_nothing(tmp_path, capsys, monkeypatch):
    out = tmp_path / "f.npz"
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))
    cases = [
        ([str(bad), "--backbone", "resnet18"], "not a readable image"),
        ([str(empty), "--backbone", "resnet18"], "empty.mp4"),
        ([str(tmp_path / "missing"), "--backbone", "resnet18"], "no such file or folder"),
        ([HOPPER, "--backbone", "resnet9"], "unknown backbone 'resnet9'"),
        ([HOPPER, "--backbone", "resnet18", "--pretrained"], "no local file found"),
        ([HOPPER, "--backbone", "resnet18", "--stage", "7"], "--stage"),
    ]
    for argv, message in cases:
        assert main(["features", *argv, "--output", str(out), "--quiet"]) == 2, argv
        assert message in capsys.readouterr().err, argv
        assert not out.exists()
    assert main(["features", HOPPER, "--backbone", "resnet18", "--output", str(tmp_path / "f.txt")]) == 2
    assert "expected an .npz file" in capsys.readouterr().err
    out.write_bytes(b"keep me")
    assert main(["features", HOPPER, "--backbone", "resnet18", "--output", str(out), "--quiet"]) == 2
    assert "exists; pass --force" in capsys.readouterr().err and out.read_bytes() == b"keep me"


@pytest.mark.vision
def test_features_of_a_folder_equal_the_backbones(tmp_path, capsys):
    from kinepose.frontends.mediapipe import open_media
    from kinepose.models.vision import create_backbone
    from kinepose.models.vision.features import frames_to_tensor

    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(3):
        shutil.copy(HOPPER, frames / f"{i:03d}.jpg")
    out = tmp_path / "f.npz"
    torch.manual_seed(0)
    rc = main(["features", str(frames), "--backbone", "mobilenet_v2", "--size", "64", "--batch-size", "2",
               "--stage", "3", "--output", str(out), "--quiet"])  # fmt: skip
    assert rc == 0 and "3 frames x 96 features" in capsys.readouterr().out
    data = np.load(out)
    assert data["features"].shape == (3, 96) and list(data["frames"]) == [0, 1, 2]
    assert str(data["backbone"]) == "mobilenet_v2" and int(data["stage"]) == 3
    torch.manual_seed(0)
    bb = create_backbone("mobilenet_v2", freeze=True)
    imgs = list(open_media(str(frames)).frames())
    with torch.no_grad():
        ref = bb(frames_to_tensor(imgs, 64), 3).numpy()
    np.testing.assert_allclose(data["features"], ref, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(data["features"][0], data["features"][2], rtol=1e-5, atol=1e-6)
