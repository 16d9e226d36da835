"""Keypoint layouts: orders against the official lists written out here, trees, left/right pairs, conversions
checked against hand-written reference conversions (MotionBERT's coco2h36m / halpe2h36m re-typed by index),
NaN and confidence handling, numpy and torch, shape errors, and the layout skeletons."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from kinepose.errors import KineposeError, ShapeError
from kinepose.skeleton import get_skeleton
from kinepose.skeleton.layouts import (
    Layout,
    convert_layout,
    get_layout,
    layout_skeleton,
    list_conversions,
    list_layouts,
    mapping,
    missing_joints,
)
from kinepose.skeleton.presets.h36m import H36M17_NAMES
from kinepose.skeleton.presets.hand import HAND21_NAMES

# ------------------------------------------------------------------------------- official lists, as published

# COCO annotation file, categories[0]["keypoints"] and ["skeleton"] (1-based).
COCO_KEYPOINTS = ["nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
                  "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
                  "right_knee", "left_ankle", "right_ankle"]  # fmt: skip
COCO_SKELETON = [[16, 14], [14, 12], [17, 15], [15, 13], [12, 13], [6, 12], [7, 13], [6, 7], [6, 8], [7, 9],
                 [8, 10], [9, 11], [2, 3], [1, 2], [1, 3], [2, 4], [3, 5], [4, 6], [5, 7]]  # fmt: skip
# Halpe-FullBody README, "26 body keypoints" (its spelling, "Rknee" included), and vis.py l_pair (body part).
HALPE_BODY = ["Nose", "LEye", "REye", "LEar", "REar", "LShoulder", "RShoulder", "LElbow", "RElbow", "LWrist",
              "RWrist", "LHip", "RHip", "LKnee", "Rknee", "LAnkle", "RAnkle", "Head", "Neck", "Hip", "LBigToe",
              "RBigToe", "LSmallToe", "RSmallToe", "LHeel", "RHeel"]  # fmt: skip
HALPE_PAIRS = [(0, 1), (0, 2), (1, 3), (2, 4), (5, 18), (6, 18), (5, 7), (7, 9), (6, 8), (8, 10), (17, 18),
               (18, 19), (19, 11), (19, 12), (11, 13), (12, 14), (13, 15), (14, 16), (20, 24), (21, 25), (23, 25),
               (22, 24), (15, 24), (16, 25)]  # fmt: skip
# mediapipe/python/solutions/pose.py PoseLandmark and POSE_CONNECTIONS.
POSE_LANDMARK = ["NOSE", "LEFT_EYE_INNER", "LEFT_EYE", "LEFT_EYE_OUTER", "RIGHT_EYE_INNER", "RIGHT_EYE",
                 "RIGHT_EYE_OUTER", "LEFT_EAR", "RIGHT_EAR", "MOUTH_LEFT", "MOUTH_RIGHT", "LEFT_SHOULDER",
                 "RIGHT_SHOULDER", "LEFT_ELBOW", "RIGHT_ELBOW", "LEFT_WRIST", "RIGHT_WRIST", "LEFT_PINKY",
                 "RIGHT_PINKY", "LEFT_INDEX", "RIGHT_INDEX", "LEFT_THUMB", "RIGHT_THUMB", "LEFT_HIP", "RIGHT_HIP",
                 "LEFT_KNEE", "RIGHT_KNEE", "LEFT_ANKLE", "RIGHT_ANKLE", "LEFT_HEEL", "RIGHT_HEEL",
                 "LEFT_FOOT_INDEX", "RIGHT_FOOT_INDEX"]  # fmt: skip
POSE_CONNECTIONS = [(0, 4), (4, 5), (5, 6), (6, 8), (0, 1), (1, 2), (2, 3), (3, 7), (10, 9), (12, 11), (12, 14),
                    (14, 16), (16, 18), (16, 20), (16, 22), (18, 20), (11, 13), (13, 15), (15, 17), (15, 19),
                    (15, 21), (17, 19), (12, 24), (11, 23), (24, 23), (24, 26), (23, 25), (26, 28), (25, 27),
                    (28, 30), (27, 29), (30, 32), (29, 31), (28, 32), (27, 31)]  # fmt: skip
# mediapipe/python/solutions/hands.py HandLandmark.
HAND_LANDMARK = ["WRIST", "THUMB_CMC", "THUMB_MCP", "THUMB_IP", "THUMB_TIP", "INDEX_FINGER_MCP", "INDEX_FINGER_PIP",
                 "INDEX_FINGER_DIP", "INDEX_FINGER_TIP", "MIDDLE_FINGER_MCP", "MIDDLE_FINGER_PIP",
                 "MIDDLE_FINGER_DIP", "MIDDLE_FINGER_TIP", "RING_FINGER_MCP", "RING_FINGER_PIP", "RING_FINGER_DIP",
                 "RING_FINGER_TIP", "PINKY_MCP", "PINKY_PIP", "PINKY_DIP", "PINKY_TIP"]  # fmt: skip
# OpenPose doc/02_output.md POSE_BODY_25_BODY_PARTS (without Background) and POSE_BODY_25_PAIRS_RENDER.
BODY_25 = ["Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist", "MidHip", "RHip",
           "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle", "REye", "LEye", "REar", "LEar", "LBigToe", "LSmallToe",
           "LHeel", "RBigToe", "RSmallToe", "RHeel"]  # fmt: skip
BODY_25_PAIRS = [1, 8, 1, 2, 1, 5, 2, 3, 3, 4, 5, 6, 6, 7, 8, 9, 9, 10, 10, 11, 8, 12, 12, 13, 13, 14, 1, 0, 0, 15,
                 15, 17, 0, 16, 16, 18, 14, 19, 19, 20, 14, 21, 11, 22, 22, 23, 11, 24]  # fmt: skip
# smplx/joint_names.py JOINT_NAMES_DICT["smpl"] and SMPL's kintree_table[0].
SMPL_JOINTS = ["pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2", "left_ankle",
               "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar", "right_collar", "head",
               "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
               "left_hand", "right_hand"]  # fmt: skip
SMPL_KINTREE = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21]
# VideoPose3D common/h36m_dataset.py: the 32-joint parents, the joints it removes, the shoulders it rewires.
H36M32_PARENTS = [-1, 0, 1, 2, 3, 4, 0, 6, 7, 8, 9, 0, 11, 12, 13, 14, 12, 16, 17, 18, 19, 20, 19, 22, 12, 24, 25,
                  26, 27, 28, 27, 30]  # fmt: skip
H36M32_REMOVED = [4, 5, 9, 10, 11, 16, 20, 21, 22, 23, 24, 28, 29, 30, 31]
# The 17-joint order as MotionBERT's coco2h36m docstring / the task spell it, beside kinepose's names.
H36M17_ORDER = [("root", "hip"), ("rhip", "right_hip"), ("rkne", "right_knee"), ("rank", "right_foot"),
                ("lhip", "left_hip"), ("lkne", "left_knee"), ("lank", "left_foot"), ("belly", "spine"),
                ("neck", "thorax"), ("nose", "neck_nose"), ("head", "head"), ("lsho", "left_shoulder"),
                ("lelb", "left_elbow"), ("lwri", "left_wrist"), ("rsho", "right_shoulder"), ("relb", "right_elbow"),
                ("rwri", "right_wrist")]  # fmt: skip


def snake(openpose_name: str) -> str:
    """OpenPose/Halpe spelling to kinepose's: 'LBigToe' -> 'left_big_toe', 'Rknee' -> 'right_knee'."""
    side = ""
    if openpose_name[0] in "LR":
        side, openpose_name = ("left_" if openpose_name[0] == "L" else "right_"), openpose_name[1:]
    return side + re.sub(r"(?<!^)(?=[A-Z])", "_", openpose_name).lower()


