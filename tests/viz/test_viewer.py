"""The HTML 3D viewer without a browser: the page is self-contained, embeds the motion exactly (to 0.1 mm),
validates its inputs before touching a file, and loads the files ``kinepose ik`` reads and writes."""

from __future__ import annotations

import json
import os
import re
from importlib import resources

import numpy as np
import pytest
import torch

from kinepose.data.formats.bvh import write_motion_bvh
from kinepose.data.formats.io import save_rotations
from kinepose.data.sources.deepmimic import load_deepmimic
from kinepose.viz.browser import CHROMIUM_ENV, BrowserError, find_chromium, open_page, unavailable_reason
from kinepose.viz.viewer import QUANTUM, _decode, load_view_sequence, view_files, write_viewer

TOL = QUANTUM / 2 + 1e-9  # rounding to 0.1 mm


@pytest.fixture(scope="module")
def walk():
    motion = load_deepmimic("walk")
    return motion, motion.positions().numpy()  # (39, 15, 3)


def _data(path) -> dict:
    text = open(path, encoding="utf-8").read()
    m = re.search(r'<script type="application/json" id="kp-data">(.*?)</script>', text, re.DOTALL)
    assert m, "no embedded data block"
    return json.loads(m.group(1))


def _positions(data: dict, s: int) -> np.ndarray:
    return _decode(data["sequences"][s]["positions"], data["num_joints"])  # (N, J, 3)


def test_page_embeds_the_motion(tmp_path, walk):
    motion, truth = walk
    sk = motion.skeleton
    pred = truth + np.array([0.01, -0.02, 0.005])
    out = tmp_path / "walk.html"
    n = write_viewer(out, sk.parents, sk.joint_names, {"prediction": pred, "ground truth": truth}, fps=motion.fps,
                     title="walk <b>&</b>")  # fmt: skip
    assert n == 39
    data = _data(out)
    assert (data["num_frames"], data["num_joints"], data["stride"], data["source_frames"]) == (39, 15, 1, 39)
    assert data["parents"] == list(sk.parents) and data["joint_names"] == list(sk.joint_names)
    assert [s["label"] for s in data["sequences"]] == ["prediction", "ground truth"]
    assert data["fps"] == pytest.approx(motion.fps)
    assert data["title"] == "walk <b>&</b>"
    assert np.abs(_positions(data, 0) - pred).max() <= TOL
    assert np.abs(_positions(data, 1) - truth).max() <= TOL
    expected = 1000 * np.linalg.norm(pred - truth, axis=-1).mean(-1)  # (T,) mm
    np.testing.assert_allclose(data["mpjpe_mm"], expected, atol=0.006)
    text = out.read_text(encoding="utf-8")
    assert "<title>walk &lt;b&gt;&amp;&lt;/b&gt;</title>" in text


def test_page_is_self_contained(tmp_path, walk):
    motion, truth = walk
    sk = motion.skeleton
    out = tmp_path / "walk.html"
    write_viewer(out, sk.parents, sk.joint_names, {"</script><script>alert(1)</script>": truth}, title="</script>")
    text = out.read_text(encoding="utf-8")
    assert text.count("<script") == 3 and text.count("</script>") == 3  # data, three.js, viewer; labels escaped
    assert "window.KPTHREE=" in text  # three.js inlined
    assert re.search(r"<script[^>]*\bsrc\s*=", text, re.IGNORECASE) is None
    assert re.search(r"<link\b", text, re.IGNORECASE) is None
    assert re.search(r"<(img|iframe|embed|object|audio|video|source)\b", text, re.IGNORECASE) is None
    assert re.search(r"""import\s*\(\s*["'`]?(https?:)?//""", text) is None
    assert re.search(r"""url\(\s*["']?(https?:)?//|@import""", text) is None
    assert "default-src 'none'" in text  # the CSP forbids any request the checks above missed
    assert _data(out)["sequences"][0]["label"] == "</script><script>alert(1)</script>"


def test_torch_input_single_sequence_and_size(tmp_path, walk):
    motion, truth = walk
    sk = motion.skeleton
    out = tmp_path / "one.html"
    assert write_viewer(out, sk.parents, sk.joint_names, {"walk": torch.from_numpy(truth).float()}) == 39
    data = _data(out)
    assert data["mpjpe_mm"] is None and data["fps"] == 30.0 and data["title"] == "kinepose viewer"
    assert np.abs(_positions(data, 0) - truth).max() <= TOL + 1e-7  # float32 input
    bundle = resources.files("kinepose.viz").joinpath("_vendor/three_bundle.min.js").read_bytes()
    assert len(bundle) < out.stat().st_size < len(bundle) + 100_000


