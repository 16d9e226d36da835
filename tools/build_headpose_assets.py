"""Build the head-pose assets bundled in ``src/kinepose/models/headpose/assets/``.

- ``mean_face.npy``: the geometric estimator's mean face: the mean of MediaPipe FaceMesh's normalized landmarks on
  the synthetic heads of every packaged identity (12 identities x 10 sequences x 40 frames), each rotated back into
  the head frame by its true rotation (``GeometricHeadPose.fit``). A training statistic, no network.
- with ``--landmarks DIR``: a run folder of the ``configs/headpose_landmarks_residual.yaml`` recipe trained on all 12
  identities (its held-out numbers are the benchmark's), weights stored as float16; not bundled (it beats the
  geometric fit by 0.3 deg over the identity folds, on synthetic heads only), use it with ``--model DIR``.

    .venv/bin/python tools/build_headpose_assets.py [--landmarks DIR]
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ASSETS = os.path.join(ROOT, "src", "kinepose", "models", "headpose", "assets")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--landmarks", default=None, metavar="DIR", help="also train the residual landmark network there")
    args = ap.parse_args(argv)
    import torch

    from kinepose.config import merge_config
    from kinepose.frontends.headpose_data import build_headpose_data
    from kinepose.models.headpose import GeometricHeadPose
    from kinepose.training.headpose import RECIPE_DEFAULTS, resolve_recipe, save_headpose_run, train_recipe

    torch.set_num_threads(2)
    data = build_headpose_data(cache=os.path.join(ROOT, "runs", "cache"), progress=True)
    geo = GeometricHeadPose().fit(data.face, data.heads.rotation)
    np.save(os.path.join(ASSETS, "mean_face.npy"), geo.mean_face.astype(np.float32))
    print(f"mean_face.npy: the mean face of {int(data.found.sum())} frames")
    if args.landmarks:
        path = os.path.join(ROOT, "configs", "headpose_landmarks_residual.yaml")
        cfg = resolve_recipe(merge_config(RECIPE_DEFAULTS, path))
        model, _pred, fit = train_recipe(cfg, data, np.arange(len(data.heads)), progress=True)
        model.half()  # float16 on disk: half the size; loading casts back to float32
        folder = args.landmarks
        save_headpose_run(
            folder,
            model,
            cfg,
            {
                "trained_on": data.heads.identities,
                "steps": fit.steps,
                "note": "held-out errors: benchmarks/RESULTS.md (other identities)",
            },
        )
        print(f"{folder}: {fit.steps} steps in {fit.seconds:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