def edges(layout: Layout) -> set[frozenset[int]]:
    return {frozenset((j, p)) for j, p in enumerate(layout.parents) if p >= 0}


# ------------------------------------------------------------------------------------------------ the orders


def test_coco17_order_and_tree_from_the_coco_skeleton():
    lay = get_layout("coco")
    assert list(lay.joint_names) == COCO_KEYPOINTS
    official = {frozenset((a - 1, b - 1)) for a, b in COCO_SKELETON}
    assert edges(lay) <= official  # a spanning tree made of COCO's own limbs
    assert len(edges(lay)) == 16


def test_halpe26_order_and_tree():
    lay = get_layout("halpe26")
    assert list(lay.joint_names) == [snake(n) for n in HALPE_BODY]
    assert lay.joint_names[:17] == get_layout("coco17").joint_names
    # documented departures: head <- nose, toes <- ankle (Halpe's heels come after its toes)
    extra = {frozenset(e) for e in [(17, 0), (20, 15), (21, 16), (22, 15), (23, 16)]}
    halpe = {frozenset(p) for p in HALPE_PAIRS}
    coco_edges = edges(get_layout("coco17"))
    assert edges(lay) - extra - coco_edges <= halpe


def test_mediapipe_pose_order_and_tree():
    lay = get_layout("mp33")
    assert list(lay.joint_names) == [n.lower() for n in POSE_LANDMARK]
    extra = {frozenset(e) for e in [(9, 0), (10, 0), (11, 7), (12, 8)]}  # mouth <- nose, shoulders <- ears
    assert edges(lay) - extra <= {frozenset(c) for c in POSE_CONNECTIONS}


