"""`kinepose ik` on real users' input: wrong units, other proportions, missing joints, keypoint layouts."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from kinepose.cli import main
from kinepose.data.formats.rotations_file import load_rotations
from kinepose.data.sources.deepmimic import load_deepmimic
from kinepose.kinematics import forward_kinematics

sys.path.insert(0, str(Path(__file__).parents[1] / "kinematics"))
from test_calibration import scaled_subject


@pytest.fixture(scope="module")
def walk():
    return load_deepmimic("walk")


def _save(path, sk, x):
    np.savez(path, joints=np.asarray(x), joint_names=np.array(sk.joint_names), fps=30.0)
    return str(path)


def test_millimetres_are_refused_with_the_scale_to_pass(tmp_path, walk, capsys):
    """Issue 9: millimetre input used to succeed ("FK of the output is 376540.26 mm from the input")."""
    inp = _save(tmp_path / "mm.npz", walk.skeleton, walk.positions().numpy() * 1000)
    out = tmp_path / "out.npz"
    assert main(["ik", "--model", "analytic", "--input", inp, "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert "look like millimetres" in err and "--scale 0.001" in err and "--units mm" in err
    assert not out.exists()
    assert main(["ik", "--model", "analytic", "--input", inp, "--output", str(out), "--units", "mm"]) == 0
    assert "0.00 mm from the input" in capsys.readouterr().out
    assert main(["ik", "--model", "analytic", "--input", inp, "--output", str(out), "--units", "mm",
                 "--scale", "0.001"]) == 2  # fmt: skip


def test_a_scaled_subject_is_calibrated(tmp_path, walk, capsys):
    """Every bone scaled 0.85-1.15: with calibration (default) FK reproduces the input; --no-calibrate shows what
    the template's lengths cost. The output's skeleton is the subject's (BVH offsets too)."""
    subj = scaled_subject(walk.skeleton, 7)
    x = forward_kinematics(subj, walk.local_quat, walk.root_pos).positions
    inp = _save(tmp_path / "s.npz", walk.skeleton, x.numpy())
    out = tmp_path / "r.npz"
    assert main(["ik", "--model", "analytic", "--input", inp, "--output", str(out)]) == 0
    text = capsys.readouterr().out
    assert "0.00 mm from the input" in text and "calibrated to the subject" in text
    r = load_rotations(str(out))
    np.testing.assert_allclose(r.joints, x.numpy(), atol=1e-8)
    assert main(["ik", "--model", "analytic", "--input", inp, "--output", str(tmp_path / "t.npz"),
                 "--no-calibrate"]) == 0  # fmt: skip
    mm = float(capsys.readouterr().out.split("FK of the output is ")[1].split(" mm")[0])
    assert mm > 5.0


def test_missing_joints_do_not_lose_the_frame(tmp_path, walk, capsys):
    x = walk.positions().numpy().copy()
    x[3, 4] = np.nan
    inp = _save(tmp_path / "nan.npz", walk.skeleton, x)
    out = tmp_path / "r.npz"
    assert main(["ik", "--model", "analytic", "--input", inp, "--output", str(out)]) == 0
    assert "1 missing joint positions" in capsys.readouterr().out
    with np.load(out) as f:
        assert f["local_quat"].shape[0] == len(x) and np.isfinite(f["local_quat"]).all()
        valid, det = f["valid"], f["determined"]
        assert not valid[3, 4] and valid[2, 4] and det[4]
        assert f["determined_global"].shape == (walk.skeleton.num_joints,)


