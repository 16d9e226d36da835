"""Data behind :mod:`kinepose.skeleton.layouts`: joint orders, trees, conversion tables, rest positions.

Plain Python data only (no logic beyond small table builders), so that each table can be read next to its
source. Names are snake_case with ``left_``/``right_`` spelled out; where a source spells them otherwise
(OpenPose ``RShoulder``, Halpe ``LBigToe``) the order is the source's and the spelling is normalized.

Every tree has its root at index 0 and ``parents[j] < j`` (the :class:`~kinepose.skeleton.core.Skeleton`
contract), so a layout is a valid skeleton in its official order. Where a source draws a graph rather than a
tree (COCO, Halpe, MediaPipe) the tree keeps the source's own edges wherever that order allows; the
exceptions are listed in each comment.
"""

from __future__ import annotations

from kinepose.skeleton.presets.h36m import H36M17_NAMES, H36M17_PARENTS
from kinepose.skeleton.presets.hand import HAND21_NAMES

#: A conversion table: target joint -> ((source joint, weight), ...); weights sum to 1. Targets left out of a
#: table cannot be formed from that source (they come out missing).
Table = dict[str, tuple[tuple[str, float], ...]]

# ----------------------------------------------------------------------------------------------- joint orders

# COCO person_keypoints "keypoints" field. Tree: spanning tree of COCO's own "skeleton" field rooted at the
# nose (nose-eye-ear-shoulder, shoulder-hip; the eye-eye, shoulder-shoulder and hip-hip edges are dropped).
COCO17_NAMES = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip
COCO17_PARENTS = (-1, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 5, 6, 11, 12, 13, 14)

# Halpe FullBody's 26 body keypoints (README "Keypoints format"): COCO's 17, then head (top), neck, hip
# (mid-hip), feet. Tree: COCO's for the first 17; head <- nose (Halpe draws head-neck); neck <- head and
# hip <- neck (Halpe's edges); toes and heels <- ankle (Halpe draws ankle-heel-toes, but the heels come last).
HALPE26_NAMES = (
    *COCO17_NAMES, "head", "neck", "hip", "left_big_toe", "right_big_toe", "left_small_toe",
    "right_small_toe", "left_heel", "right_heel",
)  # fmt: skip
HALPE26_PARENTS = (*COCO17_PARENTS, 0, 17, 18, 15, 16, 15, 16, 15, 16)

# MediaPipe PoseLandmark enum (BlazePose, 33 landmarks). Tree: POSE_CONNECTIONS edges, except mouth <- nose and
# shoulder <- ear (MediaPipe connects neither the mouth nor the shoulders to the head; its mouth-mouth edge is
# dropped to keep the tree left/right symmetric).
MEDIAPIPE_POSE_NAMES = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye", "right_eye_outer",
    "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_pinky", "right_pinky",
    "left_index", "right_index", "left_thumb", "right_thumb", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle", "left_heel", "right_heel",
    "left_foot_index", "right_foot_index",
)  # fmt: skip
MEDIAPIPE_POSE_PARENTS = (
    -1, 0, 1, 2, 0, 4, 5, 3, 6, 0, 0, 7, 8, 11, 12, 13, 14, 15, 16, 15, 16, 15, 16, 11, 12,
    23, 24, 25, 26, 27, 28, 27, 28,
)  # fmt: skip

# MediaPipe HandLandmark enum; OpenPose's hand output uses the same 21 points in the same order.
MEDIAPIPE_HAND_NAMES = (
    "wrist", "thumb_cmc", "thumb_mcp", "thumb_ip", "thumb_tip",
    *(f"{f}_finger_{s}" for f in ("index", "middle", "ring") for s in ("mcp", "pip", "dip", "tip")),
    "pinky_mcp", "pinky_pip", "pinky_dip", "pinky_tip",
)  # fmt: skip
HAND21_PARENTS = (-1, 0, 1, 2, 3, 0, 5, 6, 7, 0, 9, 10, 11, 0, 13, 14, 15, 0, 17, 18, 19)

# OpenPose POSE_BODY_25_BODY_PARTS (doc/02_output.md), without "Background". Tree: exactly OpenPose's
# POSE_BODY_25_PAIRS_RENDER (24 pairs), rooted at the nose.
BODY25_NAMES = (
    "nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow",
    "left_wrist", "mid_hip", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
    "right_eye", "left_eye", "right_ear", "left_ear", "left_big_toe", "left_small_toe", "left_heel",
    "right_big_toe", "right_small_toe", "right_heel",
)  # fmt: skip
BODY25_PARENTS = (-1, 0, 1, 2, 3, 1, 5, 6, 1, 8, 9, 10, 8, 12, 13, 0, 0, 15, 16, 14, 19, 14, 11, 22, 11)

