"""Regenerate docs/images/ by running the tutorial's commands (docs/tutorial.md), in order.

    .venv/bin/python docs/make_images.py                # uses runs/humanoid_hybrid, trains it if missing
    .venv/bin/python docs/make_images.py --retrain      # train the default recipe again first

The attention picture needs a sequence model: runs/humanoid_sequence (`kinepose train
configs/humanoid_sequence.yaml`, about 6 minutes here), trained if missing unless --no-sequence.

Every picture in the tutorial and the README comes from here: the same `kinepose` commands a reader types,
run in a scratch folder, then screenshots of the HTML pages in headless Chromium (kinepose.viz.browser).
Needs Chromium (Debian's `chromium`) and the dev install (playwright, imageio-ffmpeg).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGES = os.path.join(ROOT, "docs", "images")
KINEPOSE = [sys.executable, "-m", "kinepose.cli"]


def run(*args: str, cwd: str) -> None:
    print("$ kinepose", " ".join(args), flush=True)
    subprocess.run([*KINEPOSE, *args], cwd=cwd, check=True, env={**os.environ, "CI": "true"})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", default=os.path.join(ROOT, "runs", "humanoid_hybrid"), help="default run folder")
    parser.add_argument("--retrain", action="store_true", help="train the default recipe again")
    parser.add_argument("--sequence-run", default=os.path.join(ROOT, "runs", "humanoid_sequence"),
                        help="sequence-model run folder for the attention picture")  # fmt: skip
    parser.add_argument("--no-sequence", action="store_true", help="leave the attention picture as it is")
    args = parser.parse_args()
    from kinepose.viz.browser import screenshot

    run_dir = os.path.abspath(args.run)
    if args.retrain or not os.path.isfile(os.path.join(run_dir, "eval.json")):
        run("train", os.path.join(ROOT, "configs", "humanoid_hybrid.yaml"), "--out", run_dir, "--force", cwd=ROOT)
    os.makedirs(IMAGES, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        # 1. a report of the run: committed as it is, and a screenshot of its top for the README
        report = os.path.join(IMAGES, "report_humanoid_hybrid.html")
        run("report", run_dir, "--output", report, cwd=work)
        screenshot(report, os.path.join(IMAGES, "report.png"), width=1100, height=1400, wait_for=None)
        # 2. joints in, rotations out, prediction against the truth in the 3D viewer
        run("clip", "kick", "--output", "kick_truth.npz", cwd=work)
        run("clip", "kick", "--noise-mm", "10", "--output", "kick_noisy.npz", cwd=work)
        run("ik", "--model", run_dir, "--input", "kick_noisy.npz", "--output", "kick.npz", "--quiet", cwd=work)
        run("ik", "--model", run_dir, "--input", "kick_noisy.npz", "--output", "kick.bvh", "--quiet", cwd=work)
        run("view", "kick.npz", "kick_truth.npz", "--output", "kick_view.html", cwd=work)
        screenshot(os.path.join(work, "kick_view.html"), os.path.join(IMAGES, "viewer.png"), width=1000,
                   height=650, before="kineposeViewer.setFrame(24)")  # fmt: skip
        # 3. pictures of kinepose plot
        run("plot", "pose", "--model", run_dir, "--clip", "kick", "--frame", "24", "--noise-mm", "10",
            "--output", os.path.join(IMAGES, "pose_kick.png"), cwd=work)  # fmt: skip
        run("plot", "curves", run_dir, "--output", os.path.join(IMAGES, "curves.png"), cwd=work)
        run("plot", "pose", "--model", run_dir, "--clip", "kick", "--frames", "all", "--noise-mm", "10",
            "--output", os.path.join(work, "kick.mp4"), cwd=work)  # fmt: skip
        # 4. attention of a sequence transformer over its window of frames
        if not args.no_sequence:
            seq = os.path.abspath(args.sequence_run)
            if not os.path.isfile(os.path.join(seq, "model.pt")):
                run("train", os.path.join(ROOT, "configs", "humanoid_sequence.yaml"), "--out", seq, "--force", cwd=ROOT)
            run("plot", "attention", "--model", seq, "--clip", "kick", "--per-head", "--output",
                os.path.join(IMAGES, "attention.png"), cwd=work)  # fmt: skip
        # 5. a real video through the MediaPipe front end: frame 100 of the sports2d demo and the viewer at that frame
        demo = _demo_video()
        if demo is not None:
            run("predict", demo, "--body", "--output", "demo.bvh", "--view", "--quiet", cwd=work)
            screenshot(os.path.join(work, "demo.html"), os.path.join(IMAGES, "predict_demo_view.png"), width=700,
                       height=500, before="kineposeViewer.setFrame(100)")  # fmt: skip
            _video_frame(demo, 100, os.path.join(IMAGES, "predict_demo_frame.jpg"))
    print(f"wrote {IMAGES}")
    return 0


def _demo_video() -> str | None:
    """The demo video of the sports2d wheel (installed with --no-deps as test material), or None."""
    import importlib.util

    spec = importlib.util.find_spec("Sports2D")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(next(iter(spec.submodule_search_locations)), "Demo", "demo.mp4")
    return path if os.path.isfile(path) else None


def _video_frame(video: str, frame: int, png: str, width: int = 700) -> None:
    """Frame ``frame`` of ``video`` as a PNG ``width`` pixels wide."""
    import cv2

    cap = cv2.VideoCapture(video)
    cap.set(cv2.CAP_PROP_POS_FRAMES, frame)
    ok, img = cap.read()
    cap.release()
    if not ok:
        raise SystemExit(f"{video}: cannot read frame {frame}")
    h, w = img.shape[:2]
    cv2.imwrite(png, cv2.resize(img, (width, round(h * width / w)), interpolation=cv2.INTER_AREA))


if __name__ == "__main__":
    sys.exit(main())