def test_coco_keypoints_onto_h36m(tmp_path, capsys):
    """--layout coco17: a COCO-ordered array (no names) onto the h36m17 skeleton in one call."""
    from kinepose.kinematics import random_pose
    from kinepose.skeleton import get_layout, get_skeleton

    sk = get_skeleton("h36m17")
    q = random_pose(sk, (5,), torch.Generator().manual_seed(0))
    x = forward_kinematics(sk, q, torch.zeros(5, 3, dtype=torch.float64)).positions.numpy()
    coco = get_layout("coco17")
    kp = np.full((5, 17, 3), np.nan)
    for i, n in enumerate(coco.joint_names):  # put the h36m joints that COCO shares at their COCO index
        name = {"left_hip": "left_hip", "right_hip": "right_hip"}.get(n, n)
        if name in sk.joint_names:
            kp[:, i] = x[:, sk.index(name)]
    kp[np.isnan(kp)] = 0.0
    np.save(tmp_path / "coco.npy", kp)
    out = tmp_path / "r.npz"
    code = main(["ik", "--model", "analytic", "--input", str(tmp_path / "coco.npy"), "--output", str(out),
                 "--skeleton", "h36m17", "--layout", "coco17", "--no-calibrate"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    r = load_rotations(str(out))  # the pelvis (root) is the COCO mid-hip, exactly
    mid_hip = (kp[:, coco.index("left_hip")] + kp[:, coco.index("right_hip")]) / 2
    np.testing.assert_allclose(r.root_pos, mid_hip, atol=1e-12)
    assert main(["ik", "--model", "analytic", "--input", str(tmp_path / "coco.npy"), "--output", str(out),
                 "--skeleton", "h36m17", "--layout", "octopus"]) == 2  # fmt: skip
    assert "octopus" in capsys.readouterr().err


def test_bvh_rig_in_other_units_needs_units(tmp_path, capsys):
    """A .bvh solved on its own rig has no template to compare with: a rig tens of units across at rest is
    not a person in metres, so the command asks for --units instead of writing 'metres' that are not."""
    fixture = str(Path(__file__).parents[1] / "fixtures" / "mocapbank_rig.bvh")
    out = tmp_path / "o.npz"
    assert main(["ik", "--model", "analytic", "--input", fixture, "--output", str(out)]) == 2
    assert "looks like cm: pass --units cm" in capsys.readouterr().err and not out.exists()
    assert main(["ik", "--model", "analytic", "--input", fixture, "--output", str(out), "--units", "cm"]) == 0
    assert "0.00 mm from the input" in capsys.readouterr().out


def test_unit_hint_accounts_for_the_units_given(tmp_path, walk, capsys):
    inp = _save(tmp_path / "mm.npz", walk.skeleton, walk.positions().numpy() * 1000)
    out = tmp_path / "o.npz"
    assert main(["ik", "--model", "analytic", "--input", inp, "--output", str(out), "--units", "cm"]) == 2
    assert "--units mm" in capsys.readouterr().err  # not "dm": the file is in millimetres
    inp = _save(tmp_path / "m.npz", walk.skeleton, walk.positions().numpy())
    assert main(["ik", "--model", "analytic", "--input", inp, "--output", str(out), "--units", "mm"]) == 2
    assert "metres already" in capsys.readouterr().err


def test_confidence_zero_means_not_detected(tmp_path, walk, capsys):
    x = walk.positions().numpy().copy()
    x[:, 7] = 0.0  # OpenPose writes an undetected joint as 0, 0, 0 with confidence 0
    conf = np.ones(x.shape[:2])
    conf[:, 7] = 0.0
    inp = tmp_path / "c.npz"
    np.savez(inp, joints=x, joint_names=np.array(walk.skeleton.joint_names), confidence=conf)
    out = tmp_path / "o.npz"
    assert main(["ik", "--model", "analytic", "--input", str(inp), "--output", str(out)]) == 0
    assert f"{len(x)} missing joint positions" in capsys.readouterr().out


def test_skeleton_of_a_bvh_rig_in_cm_asks_for_scale(tmp_path, capsys):
    fixture = str(Path(__file__).parents[1] / "fixtures" / "mocapbank_rig.bvh")
    out = tmp_path / "mb.yaml"
    assert main(["skeleton", fixture, "--output", str(out)]) == 2
    assert "pass --scale 0.01" in capsys.readouterr().err and not out.exists()
    assert main(["skeleton", fixture, "--scale", "0.01", "--output", str(out), "--units", "cm"]) == 0
    from kinepose.skeleton import read_skeleton_file

    f = read_skeleton_file(str(out))
    assert f.units == "cm" and 0.3 < float(np.ptp(forward_kinematics(f.skeleton, *_rest(f.skeleton)).positions.numpy(),
                                                    axis=0).max()) < 3.0  # fmt: skip


def _rest(sk):
    from kinepose.geometry import quat_identity

    return quat_identity((sk.num_joints,), dtype=torch.float64), torch.zeros(3, dtype=torch.float64)
