"""A 21-joint right hand in the MediaPipe / OpenPose order.

Order: wrist; then thumb (CMC, MCP, IP, tip), index, middle, ring, little (MCP, PIP, DIP, tip each).
Rest pose: open flat hand, wrist at the origin, fingers along +y, thumb side +x, palm facing +z
(so finger flexion turns the fingers towards +z). Adult proportions (phalanx lengths after
Buryanov & Kotiuk 2010, rounded): hand length (wrist to middle tip) about 19 cm.

Joint kinds follow anatomy: the thumb CMC and the finger MCP joints are ball joints (flexion,
abduction, a little axial roll); thumb MCP and IP and finger PIP and DIP are hinges with flexion limits;
tips are end sites.
"""

from __future__ import annotations

import numpy as np

from kinepose.skeleton.core import Skeleton

FINGERS = ("thumb", "index", "middle", "ring", "little")
HAND21_NAMES = (
    "wrist",
    *(
        f"{f}_{s}"
        for f in FINGERS
        for s in (("cmc", "mcp", "ip", "tip") if f == "thumb" else ("mcp", "pip", "dip", "tip"))
    ),
)

# MCP (thumb: CMC) position relative to the wrist, metres.
_BASES = {
    "thumb": (0.022, 0.028, 0.008),
    "index": (0.024, 0.094, 0.0),
    "middle": (0.003, 0.097, 0.0),
    "ring": (-0.016, 0.090, 0.0),
    "little": (-0.032, 0.080, 0.0),
}
# Bone lengths from the base joint outwards: (base->1, 1->2, 2->tip), metres.
_LENGTHS = {
    "thumb": (0.046, 0.032, 0.027),
    "index": (0.040, 0.024, 0.021),
    "middle": (0.045, 0.028, 0.022),
    "ring": (0.042, 0.027, 0.022),
    "little": (0.033, 0.020, 0.019),
}
# Rest direction of each finger (unnormalized); fingers splay slightly, the thumb points out and forward.
_DIRS = {
    "thumb": (0.62, 0.70, 0.35),
    "index": (0.10, 1.0, 0.0),
    "middle": (0.0, 1.0, 0.0),
    "ring": (-0.08, 1.0, 0.0),
    "little": (-0.18, 1.0, 0.0),
}
# The direction each finger flexes towards: the palm (+z), for the thumb across the palm.
_FLEX_TOWARDS = {"thumb": (-0.55, 0.0, 0.85)}
# Hinge limits (lower, upper) in degrees for the two distal joints of each finger.
_HINGE_LIMITS = {"thumb": ((0.0, 70.0), (0.0, 85.0))}
_FINGER_HINGE_LIMITS = ((0.0, 110.0), (0.0, 90.0))


def _unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


def hand21() -> Skeleton:
    """The 21-joint right hand (MediaPipe order), metres, Y-up, palm facing +z."""
    names = list(HAND21_NAMES)
    parents, offsets, kinds, axes, limits = [-1], [np.zeros(3)], ["ball"], [np.zeros(3)], [[np.nan, np.nan]]
    for f in FINGERS:
        d = _unit(_DIRS[f])
        n = _unit(_FLEX_TOWARDS.get(f, (0.0, 0.0, 1.0)))
        n = _unit(n - d * (n @ d))  # flexion direction, orthogonal to the finger
        axis = np.cross(d, n)  # rotating d about this axis by +angle turns it towards n
        base = len(offsets)
        hinge_limits = _HINGE_LIMITS.get(f, _FINGER_HINGE_LIMITS)
        parents += [0, base, base + 1, base + 2]
        offsets += [np.array(_BASES[f])] + [length * d for length in _LENGTHS[f]]
        kinds += ["ball", "hinge", "hinge", "end"]
        axes += [np.zeros(3), axis, axis, np.zeros(3)]
        limits += [[np.nan, np.nan], *np.radians(hinge_limits).tolist(), [np.nan, np.nan]]
    return Skeleton("hand21", names, parents, np.array(offsets), kinds, np.array(axes), np.array(limits),
                    left_right=(), lateral_axis=0)  # fmt: skip