def test_long_clip_is_subsampled_in_real_time(tmp_path):
    rng = np.random.default_rng(0)
    T, J = 7000, 31
    parents = [-1, *range(J - 1)]
    walk = np.cumsum(rng.normal(0, 0.002, (T, J, 3)), axis=0) + rng.normal(0, 0.3, (1, J, 3))  # smooth, like mocap
    out = tmp_path / "long.html"
    n = write_viewer(out, parents, [f"j{i}" for i in range(J)], {"a": walk, "b": walk + 0.01}, fps=120.0)
    assert n == 3500
    data = _data(out)
    assert (data["stride"], data["fps"], data["source_fps"], data["source_frames"]) == (2, 60.0, 120.0, 7000)
    assert any("1 frame in 2 of 7000 (120 fps clip at 60 fps)" in note for note in data["notes"])
    assert np.abs(_positions(data, 1) - (walk[::2] + 0.01)).max() <= TOL
    assert out.stat().st_size < 5_000_000, out.stat().st_size  # a few MB, bundle included
    assert write_viewer(out, parents, [f"j{i}" for i in range(J)], {"a": walk}, max_frames=7000) == 7000


def _bad_calls(walk):
    motion, truth = walk
    sk = motion.skeleton
    P, N = list(sk.parents), list(sk.joint_names)
    nan = truth.copy()
    nan[3, 4, 1] = np.nan
    return [
        ("sequences\\['a'\\]: NaN", dict(parents=P, joint_names=N, sequences={"a": nan})),
        ("sequences\\['a'\\]: expected shape", dict(parents=P, joint_names=N, sequences={"a": truth[:, :-1]})),
        ("sequences\\['a'\\]: expected shape", dict(parents=P, joint_names=N, sequences={"a": truth[:0]})),
        ("sequences\\['b'\\]: shape", dict(parents=P, joint_names=N, sequences={"a": truth, "b": truth[:-1]})),
        ("sequences: expected", dict(parents=P, joint_names=N, sequences={})),
        ("sequences: expected", dict(parents=P, joint_names=N, sequences={str(i): truth for i in range(5)})),
        ("fps", dict(parents=P, joint_names=N, sequences={"a": truth}, fps=0)),
        ("fps", dict(parents=P, joint_names=N, sequences={"a": truth}, fps=float("nan"))),
        ("fps", dict(parents=P, joint_names=N, sequences={"a": truth}, fps="fast")),
        ("parents", dict(parents=[0, *P[1:]], joint_names=N, sequences={"a": truth})),
        ("parents", dict(parents=[-1, 2, *P[2:]], joint_names=N, sequences={"a": truth})),
        ("joint_names", dict(parents=P, joint_names=N[:-1], sequences={"a": truth})),
        ("max_frames", dict(parents=P, joint_names=N, sequences={"a": truth}, max_frames=0)),
    ]


@pytest.mark.parametrize("case", range(13))
def test_bad_input_raises_and_keeps_existing_file(tmp_path, walk, case):
    match, kw = _bad_calls(walk)[case]
    out = tmp_path / "page.html"
    with pytest.raises(ValueError, match=match):
        write_viewer(tmp_path / "new.html", **kw)
    out.write_text("old page")
    with pytest.raises(ValueError, match=match):
        write_viewer(out, **kw)
    assert out.read_text() == "old page"
    assert sorted(os.listdir(tmp_path)) == ["page.html"]  # no new file, no temporary file


def test_path_must_be_html(tmp_path, walk):
    motion, truth = walk
    with pytest.raises(ValueError, match="path: .*expected a .html file"):
        write_viewer(tmp_path / "x.png", motion.skeleton.parents, motion.skeleton.joint_names, {"a": truth})
    assert os.listdir(tmp_path) == []


