"""Shared pytest fixtures: a dtype matrix and a seeded random generator."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(params=[torch.float32, torch.float64], ids=["float32", "float64"])
def dtype(request: pytest.FixtureRequest) -> torch.dtype:
    """Run a test once per floating dtype."""
    return request.param


@pytest.fixture
def gen() -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with 0, fresh for every test (pass it as ``generator=``)."""
    return torch.Generator().manual_seed(0)