def test_hand_orders():
    mp = get_layout("hand21")
    assert mp is get_layout("openpose_hand") and mp.name == "mediapipe_hand"
    assert list(mp.joint_names) == [n.lower() for n in HAND_LANDMARK]
    kp = get_layout("kinepose_hand21")
    sk = get_skeleton("hand21")
    assert kp.joint_names == HAND21_NAMES and kp.parents == sk.parents == mp.parents
    # same order: kinepose spells 'index_mcp' what MediaPipe spells 'index_finger_mcp', 'little' what it calls 'pinky'
    for a, b in zip(kp.joint_names, mp.joint_names, strict=True):
        assert b == re.sub(r"^(index|middle|ring)_", r"\1_finger_", a).replace("little", "pinky")


def test_body25_order_and_tree_are_openpose_s():
    lay = get_layout("body25")
    assert list(lay.joint_names) == [snake(n) for n in BODY_25]
    pairs = {frozenset(BODY_25_PAIRS[i : i + 2]) for i in range(0, len(BODY_25_PAIRS), 2)}
    assert edges(lay) == pairs


def test_smpl24_order_and_tree():
    lay = get_layout("smpl")
    assert list(lay.joint_names) == SMPL_JOINTS
    assert list(lay.parents) == SMPL_KINTREE


def test_h36m17_is_videopose3d_subset_and_the_preset():
    # VideoPose3D's Skeleton.remove_joints: each kept joint hangs from its nearest kept ancestor; then the
    # shoulders (new indices 11 and 14) are rewired to the thorax (8).
    kept = [j for j in range(32) if j not in H36M32_REMOVED]
    parents = []
    for j in kept:
        p = H36M32_PARENTS[j]
        while p >= 0 and p not in kept:
            p = H36M32_PARENTS[p]
        parents.append(kept.index(p) if p >= 0 else -1)
    parents[11] = parents[14] = 8
    lay = get_layout("h36m")
    assert list(lay.parents) == parents
    assert list(lay.joint_names) == [k for _, k in H36M17_ORDER]
    sk = get_skeleton("h36m17")
    assert lay.joint_names == sk.joint_names == H36M17_NAMES and lay.parents == sk.parents