def test_load_ik_output_and_bvh(tmp_path, walk):
    motion, truth = walk
    sk = motion.skeleton
    q, rp = motion.local_quat.numpy(), motion.root_pos.numpy()
    save_rotations(tmp_path / "ik.npz", sk, q, rp, fps=motion.fps, joints=truth)
    seq = load_view_sequence(tmp_path / "ik.npz")
    assert seq.parents == list(sk.parents) and seq.joint_names == list(sk.joint_names)
    assert seq.fps == pytest.approx(motion.fps)
    np.testing.assert_allclose(seq.positions, truth)
    np.testing.assert_allclose(load_view_sequence(tmp_path / "ik.npz", scale=2.0).positions, 2 * truth)

    save_rotations(tmp_path / "rot.npz", sk, q, rp, fps=motion.fps)  # no joints: FK on the skeleton
    with pytest.raises(ValueError, match="skeleton: .*no 'joints'"):
        load_view_sequence(tmp_path / "rot.npz")
    np.testing.assert_allclose(
        load_view_sequence(tmp_path / "rot.npz", skeleton="humanoid").positions, truth, atol=1e-9
    )

    write_motion_bvh(tmp_path / "walk.bvh", motion)
    bvh = load_view_sequence(tmp_path / "walk.bvh")
    assert bvh.parents[0] == -1 and "right_elbow_end" in bvh.joint_names and bvh.positions.shape == (39, 15, 3)
    assert bvh.fps == pytest.approx(motion.fps, rel=1e-4)  # the reader snaps 30.0012 to 30
    mapped = load_view_sequence(tmp_path / "walk.bvh", skeleton=sk)  # in the skeleton's order
    np.testing.assert_allclose(mapped.positions, truth, atol=1e-6)

    # prediction (ik output) against truth (BVH): end sites matched through "<parent>_end", MPJPE ~ 0
    n = view_files(tmp_path / "cmp.html", tmp_path / "ik.npz", truth=tmp_path / "walk.bvh")
    data = _data(tmp_path / "cmp.html")
    assert n == 39 and max(data["mpjpe_mm"]) < 0.01
    assert data["title"] == "ik.npz vs walk.bvh"
    assert [s["label"] for s in data["sequences"]] == ["prediction (ik.npz)", "ground truth (walk.bvh)"]

    # the other way round: the BVH first, the truth an ik output or plain joints (a preset's names, no tree)
    np.savez(tmp_path / "walk_joints.npz", joints=truth, joint_names=np.array(sk.joint_names), fps=motion.fps)
    for other in ("ik.npz", "walk_joints.npz"):
        assert view_files(tmp_path / "rev.html", tmp_path / "walk.bvh", truth=tmp_path / other) == 39
        data = _data(tmp_path / "rev.html")
        assert max(data["mpjpe_mm"]) < 0.01, other  # right_elbow_end matched to right_wrist, not mixed up


def test_joint_files_need_a_skeleton(tmp_path, walk):
    motion, truth = walk
    np.save(tmp_path / "j.npy", truth)
    np.savez(tmp_path / "j.npz", joints=truth[:30], joint_names=np.array(motion.skeleton.joint_names), fps=30.0)
    for name in ("j.npy", "j.npz"):
        with pytest.raises(ValueError, match="skeleton: .*no parents"):
            load_view_sequence(tmp_path / name)
    seq = load_view_sequence(tmp_path / "j.npy", skeleton="humanoid")
    assert seq.parents == list(motion.skeleton.parents) and seq.fps is None
    np.testing.assert_allclose(seq.positions, truth)

    # 39 against 30 frames: trimmed to 30, with a warning the page repeats
    with pytest.warns(UserWarning, match="j.npy has 39 frames, j.npz has 30"):
        n = view_files(tmp_path / "v.html", tmp_path / "j.npy", tmp_path / "j.npz", skeleton="humanoid")
    data = _data(tmp_path / "v.html")
    assert n == 30 and any("showing the first 30" in note for note in data["notes"])
    assert max(data["mpjpe_mm"]) < 0.01


def test_truth_with_other_joints_is_an_error(tmp_path, walk):
    motion, truth = walk
    names = list(motion.skeleton.joint_names)
    save_rotations(tmp_path / "ik.npz", motion.skeleton, motion.local_quat, motion.root_pos, joints=truth)
    renamed = tmp_path / "renamed.npz"
    save_rotations(tmp_path / "tmp.npz", motion.skeleton, motion.local_quat, motion.root_pos, joints=truth)
    with np.load(tmp_path / "tmp.npz") as d:
        arrays = dict(d)
    arrays["joint_names"] = np.array(["pelvis", *names[1:]])
    np.savez(renamed, **arrays)
    with pytest.raises(ValueError, match=r"truth: .*renamed.npz lacks joints \['root'\]"):
        view_files(tmp_path / "x.html", tmp_path / "ik.npz", truth=renamed)
    assert not (tmp_path / "x.html").exists()


def test_chromium_lookup_and_clear_errors(tmp_path, monkeypatch):
    page = tmp_path / "p.html"
    page.write_text("<p>hi</p>")
    monkeypatch.setenv(CHROMIUM_ENV, str(tmp_path / "no-such-chromium"))
    assert find_chromium() is None
    assert CHROMIUM_ENV in unavailable_reason()
    with pytest.raises(BrowserError, match=CHROMIUM_ENV), open_page(page):
        pass
    monkeypatch.delenv(CHROMIUM_ENV)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert unavailable_reason().startswith("Chromium not found (install Debian's chromium package")
    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    assert find_chromium() == str(fake)


def test_view_of_truncated_npz_is_a_clear_error(tmp_path, capsys):
    """A damaged .npz gives exit 2 and one error line naming it (it escaped as BadZipFile from np.load)."""
    from kinepose.cli import main

    good = tmp_path / "walk.npz"
    assert main(["clip", "walk", "--output", str(good)]) == 0
    bad = tmp_path / "cut.npz"
    bad.write_bytes(good.read_bytes()[:1000])
    assert main(["view", str(bad), "--output", str(tmp_path / "v.html")]) == 2
    err = capsys.readouterr().err
    assert f"{bad}: cannot read as .npz" in err and "Traceback" not in err
    assert not (tmp_path / "v.html").exists()
