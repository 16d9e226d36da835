"""File formats, one reader/writer per format: joint files (``.npz``, ``.npy``, ``.csv``), rotation files
(``.npz``, ``.csv``, ``.json``) and BVH. :mod:`kinepose.data.formats.io` documents every layout."""

from kinepose.data.formats.bvh import BVH, read_bvh, write_bvh, write_motion_bvh
from kinepose.data.formats.io import (
    SUPPORTED_INPUTS,
    SUPPORTED_OUTPUTS,
    JointsFile,
    RotationsFile,
    load_joints,
    load_rotations,
    save_joints,
    save_rotations,
)

__all__ = [
    "BVH",
    "SUPPORTED_INPUTS",
    "SUPPORTED_OUTPUTS",
    "JointsFile",
    "RotationsFile",
    "load_joints",
    "load_rotations",
    "read_bvh",
    "save_joints",
    "save_rotations",
    "write_bvh",
    "write_motion_bvh",
]
