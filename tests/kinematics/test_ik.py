import numpy as np
import pytest
import torch

from kinepose.data.sources.deepmimic import DEFAULT_EVAL_CLIPS, load_deepmimic
from kinepose.errors import NonFiniteError, ShapeError
from kinepose.geometry import quat_about_axis, quat_identity, random_quat
from kinepose.kinematics import analytic_ik, forward_kinematics, ik_plan, observable_mask, project_to_joint_kinds
from kinepose.metrics import geodesic_error
from kinepose.skeleton import get_skeleton, list_skeletons


def test_humanoid_plan_and_observability():
    sk = get_skeleton("humanoid")
    plan = dict(zip(sk.joint_names, ik_plan(sk), strict=True))
    assert plan["root"] == plan["chest"] == "kabsch"
    assert plan["right_hip"] == plan["left_shoulder"] == "two_bone"
    assert plan["right_knee"] == "hinge"
    assert plan["neck"] == plan["right_ankle"] == "rest"  # no child point: unobservable
    assert plan["right_wrist"] == "end"
    unobs = [n for n, o, k in zip(sk.joint_names, observable_mask(sk), sk.kinds, strict=True) if not o and k != "end"]
    assert unobs == ["neck", "right_ankle", "left_ankle"]


@pytest.mark.parametrize("clip", DEFAULT_EVAL_CLIPS)
def test_fk_ik_round_trip_on_eval_clips(clip):
    """Issue requirement: FK(IK(x)) reproduces clean x (MPJPE < 0.01 mm); observable joints exact."""
    m = load_deepmimic(clip)
    x = m.positions()
    r = analytic_ik(m.skeleton, x, respect_limits=False)  # dance_b's capture hyperextends a knee by 6 deg
    y = forward_kinematics(m.skeleton, r.local_quat, r.root_pos).positions
    err = (y - x).norm(dim=-1)
    assert float(err.mean()) < 1e-5  # metres: 0.01 mm
    assert float(err.max()) < 1e-9
    geo = geodesic_error(r.local_quat, m.local_quat, degrees=True)
    obs = r.observable.numpy()
    assert float(geo[:, obs].max()) < 1e-4
    # unobservable joints are set to the rest pose
    torch.testing.assert_close(r.local_quat[:, ~obs], quat_identity((m.num_frames, int((~obs).sum())), dtype=x.dtype))


def _random_pose(sk, n, seed):
    """Random rotations that respect joint kinds; hinges within their limits."""
    g = torch.Generator().manual_seed(seed)
    q = project_to_joint_kinds(sk, random_quat((n, sk.num_joints), generator=g, dtype=torch.float64))
    axes = sk.hinge_axes_tensor(torch.float64)
    for j, k in enumerate(sk.kinds):
        if k == "hinge":
            lo, hi = sk.limits[j]
            lo, hi = (lo, hi) if np.isfinite(lo) else (-np.pi, np.pi)
            ang = lo + (hi - lo) * (0.15 + 0.7 * torch.rand(n, generator=g, dtype=torch.float64))
            q[:, j] = quat_about_axis(axes[j], ang)
    return q


@pytest.mark.parametrize("name", list_skeletons())
def test_fk_ik_round_trip_synthetic(name):
    sk = get_skeleton(name)
    q = _random_pose(sk, 64, seed=5)
    root = torch.randn(64, 3, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    x = forward_kinematics(sk, q, root).positions
    r = analytic_ik(sk, x)
    y = forward_kinematics(sk, r.local_quat, r.root_pos).positions
    assert float((y - x).norm(dim=-1).max()) < 1e-9


@pytest.mark.parametrize("batch", [(), (4,), (2, 3)])
def test_ik_batch_shapes(batch):
    sk = get_skeleton("hand21")
    q = _random_pose(sk, int(np.prod(batch)) if batch else 1, seed=7).reshape(*batch, 21, 4)
    x = forward_kinematics(sk, q).positions
    r = analytic_ik(sk, x)
    assert r.local_quat.shape == (*batch, 21, 4)
    assert r.root_pos.shape == (*batch, 3)
    assert r.twist_ambiguous.shape == (*batch, 21)
    flat = analytic_ik(sk, x.reshape(-1, 21, 3))
    torch.testing.assert_close(r.local_quat.reshape(-1, 21, 4), flat.local_quat)


def test_straight_limb_is_flagged_and_twist_left_at_rest():
    sk = get_skeleton("humanoid")
    q = quat_identity((1, 15), dtype=torch.float64)  # rest pose: all limbs straight
    x = forward_kinematics(sk, q).positions
    r = analytic_ik(sk, x)
    flagged = {sk.joint_names[j] for j in torch.nonzero(r.twist_ambiguous[0]).flatten().tolist()}
    assert flagged == {"right_hip", "left_hip", "right_shoulder", "left_shoulder"}
    torch.testing.assert_close(r.local_quat, q)


def test_ik_bad_inputs():
    sk = get_skeleton("humanoid")
    with pytest.raises(ShapeError, match="joints: has 17 joints, expected 15 of skeleton 'humanoid'"):
        analytic_ik(sk, torch.zeros(10, 17, 3))
    with pytest.raises(ShapeError, match=r"expected shape \(\.\.\., J, 3\)"):
        analytic_ik(sk, torch.zeros(10, 15, 2))
    x = torch.zeros(2, 15, 3)
    x[1, 4, 2] = float("inf")
    with pytest.raises(NonFiniteError, match=r"joints: 1 infinite value\(s\), first at index \(1, 4, 2\)"):
        analytic_ik(sk, x)
    x[1, 4, 2] = float("nan")  # NaN is a missing joint, not an error; all-zero joints give the rest pose
    r = analytic_ik(sk, x)
    torch.testing.assert_close(r.local_quat[0], quat_identity((15,)))
    assert torch.isfinite(r.local_quat).all() and not bool(r.valid[1, 4])


def test_noise_degrades_gracefully():
    m = load_deepmimic("walk")
    x = m.positions()
    noisy = x + 0.01 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0), dtype=x.dtype)
    r = analytic_ik(m.skeleton, noisy)
    assert torch.isfinite(r.local_quat).all()
    geo = geodesic_error(r.local_quat, m.local_quat, degrees=True)[:, r.observable]
    assert 1.0 < float(geo.mean()) < 30.0