def test_humanoid_layout_is_the_preset():
    sk = get_skeleton("humanoid")
    lay = get_layout("deepmimic")
    assert lay.joint_names == sk.joint_names and lay.parents == sk.parents
    assert set(lay.left_right) == set(sk.left_right)


# -------------------------------------------------------------------------------------- structure, every layout

PAIRS = {"coco17": 8, "halpe26": 11, "h36m17": 6, "mediapipe_pose": 16, "mediapipe_hand": 0, "body25": 11,
         "smpl24": 9, "humanoid": 6, "kinepose_hand21": 0}  # fmt: skip


def test_registry():
    assert set(list_layouts()) == set(PAIRS)
    aliases = [a for n in list_layouts() for a in (n, *get_layout(n).aliases)]
    assert len(aliases) == len(set(aliases)), "an alias names two layouts"
    for a in aliases:
        assert get_layout(a.upper().replace("_", "-")).name in PAIRS
    assert get_layout("COCO-17").name == "coco17" and get_layout("Body_25").name == "body25"
    assert repr(get_layout("coco17")) == "Layout('coco17', 17 joints)"


@pytest.mark.parametrize("name", list(PAIRS))
def test_tree_and_left_right(name):
    lay = get_layout(name)
    J = lay.num_joints
    assert len(lay) == J == len(lay.parents) == len(set(lay.joint_names))
    for j in range(J):  # every joint reaches the single root
        seen, k = set(), j
        while lay.parents[k] != -1:
            assert k not in seen
            seen.add(k)
            k = lay.parents[k]
        assert k == 0
    assert len(lay.left_right) == PAIRS[name]
    flat = [i for pair in lay.left_right for i in pair]
    assert len(flat) == len(set(flat))
    for a, b in lay.left_right:
        swapped = lay.joint_names[a].replace("left", "@").replace("right", "left").replace("@", "right")
        assert "left" in lay.joint_names[a] and swapped == lay.joint_names[b]
    unpaired = [n for j, n in enumerate(lay.joint_names) if j not in flat and ("left" in n or "right" in n)]
    assert not unpaired
    m = lay.mirror_index  # the tree is left/right symmetric
    for j, p in enumerate(lay.parents):
        assert lay.parents[m[j]] == (m[p] if p >= 0 else -1)
    assert lay.index(lay.joint_names[-1]) == J - 1


def test_layout_validation_and_index_errors():
    with pytest.raises(KineposeError, match="parents"):
        Layout("bad", ("a", "b"), (-1, 2))
    with pytest.raises(KineposeError, match="duplicate"):
        Layout("bad", ("a", "a"), (-1, 0))
    with pytest.raises(KineposeError, match="'coco17' has no joint named 'tail'"):
        get_layout("coco17").index("tail")


def test_unknown_layout_lists_the_known_ones():
    with pytest.raises(KineposeError, match=r"unknown keypoint layout 'coco18'.*coco17.*halpe26.*smpl24"):
        get_layout("coco18")


# ------------------------------------------------------------------------------------------------ skeletons


@pytest.mark.parametrize("name", list(PAIRS))
def test_layout_skeleton(name):
    lay, sk = get_layout(name), layout_skeleton(name)
    assert sk.joint_names == lay.joint_names and sk.parents == lay.parents and sk.left_right == lay.left_right
    leaves = set(range(lay.num_joints)) - set(lay.parents)
    assert {j for j, k in enumerate(sk.kinds) if k == "end"} == leaves
    assert set(sk.kinds) <= {"ball", "end"}
    lengths = sk.bone_lengths()[1:]
    assert lengths.min() > 0.005 and lengths.max() < 0.6  # metres, no degenerate or absurd bone
    pos = np.zeros((lay.num_joints, 3))
    for j, p in enumerate(sk.parents):
        pos[j] = sk.offsets[j] + (pos[p] if p >= 0 else 0)
    assert np.ptp(pos[:, 1]) < 1.9  # shorter than 1.9 m
    if lay.left_right:  # a body: the rest pose is symmetric about x = 0
        np.testing.assert_allclose(pos[list(lay.mirror_index)] * [-1, 1, 1], pos, atol=1e-12)
    assert layout_skeleton(name) is sk


