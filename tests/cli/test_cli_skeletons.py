"""``--skeleton NAME|FILE`` on the commands, ``kinepose skeleton FILE [--output]``, and ``kinepose ik`` on BVH rigs:
input BVH -> positions -> analytic IK -> output BVH with the input's names, tree, offsets and layout, whose positions
equal the input's."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from kinepose.cli import main
from kinepose.cli.skeletons import check_model_skeleton
from kinepose.data.formats.bvh import CM_TO_M, CMU_TO_M, read_bvh
from kinepose.data.formats.io import load_rotations, save_joints, save_rotations
from kinepose.geometry import random_quat
from kinepose.geometry.rotations import quat_about_axis
from kinepose.kinematics import forward_kinematics, project_to_joint_kinds
from kinepose.skeleton import get_skeleton
from kinepose.skeleton.skeleton_file import read_skeleton, read_skeleton_file, write_skeleton

CMU = "/usr/share/assimp/models/BVH/01_01.bvh"
FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures")
MIXAMO = os.path.join(FIXTURES, "mixamo_rig.bvh")
MOCAPBANK = os.path.join(FIXTURES, "mocapbank_rig.bvh")
NO_ASSIMP = "Debian package assimp-testmodels not installed"


def _pose_within_limits(sk, T: int) -> torch.Tensor:
    """(T, J, 4) random rotations: any for ball joints, hinge angles inside the limits (analytic IK clamps to them)."""
    gen = torch.Generator().manual_seed(0)
    q = random_quat((T, sk.num_joints), generator=gen, dtype=torch.float64)
    for j in range(sk.num_joints):
        if sk.kinds[j] == "hinge":
            lo, hi = (float(v) for v in sk.limits[j])
            angle = lo + (hi - lo) * (0.1 + 0.8 * torch.rand(T, generator=gen, dtype=torch.float64))
            q[:, j] = quat_about_axis(torch.tensor(sk.hinge_axes[j]), angle)
    return project_to_joint_kinds(sk, q)


def head_of_bvh(src: str, dst, frames: int) -> str:
    """The first ``frames`` frames of a BVH file, as a new file (the header's ``Frames:`` fixed)."""
    lines = open(src).read().splitlines()
    at = next(i for i, line in enumerate(lines) if line.strip().lower().startswith("frames:"))
    lines[at] = f"Frames: {frames}"
    dst.write_text("\n".join(lines[: at + 2 + frames]) + "\n")
    return str(dst)


def _rig(name: str, tmp_path) -> tuple[str, float]:
    if name == "cmu":
        if not os.path.exists(CMU):
            pytest.skip(NO_ASSIMP)
        return head_of_bvh(CMU, tmp_path / "01_01_head.bvh", 240), CMU_TO_M
    return (MIXAMO if name == "mixamo" else MOCAPBANK), CM_TO_M


# ----------------------------------------------------------------------------------------------- ik on BVH rigs


@pytest.mark.parametrize("rig", ["cmu", "mixamo", "mocapbank"])
def test_ik_round_trips_bvh_rigs(tmp_path, capsys, rig):
    path, scale = _rig(rig, tmp_path)
    out = tmp_path / "out.bvh"
    assert main(["ik", "--model", "analytic", "--input", path, "--scale", str(scale), "--output", str(out)]) == 0
    assert "the input file's" in capsys.readouterr().out
    src, got = read_bvh(path), read_bvh(out)
    # the input's joint names (end sites too), hierarchy, offsets (in its own units), rotation order and channels
    assert got.joint_names == src.joint_names and got.parents == src.parents and got.end_site == src.end_site
    np.testing.assert_allclose(got.offsets, src.offsets, rtol=1e-9, atol=1e-12)
    assert got.channel_layout() == src.channel_layout() and got.fps == src.fps
    err = float((got.positions(scale) - src.positions(scale)).norm(dim=-1).max())
    print(f"{rig}: {src.num_joints} joints x {src.num_frames} frames, max position error {err:.3g} m")
    assert err < 1e-6, f"{rig}: the output's positions are {err:.3g} m from the input's"


@pytest.mark.parametrize("rig", ["mixamo", "mocapbank"])
def test_ik_bvh_to_npz_keeps_the_rig(tmp_path, rig):
    path, scale = _rig(rig, tmp_path)
    out = tmp_path / "out.npz"
    assert main(["ik", "--model", "analytic", "--input", path, "--scale", str(scale), "--output", str(out)]) == 0
    r = load_rotations(out)
    src = read_bvh(path)
    assert r.joint_names == src.joint_names and r.parents == src.parents and r.fps == 30.0
    assert np.abs(r.joints - src.positions(scale).numpy()).max() < 1e-6  # metres


@pytest.mark.skipif(not os.path.exists(CMU), reason=NO_ASSIMP)
def test_ik_bvh_with_another_skeleton_is_matched_by_name(tmp_path, capsys):
    """--skeleton still wins over the file's own; the humanoid's joints are not in a CMU file (exit 2, named)."""
    path = head_of_bvh(CMU, tmp_path / "head.bvh", 5)
    out = tmp_path / "o.npz"
    assert main(["ik", "--model", "analytic", "--input", path, "--skeleton", "humanoid", "--output", str(out)]) == 2
    assert "of skeleton 'humanoid' are missing from the file" in capsys.readouterr().err
    assert not out.exists()
    # the file's own skeleton as a YAML file, in centimetres: the same solve
    assert main(["skeleton", path, "--scale", str(CMU_TO_M), "--output", str(tmp_path / "cmu.yaml"),
                 "--units", "cm"]) == 0  # fmt: skip
    assert main(["ik", "--model", "analytic", "--input", path, "--scale", str(CMU_TO_M), "--skeleton",
                 str(tmp_path / "cmu.yaml"), "--output", str(out)]) == 0  # fmt: skip
    assert np.abs(load_rotations(out).joints - read_bvh(path).positions(CMU_TO_M).numpy()).max() < 1e-6


def test_ik_csv_on_a_skeleton_file(tmp_path, capsys):
    """Joint positions of h36m17 in a CSV, solved on the same skeleton read from a YAML file in millimetres."""
    sk = get_skeleton("h36m17")
    write_skeleton(sk, tmp_path / "h36m.yaml", units="mm")
    q = _pose_within_limits(sk, 6)
    x = forward_kinematics(sk, q, torch.zeros(6, 3, dtype=torch.float64)).positions
    save_joints(tmp_path / "j.csv", x, sk.joint_names)
    out = tmp_path / "r.json"
    argv = ["ik", "--model", "analytic", "--input", str(tmp_path / "j.csv"), "--output", str(out)]
    assert main([*argv, "--skeleton", str(tmp_path / "h36m.yaml")]) == 0
    assert "skeleton 'h36m17' (17 joints)" in capsys.readouterr().out
    assert np.abs(load_rotations(out).joints - x.numpy()).max() < 1e-9
    assert main([*argv, "--skeleton", str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml: cannot read skeleton (no such file)" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------- kinepose skeleton


def test_skeleton_command_describes_files(tmp_path, capsys):
    write_skeleton(get_skeleton("hand21"), tmp_path / "hand.json")
    assert main(["skeleton", str(tmp_path / "hand.json")]) == 0
    out = capsys.readouterr().out
    assert "Skeleton('hand21', 21 joints" in out and "little_tip" in out and "index_pip=hinge" in out
    assert main(["skeleton", MOCAPBANK, "--scale", "0.01"]) == 0
    out = capsys.readouterr().out
    assert "Skeleton('mocapbank_rig', 39 joints" in out and "LeftHandIndex2_end" in out
    assert "(+0.000, +0.180, -0.010)" in out  # Spine1's OFFSET 0 18 -1 cm, in metres
    from kinepose.skeleton.presets.humanoid import humanoid_urdf_path

    assert main(["skeleton", humanoid_urdf_path(), "--scale", "0.25"]) == 0
    assert "right_knee=hinge" in capsys.readouterr().out
    assert main(["skeleton", "octopus"]) == 2
    assert "unknown skeleton 'octopus'" in capsys.readouterr().err


def test_skeleton_output_is_written_once_unless_forced(tmp_path, capsys):
    out = tmp_path / "humanoid.yaml"
    assert main(["skeleton", "humanoid", "--output", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    sk = read_skeleton(out)
    assert sk.joint_names == get_skeleton("humanoid").joint_names
    assert np.array_equal(sk.offsets, get_skeleton("humanoid").offsets)
    before = out.read_text()
    assert main(["skeleton", "hand21", "--output", str(out)]) == 2
    assert "exists; pass --force" in capsys.readouterr().err and out.read_text() == before
    assert main(["skeleton", str(out), "--output", str(out), "--force"]) == 2
    assert "is the input" in capsys.readouterr().err and out.read_text() == before
    assert main(["skeleton", "hand21", "--output", str(tmp_path / "h.txt")]) == 2
    assert "a skeleton file is .yaml, .yml, .json" in capsys.readouterr().err
    assert main(["skeleton", "hand21", "--units", "cm"]) == 2
    assert "--units and --force go with --output" in capsys.readouterr().err
    assert main(["skeleton", "hand21", "--output", str(out), "--force", "--units", "cm"]) == 0
    f = read_skeleton_file(out)
    assert f.units == "cm" and f.skeleton.name == "hand21" and "units: cm" in out.read_text()
    assert sorted(os.listdir(tmp_path)) == ["humanoid.yaml"]


def test_skeleton_file_to_file_keeps_units_and_twist_limits(tmp_path, capsys):
    write_skeleton(get_skeleton("head"), tmp_path / "a.yaml", units="inch", twist_limits={"head": (-1.0, 1.0)})
    assert main(["skeleton", str(tmp_path / "a.yaml"), "--output", str(tmp_path / "b.json")]) == 0
    assert "Twist limits (deg): head [-57.2958, 57.2958]" in capsys.readouterr().out
    b = read_skeleton_file(tmp_path / "b.json")
    assert b.units == "inch" and dict(b.twist_limits) == {"head": (-1.0, 1.0)}


# ----------------------------------------------------------------------------------------------- other commands


@pytest.fixture()
def longer_humanoid(tmp_path):
    """The humanoid with every bone 10 % longer, as a YAML file."""
    sk = get_skeleton("humanoid")
    path = tmp_path / "longer.yaml"
    write_skeleton(sk.with_offsets(sk.offsets * 1.1, name="longer"), path)
    return str(path)


def test_clip_on_a_skeleton_file(tmp_path, longer_humanoid, capsys):
    """Same rotations on bones 1.1 times as long: positions relative to the root scale by 1.1, and the root path
    with them (its height above the feet scales with the legs), so every position scales by 1.1."""
    plain, longer = tmp_path / "a.npz", tmp_path / "b.npz"
    assert main(["clip", "kick", "--output", str(plain)]) == 0
    assert main(["clip", "kick", "--output", str(longer), "--skeleton", longer_humanoid]) == 0
    assert "on skeleton 'longer'" in capsys.readouterr().out
    a, b = np.load(plain)["joints"], np.load(longer)["joints"]
    np.testing.assert_allclose(b - b[:, :1], 1.1 * (a - a[:, :1]), atol=1e-6)
    np.testing.assert_allclose(b, 1.1 * a, atol=1e-6)  # feet stay on the ground
    assert main(["clip", "kick", "--output", str(tmp_path / "c.npz"), "--skeleton", "hand21"]) == 2
    assert "joints ['wrist'" in capsys.readouterr().err and not (tmp_path / "c.npz").exists()


def test_evaluate_analytic_on_a_skeleton_file(tmp_path, longer_humanoid, capsys):
    out = tmp_path / "e.json"
    assert main(["evaluate", "analytic", "--clips", "walk", "--skeleton", longer_humanoid, "--json", str(out)]) == 0
    assert "replayed on skeleton 'longer'" in capsys.readouterr().out
    import json

    assert json.loads(out.read_text())["overall"]["mpjpe_mm"] < 0.01


def test_view_rotations_on_a_skeleton_file(tmp_path, longer_humanoid, capsys):
    """A rotations file without positions is drawn by FK on the --skeleton file."""
    sk = read_skeleton(longer_humanoid)
    q = project_to_joint_kinds(sk, random_quat((3, sk.num_joints), generator=torch.Generator().manual_seed(1),
                                               dtype=torch.float64))  # fmt: skip
    save_rotations(tmp_path / "r.npz", sk, q.numpy(), np.zeros((3, 3)))
    page = tmp_path / "r.html"
    assert main(["view", str(tmp_path / "r.npz"), "--skeleton", longer_humanoid, "--output", str(page)]) == 0
    assert page.stat().st_size > 10_000 and "3 frames" in capsys.readouterr().out
    assert main(["view", str(tmp_path / "r.npz"), "--skeleton", str(tmp_path / "nope.bvh"), "--output",
                 str(tmp_path / "x.html")]) == 2  # fmt: skip
    assert "nope.bvh: cannot read skeleton (no such file)" in capsys.readouterr().err


def test_a_model_keeps_its_own_skeleton():
    check_model_skeleton(None, get_skeleton("humanoid"))
    check_model_skeleton("humanoid", get_skeleton("humanoid"))
    with pytest.raises(ValueError, match="--skeleton: the model was trained on skeleton 'humanoid'"):
        check_model_skeleton("hand21", get_skeleton("humanoid"))


@pytest.mark.parametrize("command", ["ik", "evaluate", "view", "clip"])
def test_every_command_takes_a_skeleton_file(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    assert ".bvh" in capsys.readouterr().out
