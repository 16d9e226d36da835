"""A head: one ball joint (its rotation is the head pose) and three end sites that make it observable.

Y-up, facing +z, the subject's left at +x. Head pose angles are intrinsic ``YXZ`` Euler angles of the
head joint's rotation: yaw about the vertical y, then pitch about the lateral x, then roll about the
forward z (see :data:`HEAD_EULER_ORDER`).
"""

from __future__ import annotations

import numpy as np

from kinepose.skeleton.core import Skeleton

HEAD_EULER_ORDER = "YXZ"


def head() -> Skeleton:
    """Head centre (ball joint, root) with nose and ear end sites, metres."""
    names = ("head", "nose", "left_ear", "right_ear")
    offsets = np.array([[0, 0, 0], [0, -0.02, 0.10], [0.075, 0, 0], [-0.075, 0, 0]], float)
    return Skeleton("head", names, (-1, 0, 0, 0), offsets, ("ball", "end", "end", "end"),
                    left_right=((2, 3),), lateral_axis=0)  # fmt: skip
