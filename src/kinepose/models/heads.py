"""Rotation output heads: features -> unit quaternions (w, x, y, z).

``quat``: 4 numbers per joint through ``tanh`` then normalized (the research notes' choice).
``6d``: 6 numbers per joint, the first two matrix columns, Gram-Schmidt (Zhou et al.).
``euler``: 3 angles per joint, ``pi * tanh`` (radians), intrinsic ``XYZ`` order.
"""

from __future__ import annotations

import torch
from torch import nn

from kinepose.errors import KineposeError
from kinepose.geometry.rotations import euler_to_quat, quat_canonical, quat_normalize, sixd_to_quat

__all__ = ["HEAD_KINDS", "RotationHead", "rotation_dim"]

HEAD_KINDS = ("quat", "6d", "euler")


def rotation_dim(kind: str) -> int:
    if kind not in HEAD_KINDS:
        raise KineposeError(f"unknown rotation head {kind!r}; choose one of {', '.join(HEAD_KINDS)}")
    return {"quat": 4, "6d": 6, "euler": 3}[kind]


class RotationHead(nn.Module):
    """Linear layer + rotation parametrization.

    Args:
        in_features: feature size; input (B, F) if ``per_joint`` is False, else (B, R, F).
        num_rotations: R, the number of rotations to predict.
        kind: ``quat``, ``6d`` or ``euler``.
        per_joint: share one linear layer across joints (input (B, R, F)) instead of one flat layer.

    The layer is initialized so that the initial output is close to the identity rotation.
    """

    def __init__(self, in_features: int, num_rotations: int, kind: str = "6d", per_joint: bool = False) -> None:
        super().__init__()
        self.kind, self.R, self.per_joint = kind, num_rotations, per_joint
        d = rotation_dim(kind)
        self.dim = d
        self.linear = nn.Linear(in_features, d if per_joint else d * num_rotations)
        with torch.no_grad():
            self.linear.weight.mul_(0.1)
            ident = {"quat": [1.0, 0, 0, 0], "6d": [1.0, 0, 0, 0, 1.0, 0], "euler": [0.0, 0, 0]}[kind]
            bias = torch.tensor(ident) * (0.5 if kind == "quat" else 1.0)
            self.linear.bias.copy_(bias if per_joint else bias.repeat(num_rotations))

    def raw(self, features: torch.Tensor) -> torch.Tensor:
        """(B, R, D) unconstrained outputs."""
        y = self.linear(features)
        return y if self.per_joint else y.reshape(*y.shape[:-1], self.R, self.dim)

    def to_quat(self, raw: torch.Tensor) -> torch.Tensor:
        """(B, R, D) raw outputs -> (B, R, 4) canonical unit quaternions."""
        if self.kind == "quat":
            return quat_canonical(quat_normalize(torch.tanh(raw)))
        if self.kind == "6d":
            return sixd_to_quat(raw)
        return euler_to_quat(torch.pi * torch.tanh(raw), "XYZ")

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.to_quat(self.raw(features))
