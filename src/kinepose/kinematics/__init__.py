"""Kinematics on a skeleton: forward kinematics, analytic IK, least-squares fitting with a pose prior, filters.

- :mod:`kinepose.kinematics.fk`: forward kinematics, bone lengths, retargeting, hinge projection.
- :mod:`kinepose.kinematics.ik`: analytic inverse kinematics for any skeleton (a compiled kernel), with
  local and global determinacy, missing joints, hinge limits and zero-length bones.
- :mod:`kinepose.kinematics.fitting`: Levenberg-Marquardt / MAP skeleton fitting, Gaussian pose prior.
- :mod:`kinepose.kinematics.filters`: moving-average baselines.

Imports torch, numpy, numba and roma only: no Lightning, matplotlib or pybullet.
"""

from kinepose.kinematics.filters import moving_average
from kinepose.kinematics.fitting import PosePrior, bone_length_deviation, estimate_noise_std, fit_skeleton
from kinepose.kinematics.fk import (
    FKOutput,
    bone_lengths,
    forward_kinematics,
    forward_kinematics_matrix,
    hinge_angles,
    project_to_joint_kinds,
    random_pose,
    rest_pose,
    retarget,
)
from kinepose.kinematics.ik import (
    IKResult,
    analytic_ik,
    determined_mask,
    ik_plan,
    moving_zero_length_joints,
    observable_mask,
    zero_length_joints,
)

__all__ = [
    "FKOutput",
    "IKResult",
    "PosePrior",
    "analytic_ik",
    "bone_length_deviation",
    "bone_lengths",
    "determined_mask",
    "estimate_noise_std",
    "fit_skeleton",
    "forward_kinematics",
    "forward_kinematics_matrix",
    "hinge_angles",
    "ik_plan",
    "moving_average",
    "moving_zero_length_joints",
    "observable_mask",
    "project_to_joint_kinds",
    "random_pose",
    "rest_pose",
    "retarget",
    "zero_length_joints",
]
