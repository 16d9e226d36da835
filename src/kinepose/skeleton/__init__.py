"""Skeletons: the :class:`Skeleton` type, presets (``get_skeleton``), and skeletons as plain data.

- :mod:`kinepose.skeleton.core`: names, parents (root -1), joint kinds, offsets, hinge axes and limits.
- :mod:`kinepose.skeleton.presets`: humanoid (DeepMimic, from pybullet's URDF), hand21, h36m17, head.
- :mod:`kinepose.skeleton.files`: ``skeleton_to_dict`` / ``skeleton_from_dict`` (model files, ONNX metadata).
"""

from kinepose.skeleton.core import JOINT_KINDS, Skeleton
from kinepose.skeleton.files import skeleton_from_dict, skeleton_to_dict
from kinepose.skeleton.presets import get_skeleton, h36m17, hand21, head, humanoid, list_skeletons

__all__ = [
    "JOINT_KINDS",
    "Skeleton",
    "get_skeleton",
    "h36m17",
    "hand21",
    "head",
    "humanoid",
    "list_skeletons",
    "skeleton_from_dict",
    "skeleton_to_dict",
]