def test_hinge_limits_clamp_small_violations_of_clean_capture():
    """dance_b's own capture bends both knees past DeepMimic's limit (0 deg) by up to 6 deg in 4 frames each.
    With limits respected those frames stop at (or within 6 deg of) the limit, the hips stay as captured (no
    180 deg flip to the mirror solution) and every other frame is exact; without limits the capture comes back
    exactly."""
    from kinepose.kinematics import hinge_angles

    m = load_deepmimic("dance_b")
    sk, x = m.skeleton, m.positions()
    r = analytic_ik(sk, x)
    true, got = hinge_angles(sk, m.local_quat), hinge_angles(sk, r.local_quat)
    geo = geodesic_error(r.local_quat, m.local_quat, degrees=True)
    for name in ("right_knee", "left_knee"):
        j = sk.index(name)
        beyond = true[:, j] > sk.limits[j, 1]
        assert int(beyond.sum()) == 4
        assert bool((got[beyond, j] <= 0).all()) and float(got[beyond, j].min()) > -0.1  # at or near the limit
        torch.testing.assert_close(got[~beyond, j], true[~beyond, j])
        assert float(geo[beyond, sk.parents[j]].max()) < 10.0  # the hip: near the capture, not flipped
    fk = forward_kinematics(sk, r.local_quat, r.root_pos).positions
    err = (fk - x).norm(dim=-1).amax(-1)  # (T,)
    assert int((err > 1e-9).sum()) <= 8 and float(err.max()) < 0.05
    free = analytic_ik(sk, x, respect_limits=False)
    torch.testing.assert_close(hinge_angles(sk, free.local_quat), true)


def test_a_solution_far_outside_the_limits_loses_to_one_inside():
    """Random hips: when the solution nearer to rest bends the knee more than 10 deg past its limit, the
    mirror solution inside the limits wins and FK stays exact (tests/kinematics: synthetic round trips)."""
    from kinepose.kinematics import hinge_angles, random_pose

    sk = get_skeleton("humanoid")
    q = random_pose(sk, (200,), torch.Generator().manual_seed(9))
    x = forward_kinematics(sk, q).positions
    r = analytic_ik(sk, x)
    torch.testing.assert_close(hinge_angles(sk, r.local_quat), hinge_angles(sk, q))
    loose = analytic_ik(sk, x, respect_limits=False)  # control: near-rest preference alone picks some wrongly
    assert float((hinge_angles(sk, loose.local_quat) - hinge_angles(sk, q)).abs().max()) > 0.1


@pytest.mark.parametrize("noise_mm", [10.0, 20.0])
def test_no_hinge_outside_its_limits_under_noise(noise_mm):
    """Issue 9: at 20 mm noise no knee or elbow of walk leaves its limits (it did in 3 of 156 frames at 10 mm)."""
    from kinepose.kinematics import hinge_angles

    m = load_deepmimic("walk")
    sk = m.skeleton
    g = torch.Generator().manual_seed(0)
    x = m.positions() + noise_mm / 1000 * torch.randn(m.positions().shape, generator=g, dtype=torch.float64)
    ang = hinge_angles(sk, analytic_ik(sk, x).local_quat)
    loose = hinge_angles(sk, analytic_ik(sk, x, respect_limits=False).local_quat)
    hinges = [j for j, k in enumerate(sk.kinds) if k == "hinge"]
    lo, hi = torch.tensor(sk.limits[hinges, 0]), torch.tensor(sk.limits[hinges, 1])
    assert bool(((ang[:, hinges] >= lo - 1e-9) & (ang[:, hinges] <= hi + 1e-9)).all())
    outside = (loose[:, hinges] < lo) | (loose[:, hinges] > hi)
    assert int(outside.sum()) > 0  # the control: without limits noise does push some outside
