"""Head pose from images: yaw, pitch and roll (and the rotation) of a head, for cervical range of motion.

Three models, one per approach of the research notes, each beside the others in ``benchmarks/headpose.py``:

- ``headpose_dual`` (:class:`HeadPoseDual`): the notes' dual-branch network on an image backbone (vision extra);
- ``headpose_landmarks`` (:class:`LandmarkMLP`): MediaPipe FaceMesh 468 + Pose 33 landmarks -> MLP;
- ``headpose_geometric`` (:class:`GeometricHeadPose`): no learning, a Kabsch fit of the landmarks to a mean face.

Angles follow :mod:`kinepose.geometry.headpose` (yaw left, pitch up, roll towards the left shoulder positive).
"""

from __future__ import annotations

from kinepose.models.headpose.dual import HeadPoseDual, create_headpose_dual
from kinepose.models.headpose.geometric import GeometricHeadPose
from kinepose.models.headpose.landmarks import (
    FACE_DIM,
    POSE_DIM,
    HeadPoseOutput,
    LandmarkMLP,
    landmark_vector,
    normalize_face,
    normalize_pose,
)

__all__ = [
    "FACE_DIM",
    "HEADPOSE_MODELS",
    "POSE_DIM",
    "GeometricHeadPose",
    "HeadPoseDual",
    "HeadPoseOutput",
    "LandmarkMLP",
    "create_headpose_dual",
    "landmark_vector",
    "normalize_face",
    "normalize_pose",
]

#: The registered head-pose models.
HEADPOSE_MODELS = {
    "headpose_dual": HeadPoseDual,
    "headpose_landmarks": LandmarkMLP,
    "headpose_geometric": GeometricHeadPose,
}
