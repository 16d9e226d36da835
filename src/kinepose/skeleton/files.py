"""Skeletons as plain data: ``skeleton_to_dict`` and ``skeleton_from_dict`` (model files, ONNX metadata)."""

from __future__ import annotations

import numpy as np

from kinepose.skeleton.core import Skeleton


def skeleton_to_dict(skeleton: Skeleton) -> dict:
    return {
        "name": skeleton.name,
        "joint_names": list(skeleton.joint_names),
        "parents": list(skeleton.parents),
        "offsets": np.asarray(skeleton.offsets).tolist(),
        "kinds": list(skeleton.kinds),
        "hinge_axes": np.asarray(skeleton.hinge_axes).tolist(),
        "limits": np.asarray(skeleton.limits).tolist(),
        "left_right": [list(p) for p in skeleton.left_right],
        "lateral_axis": skeleton.lateral_axis,
    }


def skeleton_from_dict(d: dict) -> Skeleton:
    from kinepose.skeleton.presets import get_skeleton, list_skeletons

    sk = Skeleton(**{**d, "left_right": [tuple(p) for p in d["left_right"]]})
    if d["name"] in list_skeletons():  # share the preset object (and its caches) when it is the same
        preset = get_skeleton(d["name"])
        a, b = skeleton_to_dict(preset), skeleton_to_dict(sk)
        if all(np.allclose(np.asarray(a[k], float), np.asarray(b[k], float), equal_nan=True)
               for k in ("offsets", "hinge_axes", "limits")) and all(
            a[k] == b[k] for k in ("joint_names", "parents", "kinds", "left_right", "lateral_axis")
        ):  # fmt: skip
            return preset
    return sk