def test_hand_layout_skeleton_rests_like_the_preset():
    pre = get_skeleton("hand21")
    for name in ("hand21", "kinepose_hand21"):
        np.testing.assert_allclose(layout_skeleton(name).offsets, pre.offsets)


# ------------------------------------------------------------------------------------------------ conversions

REQUIRED = [("coco17", "h36m17"), ("halpe26", "h36m17"), ("mediapipe_pose", "coco17"), ("mediapipe_pose", "h36m17"),
            ("body25", "coco17"), ("body25", "h36m17"), ("halpe26", "coco17"), ("smpl24", "h36m17"),
            ("mediapipe_hand", "kinepose_hand21"), ("kinepose_hand21", "mediapipe_hand"),
            *[(s, "humanoid") for s in ("coco17", "halpe26", "h36m17", "mediapipe_pose", "body25", "smpl24")],
            ]  # fmt: skip
CONVERSIONS = list_conversions()


def rand(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape)


def test_required_conversions_exist():
    assert set(REQUIRED) <= set(CONVERSIONS)


def coco2h36m_reference(x):
    """MotionBERT lib/data/dataset_action.py coco2h36m, re-typed by index."""
    y = np.zeros((*x.shape[:-2], 17, x.shape[-1]))
    y[..., 0, :] = (x[..., 11, :] + x[..., 12, :]) * 0.5
    y[..., 1, :], y[..., 2, :], y[..., 3, :] = x[..., 12, :], x[..., 14, :], x[..., 16, :]
    y[..., 4, :], y[..., 5, :], y[..., 6, :] = x[..., 11, :], x[..., 13, :], x[..., 15, :]
    y[..., 8, :] = (x[..., 5, :] + x[..., 6, :]) * 0.5
    y[..., 7, :] = (y[..., 0, :] + y[..., 8, :]) * 0.5
    y[..., 9, :] = x[..., 0, :]
    y[..., 10, :] = (x[..., 1, :] + x[..., 2, :]) * 0.5
    for t, s in zip(range(11, 17), (5, 7, 9, 6, 8, 10), strict=True):
        y[..., t, :] = x[..., s, :]
    return y


def halpe2h36m_reference(x):
    """MotionBERT lib/data/dataset_wild.py halpe2h36m, re-typed by index."""
    src = [19, 12, 14, 16, 11, 13, 15, None, 18, 0, 17, 5, 7, 9, 6, 8, 10]
    y = np.stack([x[..., s, :] if s is not None else x[..., 0, :] for s in src], axis=-2)
    y[..., 7, :] = (x[..., 18, :] + x[..., 19, :]) * 0.5
    return y


@pytest.mark.parametrize("lead", [(), (5,), (2, 3)])
def test_coco_and_halpe_to_h36m_match_motionbert(lead):
    x = rand(*lead, 17, 2)
    np.testing.assert_allclose(convert_layout(x, "coco17", "h36m17"), coco2h36m_reference(x), atol=1e-12)
    h = rand(*lead, 26, 3, seed=1)
    np.testing.assert_allclose(convert_layout(h, "halpe26", "h36m17"), halpe2h36m_reference(h), atol=1e-12)
    np.testing.assert_array_equal(convert_layout(h, "halpe26", "coco17"), h[..., :17, :])


