"""Learned inverse kinematics: joint positions (windows of frames) -> per-joint rotations.

``iknet`` (MLP), ``seed0`` (the research notes' network, mixers over joints), ``sequence`` (Transformer or
RNN over frames), ``hybrid`` (geometry plus learning) and ``twist`` (analytic IK plus learned twists of the
joints positions leave open). Importing this package registers them.
"""

from kinepose.models.ik import hybrid, iknet, seed0, sequence, twist

__all__ = ["hybrid", "iknet", "seed0", "sequence", "twist"]
