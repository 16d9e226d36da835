import numpy as np
import pytest
import torch

from kinepose.errors import KineposeError, NonFiniteError, ShapeError
from kinepose.geometry import quat_identity, random_quat
from kinepose.kinematics import (
    bone_lengths,
    forward_kinematics,
    hinge_angles,
    project_to_joint_kinds,
    rest_pose,
    retarget,
)
from kinepose.skeleton import get_skeleton, list_skeletons


@pytest.mark.parametrize("name", list_skeletons())
def test_fk_rest_pose_is_rest_offsets(name):
    sk = get_skeleton(name)
    pos = rest_pose(sk, dtype=torch.float64).numpy()
    for j, p in enumerate(sk.parents):
        expect = sk.offsets[j] if p < 0 else pos[p] + sk.offsets[j]
        np.testing.assert_allclose(pos[j], expect, atol=1e-12)


@pytest.mark.parametrize("batch", [(), (5,), (2, 3)])
def test_fk_batch_shapes(batch):
    sk = get_skeleton("humanoid")
    g = torch.Generator().manual_seed(0)
    q = random_quat((*batch, sk.num_joints), generator=g, dtype=torch.float64)
    r = torch.randn(*batch, 3, generator=g, dtype=torch.float64)
    out = forward_kinematics(sk, q, r)
    assert out.positions.shape == (*batch, 15, 3)
    assert out.global_rotmat.shape == (*batch, 15, 3, 3)
    flat = forward_kinematics(sk, q.reshape(-1, 15, 4), r.reshape(-1, 3)).positions
    torch.testing.assert_close(out.positions.reshape(-1, 15, 3), flat)
    # bones keep their rest lengths under any rotation
    torch.testing.assert_close(
        bone_lengths(sk, out.positions)[..., 1:], torch.as_tensor(sk.bone_lengths()[1:]).expand(*batch, 14)
    )


def test_fk_gradients_reach_rotations_and_root():
    sk = get_skeleton("hand21")
    q = random_quat((2, 21), generator=torch.Generator().manual_seed(1), dtype=torch.float64).requires_grad_()
    r = torch.zeros(2, 3, dtype=torch.float64, requires_grad=True)
    forward_kinematics(sk, q, r).positions.square().sum().backward()
    assert torch.isfinite(q.grad).all() and q.grad[:, list(sk.rotated_joints)].abs().sum() > 0
    assert r.grad.abs().sum() > 0


def test_fk_gradcheck():
    sk = get_skeleton("h36m17")
    q = random_quat((sk.num_joints,), generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    q.requires_grad_()
    assert torch.autograd.gradcheck(lambda x: forward_kinematics(sk, x, check=False).positions, (q,))


def test_fk_bad_inputs():
    sk = get_skeleton("humanoid")
    with pytest.raises(ShapeError, match="has 14 joints, expected 15 of skeleton 'humanoid'"):
        forward_kinematics(sk, quat_identity((14,)))
    bad = quat_identity((15,))
    bad[3, 0] = float("nan")
    with pytest.raises(NonFiniteError, match="local_quat: 1 non-finite"):
        forward_kinematics(sk, bad)
    bad = quat_identity((15,))
    bad[3] *= 2
    with pytest.raises(KineposeError, match="expected unit quaternions.*index \\(3,\\) has norm 2"):
        forward_kinematics(sk, bad)


def test_hinge_angles_and_projection():
    sk = get_skeleton("humanoid")
    q = random_quat((4, 15), generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    p = project_to_joint_kinds(sk, q)
    knee = sk.index("right_knee")
    assert torch.allclose(p[:, knee, 1:3], torch.zeros(4, 2, dtype=torch.float64))  # pure z rotation
    torch.testing.assert_close(hinge_angles(sk, p)[:, knee], hinge_angles(sk, q)[:, knee])
    torch.testing.assert_close(p[:, sk.index("right_wrist")], quat_identity((4,), dtype=torch.float64))
    torch.testing.assert_close(project_to_joint_kinds(sk, p), p)  # idempotent


def test_retarget_sets_bone_lengths_keeps_directions():
    sk = get_skeleton("humanoid")
    g = torch.Generator().manual_seed(4)
    q = project_to_joint_kinds(sk, random_quat((3, 15), generator=g, dtype=torch.float64))
    x = forward_kinematics(sk, q, torch.zeros(3, 3, dtype=torch.float64)).positions
    scaled = x * 1.3  # a taller person
    rt = retarget(sk, scaled)
    torch.testing.assert_close(rt, x)
    torch.testing.assert_close(bone_lengths(sk, rt)[..., 1:], torch.as_tensor(sk.bone_lengths()[1:]).expand(3, 14))
