import torch

from kinepose.data.sources.deepmimic import load_deepmimic
from kinepose.kinematics import analytic_ik, fit_skeleton, forward_kinematics
from kinepose.metrics import mpjpe


def test_clean_input_stays_exact():
    m = load_deepmimic("run")
    x = m.positions()
    r = fit_skeleton(m.skeleton, x)
    y = forward_kinematics(m.skeleton, r.local_quat, r.root_pos).positions
    assert float((y - x).norm(dim=-1).max()) < 1e-9


def test_fit_beats_analytic_on_noisy_joints():
    m = load_deepmimic("walk")
    x = m.positions()
    noisy = x + 0.01 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0), dtype=x.dtype)
    sk = m.skeleton
    a = analytic_ik(sk, noisy)
    f = fit_skeleton(sk, noisy, init=a)
    err_a = mpjpe(forward_kinematics(sk, a.local_quat, a.root_pos).positions, noisy)
    err_f = mpjpe(forward_kinematics(sk, f.local_quat, f.root_pos).positions, noisy)
    assert err_f < 0.8 * err_a  # least squares is closer to the observations
    clean_f = mpjpe(forward_kinematics(sk, f.local_quat, f.root_pos).positions, x)
    clean_a = mpjpe(forward_kinematics(sk, a.local_quat, a.root_pos).positions, x)
    assert clean_f < 0.75 * clean_a  # and to the truth
    torch.testing.assert_close(f.local_quat[:, list(~f.observable)], a.local_quat[:, list(~f.observable)])


def test_zero_weight_joint_is_ignored():
    m = load_deepmimic("jump")
    x = m.positions()[:20].clone()
    w = torch.ones(20, 15, dtype=x.dtype)
    w[:, 8] = 0.0  # right wrist
    moved = x.clone()
    moved[:, 8] += 0.3
    r = fit_skeleton(m.skeleton, moved, init=analytic_ik(m.skeleton, x), weights=w)
    y = forward_kinematics(m.skeleton, r.local_quat, r.root_pos).positions
    assert float((y - x).norm(dim=-1).max()) < 1e-6


def test_batch_shape():
    m = load_deepmimic("kick")
    x = m.positions()[:12].reshape(3, 4, 15, 3)
    r = fit_skeleton(m.skeleton, x, iterations=2)
    assert r.local_quat.shape == (3, 4, 15, 4) and r.root_pos.shape == (3, 4, 3)
