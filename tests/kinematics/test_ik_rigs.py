"""Analytic IK on real rigs: zero-length bones, local vs global determinacy, missing joints, given twists,
float32, and the batched kernel against a per-joint reference written here with scipy."""

import os

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from kinepose.data.formats.bvh import CMU_TO_M, read_bvh
from kinepose.data.sources.deepmimic import load_deepmimic
from kinepose.errors import KineposeError, ShapeError
from kinepose.kinematics import (
    analytic_ik,
    determined_mask,
    forward_kinematics,
    ik_plan,
    moving_zero_length_joints,
    random_pose,
    zero_length_joints,
)
from kinepose.metrics import geodesic_error
from kinepose.skeleton import Skeleton, get_skeleton

BVH_DIR = "/usr/share/assimp/models/BVH"
needs_cmu = pytest.mark.skipif(not os.path.exists(f"{BVH_DIR}/01_03.bvh"), reason="assimp-testmodels not installed")


@pytest.fixture(scope="module")
def cmu():
    return read_bvh(f"{BVH_DIR}/01_03.bvh").to_motion(CMU_TO_M)


@needs_cmu
def test_cmu_root_through_zero_length_hip_joints_is_exact(cmu):
    """Issue 9: CMU's Hips has only zero-length children (LHipJoint, RHipJoint, LowerBack); the old solver
    left it at rest (94.9 deg on 01_03) and gave LHipJoint 55 deg. Now the root is exact, the hip joints
    (never moved by the rig) come out as identity, and FK still reproduces every joint."""
    sk, x = cmu.skeleton, cmu.positions()
    assert {"LHipJoint", "RHipJoint", "LowerBack", "Neck", "LeftShoulder", "RightShoulder"} <= {
        sk.joint_names[j] for j in zero_length_joints(sk)
    }
    moving = moving_zero_length_joints(sk, x)
    assert "LowerBack" in moving and "LHipJoint" not in moving and "RHipJoint" not in moving
    r = analytic_ik(sk, x, moving=moving, respect_limits=False)
    geo = geodesic_error(r.local_quat, cmu.local_quat, degrees=True)
    for name in ("Hips", "LHipJoint", "RHipJoint"):
        assert float(geo[:, sk.index(name)].max()) < 1e-6, name
    # the captured hip joints really are identity: the check above is not vacuous for them
    assert float(geo[:, sk.index("Hips")].min()) == pytest.approx(0.0, abs=1e-6)
    fk = forward_kinematics(sk, r.local_quat, r.root_pos).positions
    assert float((fk - x).norm(dim=-1).max()) < 1e-9
    # control: with every zero-length joint rigid, LowerBack's bend leaks into the root
    rigid = analytic_ik(sk, x, respect_limits=False)
    assert float(geodesic_error(rigid.local_quat, cmu.local_quat, degrees=True)[:, 0].mean()) > 2.0
    assert ik_plan(sk, moving)[0] == "kabsch"


@needs_cmu
def test_cmu_determined_joints_are_exact(cmu):
    sk, x = cmu.skeleton, cmu.positions()
    moving = moving_zero_length_joints(sk, x)
    r = analytic_ik(sk, x, moving=moving, respect_limits=False)
    g_true = forward_kinematics(sk, cmu.local_quat, cmu.root_pos).global_rotmat
    glob = np.flatnonzero(r.determined_global.numpy())
    det = np.flatnonzero(r.determined.numpy())
    assert 0 in det and set(det) <= set(glob)
    err = Rotation.from_matrix(r.global_rotmat[:, glob].reshape(-1, 3, 3).numpy()).inv() * Rotation.from_matrix(
        g_true[:, glob].reshape(-1, 3, 3).numpy()
    )
    assert float(np.degrees(err.magnitude()).max()) < 1e-6
    geo = geodesic_error(r.local_quat, cmu.local_quat, degrees=True)
    assert float(geo[:, det].max()) < 1e-6
    np.testing.assert_array_equal(determined_mask(sk, local=False, moving=moving), r.determined_global.numpy())


def test_global_but_not_local_determinacy():
    """A hand with two finger points has a determined global rotation; its local one also needs the
    forearm's twist, which one point (the hand) cannot give (the issue's Mixamo LeftHand, 11.6 deg)."""
    names = ["root", "spine", "arm", "hand", "f1", "f2", "head"]
    parents = [-1, 0, 0, 2, 3, 3, 1]
    offsets = np.array([[0, 0, 0], [0, 0.3, 0], [0.2, 0.2, 0], [0.3, 0, 0], [0.1, 0.02, 0], [0.08, 0, 0.05],
                        [0, 0.2, 0]], float)  # fmt: skip
    sk = Skeleton("arm", names, parents, offsets, ["ball"] * 4 + ["end"] * 3)
    q = random_pose(sk, (30,), torch.Generator().manual_seed(4))
    x = forward_kinematics(sk, q, torch.zeros(30, 3, dtype=torch.float64)).positions
    r = analytic_ik(sk, x)
    hand = 3
    assert ik_plan(sk)[hand] == "kabsch" and ik_plan(sk)[2] == "swing"
    assert bool(r.determined_global[hand]) and not bool(r.determined[hand])
    g_true = forward_kinematics(sk, q).global_rotmat
    torch.testing.assert_close(r.global_rotmat[:, hand], g_true[:, hand], atol=1e-9, rtol=0)
    assert float(geodesic_error(r.local_quat[:, hand], q[:, hand], degrees=True).mean()) > 5.0
    assert bool(r.determined[0]) and not bool(r.determined[2])


