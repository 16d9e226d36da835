"""2D-to-3D lifters: a registry of families (``create_lifter(name, skeleton, **config)``, ``list_lifters()``).

- ``mlp``: a Martinez-style residual MLP (single frame).
- ``pose_transformer``: the research notes' PoseTransformer, one token per joint (single frame).
- ``tcn``: VideoPose3D's temporal convolutional model (27 to 243 frames, causal or centered).
- ``skeleton_lifter``: ours; the output is a skeleton (rotations, bone lengths) decoded by forward kinematics.
- ``knn``: no network: the 3D pose of the nearest training 2D pose (training statistics), the baseline every
  learned lifter is shown beside.

Importing this package registers every built-in family.
"""

from kinepose.models.lifting import knn, mlp, pose_transformer, skeleton_lifter, tcn  # noqa: F401  (importing a family registers it)
from kinepose.models.lifting.base import Lifter, LiftOutput
from kinepose.models.lifting.registry import create_lifter, list_lifters, register_lifter

__all__ = ["LiftOutput", "Lifter", "create_lifter", "list_lifters", "register_lifter"]