def h36m_ground_truth(n=6, seed=0):
    from kinepose.geometry import random_quat
    from kinepose.kinematics import forward_kinematics, project_to_joint_kinds

    sk = get_skeleton("h36m17")
    g = torch.Generator().manual_seed(seed)
    q = project_to_joint_kinds(sk, random_quat((n, sk.num_joints), generator=g, dtype=torch.float64))
    return forward_kinematics(sk, q, torch.randn(n, 3, generator=g, dtype=torch.float64)).positions  # (n, 17, 3)


def test_h36m_to_itself_is_identity():
    x = h36m_ground_truth()
    assert torch.equal(convert_layout(x, "h36m17", "h36m"), x)
    np.testing.assert_array_equal(convert_layout(x.numpy(), "h36m", "kinepose_h36m17"), x.numpy())
    assert mapping("coco17", "coco") == {n: ((n, 1.0),) for n in COCO_KEYPOINTS}


def test_coco_made_from_h36m_gives_back_mid_hips_and_mid_shoulders():
    h = h36m_ground_truth().numpy()
    H = get_layout("h36m17")
    coco = rand(h.shape[0], 17, 3)  # face points: anything
    for i, n in enumerate(COCO_KEYPOINTS):
        if "eye" not in n and "ear" not in n and n != "nose":
            coco[:, i] = h[:, H.index(n.replace("ankle", "foot"))]
    back = convert_layout(coco, "coco17", "h36m17")
    np.testing.assert_array_equal(back[:, 0], (h[:, H.index("left_hip")] + h[:, H.index("right_hip")]) * 0.5)
    mid_sh = (h[:, H.index("left_shoulder")] + h[:, H.index("right_shoulder")]) * 0.5
    np.testing.assert_array_equal(back[:, H.index("thorax")], mid_sh)
    limbs = [j for j, n in enumerate(H.joint_names) if n.startswith(("left", "right"))]
    np.testing.assert_array_equal(back[:, limbs], h[:, limbs])


def test_mediapipe_and_body25_by_hand():
    mp = rand(4, 33, 3)
    coco_idx = [0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28]
    np.testing.assert_array_equal(convert_layout(mp, "mp33", "coco17"), mp[:, coco_idx])
    np.testing.assert_allclose(convert_layout(mp, "mp33", "h36m17"), coco2h36m_reference(mp[:, coco_idx]), atol=1e-12)
    b = rand(4, 25, 2, seed=2)
    coco_idx = [0, 16, 15, 18, 17, 5, 2, 6, 3, 7, 4, 12, 9, 13, 10, 14, 11]
    np.testing.assert_array_equal(convert_layout(b, "body25", "coco"), b[:, coco_idx])
    y = convert_layout(b, "openpose", "h36m")
    np.testing.assert_array_equal(y[:, 0], b[:, 8])  # MidHip
    np.testing.assert_array_equal(y[:, 8], b[:, 1])  # Neck
    np.testing.assert_allclose(y[:, 7], (b[:, 1] + b[:, 8]) / 2)
    np.testing.assert_allclose(y[:, 10], (b[:, 15] + b[:, 16]) / 2)
    np.testing.assert_array_equal(y[:, [1, 2, 3, 14, 15, 16]], b[:, [9, 10, 11, 2, 3, 4]])


def test_smpl_to_h36m_and_humanoid_by_hand():
    s = rand(3, 24, 3)
    y = convert_layout(s, "smpl", "h36m")
    np.testing.assert_array_equal(y[:, [0, 7, 8, 9]], s[:, [0, 6, 12, 15]])  # pelvis, spine2, neck, head
    np.testing.assert_allclose(y[:, 10], 2 * s[:, 15] - s[:, 12])  # head top: one neck->head length up
    np.testing.assert_array_equal(y[:, [1, 2, 3, 4, 5, 6]], s[:, [2, 5, 8, 1, 4, 7]])
    np.testing.assert_array_equal(y[:, [11, 12, 13, 14, 15, 16]], s[:, [16, 18, 20, 17, 19, 21]])
    hum = get_layout("humanoid")
    z = convert_layout(s, "smpl24", "humanoid")
    np.testing.assert_array_equal(z[:, hum.indices(["root", "chest", "neck"])], s[:, [0, 6, 12]])
    assert missing_joints("smpl24", "coco17") == ["nose", "left_eye", "right_eye", "left_ear", "right_ear"]


