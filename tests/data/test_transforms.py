import pytest
import torch

from kinepose.data.sources.deepmimic import load_deepmimic
from kinepose.data.transforms import (
    is_mirror_symmetric,
    mirror_positions,
    mirror_root,
    mirror_rotations,
    mirrored_skeleton,
)
from kinepose.errors import ShapeError
from kinepose.geometry import random_quat
from kinepose.kinematics import forward_kinematics, project_to_joint_kinds
from kinepose.skeleton import get_skeleton, list_skeletons


@pytest.mark.parametrize("name", list_skeletons())
def test_mirror_commutes_with_fk(name):
    sk = get_skeleton(name)
    g = torch.Generator().manual_seed(0)
    q = project_to_joint_kinds(sk, random_quat((6, sk.num_joints), generator=g, dtype=torch.float64))
    r = torch.randn(6, 3, generator=g, dtype=torch.float64)
    target = mirrored_skeleton(sk)
    y = forward_kinematics(target, mirror_rotations(sk, q), mirror_root(sk, r)).positions
    x = forward_kinematics(sk, q, r).positions
    torch.testing.assert_close(y, mirror_positions(sk, x))


def test_symmetry_of_presets():
    assert is_mirror_symmetric(get_skeleton("humanoid"))
    assert is_mirror_symmetric(get_skeleton("h36m17"))
    assert not is_mirror_symmetric(get_skeleton("hand21"))  # a right hand mirrors into a left hand


def test_mirror_real_clip_twice_is_identity():
    m = load_deepmimic("kick")
    sk = m.skeleton
    q2 = mirror_rotations(sk, mirror_rotations(sk, m.local_quat))
    torch.testing.assert_close(q2, m.local_quat)
    x = m.positions()
    mx = mirror_positions(sk, x)
    # the kicking leg changes side
    assert not torch.allclose(mx[:, sk.index("right_ankle")], x[:, sk.index("right_ankle")])
    torch.testing.assert_close(mirror_positions(sk, mx), x)
    y = forward_kinematics(sk, mirror_rotations(sk, m.local_quat), mirror_root(sk, m.root_pos)).positions
    torch.testing.assert_close(y, mx)


def test_mirror_bad_shape():
    with pytest.raises(ShapeError, match="has 14 joints, expected 15"):
        mirror_positions(get_skeleton("humanoid"), torch.zeros(3, 14, 3))
