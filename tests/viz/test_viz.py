"""kinepose.viz and `kinepose plot`: every writer produces a non-blank image; bad input is a clear error."""

from __future__ import annotations

import csv

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch
from matplotlib.animation import FFMpegWriter
from matplotlib.image import imread
from PIL import Image

from kinepose.cli import main
from kinepose.kinematics import rest_pose
from kinepose.skeleton import get_skeleton
from kinepose.viz import (
    animate_skeleton,
    curves,
    plot_attention,
    plot_error_vs_noise,
    plot_per_joint_errors,
    plot_pose_comparison,
    plot_skeleton,
    plot_training_curves,
)


def assert_png(path) -> None:
    assert path.exists() and path.stat().st_size > 0
    img = imread(path)
    assert img.ndim == 3 and img[..., :3].var() > 0, "blank image"


@pytest.fixture(scope="module")
def humanoid():
    return get_skeleton("humanoid")


@pytest.fixture(scope="module")
def poses(humanoid):
    truth = rest_pose(humanoid, torch.float64).numpy()  # (J, 3)
    rng = np.random.default_rng(0)
    return truth + 0.02 * rng.standard_normal(truth.shape), truth


def test_plot_skeleton_returns_axes(humanoid, poses):
    import matplotlib.pyplot as plt

    ax = plot_skeleton(humanoid, poses[1], label="rest")
    assert len(ax.lines) == sum(p >= 0 for p in humanoid.parents)
    plt.close(ax.figure)


@pytest.mark.parametrize("overlay", [True, False])
def test_pose_comparison(tmp_path, humanoid, poses, overlay):
    out = tmp_path / "pose.png"
    plot_pose_comparison(humanoid, *poses, out, title="test", overlay=overlay)
    assert_png(out)
    plot_pose_comparison(humanoid, poses[0], None, tmp_path / "alone.png")
    assert_png(tmp_path / "alone.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alone.png", "pose.png"]  # no temporary files left


def test_pose_comparison_bad_shape(tmp_path, humanoid, poses):
    with pytest.raises(ValueError, match=r"pred: expected shape \(J, 3\)"):
        plot_pose_comparison(humanoid, poses[0][:-1], poses[1], tmp_path / "x.png")
    with pytest.raises(ValueError, match="unsupported output type"):
        plot_pose_comparison(humanoid, *poses, tmp_path / "x.jpg2")


def test_animate_skeleton(tmp_path, humanoid, poses):
    T = 150
    wave = 0.05 * np.sin(np.linspace(0, 6, T))[:, None, None]
    truth = poses[1][None] + wave  # (T, J, 3)
    pred = truth + 0.01
    out = tmp_path / "clip.gif"
    n = animate_skeleton(humanoid, pred, truth, out, fps=30, max_frames=10)
    assert n == 10 and out.stat().st_size > 0
    with Image.open(out) as im:
        assert im.format == "GIF" and im.n_frames == n
        assert np.asarray(im.convert("RGB")).var() > 0
    with pytest.raises(ValueError, match="gif"):
        animate_skeleton(humanoid, pred, truth, tmp_path / "clip.png")


