"""Head-pose metrics: hand-computed errors, wrap-around, NaN = not detected, yaw bins, conventions."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from kinepose.errors import KineposeError, NonFiniteError, ShapeError
from kinepose.geometry.headpose import convert_ypr
from kinepose.metrics.headpose import angle_error, headpose_report

NAN = float("nan")
#: (yaw, pitch, roll) degrees. Each detected pair differs by one rotation about one axis, so the geodesic
#: error is hand-computable: 10 (yaw), 20 (pitch about the yawed head), 5 (yaw under a roll), -, 10 (roll).
TARGET = [[0, 0, 0], [40, 0, 0], [-70, 0, 30], [20, 5, 5], [10, 0, 0]]
PRED = [[10, 0, 0], [40, 20, 0], [-65, 0, 30], [NAN, NAN, NAN], [10, 0, 350]]


def test_angle_error_wraps():
    np.testing.assert_allclose(angle_error([359.0, 179.0, -90.0], [1.0, -179.0, 90.0], degrees_in=True), [2, 2, 180])
    np.testing.assert_allclose(angle_error([np.pi - 0.1], [-np.pi + 0.1]), [0.2], atol=1e-12)
    out = angle_error(torch.zeros(2, 3), np.full((2, 3), 0.5))
    assert out.dtype == np.float64 and out.shape == (2, 3)
    np.testing.assert_allclose(out, 0.5)


def test_angle_error_errors():
    with pytest.raises(ShapeError, match="pred has shape"):
        angle_error(np.zeros((2, 3)), np.zeros((3, 3)))
    with pytest.raises(NonFiniteError, match="target: 1 non-finite"):
        angle_error(np.zeros(3), [0.0, NAN, 0.0])


def test_report_hand_computed():
    r = headpose_report(PRED, TARGET, degrees_in=True)
    assert (r["count"], r["n_detected"], r["detected"]) == (5, 4, 0.8)
    assert r["errors_over"] == "detected frames only" and r["units"] == "degrees"
    assert r["mae_yaw"] == pytest.approx(15 / 4)  # 10, 0, 5, 0
    assert r["mae_pitch"] == pytest.approx(20 / 4)  # 0, 20, 0, 0
    assert r["mae_roll"] == pytest.approx(10 / 4)  # 0, 0, 0, 10 (350 vs 0 wraps to 10)
    assert r["mae_mean"] == pytest.approx((3.75 + 5 + 2.5) / 3)
    assert r["geodesic_mean"] == pytest.approx((10 + 20 + 5 + 10) / 4)
    assert r["geodesic_median"] == pytest.approx(10)
    by_range = {(b["lo"], b["hi"]): b for b in r["bins"]}
    assert len(by_range) == 6 and r["n_outside_bins"] == 0
    b = by_range[(-90, -60)]
    assert (b["count"], b["n_detected"]) == (1, 1)
    assert b["mae_mean"] == pytest.approx(5 / 3) and b["geodesic_mean"] == pytest.approx(5)
    b = by_range[(0, 30)]  # frames 0, 3 (not detected), 4
    assert (b["count"], b["n_detected"]) == (3, 2)
    assert b["mae_mean"] == pytest.approx(10 / 3) and b["geodesic_mean"] == pytest.approx(10)
    b = by_range[(30, 60)]
    assert b["mae_mean"] == pytest.approx(20 / 3) and b["geodesic_mean"] == pytest.approx(20)
    b = by_range[(60, 90)]
    assert (b["count"], b["n_detected"], b["mae_mean"], b["geodesic_mean"]) == (0, 0, None, None)
    json.dumps(r)  # JSON-ready


def test_report_radians_torch_and_all_detected():
    t = torch.tensor(TARGET, dtype=torch.float64)[[0, 1, 2, 4]]
    p = torch.tensor(PRED, dtype=torch.float64)[[0, 1, 2, 4]]
    r = headpose_report(torch.deg2rad(p), torch.deg2rad(t))
    assert r["n_detected"] == 4 and r["detected"] == 1.0 and r["errors_over"] == "all frames"
    assert r["geodesic_mean"] == pytest.approx(11.25)


def test_report_convention_hopenet_matches():
    """Hopenet triplets with convention='hopenet' give the kinepose report, bins included."""
    rng = np.random.default_rng(0)
    t = rng.uniform(-80, 80, (40, 3))
    p = t + rng.normal(0, 5, (40, 3))
    ours = headpose_report(p, t, degrees_in=True)
    theirs = headpose_report(
        convert_ypr(p, "kinepose", "hopenet"),
        convert_ypr(t, "kinepose", "hopenet"),
        degrees_in=True,
        convention="hopenet",
    )
    for k in ("mae_mean", "geodesic_mean", "geodesic_median"):
        assert theirs[k] == pytest.approx(ours[k])
    assert [b["count"] for b in theirs["bins"]] == [b["count"] for b in ours["bins"]]
    # read as if they were ours, the geodesic error changes (the yaw sign is not a symmetry of the rotation)
    wrong = headpose_report(
        convert_ypr(p, "kinepose", "hopenet"), convert_ypr(t, "kinepose", "hopenet"), degrees_in=True
    )
    assert not math.isclose(wrong["geodesic_mean"], ours["geodesic_mean"], rel_tol=1e-6)


def test_report_bin_edges_and_outside():
    t = [[90.0, 0, 0], [-90.0, 0, 0], [95.0, 0, 0], [0.0, 0, 0]]
    r = headpose_report(t, t, yaw_bins=(-90, 0, 90), degrees_in=True)
    assert [b["count"] for b in r["bins"]] == [1, 2]  # [-90, 0) and the closed [0, 90]
    assert r["n_outside_bins"] == 1 and r["mae_mean"] == 0.0


def test_report_nothing_detected():
    r = headpose_report(np.full((3, 3), NAN), np.zeros((3, 3)))
    assert (r["n_detected"], r["detected"], r["mae_mean"], r["geodesic_median"]) == (0, 0.0, None, None)


def test_report_errors():
    z = np.zeros((2, 3))
    with pytest.raises(NonFiniteError, match="pred_ypr: 1 infinite"):
        headpose_report([[0, 0, np.inf], [0, 0, 0]], z)
    with pytest.raises(NonFiniteError, match="target_ypr"):
        headpose_report(z, [[0, 0, NAN], [0, 0, 0]])
    with pytest.raises(ShapeError, match=r"expected shape \(..., 3\)"):
        headpose_report(np.zeros((2, 2)), np.zeros((2, 2)))
    with pytest.raises(ShapeError, match="target_ypr has shape"):
        headpose_report(z, np.zeros((3, 3)))
    with pytest.raises(KineposeError, match="yaw_bins"):
        headpose_report(z, z, yaw_bins=(0, 0))
    with pytest.raises(KineposeError, match="unknown head-pose convention"):
        headpose_report(z, z, convention="bogus")