# SMPL's 24 joints (smplx joint_names.py, JOINT_NAMES_DICT["smpl"]) and its kinematic tree.
SMPL24_NAMES = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2", "left_ankle",
    "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar", "right_collar", "head",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hand", "right_hand",
)  # fmt: skip
SMPL24_PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21)

# kinepose's humanoid preset (DeepMimic, pybullet humanoid.urdf joint order; checked against the preset in
# the tests, which needs pybullet; the layout itself does not).
HUMANOID_NAMES = (
    "root", "chest", "neck", "right_hip", "right_knee", "right_ankle", "right_shoulder", "right_elbow",
    "right_wrist", "left_hip", "left_knee", "left_ankle", "left_shoulder", "left_elbow", "left_wrist",
)  # fmt: skip
HUMANOID_PARENTS = (-1, 0, 1, 0, 3, 4, 1, 6, 7, 0, 9, 10, 1, 12, 13)

#: name -> (joint names, parents, aliases, source, one-line description)
LAYOUTS: dict[str, tuple[tuple[str, ...], tuple[int, ...], tuple[str, ...], str, str]] = {
    "coco17": (
        COCO17_NAMES, COCO17_PARENTS, ("coco", "coco_17", "mscoco"),
        "COCO keypoints, person_keypoints 'keypoints'/'skeleton' fields: https://cocodataset.org/#format-data",
        "COCO 17 body keypoints (most 2D detectors: Detectron2, MMPose, YOLO-pose, ViTPose)",
    ),
    "halpe26": (
        HALPE26_NAMES, HALPE26_PARENTS, ("halpe", "halpe_26", "alphapose26"),
        "Halpe FullBody (AlphaPose), 26 body keypoints: https://github.com/Fang-Haoshu/Halpe-FullBody",
        "COCO 17 + head, neck, hip and 6 foot points (AlphaPose, RTMPose body8-halpe26)",
    ),
    "h36m17": (
        H36M17_NAMES, H36M17_PARENTS, ("h36m", "human36m", "kinepose_h36m17"),
        "Human3.6M (Ionescu et al., TPAMI 2014), 17-joint subset of VideoPose3D common/h36m_dataset.py "
        "(https://github.com/facebookresearch/VideoPose3D), also MotionBERT's order; names as kinepose's h36m17",
        "Human3.6M 17 joints, the 3D lifting order (VideoPose3D, MotionBERT); = kinepose preset h36m17",
    ),
    "mediapipe_pose": (
        MEDIAPIPE_POSE_NAMES, MEDIAPIPE_POSE_PARENTS, ("mp33", "mediapipe33", "mediapipe_pose33", "blazepose"),
        "MediaPipe PoseLandmark / POSE_CONNECTIONS (mediapipe/python/solutions/pose.py): "
        "https://ai.google.dev/edge/mediapipe/solutions/vision/pose_landmarker",
        "MediaPipe Pose (BlazePose) 33 landmarks",
    ),
    "mediapipe_hand": (
        MEDIAPIPE_HAND_NAMES, HAND21_PARENTS, ("hand21", "openpose_hand", "mp_hand", "mediapipe_hand21"),
        "MediaPipe HandLandmark (mediapipe/python/solutions/hands.py); OpenPose doc/02_output.md hand format",
        "21 hand points, MediaPipe names (OpenPose's hand has the same order)",
    ),
    "body25": (
        BODY25_NAMES, BODY25_PARENTS, ("body_25", "openpose_body25", "openpose"),
        "OpenPose POSE_BODY_25_BODY_PARTS: "
        "https://github.com/CMU-Perceptual-Computing-Lab/openpose/blob/master/doc/02_output.md",
        "OpenPose BODY_25 (COCO body + neck, mid-hip and 6 foot points, OpenPose order)",
    ),
    "smpl24": (
        SMPL24_NAMES, SMPL24_PARENTS, ("smpl", "smpl_24"),
        "SMPL (Loper et al., SIGGRAPH Asia 2015) joints as in smplx/joint_names.py: https://github.com/vchoutas/smplx",
        "SMPL body model joints (also the first 24 of SMPL-H/SMPL-X minus hands)",
    ),
    "humanoid": (
        HUMANOID_NAMES, HUMANOID_PARENTS, ("deepmimic", "kinepose_humanoid"),
        "kinepose preset 'humanoid': DeepMimic (Peng et al., SIGGRAPH 2018) humanoid.urdf as shipped by pybullet",
        "kinepose's DeepMimic humanoid, 15 points",
    ),
    "kinepose_hand21": (
        HAND21_NAMES, HAND21_PARENTS, ("hand21_preset",),
        "kinepose preset 'hand21' (the MediaPipe order, kinepose names)",
        "kinepose's hand21 preset names (thumb_cmc..., index_mcp..., little_tip)",
    ),
}  # fmt: skip

