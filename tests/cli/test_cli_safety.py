"""The CLI neither overwrites its inputs nor takes bad numbers silently: ``ik`` and ``view`` refuse an output that
is an input file (however spelled), ``view`` pages of two inputs never share a default name, and ``--fps`` must be
a finite number > 0. Each refusal exits 2 with a message naming the option and leaves the input's bytes as they were.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from kinepose.cli import main


@pytest.fixture(scope="module")
def kick(tmp_path_factory):
    """``kick.npz`` (joint positions) in a folder of its own."""
    folder = tmp_path_factory.mktemp("kick")
    assert main(["clip", "kick", "--output", str(folder / "kick.npz")]) == 0
    return folder / "kick.npz"


def _spellings(path, tmp_path) -> dict[str, str]:
    """Other names of the file ``path``: with ``./..``, a symlink, a hard link."""
    link, hard = tmp_path / "link.npz", tmp_path / "hard.npz"
    link.symlink_to(path)
    os.link(path, hard)
    return {"same": str(path), "dotted": os.path.join(str(path.parent), ".", "..", path.parent.name, path.name),
            "symlink": str(link), "hardlink": str(hard)}  # fmt: skip


@pytest.mark.parametrize("spelling", ["same", "dotted", "symlink", "hardlink"])
def test_ik_refuses_output_that_is_its_input(kick, tmp_path, capsys, spelling):
    before, listing = kick.read_bytes(), sorted(os.listdir(kick.parent))
    out = _spellings(kick, tmp_path)[spelling]
    assert main(["ik", "--model", "analytic", "--input", str(kick), "--output", out, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "--output" in err and "is the input file" in err and out in err
    assert kick.read_bytes() == before
    assert sorted(os.listdir(kick.parent)) == listing  # no temporary file either


@pytest.mark.parametrize("fps", ["0", "-30", "nan", "inf", "-inf", "thirty", ""])
def test_ik_fps_must_be_a_positive_finite_number(kick, tmp_path, capsys, fps):
    before, out = kick.read_bytes(), tmp_path / "rot.npz"
    with pytest.raises(SystemExit) as exc:
        main(["ik", "--model", "analytic", "--input", str(kick), "--output", str(out), f"--fps={fps}", "--quiet"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "argument --fps: expected a finite number > 0" in err and repr(fps) in err
    assert not out.exists() and kick.read_bytes() == before


def test_ik_fps_given_is_written(kick, tmp_path):
    out = tmp_path / "rot.npz"
    assert main(["ik", "--model", "analytic", "--input", str(kick), "--output", str(out), "--fps", "24.5",
                 "--quiet"]) == 0  # fmt: skip
    assert float(np.load(out)["fps"]) == 24.5


@pytest.fixture(scope="module")
def kick_outputs(kick, tmp_path_factory):
    """``kick.npz`` (rotations) and ``kick.bvh`` from the analytic IK, in their own folder."""
    folder = tmp_path_factory.mktemp("kick_out")
    for ext in ("npz", "bvh"):
        out = folder / f"kick.{ext}"
        assert main(["ik", "--model", "analytic", "--input", str(kick), "--output", str(out), "--quiet"]) == 0
    return folder / "kick.npz", folder / "kick.bvh"


def test_view_default_names_keep_the_extension(kick_outputs, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    npz, bvh = kick_outputs
    assert main(["view", str(npz)]) == 0
    first = (tmp_path / "kick.npz.view.html").read_bytes()
    assert main(["view", str(bvh)]) == 0
    assert "kick.bvh.view.html" in capsys.readouterr().out
    assert (tmp_path / "kick.npz.view.html").read_bytes() == first  # not overwritten by the second page
    assert (tmp_path / "kick.bvh.view.html").read_bytes() != first
    assert not (tmp_path / "kick.view.html").exists()


@pytest.mark.parametrize("which", ["file", "truth"])
@pytest.mark.parametrize("spelling", ["same", "dotted", "symlink", "hardlink"])
def test_view_refuses_output_that_is_an_input(kick, kick_outputs, tmp_path, capsys, which, spelling):
    npz = kick_outputs[0]
    victim = npz if which == "file" else kick
    before, listing = victim.read_bytes(), sorted(os.listdir(victim.parent))
    out = _spellings(victim, tmp_path)[spelling]
    assert main(["view", str(npz), str(kick), "--output", out]) == 2
    err = capsys.readouterr().err
    assert "--output" in err and "is the input file" in err and "would overwrite" in err
    assert victim.read_bytes() == before
    assert sorted(os.listdir(victim.parent)) == listing


TINY_RUN = ["data.samples_per_epoch=128", "data.batch_size=64", "trainer.max_epochs=1", "trainer.loggers=[csv]",
            "trainer.progress_bar=false", "model.dim=32", "model.layers=1", "model.fit_iterations=1"]  # fmt: skip


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A tiny finished run folder (model.pt, config.yaml, eval.json, checkpoints/)."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    run = tmp_path_factory.mktemp("run") / "run"
    recipe = os.path.join(root, "configs", "humanoid_hybrid.yaml")
    assert main(["train", recipe, *TINY_RUN, "--out", str(run), "--quiet"]) == 0
    return run


def _run_bytes(run) -> dict[str, bytes]:
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("target", ["model.pt", "config.yaml", "eval.json", "checkpoints/best.ckpt"])
@pytest.mark.parametrize("command", ["evaluate", "export", "report", "ik"])
def test_outputs_never_overwrite_the_run_they_read(finished_run, kick, capsys, command, target):
    """``evaluate --json``, ``export --output``, ``report --output`` and ``ik --output`` refuse a file of the run
    folder they read (the model, a checkpoint, the config, the evaluation), before anything is written."""
    before = _run_bytes(finished_run)
    out = str(finished_run / target)
    argv = {
        "evaluate": ["evaluate", str(finished_run), "--json", out, "--quiet"],
        "export": ["export", str(finished_run), "--part", "network", "--output", out],
        "report": ["report", str(finished_run), "--output", out],  # not .html: refused too
        "ik": ["ik", "--model", str(finished_run), "--input", str(kick), "--output", out, "--quiet"],
    }[command]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "error:" in err and out in err, err
    assert _run_bytes(finished_run) == before


def test_export_refuses_its_own_checkpoint(finished_run, capsys):
    ckpt = str(finished_run / "checkpoints" / "best.ckpt")
    before = _run_bytes(finished_run)
    assert main(["export", ckpt, "--part", "network", "--output", ckpt]) == 2
    assert "is the input" in capsys.readouterr().err
    assert _run_bytes(finished_run) == before


@pytest.mark.parametrize("fps", ["1e-320", "1e-310"])
def test_fps_whose_frame_time_overflows_is_refused(kick, tmp_path, capsys, fps):
    """A frame rate so small that 1/fps is infinite would write ``Frame Time: inf``, which no reader takes."""
    out = tmp_path / "f.bvh"
    with pytest.raises(SystemExit) as e:
        main(["ik", "--model", "analytic", "--input", str(kick), "--output", str(out), "--fps", fps])
    assert e.value.code == 2 and "frame time" in capsys.readouterr().err
    assert not out.exists()
