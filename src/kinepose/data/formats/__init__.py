"""File formats, one reader/writer per format: joint files (``.npz``, ``.npy``, ``.csv``), rotation files
(``.npz``, ``.csv``, ``.json``) and BVH. :mod:`kinepose.data.formats.io` documents every layout. Dataset files:
Ego-Exo4D hand poses (:mod:`~kinepose.data.formats.egoexo4d`), VideoPose3D's Human3.6M
(:mod:`~kinepose.data.formats.h36m_vp3d`), COCO keypoints (:mod:`~kinepose.data.formats.coco_keypoints`)."""

from kinepose.data.formats.biwi import BiwiSet, biwi_split, leave_subjects_out, load_biwi
from kinepose.data.formats.bvh import BVH, read_bvh, write_bvh, write_motion_bvh
from kinepose.data.formats.coco_keypoints import CocoKeypoints, load_coco_keypoints
from kinepose.data.formats.egoexo4d import EgoExoHandClip, load_egoexo4d_hands
from kinepose.data.formats.egoexo4d_images import EgoExoHandCrops, egoexo4d_hand_crops
from kinepose.data.formats.h36m_vp3d import H36MSubjects, load_h36m_2d, load_h36m_3d
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
    "BiwiSet",
    "CocoKeypoints",
    "EgoExoHandClip",
    "EgoExoHandCrops",
    "H36MSubjects",
    "JointsFile",
    "RotationsFile",
    "biwi_split",
    "egoexo4d_hand_crops",
    "leave_subjects_out",
    "load_biwi",
    "load_coco_keypoints",
    "load_egoexo4d_hands",
    "load_h36m_2d",
    "load_h36m_3d",
    "load_joints",
    "load_rotations",
    "read_bvh",
    "save_joints",
    "save_rotations",
    "write_bvh",
    "write_motion_bvh",
]
