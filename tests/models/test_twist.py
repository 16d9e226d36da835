"""The ``twist`` model: output shapes, FK of its output equal to its input (float64, 1e-9 m) whatever its weights,
its training targets (analytic IK given them reproduces the file's own rotations), invariance to a rigid motion
of the input, the straight-through gradient, a few training steps on a CMU slice, save/load and errors.

The CMU parts skip when Debian's ``assimp-testmodels`` is not installed; the humanoid preset always runs.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from kinepose.errors import KineposeError
from kinepose.geometry import quat_multiply, random_quat
from kinepose.kinematics import forward_kinematics, random_pose
from kinepose.kinematics.ik import analytic_ik, ik_plan, moving_zero_length_joints
from kinepose.metrics.rotations import geodesic_error
from kinepose.models import create_model, load_model, save_model
from kinepose.models.ik.twist import TwistIK, twist_targets
from kinepose.skeleton import get_skeleton
from kinepose.skeleton.core import Skeleton

CMU = "/usr/share/assimp/models/BVH/01_01.bvh"
needs_cmu = pytest.mark.skipif(not os.path.exists(CMU), reason="CMU 01_01.bvh (assimp-testmodels) not installed")


@pytest.fixture(scope="module")
def cmu():
    if not os.path.exists(CMU):
        pytest.skip("CMU 01_01.bvh not installed")
    from kinepose.data.formats.bvh import CMU_TO_M
    from kinepose.data.sources.bvh import load_bvh_motion

    m = load_bvh_motion(CMU, CMU_TO_M).slice(0, 600)
    moving = moving_zero_length_joints(m.skeleton, m.positions())
    return m, moving


def _perturb(model: torch.nn.Module, scale: float = 0.5) -> None:
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))


def _fk_error(model: TwistIK, joints: torch.Tensor) -> float:
    with torch.no_grad():
        out = model(joints[:, None])
    fk = forward_kinematics(model.skeleton, out.local_quat, out.root_pos).positions
    return float((fk - joints).norm(dim=-1).max())


def test_humanoid_shapes_and_exact_fk():
    sk = get_skeleton("humanoid")
    model = create_model("twist", sk, hidden=16).double().eval()
    _perturb(model)  # whatever the networks say, the geometry reproduces the input
    g = torch.Generator().manual_seed(1)
    x = forward_kinematics(sk, random_pose(sk, (6,), generator=g), torch.randn(6, 3, generator=g)).positions
    with torch.no_grad():
        out = model(x[:, None])
    assert out.local_quat.shape == (6, sk.num_joints, 4) and out.root_pos.shape == (6, 3)
    assert out.aux["twist"].shape == (6, sk.num_joints) and out.aux["free"].shape == (6, sk.num_joints, 4)
    assert [sk.joint_names[j] for j in model.rest_idx] == ["neck", "right_ankle", "left_ankle"]
    assert _fk_error(model, x) < 1e-9
    # the rest joints are what the network said; they differ from analytic IK's identity
    assert float(geodesic_error(out.local_quat[:, model.rest_idx], out.aux["free"][:, model.rest_idx]).max()) < 1e-7
    plain = analytic_ik(sk, x).local_quat
    assert float(geodesic_error(out.local_quat[:, model.rest_idx], plain[:, model.rest_idx]).min()) > 1e-3


def test_cmu_exact_fk_float64_on_ball_and_hinge_skeletons(cmu):
    from kinepose.data.sources.bvh import fit_hinges

    m, moving = cmu
    x = m.positions()[::20]  # (30, 38, 3) float64
    # fitted hinges: the file's 1-DOF joints leave their least-squares axis by the rounding of its angles, and
    # analytic IK's two_bone solver then reproduces the input to about 1e-7 m (0.0001 mm), not to round-off
    for sk, tol in ((m.skeleton, 1e-9), (fit_hinges([m])[0], 1e-6)):
        model = create_model("twist", sk, hidden=16, passes=2, moving=moving).double().eval()
        _perturb(model)
        with torch.no_grad():
            assert _fk_error(model, x) < tol
            out = model(x[:, None])
        # the twists the model handed to analytic IK are really in its output: swing joints differ from twist 0
        zero = analytic_ik(sk, x, moving=moving, respect_limits=False).local_quat
        sw = model.swing_idx
        assert float(geodesic_error(out.local_quat[:, sw], zero[:, sw]).mean()) > 1e-3


def test_twist_targets_reproduce_the_true_rotations(cmu):
    """The training targets are right: analytic IK given them (and the rest joints' true rotations) returns the
    file's own local rotations (independent reference: the BVH channels)."""
    m, moving = cmu
    sk = m.skeleton
    tw = twist_targets(sk, m.local_quat, moving)
    r = analytic_ik(sk, m.positions(), twist=tw, free=m.local_quat, moving=moving)
    rot = list(sk.rotated_joints)
    assert float(geodesic_error(r.local_quat[:, rot], m.local_quat[:, rot]).max()) < 1e-9
    plan = ik_plan(sk, moving)
    assert all(float(tw[:, j].abs().max()) == 0 for j, s in enumerate(plan) if s != "swing")
    # and without them analytic IK is several degrees off (the twist is what positions cannot tell)
    r0 = analytic_ik(sk, m.positions(), moving=moving)
    assert float(geodesic_error(r0.local_quat[:, rot], m.local_quat[:, rot], degrees=True).mean()) > 3.0


def test_invariant_to_a_rigid_motion_of_the_input(cmu):
    m, moving = cmu
    model = create_model("twist", m.skeleton, hidden=16, moving=moving).double().eval()
    _perturb(model)
    x = m.positions()[::50]
    q = random_quat((), generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    from kinepose.geometry import quat_apply

    moved = quat_apply(q, x) + torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    with torch.no_grad():
        a, b = model(x[:, None]), model(moved[:, None])
    torch.testing.assert_close(b.local_quat[:, 1:], a.local_quat[:, 1:], atol=1e-7, rtol=0)
    expected_root = quat_multiply(q.expand(a.local_quat.shape[0], 4), a.local_quat[:, 0])
    assert float(geodesic_error(b.local_quat[:, 0], expected_root).max()) < 1e-7


def test_straight_through_gradient_is_the_twist_about_the_bone():
    sk = get_skeleton("humanoid")
    model = create_model("twist", sk, hidden=16)
    x = forward_kinematics(sk, random_pose(sk, (4,), generator=torch.Generator().manual_seed(2)),
                           torch.zeros(4, 3)).positions  # fmt: skip
    out = model(x[:, None].float())
    loss = out.local_quat.square().sum() + (out.local_quat[..., 1:] * 0.3).sum()
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


@needs_cmu
def test_a_few_training_steps_lower_the_loss(cmu):
    m, moving = cmu
    model = create_model("twist", m.skeleton, hidden=32, moving=moving)
    x, q = m.positions().float(), m.local_quat.float()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(25):
        idx = torch.randint(len(x), (64,), generator=g)
        loss = model.twist_loss(model(x[idx][:, None]), q[idx])["total"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:3])
    with torch.no_grad():
        parts = model.twist_loss(model(x[:64][:, None]), q[:64])
    assert set(parts) == {"twist", "rest", "total"}


def test_save_and_load_round_trip(tmp_path, cmu):
    m, moving = cmu
    model = create_model("twist", m.skeleton, hidden=16, passes=2, moving=moving).eval()
    _perturb(model, 0.1)
    path = str(tmp_path / "model.pt")
    save_model(path, model)
    back = load_model(path).eval()
    x = m.positions().float()[:8, None]
    with torch.no_grad():
        torch.testing.assert_close(back(x).local_quat, model(x).local_quat)
    assert back.moving == moving


def test_errors():
    sk = get_skeleton("humanoid")
    with pytest.raises(KineposeError, match=r"moving joints \['elbow'\] are not joints"):
        create_model("twist", sk, moving=["elbow"])
    with pytest.raises(KineposeError, match="not zero-length joints"):
        create_model("twist", sk, moving=["neck"])
    with pytest.raises(KineposeError, match="passes must be >= 1"):
        create_model("twist", sk, passes=0)
    determined = Skeleton("tri", ["root", "a", "b"], [-1, 0, 0], np.array([[0, 0, 0], [0.1, 0, 0], [0, 0.1, 0]]),
                          ["ball", "end", "end"])  # fmt: skip
    with pytest.raises(KineposeError, match="analytic IK alone determines every rotation"):
        create_model("twist", determined)
