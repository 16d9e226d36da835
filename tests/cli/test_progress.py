"""Progress bars: on a terminal, off in CI, off with --quiet, forced by KINEPOSE_PROGRESS."""

from __future__ import annotations

import io
import sys

import pytest

from kinepose._progress import progress_enabled


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def tty(monkeypatch):
    """A clean environment; each test then puts a terminal in place of stderr itself, in its body (pytest's
    output capture replaces ``sys.stderr`` again between a fixture's setup and the test)."""
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("KINEPOSE_PROGRESS", raising=False)
    return lambda: monkeypatch.setattr(sys, "stderr", _Tty())


def test_terminal_shows_bars(tty):
    tty()
    assert progress_enabled()
    assert not progress_enabled(False)  # --quiet wins


@pytest.mark.parametrize("value", ["true", "1", "yes"])
def test_ci_hides_bars(tty, monkeypatch, value):
    monkeypatch.setenv("CI", value)
    tty()
    assert not progress_enabled()


def test_ci_false_keeps_bars(tty, monkeypatch):
    monkeypatch.setenv("CI", "false")
    tty()
    assert progress_enabled()


def test_redirected_stderr_hides_bars(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("KINEPOSE_PROGRESS", raising=False)
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert not progress_enabled()


def test_forced(monkeypatch):
    monkeypatch.setenv("CI", "true")
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    monkeypatch.setenv("KINEPOSE_PROGRESS", "1")
    assert progress_enabled()
    assert not progress_enabled(False)
    monkeypatch.setenv("KINEPOSE_PROGRESS", "0")
    monkeypatch.setattr(sys, "stderr", _Tty())
    assert not progress_enabled()


def test_evaluate_draws_a_bar_per_solver(monkeypatch, capsys):
    """`evaluate_solver(progress=True)` writes a tqdm bar to stderr naming the solver and the noise."""
    from kinepose.data.sources.deepmimic import load_deepmimic
    from kinepose.evaluation import analytic_solver, evaluate_solver

    m = load_deepmimic("walk")
    evaluate_solver(analytic_solver(m.skeleton), [m], "analytic IK", noise_mm=5, progress=True)
    err = capsys.readouterr().err
    assert "analytic IK, 5 mm" in err and "/1 [" in err and "clip/s" in err
    evaluate_solver(analytic_solver(m.skeleton), [m], "quiet", progress=False)
    assert capsys.readouterr().err == ""