def test_animate_skeleton_mp4(tmp_path, humanoid, poses):
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg", reason="MP4 needs imageio-ffmpeg (kinepose[video])")
    T = 24
    wave = 0.2 * np.sin(np.linspace(0, 6, T))[:, None, None]
    truth = poses[1][None] + wave  # (T, J, 3)
    out = tmp_path / "clip.mp4"
    n = animate_skeleton(humanoid, truth + 0.01, truth, out, fps=24)
    assert n == T
    reader = imageio_ffmpeg.read_frames(str(out))
    meta = next(reader)  # the first item is the stream's metadata
    assert meta["codec"].startswith("h264") and meta["fps"] == pytest.approx(24, rel=1e-3)
    w, h = meta["size"]
    frames = [np.frombuffer(f, np.uint8).reshape(h, w, 3) for f in reader]
    assert len(frames) == T
    assert frames[0].var() > 0 and np.abs(frames[0].astype(int) - frames[T // 2]).sum() > 0  # the skeleton moves
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]  # no temporary file left


def test_animate_skeleton_mp4_failure_keeps_target(tmp_path, humanoid, poses, monkeypatch):
    pytest.importorskip("imageio_ffmpeg")
    out = tmp_path / "clip.mp4"
    out.write_bytes(b"old")
    seq = np.repeat(poses[1][None], 5, axis=0)
    calls = {"n": 0}
    real = FFMpegWriter.grab_frame

    def failing(self, **kw):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("disk full")
        return real(self, **kw)

    monkeypatch.setattr(FFMpegWriter, "grab_frame", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        animate_skeleton(humanoid, seq, None, out, fps=10)
    assert out.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


def write_metrics(folder, epochs=4, offset=0.0):
    log = folder / "logs" / "csv" / "version_0"
    log.mkdir(parents=True)
    cols = ["epoch", "step", "train/geo_deg", "train/total", "val/geo_deg", "val/loss", "val/mpjpe_mm"]
    with open(log / "metrics.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for e in range(epochs):  # sparse rows, as Lightning writes them
            w.writerow([e, 10 * e + 9, "", "", 10 - e + offset, 0.5 - 0.05 * e, 12 - e])
            w.writerow([e, 10 * e + 9, 9 - e + offset, 1.0 / (e + 1) + offset, "", "", ""])
    return folder


def test_training_curves(tmp_path, monkeypatch):
    a, b = write_metrics(tmp_path / "run_a"), write_metrics(tmp_path / "run_b", epochs=3, offset=1.0)
    out = tmp_path / "curves.png"
    plot_training_curves([a, b], out)
    assert_png(out)
    figs = []
    monkeypatch.setattr(curves, "save_figure", lambda fig, path: figs.append(fig))
    plot_training_curves([a, b], out)
    loss, geo, mpjpe = figs[0].axes
    labels = [[t.get_text() for t in ax.get_legend().get_texts()] for ax in (loss, geo, mpjpe)]
    assert labels[0] == ["run_a val", "run_a train", "run_b val", "run_b train"]  # val/loss against train/total
    assert labels[1] == ["run_a val", "run_a train", "run_b val", "run_b train"]  # val/geo_deg against train/geo_deg
    assert labels[2] == ["run_a", "run_b"]  # no train/mpjpe_mm logged
    train_line = geo.get_lines()[1]
    assert train_line.get_linestyle() == "--" and list(train_line.get_ydata()) == [9, 8, 7, 6]
    with pytest.raises(ValueError, match="'val/nope' is in none"):
        plot_training_curves([a], tmp_path / "c.png", metrics=["val/nope"])
    with pytest.raises(ValueError, match="no metrics.csv"):
        plot_training_curves([tmp_path], tmp_path / "c.png")


JOINTS = ("root", "chest", "left_knee", "right_knee")


def synthetic_benchmark() -> dict:
    def report(noise, scale):
        per_joint = {j: scale * (1 + 0.1 * noise + i) for i, j in enumerate(JOINTS)}
        overall = {"clip": "all", "frames": 10, "geo_deg": float(np.mean(list(per_joint.values()))),
                   "mpjpe_mm": scale * (2 + noise), "per_joint_deg": per_joint}  # fmt: skip
        return {"solver": "x", "noise_mm": noise, "clips": [], "overall": overall}

    rows = {
        "analytic IK": {"kind": "single", "learned": False, "reports": {str(n): report(n, 1.0) for n in (0, 5, 10)}},
        "hybrid": {"kind": "single", "learned": True, "reports": {str(n): report(n, 0.5) for n in (0, 5, 10)}},
        "broken run": {"kind": "single", "learned": True, "reports": {}},
    }
    return {"noise_mm": [0.0, 5.0, 10.0], "skeletons": {"humanoid": {"clips": ["walk"], "rows": rows}}}


def test_benchmark_plots(tmp_path):
    import json

    path = tmp_path / "bench.json"
    path.write_text(json.dumps(synthetic_benchmark()))
    for metric in ("geo_deg", "mpjpe_mm"):
        plot_error_vs_noise(path, tmp_path / f"noise_{metric}.png", metric=metric)
        assert_png(tmp_path / f"noise_{metric}.png")
    plot_per_joint_errors(path, tmp_path / "joints.png", noise_mm=10)
    assert_png(tmp_path / "joints.png")
    plot_per_joint_errors(synthetic_benchmark(), tmp_path / "one.png", noise_mm=0, rows=["hybrid"])
    assert_png(tmp_path / "one.png")
    with pytest.raises(ValueError, match="metric 'nope'"):
        plot_error_vs_noise(path, tmp_path / "x.png", metric="nope")
    with pytest.raises(ValueError, match="skeleton 'hand'"):
        plot_error_vs_noise(path, tmp_path / "x.png", skeleton="hand")
    with pytest.raises(ValueError, match="no per-joint errors at 7 mm"):
        plot_per_joint_errors(path, tmp_path / "x.png", noise_mm=7)
    with pytest.raises(ValueError, match="rows: unknown 'nope'"):
        plot_per_joint_errors(path, tmp_path / "x.png", rows=["nope"])


def test_attention(tmp_path):
    g = torch.Generator().manual_seed(0)
    layers = [torch.softmax(torch.randn(2, 4, 5, 5, generator=g), dim=-1) for _ in range(3)]
    plot_attention(layers, tmp_path / "frames.png", title="over frames")
    assert_png(tmp_path / "frames.png")
    plot_attention(layers[:1], tmp_path / "joints.png", labels=list("abcde"), axis="joint")
    assert_png(tmp_path / "joints.png")
    figs = []
    real = curves.save_figure
    curves.save_figure = lambda fig, path: (figs.append(fig), real(fig, path))
    try:
        plot_attention(layers, tmp_path / "heads.png", per_head=True, query=4, labels=[str(i - 4) for i in range(5)])
    finally:
        curves.save_figure = real
    assert_png(tmp_path / "heads.png")
    axes = [ax for ax in figs[0].axes if ax.get_label() != "<colorbar>"]
    assert len(axes) == 3 * (4 + 1 + 1)  # per layer: 4 heads, their mean, the query's profile
    profile = axes[5]  # layer 0's profile of query 4: one line per head, then the mean
    mean = np.asarray(layers[0].mean(0)[:, 4].mean(0))  # (B, heads, N, N) -> batch mean -> query row -> head mean
    np.testing.assert_allclose(profile.get_lines()[-1].get_ydata(), mean, rtol=1e-6)
    with pytest.raises(ValueError, match="query"):
        plot_attention(layers, tmp_path / "x.png", query=5)
    with pytest.raises(ValueError, match="labels"):
        plot_attention(layers, tmp_path / "x.png", labels=["a"])
    with pytest.raises(ValueError, match="empty"):
        plot_attention([], tmp_path / "x.png")


def test_cli_plot_pose_analytic(tmp_path, capsys):
    out = tmp_path / "pose.png"
    argv = ["plot", "pose", "--model", "analytic", "--clip", "walk", "--frame", "3", "--noise-mm", "10"]
    assert main([*argv, "--output", str(out)]) == 0
    assert_png(out)
    assert "wrote" in capsys.readouterr().out


def test_cli_plot_bad_input(tmp_path, capsys):
    assert main(["plot", "noise", str(tmp_path / "missing.json"), "--output", str(tmp_path / "x.png")]) == 2
    assert "no such benchmark JSON" in capsys.readouterr().err
    assert main(["plot", "curves", str(tmp_path / "norun"), "--output", str(tmp_path / "x.png")]) == 2
    assert main(["plot", "pose", "--model", "analytic", "--frame", "100000", "--output", str(tmp_path / "x.png")]) == 2
    assert "--frame" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:  # argparse rejects an unknown metric
        main(["plot", "noise", "b.json", "--metric", "nope", "--output", str(tmp_path / "x.png")])
    assert exc.value.code == 2
    assert not any(tmp_path.iterdir())
