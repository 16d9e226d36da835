"""No lost work: a bad config or a second training leaves a finished run byte for byte as it was, and run names
stay inside runs/. Every refusal is exit status 2 from ``kinepose.cli.main`` with a message that says why."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml

from kinepose.cli import main
from kinepose.config import resolve_config
from kinepose.errors import KineposeError
from kinepose.training import run_training

ROOT = Path(__file__).resolve().parents[2]
RECIPE = str(ROOT / "configs" / "humanoid_hybrid.yaml")  # absolute: some tests change the working directory
TINY = [
    "data.samples_per_epoch=128",
    "data.batch_size=64",
    "trainer.max_epochs=1",
    "trainer.loggers=[csv]",
    "trainer.progress_bar=false",
    "model.dim=32",
    "model.layers=1",
    "model.fit_iterations=1",
]


def _snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path -> bytes)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished run folder (model.pt, checkpoints/, eval.json, logs/): trained once for the module."""
    run = tmp_path_factory.mktemp("finished") / "run"
    assert main(["train", RECIPE, *TINY, "--out", str(run), "--quiet"]) == 0
    for name in ("config.yaml", "model.pt", "eval.json", "checkpoints/best.ckpt", "checkpoints/last.ckpt"):
        assert (run / name).is_file(), name
    return run


@pytest.mark.parametrize(
    "override, message",
    [
        ("data.dataset=nosuch", "unknown dataset 'nosuch'"),
        ("model.encoder=mlpp", "unknown value 'mlpp'"),
        ("model.name=hybridd", "unknown model 'hybridd'"),
        ("loss.rotation=l2", "loss.rotation: unknown 'l2'"),
        ("optim.name=sgd", "optim.name: unknown optimizer 'sgd'"),
        ("optim.schedule=linear", "optim.schedule: unknown 'linear'"),
        ("trainer.loggers=[csv,mlflow]", "trainer.loggers: unknown logger 'mlflow'"),
        ("data.val_clips=[nosuch]", "unknown DeepMimic clip 'nosuch'"),  # the data split, too, before any change
        ("trainer.accelerator=tpu", "Lightning refuses the setting"),  # Lightning's own checks, before any change
        ("trainer.precision=17-true", "Lightning refuses the setting"),
    ],
)
def test_bad_config_changes_nothing_even_with_force(finished, capsys, override, message):
    before = _snapshot(finished)
    assert main(["train", RECIPE, *TINY, override, "--out", str(finished), "--force", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert _snapshot(finished) == before  # model.pt, checkpoints/, eval.json and config.yaml untouched


def test_bad_model_in_yaml_changes_nothing(finished, tmp_path, capsys):
    recipe = tmp_path / "typo.yaml"
    recipe.write_text(yaml.safe_dump({"name": "typo", "model": {"name": "hybridd"}}))
    before = _snapshot(finished)
    assert main(["train", str(recipe), *TINY[:5], "--out", str(finished), "--force"]) == 2
    assert "unknown model 'hybridd'" in capsys.readouterr().err
    assert _snapshot(finished) == before


def test_finished_run_is_kept_without_force(finished, capsys):
    before = _snapshot(finished)
    assert main(["train", RECIPE, *TINY, "--out", str(finished), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"{finished} already holds a finished run (model.pt)" in err
    assert "--out DIR" in err and "--force" in err, err
    assert _snapshot(finished) == before


def test_unfinished_run_is_kept_and_resume_is_named(finished, tmp_path, capsys):
    run = tmp_path / "unfinished"  # what a killed run leaves: config.yaml, checkpoints/, no model.pt
    run.mkdir()
    shutil.copy(finished / "config.yaml", run / "config.yaml")
    shutil.copytree(finished / "checkpoints", run / "checkpoints")
    before = _snapshot(run)
    assert main(["train", RECIPE, *TINY, "--out", str(run), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "an unfinished run" in err and f"--resume {run}" in err and "--out DIR" in err and "--force" in err, err
    assert _snapshot(run) == before
    # and evaluate says the same instead of "not a run folder"
    assert main(["evaluate", str(run)]) == 2
    err = capsys.readouterr().err
    assert "training has not finished" in err and f"kinepose train --resume {run}" in err, err
    assert str(run / "checkpoints" / "best.ckpt") in err  # a checkpoint it can score meanwhile
    assert _snapshot(run) == before


def test_library_refuses_too(finished):
    before = _snapshot(finished)
    cfg = resolve_config(RECIPE, TINY)
    with pytest.raises(KineposeError, match="already holds a finished run"):
        run_training(cfg, str(finished))
    with pytest.raises(KineposeError, match="has finished"):
        run_training(cfg, str(finished), resume=True)
    assert _snapshot(finished) == before


def test_force_replaces_a_finished_run(finished, tmp_path, capsys):
    run = tmp_path / "replaced"
    shutil.copytree(finished, run)
    old = _snapshot(run)
    assert main(["train", RECIPE, *TINY, "model.dim=16", "--out", str(run), "--force", "--quiet"]) == 0
    assert "| hybrid (this run) | 10 |" in capsys.readouterr().out
    assert yaml.safe_load((run / "config.yaml").read_text())["model"]["dim"] == 16
    new = _snapshot(run)
    for name in ("model.pt", "eval.json", "checkpoints/best.ckpt", "checkpoints/last.ckpt"):
        assert new[name] != old[name], name


@pytest.mark.parametrize("name", ["../escape", "a/b", "..", ".", "", "a\\b", "ABS"])
def test_run_name_cannot_leave_runs(tmp_path, monkeypatch, capsys, name):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    if name == "ABS":
        name = str(tmp_path / "abs")
    assert main(["train", RECIPE, *TINY, f"name={name}", "--quiet"]) == 2
    assert "config key 'name'" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["cwd"] and not os.listdir(cwd)  # nothing written anywhere


def test_run_name_cannot_reach_another_run(finished, tmp_path, monkeypatch, capsys):
    """Before: ``name: ../../<run>`` (or an absolute path) resolved outside runs/ and deleted that run's files."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    before = _snapshot(finished)
    for name in (os.path.relpath(finished, cwd / "runs"), str(finished)):
        assert main(["train", RECIPE, *TINY, f"name={name}", "--force", "--quiet"]) == 2
        assert "config key 'name'" in capsys.readouterr().err
    assert _snapshot(finished) == before and not os.listdir(cwd)
