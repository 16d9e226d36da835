"""Skeletons from URDF: the DeepMimic preset from the generic reader, a hand-computed case with a rotated joint origin,
and forward kinematics against pybullet's on a URDF with rpy origins, revolute, continuous, spherical and fixed
joints (merged links included)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from kinepose.errors import FileFormatError
from kinepose.geometry.rotations import quat_about_axis, quat_identity
from kinepose.kinematics.fk import forward_kinematics
from kinepose.skeleton import get_skeleton
from kinepose.skeleton.presets import load_skeleton
from kinepose.skeleton.presets.humanoid import URDF_SCALE, humanoid_urdf_path
from kinepose.skeleton.urdf import read_urdf, rpy_matrix, skeleton_from_urdf


def _link(name: str) -> str:
    # pybullet wants an inertia; its origin at the link frame keeps the base's inertial frame at the link frame
    return (f'<link name="{name}"><inertial><origin xyz="0 0 0" rpy="0 0 0"/><mass value="0.1"/>'
            f'<inertia ixx="1e-3" ixy="0" ixz="0" iyy="1e-3" iyz="0" izz="1e-3"/></inertial></link>')  # fmt: skip


def _joint(name, kind, parent, child, xyz, rpy="0 0 0", axis=None, limit=None) -> str:
    extra = f'<axis xyz="{axis}"/>' if axis else ""
    if limit:
        extra += f'<limit lower="{limit[0]}" upper="{limit[1]}" effort="1" velocity="1"/>'
    return (f'<joint name="{name}" type="{kind}"><parent link="{parent}"/><child link="{child}"/>'
            f'<origin xyz="{xyz}" rpy="{rpy}"/>{extra}</joint>')  # fmt: skip


def _urdf(links, joints, name="arm") -> str:
    return (
        f'<?xml version="1.0"?>\n<robot name="{name}">\n'
        + "\n".join(map(_link, links))
        + "\n"
        + "\n".join(joints)
        + "\n</robot>\n"
    )


#: base -> shoulder (revolute, rotated origin) -> elbow (revolute, unnormalized axis) -> wrist (continuous)
#: -> tool (fixed, rotated: merged) -> finger (revolute below the merged link) -> tip (fixed leaf);
#: wrist -> ball (spherical, rotated origin) -> ball_end (fixed leaf).
ARM = _urdf(
    ["base", "upper", "fore", "hand", "tool", "finger", "tip", "ball", "ball_end"],
    [
        _joint("shoulder", "revolute", "base", "upper", "0.1 0.2 0.3", "0.3 -0.5 1.1", "0 1 0", (-1.0, 2.0)),
        _joint("elbow", "revolute", "upper", "fore", "0.3 0 0.05", "0 0.7 0", "1 0 1", (-2.5, 0.5)),
        _joint("wrist", "continuous", "fore", "hand", "0.25 0.01 0", "1.2 0 0.4", "0 0 1"),
        _joint("tool", "fixed", "hand", "tool", "0.08 0 0.02", "0.2 0.3 0.1"),
        _joint("finger", "revolute", "tool", "finger", "0.02 0.03 0", "0 0 0.9", "0 0 1", (0.0, 1.5)),
        _joint("tip", "fixed", "finger", "tip", "0.04 0 0"),
        _joint("ball", "spherical", "hand", "ball", "0 -0.05 0.01", "-0.4 0.2 0.6"),
        _joint("ball_end", "fixed", "ball", "ball_end", "0 0 0.06"),
    ],
)


def test_deepmimic_preset_equals_the_generic_urdf_reader():
    preset = get_skeleton("humanoid")
    sk = skeleton_from_urdf(humanoid_urdf_path(), scale=URDF_SCALE, name="humanoid")
    for key in ("name", "joint_names", "parents", "kinds", "left_right", "lateral_axis"):
        assert getattr(sk, key) == getattr(preset, key), key
    assert np.array_equal(sk.offsets, preset.offsets)
    assert np.array_equal(sk.hinge_axes, preset.hinge_axes)
    assert np.array_equal(sk.limits, preset.limits, equal_nan=True)
    # through the resolver: metres as the file says (DeepMimic's units need URDF_SCALE), named after the file
    raw = load_skeleton(humanoid_urdf_path())
    assert raw.name == "humanoid" and np.array_equal(raw.offsets * URDF_SCALE, preset.offsets)


def test_rpy_matrix_is_urdf_fixed_axis_xyz():
    rpy = np.array([0.3, -0.5, 1.1])
    assert np.allclose(rpy_matrix(rpy), Rotation.from_euler("xyz", rpy).as_matrix(), atol=1e-15)  # extrinsic x, y, z


def test_hand_computed_rotated_origin(tmp_path):
    """base -> j1 at (1, 0, 0) rotated 90 degrees about z, revolute about its own z; -> j2 fixed at (1, 0, 0) in
    j1's frame. At rest j2 is at (1, 0, 0) + Rz(90)(1, 0, 0) = (1, 1, 0); j1 bent by q moves it to
    (1, 0, 0) + Rz(90 + q)(1, 0, 0) = (1 - sin q, cos q, 0)."""
    path = tmp_path / "two.urdf"
    path.write_text(_urdf(["base", "l1", "l2"], [
        _joint("j1", "revolute", "base", "l1", "1 0 0", f"0 0 {math.pi / 2}", "0 0 1", (-1, 1)),
        _joint("j2", "fixed", "l1", "l2", "1 0 0"),
    ]))  # fmt: skip
    sk = skeleton_from_urdf(path)
    assert sk.joint_names == ("base", "j1", "j2") and sk.parents == (-1, 0, 1) and sk.kinds == ("ball", "hinge", "end")
    assert np.allclose(sk.offsets, [[0, 0, 0], [1, 0, 0], [0, 1, 0]], atol=1e-15)  # j2's offset: Rz(90) @ (1, 0, 0)
    assert np.allclose(sk.hinge_axes[1], [0, 0, 1]) and sk.limits[1].tolist() == [-1.0, 1.0]
    q = 0.4
    quat = torch.stack([quat_identity((), dtype=torch.float64),
                        quat_about_axis(torch.tensor(sk.hinge_axes[1]), torch.tensor(q, dtype=torch.float64)),
                        quat_identity((), dtype=torch.float64)])  # fmt: skip
    x = forward_kinematics(sk, quat, torch.zeros(3, dtype=torch.float64)).positions
    assert np.allclose(x[2].numpy(), [1 - math.sin(q), math.cos(q), 0], atol=1e-15)


def test_structure_of_the_arm(tmp_path):
    path = tmp_path / "arm.urdf"
    path.write_text(ARM)
    u = read_urdf(path)
    sk = u.skeleton
    assert sk.name == "arm"  # the file's stem
    assert sk.joint_names == ("base", "shoulder", "elbow", "wrist", "tool", "finger", "tip", "ball", "ball_end")
    # tool is fixed: an end site, and finger hangs from wrist (tool's link is merged into the hand's body)
    assert sk.parents == (-1, 0, 1, 2, 3, 3, 5, 3, 7)
    assert sk.kinds == ("ball", "hinge", "hinge", "hinge", "end", "hinge", "end", "ball", "end")
    assert np.isnan(sk.limits[3]).all()  # continuous: no limits
    assert sk.limits[2].tolist() == [-2.5, 0.5]
    assert np.allclose(np.linalg.norm(sk.hinge_axes[[1, 2, 3, 5]], axis=-1), 1)
    W = u.rest_rotations
    assert np.allclose(W[1], rpy_matrix([0.3, -0.5, 1.1]))
    assert np.allclose(W[5], W[3] @ rpy_matrix([0.2, 0.3, 0.1]) @ rpy_matrix([0, 0, 0.9]))
    assert u.links[5] == "finger" and u.links[0] == "base"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fk_matches_pybullet(tmp_path, seed):
    pybullet = pytest.importorskip("pybullet")
    path = tmp_path / "arm.urdf"
    path.write_text(ARM)
    u = read_urdf(path)
    sk = u.skeleton
    rng = np.random.default_rng(seed)
    angles = {"shoulder": rng.uniform(-1, 2), "elbow": rng.uniform(-2.5, 0.5), "wrist": rng.uniform(-3, 3),
              "finger": rng.uniform(0, 1.5)}  # fmt: skip
    ball = Rotation.random(random_state=seed)  # in the ball joint's URDF frame

    client = pybullet.connect(pybullet.DIRECT)
    try:
        body = pybullet.loadURDF(str(path), useFixedBase=True, physicsClientId=client)
        index = {}
        for i in range(pybullet.getNumJoints(body, physicsClientId=client)):
            info = pybullet.getJointInfo(body, i, physicsClientId=client)
            index[info[1].decode()] = i
        for name, a in angles.items():
            pybullet.resetJointState(body, index[name], a, physicsClientId=client)
        pybullet.resetJointStateMultiDof(body, index["ball"], ball.as_quat().tolist(), physicsClientId=client)
        state = {name: pybullet.getLinkState(body, i, computeForwardKinematics=True, physicsClientId=client)
                 for name, i in index.items()}  # fmt: skip
        want = {name: np.array(s[4]) for name, s in state.items()}  # the URDF link frames' origins
    finally:
        pybullet.disconnect(client)

    quat = quat_identity((sk.num_joints,), dtype=torch.float64).clone()
    for name, a in angles.items():
        j = sk.index(name)
        quat[j] = quat_about_axis(torch.tensor(sk.hinge_axes[j]), torch.tensor(a, dtype=torch.float64))
    j = sk.index("ball")
    local = Rotation.from_matrix(u.rest_rotations[j] @ ball.as_matrix() @ u.rest_rotations[j].T).as_quat()  # W Q W^T
    quat[j] = torch.tensor([local[3], *local[:3]], dtype=torch.float64)  # x, y, z, w -> w, x, y, z
    x = forward_kinematics(sk, quat, torch.zeros(3, dtype=torch.float64)).positions.numpy()
    err = max(float(np.linalg.norm(x[sk.index(n)] - p)) for n, p in want.items())
    assert err < 1e-6, err  # measured 3e-8 m: pybullet keeps part of the URDF's transforms in float32
    moved = max(float(np.linalg.norm(x[sk.index(n)] - np.cumsum(sk.offsets, 0)[0])) for n in want)
    assert moved > 0.3  # not a vacuous comparison at the origin


def test_deepmimic_fk_matches_pybullet_with_spherical_joints():
    """The preset skeleton's FK equals pybullet's link frames of humanoid.urdf (globalScaling 0.25) in a random pose."""
    pybullet = pytest.importorskip("pybullet")
    sk = get_skeleton("humanoid")
    rng = np.random.default_rng(3)
    client = pybullet.connect(pybullet.DIRECT)
    try:
        body = pybullet.loadURDF(humanoid_urdf_path(), globalScaling=URDF_SCALE, useFixedBase=True,
                                 physicsClientId=client)  # fmt: skip
        quat = quat_identity((sk.num_joints,), dtype=torch.float64).clone()
        links = {}
        for i in range(pybullet.getNumJoints(body, physicsClientId=client)):
            info = pybullet.getJointInfo(body, i, physicsClientId=client)
            name, jtype = info[1].decode(), info[2]
            j = sk.index(name)
            if jtype == pybullet.JOINT_SPHERICAL:
                q = Rotation.random(random_state=int(rng.integers(1 << 30))).as_quat()
                pybullet.resetJointStateMultiDof(body, i, q.tolist(), physicsClientId=client)
                quat[j] = torch.tensor([q[3], *q[:3]], dtype=torch.float64)
            elif jtype == pybullet.JOINT_REVOLUTE:
                a = float(rng.uniform(*sk.limits[j]))
                pybullet.resetJointState(body, i, a, physicsClientId=client)
                quat[j] = quat_about_axis(torch.tensor(sk.hinge_axes[j]), torch.tensor(a, dtype=torch.float64))
            links[name] = i
        want = {n: np.array(pybullet.getLinkState(body, i, computeForwardKinematics=True, physicsClientId=client)[4])
                for n, i in links.items()}  # fmt: skip
        base = np.array(pybullet.getBasePositionAndOrientation(body, physicsClientId=client)[0])
    finally:
        pybullet.disconnect(client)
    x = forward_kinematics(sk, quat, torch.zeros(3, dtype=torch.float64)).positions.numpy()
    # pybullet's base position is the base link's inertial frame; the link frames relative to the root agree
    root_link = want.get("root", base)
    err = max(float(np.linalg.norm((x[sk.index(n)] - x[0]) - (p - root_link))) for n, p in want.items())
    assert err < 1e-6, err


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (_urdf(["a", "b"], [_joint("slide", "prismatic", "a", "b", "0 0 1")]),
         "joint 'slide': unsupported type 'prismatic' .kinepose skeletons have rotational joints only"),
        (_urdf(["a", "b", "c"], [_joint("j", "revolute", "a", "b", "0 0 1", axis="1 0 0")]),
         r"expected one root link .* found \['a', 'c'\]"),
        (_urdf(["a"], [_joint("j", "revolute", "a", "zz", "0 0 1", axis="1 0 0")]),
         "joint 'j': child link 'zz' is not a <link> of the robot"),
        (_urdf(["a", "b"], [_joint("j", "revolute", "a", "b", "0 x 1", axis="1 0 0")]),
         "joint 'j': origin xyz: expected 3 numbers, got '0 x 1'"),
        (_urdf(["a", "b"], [_joint("j", "revolute", "a", "b", "0 0 1", axis="0 0 0")]), "joint 'j': axis xyz is zero"),
        (_urdf(["a", "b", "c"], [_joint("j", "revolute", "a", "b", "0 0 1"),
                                 _joint("k", "floating", "b", "c", "0 0 1")]),
         "joint 'k': a floating joint is supported only as the root link's single child"),
        (_urdf(["a", "b", "c"], [_joint("j", "revolute", "a", "c", "0 0 1"),
                                 _joint("k", "revolute", "b", "c", "0 0 1")]),
         "link 'c' is already the child of joint 'j'"),
        ("<robot name='x'><link name='a'/>", "malformed URDF XML"),
        ("<sdf/>", "expected a <robot> element"),
    ],
)  # fmt: skip
def test_errors_name_the_file_and_the_joint(tmp_path, text, match):
    path = tmp_path / "bad.urdf"
    path.write_text(text)
    with pytest.raises(FileFormatError, match=match) as info:
        skeleton_from_urdf(path)
    assert str(info.value).startswith(str(path))


def test_trailing_nul_and_pybullet_limit_conventions(tmp_path):
    path = tmp_path / "x.urdf"
    text = _urdf(["a", "b", "c"], [_joint("j", "revolute", "a", "b", "0 0 1", axis="1 0 0", limit=(1, -1)),
                                   _joint("k", "fixed", "a", "c", "0 0 0")])  # fmt: skip
    path.write_bytes(text.encode() + b"\x00")
    sk = skeleton_from_urdf(path, name="x2")
    assert sk.name == "x2" and sk.joint_names == ("a", "j", "k")  # two root children: the root is the link
    assert np.isnan(sk.limits[1]).all()  # lower > upper: no limits (pybullet's reading)
    anchored = tmp_path / "anchored.urdf"
    anchored.write_text(_urdf(["world", "pelvis", "leg"], [
        _joint("pelvis", "floating", "world", "pelvis", "0 1 0", "0 0 1.5707963267948966"),
        _joint("hip", "spherical", "pelvis", "leg", "1 0 0"),
    ]))  # fmt: skip
    sk = skeleton_from_urdf(anchored)
    assert sk.joint_names == ("pelvis", "hip")  # the world link is only an anchor
    assert np.allclose(sk.offsets, [[0, 1, 0], [0, 1, 0]], atol=1e-15)  # Rz(90) @ (1, 0, 0) = (0, 1, 0)
