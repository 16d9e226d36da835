"""Shared pytest fixtures: a dtype matrix and a seeded random generator; the ``vision`` marker (skipped where
torchvision does not import)."""

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


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """The suite's tensors are small: one intra-op thread is faster than two on a 2-core machine and keeps
    timings stable when another process is busy."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _has_torchvision() -> bool:
    try:
        import torchvision  # noqa: F401
    except Exception:  # not installed, or PyPI's build that fails beside the small torch
        return False
    return True


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``vision`` are skipped, with the reason, where torchvision does not import."""
    marked = [item for item in items if item.get_closest_marker("vision") is not None]
    if marked and not _has_torchvision():
        skip = pytest.mark.skip(reason="torchvision (the vision extra) is not installed")
        for item in marked:
            item.add_marker(skip)