# ------------------------------------------------------------------------------------------ conversion tables


def _same(names: tuple[str, ...], exclude: tuple[str, ...] = ()) -> Table:
    """Identity rows for joints that both layouts call the same."""
    return {n: ((n, 1.0),) for n in names if n not in exclude}


def _mid(a: str, b: str) -> tuple[tuple[str, float], ...]:
    return ((a, 0.5), (b, 0.5))


_LIMBS = tuple(
    f"{s}_{j}" for s in ("left", "right") for j in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle")
)  # fmt: skip
_H36M_LIMBS: Table = {  # H36M's limb joints from joints called as in COCO (H36M "foot" is the ankle)
    f"{s}_{j}": ((f"{s}_{j.replace('foot', 'ankle')}", 1.0),)
    for s in ("left", "right")
    for j in ("hip", "knee", "foot", "shoulder", "elbow", "wrist")
}

_HAND_PAIRS = tuple(zip(HAND21_NAMES, MEDIAPIPE_HAND_NAMES, strict=True))  # (kinepose name, MediaPipe name)

#: (source, target) -> table. Composite conversions are in :data:`ROUTES`.
MAPPINGS: dict[tuple[str, str], Table] = {
    # MotionBERT lib/data/dataset_action.py coco2h36m (MotionBERT issues #10, #88): pelvis = mid-hips,
    # thorax = mid-shoulders, spine = midpoint of the two, neck/nose = nose, head = mid-eyes.
    ("coco17", "h36m17"): {
        **_H36M_LIMBS,
        "hip": _mid("left_hip", "right_hip"),
        "spine": (("left_hip", 0.25), ("right_hip", 0.25), ("left_shoulder", 0.25), ("right_shoulder", 0.25)),
        "thorax": _mid("left_shoulder", "right_shoulder"),
        "neck_nose": (("nose", 1.0),),
        "head": _mid("left_eye", "right_eye"),
    },
    # MotionBERT lib/data/dataset_wild.py halpe2h36m (MotionBERT issues #16, #83): Halpe's own hip, neck, head.
    ("halpe26", "h36m17"): {
        **_H36M_LIMBS,
        "hip": (("hip", 1.0),),
        "spine": _mid("neck", "hip"),
        "thorax": (("neck", 1.0),),
        "neck_nose": (("nose", 1.0),),
        "head": (("head", 1.0),),
    },
    ("halpe26", "coco17"): _same(COCO17_NAMES),
    ("mediapipe_pose", "coco17"): _same(COCO17_NAMES),
    ("body25", "coco17"): _same(COCO17_NAMES),
    # As Halpe: OpenPose's own mid-hip and neck (trained as the mid-hips and the mid-shoulders).
    ("body25", "h36m17"): {
        **_H36M_LIMBS,
        "hip": (("mid_hip", 1.0),),
        "spine": _mid("neck", "mid_hip"),
        "thorax": (("neck", 1.0),),
        "neck_nose": (("nose", 1.0),),
        "head": _mid("left_eye", "right_eye"),
    },
    # The inverse of coco17 -> h36m17 where one exists: nose = neck/nose; eyes and ears cannot be formed.
    ("h36m17", "coco17"): {
        **{n: ((n.replace("ankle", "foot"), 1.0),) for n in _LIMBS},
        "nose": (("neck_nose", 1.0),),
    },
    # Approximate (joint centres of a body model, not H36M's markers; the usual exact route regresses H36M
    # joints from the SMPL mesh with J_regressor_h36m). Matched by anatomy: H36M's spine, thorax and
    # neck/nose are its mocap Spine1, Neck and Head joints (VideoPose3D keeps 12, 13, 14 of 32): here SMPL's
    # spine2 (mid-back), neck (base of the neck) and head (skull base). H36M's head is the head-top end site,
    # extrapolated one neck->head length above SMPL's head joint (weights 2 and -1).
    ("smpl24", "h36m17"): {
        **_H36M_LIMBS,
        "hip": (("pelvis", 1.0),),
        "spine": (("spine2", 1.0),),
        "thorax": (("neck", 1.0),),
        "neck_nose": (("head", 1.0),),
        "head": (("head", 2.0), ("neck", -1.0)),
    },
    ("smpl24", "coco17"): _same(_LIMBS),
    # Onto kinepose's DeepMimic humanoid: root = pelvis, chest ~ mid-back, neck = base of the neck.
    ("h36m17", "humanoid"): {
        **{n: ((n.replace("ankle", "foot"), 1.0),) for n in _LIMBS},
        "root": (("hip", 1.0),),
        "chest": (("spine", 1.0),),
        "neck": (("thorax", 1.0),),
    },
    ("smpl24", "humanoid"): {
        **_same(_LIMBS),
        "root": (("pelvis", 1.0),),
        "chest": (("spine2", 1.0),),
        "neck": (("neck", 1.0),),
    },
    # Same order, other names: a renaming, both ways.
    ("mediapipe_hand", "kinepose_hand21"): {k: ((m, 1.0),) for k, m in _HAND_PAIRS},
    ("kinepose_hand21", "mediapipe_hand"): {m: ((k, 1.0),) for k, m in _HAND_PAIRS},
}  # fmt: skip

