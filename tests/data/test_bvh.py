"""BVH reader and writer: channel semantics, exact round trips, malformed files, atomic writes."""

from __future__ import annotations

import math
import os
import warnings

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from kinepose.data.formats.bvh import (
    BVH,
    CM_TO_M,
    CMU_TO_M,
    ROTATION_ORDERS,
    BVHWarning,
    detect_left_right,
    read_bvh,
    write_bvh,
    write_motion_bvh,
)
from kinepose.errors import FileFormatError, KineposeError, NonFiniteError, ShapeError
from kinepose.geometry import euler_to_quat, quat_geodesic_distance, random_quat
from kinepose.kinematics import forward_kinematics
from kinepose.skeleton import Skeleton, get_skeleton

CMU = "/usr/share/assimp/models/BVH/01_01.bvh"
BOXING = "/usr/share/assimp/models/BVH/Boxing_Toes.bvh"
NO_ASSIMP = "Debian package assimp-testmodels not installed"


def _write(tmp_path, text: str, name: str = "t.bvh") -> str:
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def _skeleton(depth_first: bool = True) -> Skeleton:
    """10 joints with balls, hinges and end sites; with ``depth_first=False`` an arm hangs off the spine
    at the end of the index order."""
    names = ["root", "spine", "head_end", "left_hip", "left_knee", "left_foot", "right_hip", "right_knee",
             "right_foot"]  # fmt: skip
    parents = [-1, 0, 1, 0, 3, 4, 0, 6, 7]
    offsets = [[0, 1, 0], [0, 0.3, 0.02], [0, 0.2, 0], [0.1, -0.05, 0], [0, -0.4, 0.01], [0, -0.4, 0.1],
               [-0.1, -0.05, 0], [0, -0.4, 0.01], [0, -0.4, 0.1]]  # fmt: skip
    kinds = ["ball", "ball", "end", "ball", "hinge", "end", "ball", "hinge", "end"]
    if not depth_first:
        names.append("left_arm")
        parents.append(1)
        offsets.append([0.2, 0.25, 0.0])
        kinds.append("ball")
    axes = np.zeros((len(names), 3))
    axes[[4, 7], 0] = 1.0
    return Skeleton("toy", names, parents, np.array(offsets), kinds, axes, left_right=((3, 6), (4, 7), (5, 8)))


