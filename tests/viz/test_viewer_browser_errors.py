"""The HTML viewer's error colours and hover labels, in headless Chromium (a page of its own: one Playwright
session per test module, and tests/test_viewer_browser.py keeps its page open for the whole module).

Skipped only when Chromium (Debian's ``chromium``) or the ``playwright`` package is missing.
"""

from __future__ import annotations

import numpy as np
import pytest

from kinepose.data.sources.deepmimic import load_deepmimic
from kinepose.viz.browser import open_page, unavailable_reason
from kinepose.viz.viewer import write_viewer

_reason = unavailable_reason()
if _reason:
    pytest.skip(_reason, allow_module_level=True)


def test_joints_coloured_by_error_and_named_on_hover(tmp_path):
    """With a truth, the prediction's joints take the error colour scale (0 dark blue .. the clip's largest error
    yellow); the checkbox turns it off; hovering a joint shows its name and error."""
    motion = load_deepmimic("walk")
    truth = motion.positions().numpy()[:5]  # (5, 15, 3)
    sk = motion.skeleton
    J = len(sk.joint_names)
    pred = truth + np.array([0.002, 0.0, 0.0]) * np.arange(J)[None, :, None]  # joint j is 2 j mm off
    path = tmp_path / "errors.html"
    write_viewer(path, sk.parents, sk.joint_names, {"prediction": pred, "ground truth": truth}, fps=30.0)
    with open_page(path, width=800, height=600) as hp:
        assert hp.evaluate("kineposeViewer.errorMax") == pytest.approx(0.002 * (J - 1), abs=2e-4)
        colors = hp.evaluate("kineposeViewer.jointColors(0)")
        rgb = np.array([[int(c[i : i + 2], 16) for i in (1, 3, 5)] for c in colors])  # (J, 3)
        ramp = np.array([[13, 8, 135], [126, 3, 168], [204, 71, 120], [248, 149, 64], [240, 249, 33]])  # plasma
        t = np.arange(J) / (J - 1) * (len(ramp) - 1)  # joint j's error over the largest, on the ramp's 4 segments
        expected = np.stack([np.interp(t, np.arange(len(ramp)), ramp[:, k]) for k in range(3)], axis=-1)  # (J, 3)
        np.testing.assert_allclose(rgb, expected, atol=3)  # 0 mm dark blue ... 28 mm yellow
        assert set(hp.evaluate("kineposeViewer.jointColors(1)")) == {"#737373"}  # the truth keeps its colour
        hp.page.click("#color-errors")  # off
        assert set(hp.evaluate("kineposeViewer.jointColors(0)")) == {"#1f77b4"}
        x, y = hp.evaluate("kineposeViewer.screenPosition(0, 7)")
        hp.page.mouse.move(x, y)
        tip = hp.evaluate("document.getElementById('tip').textContent")
        assert tip == f"{sk.joint_names[7]} (prediction): error 14.0 mm"
        assert hp.errors == [] and hp.requests == []
