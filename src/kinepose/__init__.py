"""kinepose: learned 3D pose and kinematics estimation.

Conventions (stated once, kept everywhere):

- Shapes are batch-first, features last: joints ``(..., J, 3)``, rotations ``(..., J, 4)``
  (quaternion), ``(..., J, 3, 3)`` (matrix) or ``(..., J, 6)`` (6D).
- Quaternions are ``(w, x, y, z)``, real part first, canonicalized to ``w >= 0``.
- Column vectors: ``p' = R @ p``. Local rotations are relative to the parent joint's frame.
- Units are metres and radians inside; millimetres and degrees only in reports.
- World frame is Y-up (as DeepMimic and BVH).
"""

from kinepose.errors import FileFormatError, KineposeError, NonFiniteError, ShapeError

__version__ = "0.1.0"

__all__ = ["FileFormatError", "KineposeError", "NonFiniteError", "ShapeError", "__version__"]