#: (source, target) -> intermediate layouts, for conversions composed from the tables above.
ROUTES: dict[tuple[str, str], tuple[str, ...]] = {
    ("mediapipe_pose", "h36m17"): ("coco17",),
    ("coco17", "humanoid"): ("h36m17",),
    ("halpe26", "humanoid"): ("h36m17",),
    ("mediapipe_pose", "humanoid"): ("coco17", "h36m17"),
    ("body25", "humanoid"): ("h36m17",),
}

# ----------------------------------------------------------------------------------------------- rest poses

#: A plausible adult rest pose for layout_skeleton: standing, arms down, palms in, metres; Y up, facing +z, the
#: subject's left at +x (the h36m17 preset's frame), mid-hips at the origin. Left side only (right = mirror).
REST_LEFT: dict[str, tuple[float, float, float]] = {
    "hip": (0.0, 0.0, 0.0), "mid_hip": (0.0, 0.0, 0.0), "root": (0.0, 0.0, 0.0),
    "spine": (0.0, 0.23, -0.01), "chest": (0.0, 0.23, -0.01), "thorax": (0.0, 0.47, 0.0),
    "neck": (0.0, 0.50, -0.01), "neck_nose": (0.0, 0.58, 0.03), "head": (0.0, 0.70, 0.0),
    "nose": (0.0, 0.60, 0.10),
    "left_eye_inner": (0.015, 0.635, 0.085), "left_eye": (0.035, 0.635, 0.08),
    "left_eye_outer": (0.055, 0.635, 0.07), "left_ear": (0.075, 0.615, 0.0), "mouth_left": (0.025, 0.565, 0.085),
    "left_shoulder": (0.17, 0.45, 0.0), "left_elbow": (0.19, 0.17, -0.02), "left_wrist": (0.20, -0.08, 0.0),
    "left_pinky": (0.21, -0.16, -0.02), "left_index": (0.20, -0.17, 0.03), "left_thumb": (0.19, -0.12, 0.05),
    "left_hip": (0.10, 0.0, 0.0), "left_knee": (0.10, -0.45, 0.01), "left_ankle": (0.10, -0.88, -0.01),
    "left_foot": (0.10, -0.88, -0.01), "left_heel": (0.10, -0.93, -0.06), "left_big_toe": (0.09, -0.95, 0.16),
    "left_small_toe": (0.14, -0.95, 0.12), "left_foot_index": (0.11, -0.95, 0.16),
}  # fmt: skip

#: Per-layout rest positions where a shared name means another point (SMPL's head is the skull base, its
#: foot the ball of the foot) or the point exists only there.
REST_OVERRIDES: dict[str, dict[str, tuple[float, float, float]]] = {
    "smpl24": {
        "pelvis": (0.0, 0.09, -0.01), "spine1": (0.0, 0.20, -0.02), "spine2": (0.0, 0.32, 0.0),
        "spine3": (0.0, 0.38, 0.0), "head": (0.0, 0.60, 0.0), "left_collar": (0.07, 0.46, 0.0),
        "left_foot": (0.11, -0.95, 0.12), "left_hand": (0.20, -0.16, 0.0),
    },
}  # fmt: skip
