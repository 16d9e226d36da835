import numpy as np
import pytest

from kinepose.errors import KineposeError
from kinepose.skeleton import Skeleton, get_skeleton, list_skeletons
from kinepose.skeleton.presets.hand import HAND21_NAMES


def test_presets_build_and_describe():
    for name in list_skeletons():
        sk = get_skeleton(name)
        assert sk.num_joints == len(sk.joint_names)
        assert name in sk.describe()


def test_humanoid_from_urdf():
    sk = get_skeleton("humanoid")
    assert sk.num_joints == 15
    assert len(sk.rotated_joints) == 13
    assert [sk.joint_names[j] for j, k in enumerate(sk.kinds) if k == "end"] == ["right_wrist", "left_wrist"]
    assert [sk.joint_names[j] for j, k in enumerate(sk.kinds) if k == "hinge"] == [
        "right_knee",
        "right_elbow",
        "left_knee",
        "left_elbow",
    ]
    # chest offset 0.944604 URDF units * 0.25 = metres
    np.testing.assert_allclose(sk.offsets[sk.index("chest")], [0, 0.944604 * 0.25, 0])
    np.testing.assert_allclose(sk.limits[sk.index("right_knee")], [-3.14, 0.0])
    assert (sk.index("left_hip"), sk.index("right_hip")) in sk.left_right
    assert get_skeleton("deepmimic") is sk


def test_hand21_layout():
    sk = get_skeleton("hand21")
    assert sk.joint_names == HAND21_NAMES
    assert sk.num_joints == 21
    assert sk.joint_names[:5] == ("wrist", "thumb_cmc", "thumb_mcp", "thumb_ip", "thumb_tip")
    assert sk.parents[5] == 0 and sk.parents[8] == 7
    for f in range(5):
        base = 1 + 4 * f
        assert sk.kinds[base : base + 4] == ("ball", "hinge", "hinge", "end")
    # adult proportions: wrist to middle fingertip about 19 cm
    from kinepose.kinematics import rest_pose

    rest = rest_pose(sk).numpy()
    assert 0.17 < np.linalg.norm(rest[sk.index("middle_tip")]) < 0.21
    # flexion turns fingers towards the palm (+z)
    for j in (6, 7, 10, 11):
        a = sk.hinge_axes[j]
        d = sk.offsets[sk.children[j][0]]
        assert np.cross(a, d)[2] > 0


def test_h36m_and_head():
    sk = get_skeleton("h36m")
    assert sk.num_joints == 17 and sk.parents[0] == -1
    assert len(sk.left_right) == 6
    head = get_skeleton("head")
    assert head.kinds[0] == "ball" and len(head.rotated_joints) == 1


def test_unknown_skeleton_name():
    with pytest.raises(KineposeError, match="unknown skeleton 'hand22'.*available: humanoid"):
        get_skeleton("hand22")


def _tiny(**kw):
    args = dict(name="t", joint_names=["a", "b", "c"], parents=[-1, 0, 1],
                offsets=np.eye(3), kinds=["ball", "ball", "end"])  # fmt: skip
    args.update(kw)
    return Skeleton(**args)


@pytest.mark.parametrize(
    "kw, msg",
    [
        (dict(parents=[-1, 2, 1]), "topologically sorted"),
        (dict(parents=[0, 0, 1]), "must be the root"),
        (dict(parents=[-1, 0]), "parents has 2 entries, expected 3"),
        (dict(joint_names=["a", "a", "c"]), "duplicate joint names"),
        (dict(kinds=["ball", "knee", "end"]), "unknown kind 'knee'"),
        (dict(kinds=["ball", "hinge", "end"]), "needs a unit axis"),
        (dict(offsets=np.zeros((2, 3))), r"offsets has shape \(2, 3\), expected \(3, 3\)"),
        (dict(offsets=np.full((3, 3), np.nan)), "non-finite"),
        (dict(kinds=["ball", "end", "end"]), "has end site 'b' as parent"),
    ],
)
def test_skeleton_validation(kw, msg):
    with pytest.raises(KineposeError, match=msg):
        _tiny(**kw)


def test_index_and_remap():
    sk = get_skeleton("humanoid")
    assert sk.index("neck") == 2
    with pytest.raises(KineposeError, match="no joint named 'nek'"):
        sk.index("nek")
    names = list(reversed(sk.joint_names))
    idx = sk.remap_from(names)
    assert [names[i] for i in idx] == list(sk.joint_names)
    with pytest.raises(KineposeError, match="missing joints"):
        sk.remap_from(names[1:])


def test_subset_keeps_rest_positions():
    from kinepose.kinematics import rest_pose

    sk = get_skeleton("humanoid")
    keep = ["root", "neck", "right_knee", "right_wrist", "left_wrist"]
    sub, idx = sk.subset(keep)
    assert sub.joint_names == tuple(n for n in sk.joint_names if n in keep)
    np.testing.assert_allclose(rest_pose(sub, dtype=__import__("torch").float64).numpy(),
                               rest_pose(sk, dtype=__import__("torch").float64).numpy()[idx], atol=1e-12)  # fmt: skip
    assert sub.kinds[sub.index("neck")] == "end"  # no kept child any more


def test_children_and_bones():
    sk = get_skeleton("humanoid")
    assert sk.children[0] == (1, 3, 9)
    assert len(sk.bones) == sk.num_joints - 1
    assert sorted(sk.mirror_index) == list(range(sk.num_joints))