def test_zero_length_split_on_a_hand_built_rig():
    """A zero-length joint Z between a pelvis P and two legs that rotates on its own: with ``moving=['Z']``
    P is fitted to its own points and Z takes the rest; FK is exact either way."""
    names = ["P", "Z", "a", "b", "s", "ea", "eb", "es"]
    parents = [-1, 0, 1, 1, 0, 2, 3, 4]
    offsets = [[0, 0, 0], [0, 0, 0], [0.1, -0.1, 0], [-0.1, -0.1, 0], [0, 0.2, 0.05], [0, -0.4, 0], [0, -0.4, 0],
               [0, 0.2, 0]]  # fmt: skip
    kinds = ["ball", "ball", "ball", "ball", "ball", "end", "end", "end"]
    sk = Skeleton("zl", names, parents, np.array(offsets, float), kinds)
    g = torch.Generator().manual_seed(3)
    q = random_pose(sk, (50,), g)
    x = forward_kinematics(sk, q, torch.zeros(50, 3, dtype=torch.float64)).positions
    assert moving_zero_length_joints(sk, x) == ["Z"]
    r = analytic_ik(sk, x, moving=["Z"])
    fk = forward_kinematics(sk, r.local_quat, r.root_pos).positions
    assert float((fk - x).norm(dim=-1).max()) < 1e-9
    # P's own child s is matched exactly and, with Z taken as rigid, a and b set the twist about it
    # ("anchored"); with Z moving nothing but s is left for P: a swing
    assert ik_plan(sk)[0] == "anchored"
    assert ik_plan(sk, ["Z"])[0] == "swing"
    r = analytic_ik(sk, x)  # FK exact whatever the split: Z takes what P leaves
    fk = forward_kinematics(sk, r.local_quat, r.root_pos).positions
    assert float((fk - x).norm(dim=-1).max()) < 1e-9
    with pytest.raises(KineposeError, match=r"\['a'\] are not zero-length joints"):
        analytic_ik(sk, x, moving=["a"])
    # a clip where Z never moves: detected as rigid, and P comes out exact
    q[:, 1] = torch.tensor([1.0, 0, 0, 0], dtype=q.dtype)
    x = forward_kinematics(sk, q, torch.zeros(50, 3, dtype=torch.float64)).positions
    assert moving_zero_length_joints(sk, x) == []
    r = analytic_ik(sk, x)
    assert float(geodesic_error(r.local_quat[:, :2], q[:, :2], degrees=True).max()) < 1e-6


def _reference_swing_ik(sk: Skeleton, x: np.ndarray) -> np.ndarray:
    """Per-frame, per-joint reference with scipy: Kabsch by Rotation.align_vectors, swing by the shortest
    arc, root first (humanoid only needs those plus hinges/two-bone; the reference covers kabsch joints)."""
    out = []
    for j in range(sk.num_joints):
        kids = [c for c in sk.children[j] if np.linalg.norm(sk.offsets[c]) > 1e-9]
        if len(kids) >= 2 and sk.parents[j] < 0:
            d = x[kids] - x[j]
            rot, _ = Rotation.align_vectors(d, sk.offsets[kids])
            out.append(rot.as_matrix())
    return np.array(out)


def test_kabsch_root_matches_scipy_align_vectors_under_noise():
    m = load_deepmimic("walk")
    sk = m.skeleton
    g = torch.Generator().manual_seed(1)
    x = m.positions() + 0.02 * torch.randn(m.positions().shape, generator=g, dtype=torch.float64)
    r = analytic_ik(sk, x)
    for n in range(0, m.num_frames, 17):
        ref = _reference_swing_ik(sk, x[n].numpy())[0]
        np.testing.assert_allclose(r.global_rotmat[n, 0].numpy(), ref, atol=1e-9)


def test_float32_and_batched_match_float64_single_frames():
    m = load_deepmimic("run")
    sk, x = m.skeleton, m.positions()
    r64 = analytic_ik(sk, x)
    r32 = analytic_ik(sk, x.float())
    assert r32.local_quat.dtype == torch.float32
    assert float(geodesic_error(r32.local_quat.double(), r64.local_quat, degrees=True).max()) < 0.05
    one = torch.stack([analytic_ik(sk, x[n]).local_quat for n in range(0, m.num_frames, 9)])
    torch.testing.assert_close(one, r64.local_quat[::9], atol=1e-12, rtol=0)  # serial = parallel kernel


