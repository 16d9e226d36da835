"""Human3.6M's 17-joint skeleton (the common 3D human pose benchmark layout).

Order: hip (pelvis, root), right hip, knee, foot, left hip, knee, foot, spine, thorax, neck/nose, head,
left shoulder, elbow, wrist, right shoulder, elbow, wrist. Rest pose: standing, arms down, Y-up,
facing +z, the subject's left side at +x. Average adult bone lengths, metres.
"""

from __future__ import annotations

import numpy as np

from kinepose.skeleton.core import Skeleton

H36M17_NAMES = (
    "hip", "right_hip", "right_knee", "right_foot", "left_hip", "left_knee", "left_foot",
    "spine", "thorax", "neck_nose", "head",
    "left_shoulder", "left_elbow", "left_wrist", "right_shoulder", "right_elbow", "right_wrist",
)  # fmt: skip
H36M17_PARENTS = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)


def h36m17() -> Skeleton:
    """Human3.6M 17 joints; knees and elbows are hinges (flexion 0 to 150 degrees)."""
    off = {
        "hip": (0, 0, 0), "right_hip": (-0.13, 0, 0), "right_knee": (0, -0.45, 0), "right_foot": (0, -0.44, 0),
        "left_hip": (0.13, 0, 0), "left_knee": (0, -0.45, 0), "left_foot": (0, -0.44, 0),
        "spine": (0, 0.23, 0), "thorax": (0, 0.25, 0), "neck_nose": (0, 0.11, 0.02), "head": (0, 0.11, -0.02),
        "left_shoulder": (0.15, -0.02, 0), "left_elbow": (0, -0.28, 0), "left_wrist": (0, -0.25, 0),
        "right_shoulder": (-0.15, -0.02, 0), "right_elbow": (0, -0.28, 0), "right_wrist": (0, -0.25, 0),
    }  # fmt: skip
    kinds, axes, limits = [], [], []
    for n in H36M17_NAMES:
        if n.endswith(("foot", "wrist")) or n == "head":
            kinds.append("end")
        elif n.endswith(("knee", "elbow")):
            kinds.append("hinge")
        else:
            kinds.append("ball")
        # Knees flex backwards (-z): +angle about +x; elbows flex forwards (+z): +angle about -x.
        axes.append((1, 0, 0) if n.endswith("knee") else (-1, 0, 0) if n.endswith("elbow") else (0, 0, 0))
        limits.append(np.radians([0, 150]) if kinds[-1] == "hinge" else [np.nan, np.nan])
    idx = {n: i for i, n in enumerate(H36M17_NAMES)}
    pairs = [(idx[n], idx[n.replace("left_", "right_")]) for n in H36M17_NAMES if n.startswith("left_")]
    return Skeleton("h36m17", H36M17_NAMES, H36M17_PARENTS, np.array([off[n] for n in H36M17_NAMES], float),
                    kinds, np.array(axes, float), np.array(limits), pairs, lateral_axis=0)  # fmt: skip
