"""Ours (skeleton_lifter) and the no-network knn lifter."""

from __future__ import annotations

import pytest
import torch

from kinepose.errors import KineposeError
from kinepose.geometry.normalization import centre_keypoints
from kinepose.geometry.rotations import quat_to_matrix
from kinepose.kinematics.fk import bone_lengths
from kinepose.models.lifting import create_lifter, list_lifters
from kinepose.models.lifting.skeleton_lifter import decode_skeleton
from kinepose.skeleton.presets import get_skeleton


@pytest.fixture(params=["humanoid", "hand21"])
def skeleton(request):
    return get_skeleton(request.param)


def test_registry_lists_ours_and_knn():
    assert {"skeleton_lifter", "knn"} <= set(list_lifters())
    with pytest.raises(KineposeError, match="unknown lifter 'nope'"):
        create_lifter("nope", get_skeleton("humanoid"))
    with pytest.raises(KineposeError, match="unknown config key"):
        create_lifter("skeleton_lifter", get_skeleton("humanoid"), widow=3)


def test_decode_and_rotations_reproduce_the_pose_through_fk():
    """Bone directions and lengths of a real pose -> decode gives it back; the bone rotations, put through the
    skeleton's own FK with those lengths, give the same joints."""
    from kinepose.data.sources.deepmimic import load_deepmimic
    from kinepose.models.lifting.skeleton_lifter import bone_rotations

    sk = get_skeleton("humanoid")
    x = load_deepmimic("kick").positions()[::10].double()  # (T, J, 3)
    x = x - x[:, :1]
    parents = sk.parents
    vec = torch.stack([x[:, j] - x[:, max(p, 0)] for j, p in enumerate(parents)], 1)  # (T, J, 3)
    L = vec.norm(dim=-1)
    d = vec / L.clamp_min(1e-12)[..., None]
    torch.testing.assert_close(decode_skeleton(parents, d, L), x, atol=1e-12, rtol=0)
    rest = torch.as_tensor(sk.offsets, dtype=torch.float64)
    rest = rest / rest.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    q = bone_rotations(parents, rest, d)  # (T, J, 4)
    # FK with bone j's rotation at joint j: x_j = x_p + L_j G_j u_j, G_j = G_p R_j
    R = quat_to_matrix(q)
    G = [R[:, 0]]
    X = [torch.zeros_like(x[:, 0])]
    for j in range(1, len(parents)):
        G.append(G[parents[j]] @ R[:, j])
        X.append(X[parents[j]] + L[:, j, None] * (G[j] @ rest[j]))
    torch.testing.assert_close(torch.stack(X, 1), x, atol=1e-9, rtol=0)
    torch.testing.assert_close(q.norm(dim=-1), torch.ones(q.shape[:-1], dtype=torch.float64))


def test_ours_bone_lengths_constant_over_a_clip(skeleton):
    torch.manual_seed(0)
    m = create_lifter("skeleton_lifter", skeleton, window=9, dim=32, layers=1, heads=2).eval()
    kp = torch.randn(2, 40, skeleton.num_joints, 2) * 0.3
    vis = (torch.rand(2, 40, skeleton.num_joints) > 0.1).float()
    with torch.no_grad():
        out = m.forward_sequence(kp, vis)  # (2, 40, J, 3)
    assert out.shape == (2, 40, skeleton.num_joints, 3)
    L = bone_lengths(skeleton, out)[..., 1:]  # (2, 40, J-1)
    assert float((L - L[:, :1]).abs().max()) < 1e-5  # offline: one length vector per clip
    torch.testing.assert_close(out[..., 0, :], torch.zeros(2, 40, 3))


def test_ours_causal_ignores_the_future(skeleton):
    torch.manual_seed(1)
    m = create_lifter("skeleton_lifter", skeleton, window=9, causal=True, dim=32, layers=2, heads=2).eval()
    kp = torch.randn(1, 30, skeleton.num_joints, 2) * 0.3
    changed = kp.clone()
    changed[:, 20:] += 1.0
    a, b = m.forward_sequence(kp), m.forward_sequence(changed)
    torch.testing.assert_close(a[:, :20], b[:, :20])  # frames before the change do not move
    assert float((a[:, 20:] - b[:, 20:]).abs().max()) > 1e-6
    assert m.target_index == 8