def test_missing_joints_are_used_not_refused():
    """A NaN joint loses only what it determines: FK of the rest stays exact on clean walk frames where the
    hidden joint is a wrist (an end site); hiding a knee makes the hip and knee undetermined there."""
    m = load_deepmimic("walk")
    sk, x = m.skeleton, m.positions().clone()
    wrist, knee, hip = sk.index("right_wrist"), sk.index("right_knee"), sk.index("right_hip")
    x[5, wrist] = float("nan")
    x[7, knee] = float("nan")
    r = analytic_ik(sk, x)
    assert torch.isfinite(r.local_quat).all() and torch.isfinite(r.root_pos).all()
    fk = forward_kinematics(sk, r.local_quat, r.root_pos).positions
    seen = ~torch.isnan(x).any(-1)
    err = (fk - m.positions()).norm(dim=-1)
    assert float(err[5][seen[5]].max()) < 1e-9
    assert not bool(r.valid[5, sk.index("right_elbow")]) and bool(r.valid[5, hip])
    assert not bool(r.valid[7, hip]) and not bool(r.valid[7, knee])
    assert bool(r.valid[6, hip]) and bool(r.valid[8, knee])
    # a missing root is placed by a rigid fit of its points: exact on clean data
    y = m.positions().clone()
    y[3, 0] = float("nan")
    r = analytic_ik(sk, y)
    torch.testing.assert_close(r.root_pos[3], m.positions()[3, 0], atol=1e-9, rtol=0)
    with pytest.raises(KineposeError, match="no frame has a joint with a position"):
        analytic_ik(sk, torch.full((1, sk.num_joints, 3), float("nan")))
    # the root missing in every frame: placed by a rigid fit of chest and hips, its rotation solved from
    # them, so FK of the result reproduces every joint that is there (the reviewer saw 16.5 mm before)
    z = m.positions().clone()
    z[:, 0] = float("nan")
    r = analytic_ik(sk, z)
    fk = forward_kinematics(sk, r.local_quat, r.root_pos).positions
    assert float((fk - m.positions()).norm(dim=-1).max()) < 1e-9 and not bool(r.valid[:, 0].any())
    # a frame with no joint at all (a detector dropout) holds the nearest frame's root, in the rest pose
    z = m.positions().clone()
    z[4] = float("nan")
    r = analytic_ik(sk, z)
    assert torch.isfinite(r.local_quat).all() and not bool(r.valid[4].any())
    torch.testing.assert_close(r.root_pos[4], m.positions()[3, 0], atol=1e-9, rtol=0)


def test_given_twist_and_free_rotations_keep_positions():
    """``twist`` turns swing joints about their bone and ``free`` sets joints no point determines; FK of the
    result still reproduces the input exactly, and the true twist gives back the true rotation."""
    m = (
        read_bvh(f"{BVH_DIR}/01_01.bvh").to_motion(CMU_TO_M).slice(0, 40)
        if os.path.exists(f"{BVH_DIR}/01_01.bvh")
        else None
    )
    if m is None:
        pytest.skip("assimp-testmodels not installed")
    sk, x = m.skeleton, m.positions()
    moving = moving_zero_length_joints(sk, x)
    plan = ik_plan(sk, moving)
    g = torch.Generator().manual_seed(0)
    tw = torch.randn(x.shape[:-1], generator=g, dtype=torch.float64)
    fr = torch.randn((*x.shape[:-1], 4), generator=g, dtype=torch.float64)
    r = analytic_ik(sk, x, twist=tw, free=fr, moving=moving, respect_limits=False)
    fk = forward_kinematics(sk, r.local_quat, r.root_pos).positions
    assert float((fk - x).norm(dim=-1).max()) < 1e-9
    base = analytic_ik(sk, x, moving=moving, respect_limits=False)
    swing = [j for j, s in enumerate(plan) if s == "swing"]
    assert float(geodesic_error(r.local_quat[:, swing], base.local_quat[:, swing]).min()) > 0  # it did turn
    rest = [j for j, s in enumerate(plan) if s == "rest"]
    if rest:
        want = fr[:, rest] / fr[:, rest].norm(dim=-1, keepdim=True)
        assert float(geodesic_error(r.local_quat[:, rest], want, degrees=True).max()) < 1e-6
    with pytest.raises(ShapeError, match="twist: expected shape"):
        analytic_ik(sk, x, twist=tw[:, :3])


def test_hand_and_every_preset_round_trip_in_float64():
    for name in ("humanoid", "hand21", "h36m17", "head"):
        sk = get_skeleton(name)
        q = random_pose(sk, (40,), torch.Generator().manual_seed(2))
        x = forward_kinematics(sk, q, torch.zeros(40, 3, dtype=torch.float64)).positions
        r = analytic_ik(sk, x)
        fk = forward_kinematics(sk, r.local_quat, r.root_pos).positions
        assert float((fk - x).norm(dim=-1).max()) < 1e-9, name
        det = r.determined.numpy()
        assert float(geodesic_error(r.local_quat[:, det], q[:, det], degrees=True).max()) < 1e-6, name
