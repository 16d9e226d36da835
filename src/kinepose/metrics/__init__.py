"""Pose-estimation metrics: MPJPE and its aligned variants, rotation errors, acceleration, 3D PCK/AUC.

Conventions (as everywhere in kinepose):

- Positions are metres, shape ``(..., J, 3)``; any number of leading dims, all of which are
  "samples" (per-sample alignments such as Procrustes run over the ``J`` points of each sample).
- Quaternions are ``(w, x, y, z)``, real part first, shape ``(..., J, 4)``.
- Outputs are metres and radians unless a ``degrees=True`` argument says otherwise.
- ``mask`` arguments are ``(..., J)`` visibility masks (bool, or non-negative floats used as
  weights) that broadcast against the joints' leading shape; means run over masked-in joints only.

Inputs may be numpy arrays or tensors, float32 or float64 (mixed inputs are promoted). Bad shapes
raise ``ShapeError``, NaN/inf raise ``NonFiniteError``; both name the argument and its shape.
Every function is pure and differentiable where the maths is.

Modules: :mod:`~kinepose.metrics.positions` (also the Ego-Exo4D hand protocol), :mod:`~kinepose.metrics.rotations`,
:mod:`~kinepose.metrics.temporal` (acceleration, MPJVE), :mod:`~kinepose.metrics.skeletal` (bone-length std).
"""

from kinepose.metrics.headpose import angle_error, headpose_report
from kinepose.metrics.positions import (
    auc_3d,
    egoexo4d_mpjpe,
    egoexo4d_pa_mpjpe,
    joint_errors,
    mpjpe,
    n_mpjpe,
    pa_mpjpe,
    pck_3d,
    procrustes_align,
)
from kinepose.metrics.rotations import euler_mae, geodesic_error
from kinepose.metrics.skeletal import BoneLengthStd, bone_length_std
from kinepose.metrics.temporal import acceleration_error, mpjve

__all__ = [
    "BoneLengthStd",
    "acceleration_error",
    "angle_error",
    "auc_3d",
    "bone_length_std",
    "egoexo4d_mpjpe",
    "egoexo4d_pa_mpjpe",
    "euler_mae",
    "geodesic_error",
    "headpose_report",
    "joint_errors",
    "mpjpe",
    "mpjve",
    "n_mpjpe",
    "pa_mpjpe",
    "pck_3d",
    "procrustes_align",
]