def test_onto_humanoid_from_every_body_layout():
    hum = get_layout("humanoid")
    for src in ("coco17", "halpe26", "h36m17", "mediapipe_pose", "body25", "smpl24"):
        x = rand(2, get_layout(src).num_joints, 3)
        y = convert_layout(x, src, "humanoid", strict=True)
        assert y.shape == (2, 15, 3) and np.isfinite(y).all()
    c = rand(2, 17, 3)
    y = convert_layout(c, "coco17", "humanoid")
    np.testing.assert_allclose(y[:, hum.index("root")], (c[:, 11] + c[:, 12]) / 2)
    np.testing.assert_allclose(y[:, hum.index("neck")], (c[:, 5] + c[:, 6]) / 2)
    np.testing.assert_allclose(y[:, hum.index("chest")], c[:, [5, 6, 11, 12]].mean(1))
    np.testing.assert_array_equal(y[:, hum.index("right_ankle")], c[:, 16])


def test_hand_renaming_is_identity_both_ways():
    x = rand(5, 21, 3)
    np.testing.assert_array_equal(convert_layout(x, "hand21", "kinepose_hand21"), x)
    np.testing.assert_array_equal(convert_layout(x, "hand21_preset", "mediapipe_hand"), x)


@pytest.mark.parametrize("pair", CONVERSIONS, ids=[f"{s}->{d}" for s, d in CONVERSIONS])
def test_every_conversion_is_affine_and_mirror_consistent(pair):
    src, dst = pair
    S, D = get_layout(src), get_layout(dst)
    table = mapping(src, dst)
    assert list(table) == [n for n in D.joint_names if n in table]  # in target order
    assert set(table) | set(missing_joints(src, dst)) == set(D.joint_names)
    for row in table.values():
        assert abs(sum(w for _, w in row) - 1) < 1e-12 and all(n in S.joint_names for n, _ in row)
    x, t = rand(3, S.num_joints, 3), rand(3, 1, 3, seed=9)
    y = convert_layout(x, src, dst)
    np.testing.assert_allclose(convert_layout(x + t, src, dst), y + t, atol=1e-12)  # commutes with translation
    # mirroring the input (swap left/right, negate x) mirrors the output: the tables wire left to left
    flip = np.array([-1.0, 1.0, 1.0])
    ym = convert_layout(x[:, list(S.mirror_index)] * flip, src, dst)
    np.testing.assert_allclose(ym, y[:, list(D.mirror_index)] * flip, atol=1e-12)


def test_nan_propagates_from_a_missing_source_only():
    x = rand(2, 17, 2)
    x[0, 1] = np.nan  # left eye of the first pose
    y = convert_layout(x, "coco17", "h36m17")
    assert np.isnan(y[0, 10]).all()  # head = mid-eyes
    assert np.isfinite(np.delete(y[0], 10, axis=0)).all() and np.isfinite(y[1]).all()
    xt = torch.tensor(x)
    yt = convert_layout(xt, "coco17", "h36m17")
    assert torch.isnan(yt[0, 10]).all() and torch.isfinite(yt[1]).all()


def test_missing_targets_are_nan_or_raise_with_strict():
    x = rand(4, 17, 3)
    y = convert_layout(x, "h36m17", "coco17")
    eyes_ears = [1, 2, 3, 4]
    assert np.isnan(y[:, eyes_ears]).all() and np.isfinite(np.delete(y, eyes_ears, axis=1)).all()
    np.testing.assert_array_equal(y[:, 0], x[:, 9])  # nose <- neck/nose
    with pytest.raises(KineposeError, match=r"left_eye.*right_ear.*'coco17'.*'h36m17'"):
        convert_layout(x, "h36m17", "coco17", strict=True)
    with pytest.raises(KineposeError, match=r"\['nose'.*strict"):
        convert_layout(torch.tensor(rand(24, 3)), "smpl24", "coco17", strict=True)


