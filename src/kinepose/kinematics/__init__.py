"""Kinematics on a skeleton: forward kinematics, analytic IK, least-squares fitting with a pose prior, filters.

- :mod:`kinepose.kinematics.fk`: forward kinematics, bone lengths, retargeting, hinge projection.
- :mod:`kinepose.kinematics.ik`: analytic inverse kinematics for any skeleton, with observability.
- :mod:`kinepose.kinematics.fitting`: Levenberg-Marquardt / MAP skeleton fitting, Gaussian pose prior.
- :mod:`kinepose.kinematics.filters`: moving-average baselines.

Imports torch, numpy and roma only: no Lightning, matplotlib or pybullet.
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
    rest_pose,
    retarget,
)
from kinepose.kinematics.ik import IKResult, analytic_ik, ik_plan, observable_mask

__all__ = [
    "FKOutput",
    "IKResult",
    "PosePrior",
    "analytic_ik",
    "bone_length_deviation",
    "bone_lengths",
    "estimate_noise_std",
    "fit_skeleton",
    "forward_kinematics",
    "forward_kinematics_matrix",
    "hinge_angles",
    "ik_plan",
    "moving_average",
    "observable_mask",
    "project_to_joint_kinds",
    "rest_pose",
    "retarget",
]
