"""Smoke test of benchmarks/speed.py: every measured function runs at batch 2, one round (not a timed test)."""

from __future__ import annotations

import importlib.util
import json
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "benchmarks")


def _speed_module():
    if "speed_benchmark" in sys.modules:
        return sys.modules["speed_benchmark"]
    if BENCH not in sys.path:
        sys.path.insert(0, BENCH)  # speed.py imports its neighbours (foundation, _reference_ik_torch)
    spec = importlib.util.spec_from_file_location("speed_benchmark", os.path.join(BENCH, "speed.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules["speed_benchmark"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow  # ~9 s on a busy 2-core machine (imports onnx, exports two tiny models)
def test_quick_run_writes_the_schema(tmp_path):
    speed = _speed_module()
    out = tmp_path / "speed.json"
    md = tmp_path / "RESULTS.md"
    assert speed.main(["--quick", "--out", str(out), "--results-md", str(md)]) == 0
    assert not md.exists()  # --quick writes no Markdown
    d = json.loads(out.read_text())
    for key in ("machine", "load_average_start", "load_average_end", "rows", "memory", "accuracy", "targets",
                "physical_limit", "skeleton_joints"):  # fmt: skip
        assert key in d, key
    assert d["quick"] is True and d["rounds"] == 1
    assert d["machine"]["cpus"] >= 1 and len(d["load_average_start"]) == 3
    methods = {r["method"] for r in d["rows"]}
    assert {"analytic", "kernel", "reference", "fit", "hybrid", "hybrid_ort", "iknet", "iknet_ort"} <= methods
    for r in d["rows"]:
        assert r["batch"] == 2 and r["calls"] >= 1
        assert r["median_s"] > 0 and r["poses_per_s"] > 0
    assert {r["skeleton"] for r in d["rows"]} >= {"humanoid", "mixamo"}
    mem = d["memory"]["analytic/float32"]
    assert mem["first_call_s"] > 0 and "peak_extra_mb" in mem["batches"]["2"]
    for table in d["accuracy"].values():
        assert {"analytic IK float32", "least-squares fit", "scipy least_squares, previous start"} <= set(table)
        for v in table.values():
            assert v["geo_determined_deg"] >= 0 and v["mpjpe_mm"] >= 0
    clean = d["accuracy"]["clean"]
    assert clean["analytic IK float64"]["mpjpe_mm"] < 1e-3  # FK(IK(x)) = x on clean frames
    assert clean["scipy least_squares, rest start"]["mpjpe_mm"] < 0.1
    assert all(t["status"].split()[0] in ("PASS", "FAIL") for t in d["targets"])
    assert d["physical_limit"]["poses_per_s"] > 0 and d["source"]["kernel_sha1"]


def test_scipy_baseline_reproduces_fk():
    speed = _speed_module()
    import numpy as np

    from kinepose.data.sources.deepmimic import load_deepmimic

    m = load_deepmimic("walk")
    solver = speed.ScipyIK(m.skeleton)
    assert solver.size == 3 + 3 * 6 + 4  # root translation, 6 ball joints that move points, 4 hinges
    x = m.positions()[5].numpy()
    p = solver.solve(x, solver.rest_start(x))
    assert np.abs(solver.fk(p) - x).max() < 1e-5
