"""Build ``src/kinepose/models/headpose/assets/mean_face.npy``: the geometric estimator's mean face.

The mean of MediaPipe FaceMesh's normalized landmarks on the synthetic heads of every packaged identity
(``benchmarks/headpose.py``'s set: 12 identities x 10 sequences x 40 frames), each rotated back into the head frame
by its true rotation (``GeometricHeadPose.fit``). A training statistic, no network. Run after the benchmark has
cached its set (or it renders one):

    .venv/bin/python tools/build_headpose_assets.py
"""

from __future__ import annotations

import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))


def main() -> int:
    from headpose import _data, parser

    from kinepose.models.headpose import GeometricHeadPose

    args = parser().parse_args([])
    _faces, hs, lm, _ = _data(args)
    geo = GeometricHeadPose().fit(lm["face"], hs.rotation)
    out = os.path.join(ROOT, "src", "kinepose", "models", "headpose", "assets", "mean_face.npy")
    np.save(out, geo.mean_face.astype(np.float32))
    print(f"{out}: mean face of {int(np.isfinite(lm['face']).all(axis=(1, 2)).sum())} frames")
    return 0


if __name__ == "__main__":
    sys.exit(main())
