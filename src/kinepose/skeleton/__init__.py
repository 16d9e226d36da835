"""Skeletons: the :class:`Skeleton` type, presets, skeleton files, URDF, keypoint layouts.

- :mod:`kinepose.skeleton.core`: names, parents (root -1), joint kinds, offsets, hinge axes and limits.
- :mod:`kinepose.skeleton.presets`: humanoid (DeepMimic, from pybullet's URDF), hand21, h36m17, head;
  ``load_skeleton(name_or_path)`` resolves a preset, a YAML/JSON skeleton file, a URDF or a BVH header.
- :mod:`kinepose.skeleton.skeleton_file`: the skeleton file format (``read_skeleton``/``write_skeleton``, see
  docs/skeleton_files.md); :mod:`kinepose.skeleton.files`: ``skeleton_to_dict``/``skeleton_from_dict`` (model
  files, ONNX metadata).
- :mod:`kinepose.skeleton.urdf`: skeletons from any URDF.
- :mod:`kinepose.skeleton.layouts`: named keypoint layouts (COCO-17, Halpe-26, H36M-17, MediaPipe Pose 33,
  hand 21, BODY_25, SMPL-24) and conversions between them (docs/layouts.md).
"""

from kinepose.skeleton.core import JOINT_KINDS, Skeleton
from kinepose.skeleton.files import skeleton_from_dict, skeleton_to_dict
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
from kinepose.skeleton.presets import (
    get_skeleton,
    h36m17,
    hand21,
    head,
    humanoid,
    list_skeletons,
    load_skeleton,
    register_skeleton_reader,
)
from kinepose.skeleton.skeleton_file import SkeletonFile, read_skeleton, read_skeleton_file, write_skeleton
from kinepose.skeleton.urdf import skeleton_from_urdf

__all__ = [
    "JOINT_KINDS",
    "Layout",
    "Skeleton",
    "SkeletonFile",
    "convert_layout",
    "get_layout",
    "get_skeleton",
    "h36m17",
    "hand21",
    "head",
    "humanoid",
    "layout_skeleton",
    "list_conversions",
    "list_layouts",
    "list_skeletons",
    "load_skeleton",
    "mapping",
    "missing_joints",
    "read_skeleton",
    "read_skeleton_file",
    "register_skeleton_reader",
    "skeleton_from_dict",
    "skeleton_from_urdf",
    "skeleton_to_dict",
    "write_skeleton",
]
