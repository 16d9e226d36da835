"""The HTML 3D viewer in a real headless Chromium (WebGL on SwiftShader): it renders the skeletons, the
frame slider and the play button move them, and the page logs no error and makes no request.

Skipped only when Chromium (Debian's ``chromium``) or the ``playwright`` package is missing.
"""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest

from kinepose.data.sources.deepmimic import load_deepmimic
from kinepose.viz.browser import open_page, unavailable_reason
from kinepose.viz.viewer import write_viewer

_reason = unavailable_reason()
if _reason:
    pytest.skip(_reason, allow_module_level=True)

from PIL import Image  # noqa: E402  (after the skip: Pillow comes with matplotlib)

BACKGROUND = np.array([247, 247, 247])  # the page's #f7f7f7
OFFSET = np.array([0.05, 0.0, 0.03])  # prediction = truth + OFFSET, metres
CANVAS_PNG = "() => document.querySelector('canvas').toDataURL('image/png')"


@pytest.fixture(scope="module")
def walk_page(tmp_path_factory):
    """A viewer page of DeepMimic's walk (prediction and truth) open in headless Chromium, and the truth."""
    motion = load_deepmimic("walk")
    truth = motion.positions().numpy()  # (39, 15, 3)
    sk = motion.skeleton
    path = tmp_path_factory.mktemp("viewer") / "walk.html"
    write_viewer(path, sk.parents, sk.joint_names, {"prediction": truth + OFFSET, "ground truth": truth},
                 fps=motion.fps, title="walk in Chromium")  # fmt: skip
    with open_page(path, width=800, height=600) as hp:
        yield hp, truth


def _canvas(hp) -> np.ndarray:
    """(H, W, 3) uint8 pixels of the WebGL canvas (its drawing buffer is preserved)."""
    url = hp.evaluate(CANVAS_PNG)
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB"))


def _set_slider(hp, value: int) -> None:
    """Move the frame slider as a user would: set its value, then fire the ``input`` event."""
    hp.evaluate(
        "v => { const s = document.getElementById('frame'); s.value = String(v);"
        " s.dispatchEvent(new Event('input', { bubbles: true })); }",
        value,
    )


def test_first_frame_renders_both_skeletons(walk_page):
    hp, truth = walk_page
    state = hp.evaluate("() => { const v = window.kineposeViewer; return [v.ready, v.error, v.numFrames, v.frame]; }")
    assert state == [True, None, 39, 0]
    assert hp.evaluate("document.title") == "walk in Chromium"
    px = _canvas(hp)
    assert px.shape == (600, 800, 3)
    drawn = np.abs(px.astype(int) - BACKGROUND).max(-1) > 30  # (H, W)
    assert drawn.mean() > 0.01, f"only {drawn.mean():.2%} of the canvas is drawn"
    assert len(np.unique(px[drawn] // 16, axis=0)) > 10  # shaded spheres and bones, grid lines
    r, b = px[..., 0].astype(int), px[..., 2].astype(int)
    blue = (b - r > 60) & drawn  # the prediction, #1f77b4 shaded
    grey = (np.abs(r - b) < 12) & (r < 150) & drawn  # the truth, #737373 shaded
    assert blue.sum() > 500 and grey.sum() > 200, (blue.sum(), grey.sum())
    # the rendered joints are where the data put them (float32, 0.1 mm)
    np.testing.assert_allclose(hp.evaluate("kineposeViewer.jointPositions(1)"), truth[0], atol=2e-4)
    np.testing.assert_allclose(hp.evaluate("kineposeViewer.jointPositions(0)"), truth[0] + OFFSET, atol=2e-4)


def test_slider_and_keys_move_the_skeleton(walk_page):
    hp, truth = walk_page
    hp.evaluate("kineposeViewer.setFrame(0)")
    before, px0 = np.array(hp.evaluate("kineposeViewer.jointPositions(1)")), _canvas(hp)
    _set_slider(hp, 20)
    hp.next_frames()
    assert hp.evaluate("kineposeViewer.frame") == 20
    after = np.array(hp.evaluate("kineposeViewer.jointPositions(1)"))
    assert np.linalg.norm(after - before, axis=-1).max() > 0.01
    np.testing.assert_allclose(after, truth[20], atol=2e-4)
    changed = np.abs(_canvas(hp).astype(int) - px0).max(-1) > 30
    assert changed.mean() > 0.001, f"{changed.mean():.3%} of the pixels changed"
    assert "frame 20 / 38" in hp.evaluate("document.getElementById('info').textContent")

    hp.page.keyboard.press("ArrowRight")
    assert hp.evaluate("kineposeViewer.frame") == 21
    hp.page.keyboard.press("ArrowLeft")
    hp.page.keyboard.press("ArrowLeft")
    assert hp.evaluate("kineposeViewer.frame") == 19


def test_play_advances_frames_in_real_time(walk_page):
    hp, _ = walk_page
    hp.evaluate("kineposeViewer.setFrame(0)")
    t0 = hp.evaluate("performance.now()")
    hp.page.click("#play")
    assert hp.evaluate("kineposeViewer.playing") is True
    hp.page.wait_for_timeout(600)
    frame, t1 = hp.evaluate("[kineposeViewer.frame, performance.now()]")
    hp.page.keyboard.press(" ")  # space pauses
    assert hp.evaluate("kineposeViewer.playing") is False
    expected = (t1 - t0) / 1000 * 30  # the clip's 30 fps at speed 1, from the page's own clock (about 18 frames)
    # playback starts on the first animation frame after the click (SwiftShader frames can take ~100 ms)
    assert expected - max(5.0, 0.35 * expected) <= frame <= expected + 1, (frame, expected)
    assert hp.evaluate("document.getElementById('frame').value") == str(hp.evaluate("kineposeViewer.frame"))
    hp.page.select_option("#speed", "2")
    assert hp.evaluate("kineposeViewer.speed") == 2


def test_no_errors_and_no_requests(walk_page):
    hp, _ = walk_page
    assert hp.errors == []
    assert hp.requests == []
