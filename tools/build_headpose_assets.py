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


def main() -> int:
    from kinepose.frontends.headpose_data import build_headpose_data
    from kinepose.models.headpose import GeometricHeadPose

    data = build_headpose_data(cache=os.path.join(ROOT, "runs", "cache"), progress=True)
    geo = GeometricHeadPose().fit(data.face, data.heads.rotation)
    out = os.path.join(ROOT, "src", "kinepose", "models", "headpose", "assets", "mean_face.npy")
    np.save(out, geo.mean_face.astype(np.float32))
    print(f"{out}: mean face of {int(data.found.sum())} frames")
    return 0


if __name__ == "__main__":
    sys.exit(main())
