"""Learned inverse kinematics: joint positions (windows of frames) -> per-joint rotations.

``iknet`` (MLP), ``seed0`` (the research notes' network, mixers over joints), ``sequence`` (Transformer or
RNN over frames) and ``hybrid`` (geometry plus learning). Importing this package registers them.
"""

from kinepose.models.ik import hybrid, iknet, seed0, sequence

__all__ = ["hybrid", "iknet", "seed0", "sequence"]
