import json

import pytest

from kinepose.cli import main


def test_info(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "humanoid" in out and "dance_b" in out and "hand21" in out
    assert "Lifters, 2D -> 3D" in out and "skeleton_lifter, tcn" in out


def test_skeleton(capsys):
    assert main(["skeleton", "hand21"]) == 0
    assert "little_tip" in capsys.readouterr().out


def test_evaluate_analytic_writes_json(tmp_path, capsys):
    out = tmp_path / "sub" / "a.json"
    assert main(["evaluate", "analytic", "--clips", "walk,run", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "| **all** |" in text and "neck*" in text
    data = json.loads(out.read_text())
    assert data["overall"]["mpjpe_mm"] < 0.01
    assert data["unobservable_joints"] == ["neck", "right_ankle", "left_ankle"]
    assert data["overall"]["geo_observable_deg"] < 1e-3


@pytest.mark.parametrize(
    "argv, msg",
    [
        (["evaluate", "analytic", "--clips", "walk,moonwalk"], "unknown DeepMimic clip 'moonwalk'"),
        (["evaluate", "seed0"], "'seed0' is neither 'analytic' nor an existing run folder"),
        (["evaluate", "analytic", "--noise-mm", "-1"], "--noise-mm must be >= 0"),
        (["skeleton", "octopus"], "unknown skeleton 'octopus'"),
    ],
)
def test_cli_errors_exit_nonzero(argv, msg, capsys, tmp_path):
    assert main([*argv]) == 2
    assert msg in capsys.readouterr().err


def test_cli_error_leaves_no_json(tmp_path):
    out = tmp_path / "x.json"
    assert main(["evaluate", "analytic", "--clips", "nope", "--json", str(out)]) == 2
    assert not out.exists()


def test_console_script_help():
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "kinepose.cli", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "examples:" in r.stdout
    r = subprocess.run([sys.executable, "-m", "kinepose.cli", "evaluate"], capture_output=True, text=True)
    assert r.returncode == 2 and "model" in r.stderr