def test_ours_causal_length_prior_weighs_the_template_as_frames(skeleton):
    """length_prior n0: frame t's bone lengths are (n0 * template + t * running mean of the network's) / (n0 + t),
    so the lengths move less over the clip."""
    torch.manual_seed(3)
    m = create_lifter("skeleton_lifter", skeleton, window=5, causal=True, dim=32, layers=1, heads=2).eval()
    with torch.no_grad():  # an untrained network's lengths are the template's: give them a pose-dependent change
        m.len_head[-1].weight.normal_(0, 0.5)
    kp = torch.randn(1, 30, skeleton.num_joints, 2) * 0.3
    n0 = 50.0
    p = create_lifter("skeleton_lifter", skeleton, window=5, causal=True, dim=32, layers=1, heads=2, length_prior=n0)
    p.load_state_dict(m.state_dict())
    p.eval()
    with torch.no_grad():
        L0 = bone_lengths(skeleton, m.forward_sequence(kp)[0])[:, 1:]  # (T, J-1) running mean
        L = bone_lengths(skeleton, p.forward_sequence(kp)[0])[:, 1:]
    t = torch.arange(1, 31, dtype=L.dtype)[:, None]
    rest = torch.tensor(skeleton.offsets, dtype=L.dtype).norm(dim=-1)[1:]
    torch.testing.assert_close(L, (n0 * rest + t * L0) / (n0 + t), atol=1e-5, rtol=1e-5)
    assert float(L.std(0).mean()) < 0.5 * float(L0.std(0).mean())
    assert p.config()["length_prior"] == n0
    with pytest.raises(KineposeError, match="length_prior must be a number of frames >= 0"):
        create_lifter("skeleton_lifter", skeleton, causal=True, length_prior=-1.0)


def test_ours_missing_joints_do_not_leak_coordinates(skeleton):
    """A joint with visibility 0 (or NaN coordinates) has no influence through its coordinates."""
    torch.manual_seed(2)
    m = create_lifter("skeleton_lifter", skeleton, window=3, dim=32, layers=1, heads=2).eval()
    kp = torch.randn(4, 3, skeleton.num_joints, 2) * 0.3
    vis = torch.ones(4, 3, skeleton.num_joints)
    vis[:, :, 2] = 0
    other = kp.clone()
    other[:, :, 2] = 5.0
    nan = kp.clone()
    nan[:, :, 2] = float("nan")
    a = m(kp, vis).joints
    torch.testing.assert_close(a, m(other, vis).joints)
    torch.testing.assert_close(a, m(nan, vis).joints)
    assert torch.isfinite(m(nan).joints).all()  # NaN with no visibility given: treated as missing


def test_ours_trains_every_parameter(skeleton):
    m = create_lifter("skeleton_lifter", skeleton, window=5, dim=32, layers=1, heads=2)
    out = m(torch.randn(3, 5, skeleton.num_joints, 2), torch.ones(3, 5, skeleton.num_joints))
    (out.aux["frames"].square().sum() + out.bone_lengths.sum()).backward()
    missing = [n for n, p in m.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    assert not missing
    assert out.local_quat.shape == (3, skeleton.num_joints, 4)
    assert out.attention_over == "frames" and out.attention[0].shape == (3, 2, 5, 5)


def test_knn_returns_the_bank_pose_for_a_bank_query():
    sk = get_skeleton("humanoid")
    g = torch.Generator().manual_seed(0)
    kp = torch.randn(50, sk.num_joints, 2, generator=g)
    tgt = torch.randn(50, sk.num_joints, 3, generator=g)
    m = create_lifter("knn", sk, k=1, bank_size=50)
    m.fit_bank(kp, tgt)
    # the same pose, moved and scaled in the image, with two joints missing, finds its own 3D
    q = kp[7:8, None] * 1.7 + torch.tensor([0.3, -0.2])
    vis = torch.ones(1, 1, sk.num_joints)
    vis[..., [3, 9]] = 0
    q[..., [3, 9], :] = float("nan")
    torch.testing.assert_close(m(q, vis).joints, tgt[7:8])


def test_centre_keypoints_is_scale_and_translation_free():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(4, 15, 2, generator=g)
    a, _ = centre_keypoints(x, None)
    b, _ = centre_keypoints(3 * x + 2, None)
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a.mean(-2), torch.zeros(4, 2), atol=1e-6, rtol=0)
    torch.testing.assert_close(a.square().sum(-1).mean(-1), torch.ones(4))


def test_knn_empty_bank_is_an_error():
    m = create_lifter("knn", get_skeleton("humanoid"), bank_size=10)
    with pytest.raises(KineposeError, match="bank is empty"):
        m(torch.zeros(1, 1, 15, 2))


def test_ours_output_is_a_pose_of_one_skeleton_so_ik_reproduces_it():
    """Over a clip, ours' joints are FK of one calibrated skeleton: FK(IK(output)) == output."""
    from kinepose.kinematics.calibration import calibrate_skeleton
    from kinepose.kinematics.fk import forward_kinematics
    from kinepose.kinematics.ik import analytic_ik

    sk = get_skeleton("humanoid")
    torch.manual_seed(4)
    m = create_lifter("skeleton_lifter", sk, window=5, dim=32, layers=1, heads=2).eval()
    with torch.no_grad():  # an untrained net's output varies its group shapes too: make them move
        m.shape_head[-1].weight.normal_(0, 0.3)
        m.len_head[-1].weight.normal_(0, 0.3)
        out = m.forward_sequence(torch.randn(1, 30, 15, 2) * 0.4)[0].double()
    sub = calibrate_skeleton(sk, out)
    res = analytic_ik(sub, out, respect_limits=False)
    fk = forward_kinematics(sub, res.local_quat, res.root_pos).positions
    assert float((fk - out).norm(dim=-1).max()) < 1e-5
