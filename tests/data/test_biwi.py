"""BIWI Kinect Head Pose loader on a tiny fixture (2 sequences x 3 frames) written into tmp_path."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from kinepose.data.formats.biwi import (
    biwi_split,
    leave_subjects_out,
    load_biwi,
    read_biwi_calibration,
)
from kinepose.errors import FileFormatError, KineposeError
from kinepose.geometry.headpose import convert_ypr, matrix_to_ypr

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16  # the loader checks existence only
RGB_CAL = """517.679 0 320
0 517.679 240.5
0 0 1

0 0 0 0

0.999947 0.00432361 0.00929419
-0.00446314 0.999877 0.0150443
-0.00922831 -0.0150849 0.999843

-24.0198 5.8896 -13.2308

640 480
"""


def _pose_text(R: np.ndarray, c: np.ndarray) -> str:
    rows = "".join(" ".join(f"{v:.6f}" for v in r) + " \n" for r in R)
    return rows + "\n" + " ".join(f"{v:.4f}" for v in c) + " \n"


def _write_biwi(root: Path, seqs=(1, 2), frames=(3, 4, 6), seed: int = 0) -> dict[tuple[int, int], np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = {}
    for s in seqs:
        d = root / "hpdb" / f"{s:02d}"
        d.mkdir(parents=True)
        (d / "rgb.cal").write_text(RGB_CAL)
        for f in frames:
            R = Rotation.from_euler("XYZ", rng.uniform(-0.8, 0.8, 3)).as_matrix()
            (d / f"frame_{f:05d}_pose.txt").write_text(_pose_text(R, np.array([40.0, -20.0, 900.0])))
            (d / f"frame_{f:05d}_rgb.png").write_bytes(PNG)
            truth[(s, f)] = R
    return truth


def test_load_fixture(tmp_path):
    truth = _write_biwi(tmp_path)
    b = load_biwi(tmp_path)
    assert len(b) == 6 and b.n_skipped == 0
    assert b.sequence.tolist() == [1, 1, 1, 2, 2, 2] and b.frame.tolist() == [3, 4, 6, 3, 4, 6]
    assert b.rotation.shape == (6, 3, 3) and b.ypr.shape == (6, 3) and b.centre_mm.shape == (6, 3)
    for i, (s, f) in enumerate(zip(b.sequence, b.frame, strict=True)):
        np.testing.assert_allclose(b.rotation[i], truth[(s, f)], atol=1e-6)  # 6 decimals in the file
        assert os.path.basename(b.image_paths[i]) == f"frame_{f:05d}_rgb.png"
    np.testing.assert_allclose(b.ypr, matrix_to_ypr(b.rotation))
    np.testing.assert_allclose(b.centre_mm[0], [40, -20, 900])
    cal = b.intrinsics[2]
    np.testing.assert_allclose(cal.K, [[517.679, 0, 320], [0, 517.679, 240.5], [0, 0, 1]])
    assert cal.extrinsic_R.shape == (3, 3) and cal.extrinsic_t.tolist() == [-24.0198, 5.8896, -13.2308]
    assert cal.image_size == (640, 480) and cal.distortion.tolist() == [0, 0, 0, 0]
    # hpdb/ itself works as root, a subset of sequences, and FSA-Net's labels are the Hopenet triplet
    one = load_biwi(tmp_path / "hpdb", sequences=[2])
    assert one.sequence.tolist() == [2, 2, 2] and list(one.intrinsics) == [2]
    fsanet = np.rad2deg(convert_ypr(one.ypr, "kinepose", "fsanet"))
    np.testing.assert_allclose(fsanet[:, 0], -np.rad2deg(one.ypr[:, 0]))
    sub = b.subset(b.indices([1]))
    assert len(sub) == 3 and list(sub.intrinsics) == [1]
    assert len(b.subset(b.sequence == 2)) == 3


def test_calibration_with_only_K(tmp_path):
    p = tmp_path / "rgb.cal"
    p.write_text("\n  500 0 320 \n0 500 240\n\n0 0 1\n")
    cal = read_biwi_calibration(p)
    assert cal.K[0, 0] == 500 and cal.extrinsic_R is None and cal.extrinsic_t is None and cal.distortion is None


def test_missing_image_error_or_skip(tmp_path):
    _write_biwi(tmp_path)
    (tmp_path / "hpdb" / "02" / "frame_00004_rgb.png").unlink()
    with pytest.raises(FileFormatError, match=r"frame_00004_rgb\.png.*image missing for frame_00004_pose\.txt"):
        load_biwi(tmp_path)
    b = load_biwi(tmp_path, missing="skip")
    assert len(b) == 5 and b.n_skipped == 1 and b.skipped[0].endswith("frame_00004_pose.txt")
    with pytest.raises(KineposeError, match="missing: expected"):
        load_biwi(tmp_path, missing="ignore")


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("1 0 0\n0 1 0\n0 0\n\n1 2 3\n", r"line 3: rotation row: expected 3 numbers, got 2"),
        ("1 0 0\n0 1 0\n0 0 1\n\n1 2\n", r"line 5: head centre x y z \(mm\): expected 3 numbers, got 2"),
        ("1 0 0\n0 1 0\n0 0 1\n", r"line 3: ends before head centre"),
        ("1 0 0\n0 nan 0\n0 0 1\n\n1 2 3\n", r"line 2: non-finite value nan"),
        ("1 0 0\n0 1 0\n0 0 x\n\n1 2 3\n", r"line 3: expected numbers separated by spaces"),
        ("2 0 0\n0 1 0\n0 0 1\n\n1 2 3\n", r"line 1: lines 1-3 are not a rotation matrix \(det 2"),
        ("1 0 0\n0 1 0\n0 0 -1\n\n1 2 3\n", r"not a rotation matrix \(det -1"),
        ("1 0 0\n0 1 0\n0 0 1\n\n1 2 3\n4 5 6\n", r"line 6: unexpected extra line"),
    ],
)
def test_malformed_pose_file(tmp_path, text, match):
    _write_biwi(tmp_path)
    bad = tmp_path / "hpdb" / "01" / "frame_00004_pose.txt"
    bad.write_text(text)
    with pytest.raises(FileFormatError, match=match) as info:
        load_biwi(tmp_path)
    assert info.value.path == str(bad)


def test_missing_folders_and_files(tmp_path):
    with pytest.raises(FileFormatError, match="BIWI root folder not found"):
        load_biwi(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileFormatError, match="no sequence folders"):
        load_biwi(tmp_path / "empty")
    _write_biwi(tmp_path)
    with pytest.raises(FileFormatError, match=r"sequence folder 07 not found \(have \[1, 2\]\)"):
        load_biwi(tmp_path, sequences=[1, 7])
    (tmp_path / "hpdb" / "03").mkdir()
    (tmp_path / "hpdb" / "03" / "rgb.cal").write_text(RGB_CAL)
    with pytest.raises(FileFormatError, match="no frame_XXXXX_pose.txt"):
        load_biwi(tmp_path, sequences=[3])
    (tmp_path / "hpdb" / "01" / "rgb.cal").unlink()
    with pytest.raises(FileFormatError, match="missing rgb.cal"):
        load_biwi(tmp_path)


def test_malformed_calibration(tmp_path):
    p = tmp_path / "rgb.cal"
    p.write_text("0 0 320\n0 500 240\n0 0 1\n")
    with pytest.raises(FileFormatError, match="line 1: K = .* is not an intrinsics matrix"):
        read_biwi_calibration(p)
    p.write_text(RGB_CAL.replace("-0.00446314 0.999877 0.0150443", "1 2"))
    with pytest.raises(FileFormatError, match="line 8: extrinsic rotation row: expected 3 numbers, got 2"):
        read_biwi_calibration(p)


def test_biwi_split_70_30():
    s = biwi_split(range(1, 25))
    assert s["train"] == tuple(range(1, 17)) and s["test"] == tuple(range(17, 25))
    assert biwi_split([3, 1, 2, 3]) == {"train": (1, 2), "test": (3,)}
    with pytest.raises(KineposeError, match="at least 2 sequences"):
        biwi_split([5])
    with pytest.raises(KineposeError, match="protocol"):
        biwi_split(range(1, 25), protocol="random")


def test_biwi_split_explicit():
    ids = range(1, 25)
    s = biwi_split(ids, test=[1, 5, 9])
    assert s["test"] == (1, 5, 9) and len(s["train"]) == 21 and 5 not in s["train"]
    assert biwi_split(ids, train=range(1, 23))["test"] == (23, 24)
    with pytest.raises(KineposeError, match="share sequences"):
        biwi_split(ids, train=[1, 2], test=[2, 3])
    with pytest.raises(KineposeError, match=r"test: sequences \[30\]"):
        biwi_split(ids, test=[30])
    with pytest.raises(KineposeError, match="empty split"):
        biwi_split([1, 2], train=[1, 2])


def test_leave_subjects_out_groups_repeat_recordings():
    subject_of = {1: "F01", 2: "M01", 3: "F01", 4: "M02", 5: "M03"}
    s = leave_subjects_out(subject_of, "F01")
    assert s == {"train": (2, 4, 5), "test": (1, 3)}
    assert leave_subjects_out(subject_of, ["M02", "M03"])["test"] == (4, 5)
    with pytest.raises(KineposeError, match=r"\['X9'\] not among the subjects"):
        leave_subjects_out(subject_of, ["X9"])
    with pytest.raises(KineposeError, match="empty split"):
        leave_subjects_out(subject_of, ["F01", "M01", "M02", "M03"])


def test_an_empty_sequence_list_is_an_error(tmp_path):
    from kinepose.data.formats.biwi import load_biwi

    (tmp_path / "hpdb" / "01").mkdir(parents=True)
    with pytest.raises(ValueError, match="empty list"):
        load_biwi(tmp_path / "hpdb", sequences=[])