def test_confidence_is_the_minimum_of_the_sources():
    x = rand(6, 17, 3)
    x[..., 2] = np.random.default_rng(3).uniform(size=(6, 17))
    y = convert_layout(x, "coco17", "h36m17", confidence=True)
    assert y.shape == (6, 17, 3)
    np.testing.assert_allclose(y[..., :2], coco2h36m_reference(x[..., :2]), atol=1e-12)  # coordinates as before
    c = x[..., 2]
    np.testing.assert_array_equal(y[:, 0, 2], np.minimum(c[:, 11], c[:, 12]))
    np.testing.assert_array_equal(y[:, 7, 2], c[:, [5, 6, 11, 12]].min(1))
    np.testing.assert_array_equal(y[:, 9, 2], c[:, 0])
    np.testing.assert_array_equal(y[:, 1, 2], c[:, 12])
    # composed routes keep the minimum over all the original sources; missing targets get confidence 0
    mp = rand(2, 33, 4)
    z = convert_layout(torch.tensor(mp), "mediapipe_pose", "humanoid", confidence=True)
    chest = get_layout("humanoid").index("chest")
    np.testing.assert_array_equal(z[:, chest, 3].numpy(), mp[:, [11, 12, 23, 24], 3].min(1))
    w = convert_layout(rand(17, 4), "h36m17", "coco17", confidence=True)
    assert (w[1:5, 3] == 0).all() and np.isnan(w[1:5, :3]).all()


def test_torch_matches_numpy_and_keeps_dtype_device_and_grad():
    x = rand(2, 3, 33, 3)
    yn = convert_layout(x, "mediapipe_pose", "h36m17")
    for dtype in (torch.float32, torch.float64):
        xt = torch.tensor(x, dtype=dtype, requires_grad=True)
        yt = convert_layout(xt, "mediapipe_pose", "h36m17")
        assert yt.dtype == dtype and yt.device == xt.device and yt.shape == (2, 3, 17, 3)
        np.testing.assert_allclose(yt.detach().numpy(), yn, rtol=1e-6, atol=1e-6)
        yt.sum().backward()
        assert torch.isfinite(xt.grad).all() and xt.grad.abs().sum() > 0
    assert convert_layout(x.astype(np.float32), "mp33", "coco").dtype == np.float32
    assert convert_layout(np.ones((17, 2), dtype=np.int64), "coco", "h36m").dtype == np.float64
    assert convert_layout(torch.ones(17, 2, dtype=torch.int64), "coco", "h36m").is_floating_point()


def test_shape_errors_name_the_layout_and_the_count():
    with pytest.raises(ShapeError, match=r"\(4, 18, 2\).*'coco17'.*17 joints"):
        convert_layout(np.zeros((4, 18, 2)), "coco", "h36m")
    with pytest.raises(ShapeError, match=r"'halpe26'.*26 joints.*C = 2 or 3"):
        convert_layout(torch.zeros(26, 5), "halpe26", "h36m")
    with pytest.raises(ShapeError, match=r"C = 3 or 4"):
        convert_layout(np.zeros((17, 2)), "coco", "h36m", confidence=True)
    with pytest.raises(ShapeError):
        convert_layout(np.zeros(17), "coco", "h36m")


def test_unknown_conversion_lists_what_exists():
    with pytest.raises(KineposeError, match=r"no conversion from layout 'coco17' to 'smpl24'.*h36m17.*humanoid"):
        convert_layout(np.zeros((17, 2)), "coco17", "smpl")
    with pytest.raises(KineposeError, match="unknown keypoint layout"):
        mapping("coco17", "openpose18")