def _random_motion(sk: Skeleton, T: int = 7, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    q = random_quat((T, sk.num_joints), generator=g, dtype=torch.float64)
    root = torch.randn(T, 3, generator=g, dtype=torch.float64)
    return q, root


# ----------------------------------------------------------------------------------------------- semantics

_ONE_JOINT = """HIERARCHY
ROOT hips
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  End Site
  {
    OFFSET 0 1 0
  }
}
MOTION
Frames: 2
Frame Time: 0.0083333
1 2 3 90 90 0
0 0 0 %s %s %s
"""


def test_channel_order_is_intrinsic_product_fixed_value(tmp_path):
    # Zrotation 90, Xrotation 90: R = Rz(90) @ Rx(90) maps +y to +z (the other product would give -x)
    a, b, c = 31.0, -47.0, 112.0
    bvh = read_bvh(_write(tmp_path, _ONE_JOINT % (a, b, c)))
    assert bvh.channels[0] == ["Xposition", "Yposition", "Zposition", "Zrotation", "Xrotation", "Yrotation"]
    P = bvh.positions()
    torch.testing.assert_close(P[0, 1], torch.tensor([1.0, 2.0, 3.0 + 1.0], dtype=torch.float64))
    # frame 1: the product of the elementary matrices in channel order == scipy/kinepose intrinsic 'ZXY'
    ra, rb, rc = np.radians([a, b, c])
    Rz = np.array([[math.cos(ra), -math.sin(ra), 0], [math.sin(ra), math.cos(ra), 0], [0, 0, 1]])
    Rx = np.array([[1, 0, 0], [0, math.cos(rb), -math.sin(rb)], [0, math.sin(rb), math.cos(rb)]])
    Ry = np.array([[math.cos(rc), 0, math.sin(rc)], [0, 1, 0], [-math.sin(rc), 0, math.cos(rc)]])
    R = Rz @ Rx @ Ry
    np.testing.assert_allclose(bvh.local_rotmat()[1, 0], R, atol=1e-12)
    np.testing.assert_allclose(R, Rotation.from_euler("ZXY", [a, b, c], degrees=True).as_matrix(), atol=1e-12)
    q = bvh.to_motion().local_quat[1, 0]
    q_ref = euler_to_quat(torch.tensor(np.radians([a, b, c])), "ZXY")
    assert float(quat_geodesic_distance(q, q_ref)) < 1e-12
    np.testing.assert_allclose(P[1, 1].numpy(), R @ [0, 1, 0], atol=1e-12)


# ----------------------------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("order", ROTATION_ORDERS)
def test_round_trip_every_rotation_order(tmp_path, order):
    sk = _skeleton()
    q, root = _random_motion(sk)
    # frame 0 at gimbal lock (middle angle +-90 deg), where Euler extraction is least accurate
    lock = torch.tensor([[0.3, math.pi / 2, -0.7], [1.2, -math.pi / 2, 0.4]], dtype=torch.float64)
    q[0, 1::2] = euler_to_quat(lock[0], order)
    q[0, 0::2] = euler_to_quat(lock[1], order)
    q.requires_grad_(True)  # the writer detaches
    path = tmp_path / "rt.bvh"
    file_order = write_bvh(path, sk, q, root, fps=30, rotation_order=order)
    assert file_order == list(range(sk.num_joints))
    bvh = read_bvh(path)
    assert bvh.channels[0][3:] == [f"{a}rotation" for a in order]
    assert bvh.fps == 30.0
    assert bvh.joint_names == [n if k != "end" else f"{sk.joint_names[p]}_end"
                               for n, k, p in zip(sk.joint_names, sk.kinds, sk.parents, strict=True)]  # fmt: skip
    want = forward_kinematics(sk, q, root).positions.detach()
    assert (bvh.positions() - want).abs().max() < 1e-6
    m = bvh.to_motion()
    assert (m.positions() - want).abs().max() < 1e-6
    rot = list(sk.rotated_joints)
    assert quat_geodesic_distance(m.local_quat[:, rot], q[:, rot].detach()).max() < 1e-7
    assert m.skeleton.kinds == tuple("end" if k == "end" else "ball" for k in sk.kinds)
    assert m.skeleton.left_right == ((3, 6), (4, 7), (5, 8))


def test_round_trip_centimetres_and_six_channels(tmp_path):
    sk = _skeleton()
    q, root = _random_motion(sk, seed=3)
    path = tmp_path / "cm.bvh"
    write_bvh(path, sk, q.float(), root.float(), fps=120, rotation_order="YXZ", scale=100, channels_per_joint=6)
    bvh = read_bvh(path)
    assert [len(c) for c in bvh.channels] == [0 if k == "end" else 6 for k in sk.kinds]
    np.testing.assert_allclose(bvh.offsets[1], sk.offsets[1] * 100, atol=1e-9)
    want = forward_kinematics(sk, q.float().double(), root.float().double()).positions
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # position channels that repeat OFFSET are representable: no warning
        m = bvh.to_motion(scale=CM_TO_M)
    assert (m.positions() - want).abs().max() < 1e-6
    assert (read_bvh(path, scale=CM_TO_M).positions() - want).abs().max() < 1e-6


def test_round_trip_non_depth_first_skeleton(tmp_path):
    sk = _skeleton(depth_first=False)
    q, root = _random_motion(sk, seed=1)
    order = write_bvh(tmp_path / "ndf.bvh", sk, q, root, fps=60)
    assert order == [0, 1, 2, 9, 3, 4, 5, 6, 7, 8]
    bvh = read_bvh(tmp_path / "ndf.bvh")
    assert bvh.joint_names[3] == "left_arm"
    want = forward_kinematics(sk, q, root).positions[:, order]
    assert (bvh.positions() - want).abs().max() < 1e-6
    assert (bvh.to_motion().positions() - want).abs().max() < 1e-6


def test_round_trip_humanoid_preset(tmp_path):
    sk = get_skeleton("humanoid")  # DeepMimic order is not depth-first
    q, root = _random_motion(sk, T=5, seed=2)
    order = write_bvh(tmp_path / "h.bvh", sk, q, root, fps=30, scale=100)
    assert sorted(order) == list(range(sk.num_joints)) and order != list(range(sk.num_joints))
    m = read_bvh(tmp_path / "h.bvh").to_motion(scale=CM_TO_M)
    want = forward_kinematics(sk, q, root).positions[:, order]
    assert (m.positions() - want).abs().max() < 1e-6
    assert m.skeleton.lateral_axis == sk.lateral_axis


def test_write_motion_bvh_and_empty_clip(tmp_path):
    sk = _skeleton()
    q, root = _random_motion(sk, T=0)
    m = read_bvh(_write(tmp_path, _ONE_JOINT % (0, 0, 0))).to_motion()
    write_motion_bvh(tmp_path / "m.bvh", m, rotation_order="ZYX")
    assert (read_bvh(tmp_path / "m.bvh").positions() - m.positions()).abs().max() < 1e-9
    write_bvh(tmp_path / "empty.bvh", sk, q, root, fps=30)
    assert read_bvh(tmp_path / "empty.bvh").motion.shape == (0, 6 + 3 * 5)


# ----------------------------------------------------------------------------------------------- channels


_POSITIONS = """HIERARCHY
ROOT a
{
  OFFSET 5 5 5
  CHANNELS 3 Zrotation Xrotation Yrotation
  JOINT b
  {
    OFFSET 0 1 0
    CHANNELS 4 Xrotation Yposition Zrotation Xposition
    End Site
    {
      OFFSET 0 0 2
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.04
0 0 0  0 7 0 3
90 0 0  0 1 0 0
"""


def test_position_channels_on_any_joint(tmp_path):
    bvh = read_bvh(_write(tmp_path, _POSITIONS))
    assert bvh.channels[1] == ["Xrotation", "Yposition", "Zrotation", "Xposition"]
    P = bvh.positions().numpy()
    # frame 0: root at its OFFSET (no position channels), b's offset becomes (3, 7, 0) (z kept from OFFSET)
    np.testing.assert_allclose(P[0], [[5, 5, 5], [8, 12, 5], [8, 12, 7]], atol=1e-12)
    # frame 1: root turned 90 deg about z: b's offset (0, 1, 0) -> (-1, 0, 0)
    np.testing.assert_allclose(P[1], [[5, 5, 5], [4, 5, 5], [4, 5, 7]], atol=1e-12)
    with pytest.warns(BVHWarning, match=r"\['b'\]"):
        m = bvh.to_motion()
    np.testing.assert_allclose(m.skeleton.offsets[1], [0, 1, 0])
    np.testing.assert_allclose(m.positions()[1].numpy(), P[1], atol=1e-12)  # frame 1 repeats the OFFSET
    assert m.fps == 25.0 and m.name == "t"


def test_read_scale_multiplies_lengths_only(tmp_path):
    p = _write(tmp_path, _POSITIONS)
    a, b = read_bvh(p), read_bvh(p, scale=0.01)
    np.testing.assert_allclose(b.offsets, a.offsets * 0.01)
    np.testing.assert_allclose(b.positions().numpy(), a.positions().numpy() * 0.01, atol=1e-12)
    np.testing.assert_allclose(b.motion[:, :3], a.motion[:, :3])  # rotations stay degrees
    with pytest.raises(KineposeError, match="scale"):
        read_bvh(p, scale=0)


def test_tokens_split_over_lines_tabs_and_crlf(tmp_path):
    ref = read_bvh(_write(tmp_path, _POSITIONS, "ref.bvh"))
    head, frames = _POSITIONS.split("MOTION\n")
    one_per_line = "\n".join(head.split()) + "\nMOTION\nFrames:\n2\nFrame\tTime:0.04\n" + frames.split("\n", 2)[2]
    all_on_one = (
        "\t".join(head.split())
        + "\tMOTION Frames:2\r\nFrame Time: 0.04\r\n"
        + frames.split("\n", 2)[2].replace("\n", "\r\n")
    )
    for text in (one_per_line, all_on_one):
        bvh = read_bvh(_write(tmp_path, text))
        assert bvh.joint_names == ref.joint_names and bvh.channels == ref.channels
        np.testing.assert_array_equal(bvh.motion, ref.motion)
        np.testing.assert_array_equal(bvh.offsets, ref.offsets)


def test_end_site_names_are_unique(tmp_path):
    text = """HIERARCHY
ROOT a
{
OFFSET 0 0 0
CHANNELS 3 Xrotation Yrotation Zrotation
End Site
{ OFFSET 1 0 0 }
End Site
{ OFFSET 0 1 0 }
JOINT a_end
{ OFFSET 0 0 1 }
}
MOTION
Frames: 1
Frame Time: 1
0 0 0
"""
    bvh = read_bvh(_write(tmp_path, text))
    assert bvh.joint_names == ["a", "a_end2", "a_end3", "a_end"]
    assert bvh.end_site == [False, True, True, False]
    assert bvh.skeleton().kinds == ("ball", "end", "end", "ball")


def test_detect_left_right():
    names = ["Hips", "LHipJoint", "LeftUpLeg", "RHipJoint", "RightUpLeg", "lhip", "rhip", "left_knee",
             "right_knee", "LowerBack", "foot_l", "foot_r", "Lonely"]  # fmt: skip
    assert detect_left_right(names) == ((1, 3), (2, 4), (5, 6), (7, 8), (10, 11))


def test_bvh_constructor_validates():
    with pytest.raises(ShapeError, match="motion"):
        BVH(["a"], [-1], np.zeros((1, 3)), [["Xrotation"]], [False], 0.1, np.zeros((2, 2)))
    with pytest.raises(KineposeError, match="unknown channel"):
        BVH(["a"], [-1], np.zeros((1, 3)), [["Wrotation"]], [False], 0.1, np.zeros((2, 1)))


# ----------------------------------------------------------------------------------------------- real files


@pytest.mark.skipif(not os.path.exists(CMU), reason=NO_ASSIMP)
def test_cmu_01_01(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bvh = read_bvh(CMU)
    # 31 joints + 7 end sites, 96 channels, 2752 frames at 1 / .0083333 s
    assert bvh.num_joints == 38 and sum(bvh.end_site) == 7
    assert bvh.motion.shape == (2752, 96)
    assert bvh.fps == 120.0
    assert bvh.channels[0] == ["Xposition", "Yposition", "Zposition", "Zrotation", "Yrotation", "Xrotation"]
    clip = bvh.slice(0, 200)
    m = clip.to_motion(scale=CMU_TO_M)
    assert m.skeleton.lateral_axis == 0 and len(m.skeleton.left_right) == 15
    height = float(m.positions()[0, :, 1].max() - m.positions()[0, :, 1].min())
    assert 1.3 < height < 2.0  # metres: a person (toe to head end site)
    order = write_motion_bvh(tmp_path / "cmu.bvh", m, scale=1 / CMU_TO_M)
    assert order == list(range(38))
    back = read_bvh(tmp_path / "cmu.bvh")
    assert back.joint_names == bvh.joint_names
    assert (back.positions() - clip.positions()).abs().max() < 1e-6


@pytest.mark.skipif(not os.path.exists(BOXING), reason=NO_ASSIMP)
def test_boxing_toes_frame_count_off_by_one(tmp_path):
    with pytest.warns(BVHWarning, match=r"Boxing_Toes\.bvh.*3069.*3070"):
        bvh = read_bvh(BOXING)
    assert bvh.num_joints == 26 and sum(bvh.end_site) == 5 and bvh.num_frames == 3070
    assert bvh.fps == 100.0
    clip = bvh.slice(0, 200)
    m = clip.to_motion(scale=CM_TO_M)
    assert m.skeleton.left_right[0] == (bvh.joint_names.index("LeftCollar"), bvh.joint_names.index("RightCollar"))
    write_motion_bvh(tmp_path / "box.bvh", m, rotation_order="XYZ", scale=100)
    assert (read_bvh(tmp_path / "box.bvh").positions() - clip.positions()).abs().max() < 1e-6


# ----------------------------------------------------------------------------------------------- rig fixtures

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures")
MIXAMO = os.path.join(FIXTURES, "mixamo_rig.bvh")
MOCAPBANK = os.path.join(FIXTURES, "mocapbank_rig.bvh")


def test_mixamo_fixture_is_what_it_claims():
    bvh = read_bvh(MIXAMO)
    joints = [n for n, e in zip(bvh.joint_names, bvh.end_site, strict=True) if not e]
    assert len(joints) == 65 and sum(bvh.end_site) == 13 and all(n.startswith("mixamorig:") for n in joints)
    assert {"mixamorig:LeftHandPinky4", "mixamorig:RightHandThumb1", "mixamorig:HeadTop_End"} <= set(joints)
    six = ["Xposition", "Yposition", "Zposition", "Zrotation", "Xrotation", "Yrotation"]
    assert all(c == six for c, e in zip(bvh.channels, bvh.end_site, strict=True) if not e)
    assert bvh.channel_layout() == ("ZXY", 6)
    assert bvh.num_frames == 100 and bvh.fps == 30.0 and os.path.getsize(MIXAMO) < 300_000
    _check_plausible(bvh)


def test_mocapbank_fixture_is_what_it_claims():
    bvh = read_bvh(MOCAPBANK)
    assert bvh.channels[0] == ["Xposition", "Yposition", "Zposition", "Yrotation", "Xrotation", "Zrotation"]
    assert bvh.channel_layout() == ("YXZ", 3)
    zero = [bvh.joint_names[j] for j in range(1, bvh.num_joints) if not bvh.offsets[j].any()]
    assert zero == ["Spine", "LeftHandIndex", "RightHandIndex"]  # zero-length bones
    names = bvh.joint_names
    assert names[bvh.parents[names.index("LeftShoulder")]] == "Neck"  # another tree than Mixamo's
    assert bvh.num_frames == 100 and os.path.getsize(MOCAPBANK) < 300_000
    _check_plausible(bvh)


def _check_plausible(bvh: BVH) -> None:
    """A person in centimetres moving smoothly: 1.5 to 2 m tall, no joint faster than 6 m/s between frames."""
    x = bvh.positions(CM_TO_M).numpy()  # (T, J, 3) metres
    height = x[0, :, 1].max() - x[0, :, 1].min()
    assert 1.5 < height < 2.0, height
    speed = np.linalg.norm(np.diff(x, axis=0), axis=-1).max() * bvh.fps
    assert 0.5 < speed < 6.0, speed  # it moves, and smoothly
    assert np.isfinite(x).all()


@pytest.mark.skipif(not os.path.exists(CMU), reason=NO_ASSIMP)
def test_channel_layout_of_real_files_and_mixed_orders():
    assert read_bvh(CMU).channel_layout() == ("ZYX", 3)
    bvh = BVH(["a", "b"], [-1, 0], np.zeros((2, 3)), [["Xrotation", "Yrotation", "Zrotation"],
              ["Zrotation", "Xrotation", "Yrotation"]], [False, False], 0.1, np.zeros((1, 6)))  # fmt: skip
    assert bvh.rotation_orders() == ["XYZ", "ZXY"] and bvh.channel_layout() == ("ZXY", 3)


@pytest.mark.parametrize("path", [MIXAMO, MOCAPBANK])
def test_rigs_written_in_their_own_layout_read_back(tmp_path, path):
    """A rig's motion written with its own rotation order, channels and unit keeps names, tree, offsets, positions."""
    bvh = read_bvh(path)
    m = bvh.to_motion(scale=CM_TO_M)
    order, channels = bvh.channel_layout()
    write_motion_bvh(tmp_path / "out.bvh", m, rotation_order=order, channels_per_joint=channels, scale=100)
    back = read_bvh(tmp_path / "out.bvh")
    assert back.joint_names == bvh.joint_names and back.parents == bvh.parents
    assert np.allclose(back.offsets, bvh.offsets, rtol=0, atol=1e-9)
    assert back.channels == bvh.channels
    assert (back.positions(CM_TO_M) - bvh.positions(CM_TO_M)).abs().max() < 1e-6


def test_read_bvh_skeleton_is_silent_about_the_motion(tmp_path):
    from kinepose.data.formats.bvh import read_bvh_skeleton

    path = _write(tmp_path, _VALID.replace("Frames: 2", "Frames: 3"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sk = read_bvh_skeleton(path, 0.5)
    assert sk.joint_names == ("hips", "spine", "spine_end") and sk.offsets[1].tolist() == [0.0, 0.5, 0.0]
    with pytest.raises(FileFormatError, match="cannot read"):
        read_bvh_skeleton(tmp_path / "missing.bvh")


# ----------------------------------------------------------------------------------------------- malformed

# A valid file; each case replaces one line (1-based) and names the line the error must point at.
_VALID = """HIERARCHY
ROOT hips
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  JOINT spine
  {
    OFFSET 0 1 0
    CHANNELS 3 Zrotation Xrotation Yrotation
    End Site
    {
      OFFSET 0 1 0
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.1
0 1 2 3 4 5 6 7 8
0 1 2 3 4 5 6 7 8
"""


def _replace(line: int, new: str) -> str:
    lines = _VALID.splitlines()
    lines[line - 1] = new
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("text", "line", "match"),
    [
        ("", 1, "missing HIERARCHY"),
        (_replace(1, "HIERARCHI"), 1, "missing HIERARCHY"),
        ("\n" + _VALID.replace("HIERARCHY\n", ""), 2, "missing HIERARCHY"),
        (_replace(2, "JOINT hips"), 2, "missing ROOT"),
        (_VALID.split("MOTION")[0], 15, "missing MOTION"),
        (_replace(16, "MOTON"), 16, "missing MOTION"),
        (_replace(14, ""), 16, "unbalanced braces"),
        (_replace(15, "}}"), 15, "unbalanced braces"),
        (_replace(7, ""), 8, "expected '{'"),
        (_replace(8, "    OFFSET 0 x 0"), 8, "bad OFFSET"),
        (_replace(8, "    OFFSET 0 1"), 9, "bad OFFSET"),
        (_replace(8, "    OFFSET 0 nan 0"), 8, "bad OFFSET"),
        (_replace(8, ""), 14, "bad OFFSET"),
        (_replace(9, "    CHANNELS 3 Zrotation Xrotaton Yrotation"), 9, "unknown channel name 'Xrotaton'"),
        (_replace(9, "    CHANNELS 4 Zrotation Xrotation Yrotation"), 10, "unknown channel name 'End'"),
        (_replace(9, "    CHANNELS three Zrotation Xrotation Yrotation"), 9, "bad CHANNELS"),
        (_replace(6, "  JOINT hips"), 6, "duplicate joint name"),
        (_replace(17, "Frames: many"), 17, "Frames"),
        (_replace(18, "Frame Time: 0"), 18, "Frame Time"),
        (_replace(18, "Time: 0.1"), 18, "expected 'Frames: N'"),
        (_replace(20, "0 1 2 3 4 5 6 7"), 20, "8 values.*9 channels"),
        (_replace(19, "0 1 2 3 4 5 6 7 8 9"), 19, "10 values"),
        (_replace(20, "0 1 2 3 x 5 6 7 8"), 20, "non-numeric value 'x'"),
        (_replace(20, "0 1 2 3 NaN 5 6 7 8"), 20, "non-finite value 'NaN'"),
        (_replace(19, "0 1 2 inf 4 5 6 7 8"), 19, "non-finite"),
    ],
)
def test_malformed_files_name_the_line(tmp_path, text, line, match):
    p = _write(tmp_path, text)
    with pytest.raises(FileFormatError, match=match) as info:
        read_bvh(p)
    assert info.value.line == line
    assert str(info.value).startswith(f"{p}, line {line}: ")


def test_frame_count_mismatch_warns_and_uses_frames_present(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_bvh(_write(tmp_path, _VALID, "ok.bvh")).num_frames == 2
    p = _write(tmp_path, _replace(17, "Frames: 5"), "short.bvh")
    with pytest.warns(BVHWarning, match=r"short\.bvh.*5 frames.*2 complete"):
        assert read_bvh(p).num_frames == 2


# ----------------------------------------------------------------------------------------------- writer checks


@pytest.mark.parametrize("order", ["ZXZ", "zxy", "XY", "ABC", "xyz"])
def test_unknown_rotation_order_raises(tmp_path, order):
    sk = _skeleton()
    q, root = _random_motion(sk)
    with pytest.raises(KineposeError, match="rotation_order"):
        write_bvh(tmp_path / "o.bvh", sk, q, root, fps=30, rotation_order=order)
    assert not os.listdir(tmp_path)


def test_failed_write_leaves_nothing_behind(tmp_path):
    sk = _skeleton()
    q, root = _random_motion(sk)
    bad = q.clone()
    bad[3, 1, 2] = float("nan")
    target = tmp_path / "new.bvh"
    with pytest.raises(NonFiniteError, match="local_quat"):
        write_bvh(target, sk, bad, root, fps=30)
    assert not os.listdir(tmp_path)
    existing = tmp_path / "old.bvh"
    existing.write_text("keep me")
    for kwargs in (
        {"local_quat": bad},
        {"local_quat": q * 2},  # not unit
        {"local_quat": q[:, :-1]},  # joint count
        {"root_pos": root[:-1]},  # frame count
        {"root_pos": root * float("inf")},
        {"fps": 0.0},
        {"channels_per_joint": 4},
    ):
        args = {"local_quat": q, "root_pos": root, "fps": 30.0} | kwargs
        with pytest.raises(KineposeError):
            write_bvh(existing, sk, **args)
        assert existing.read_text() == "keep me"
    assert sorted(os.listdir(tmp_path)) == ["old.bvh"]
    write_bvh(existing, sk, q, root, fps=30)  # a good write replaces it
    assert read_bvh(existing).num_frames == q.shape[0]
    assert sorted(os.listdir(tmp_path)) == ["old.bvh"]


def test_unwritable_joint_name_raises(tmp_path):
    sk = Skeleton("s", ["root", "two words"], [-1, 0], np.zeros((2, 3)), ["ball", "end"])
    with pytest.raises(KineposeError, match="two words"):
        write_bvh(tmp_path / "n.bvh", sk, random_quat((1, 2)), torch.zeros(1, 3), fps=30)
    assert not os.listdir(tmp_path)
