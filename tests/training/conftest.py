"""Fixtures of the head-pose training tests: a stand-in image network and a spy on the training targets."""

from __future__ import annotations

import pytest
import torch

from kinepose.models.headpose.landmarks import HeadPoseOutput


class TinyImageNet(torch.nn.Module):
    """A stand-in image network (no torchvision needed): pooled pixels -> ypr, face, pose."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(3 * 16, 3 + 1404 + 99)

    def forward(self, x: torch.Tensor) -> HeadPoseOutput:
        h = self.lin(torch.nn.functional.adaptive_avg_pool2d(x, 4).flatten(1))
        return HeadPoseOutput(h[:, :3], h[:, 3:1407], h[:, 1407:])


@pytest.fixture
def tiny_image_net() -> type[TinyImageNet]:
    return TinyImageNet


@pytest.fixture
def loss_targets(monkeypatch) -> list[torch.Tensor]:
    """Every batch's (yaw, pitch, roll) targets as ``fit_headpose`` hands them to its loss, appended per step."""
    import kinepose.training.headpose as th

    seen: list[torch.Tensor] = []
    real = th.angle_l1

    def spy(pred, target):
        seen.append(target.detach().clone())
        return real(pred, target)

    monkeypatch.setattr(th, "angle_l1", spy)
    return seen
