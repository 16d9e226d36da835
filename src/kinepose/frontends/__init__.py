"""Front ends: photos and videos -> a detector (MediaPipe) -> kinepose skeletons -> joint rotations.

- :mod:`~kinepose.frontends.mediapipe`: media readers (a video, an image, a folder of images) and MediaPipe
  detection (``pip install 'kinepose[mediapipe]'``), imported only when called.
- :mod:`~kinepose.frontends.tracking`: temporal repair (left/right swaps, flicker, gaps, One Euro smoothing),
  pure numpy.
- :mod:`~kinepose.frontends.pipeline`: :func:`video_to_rotations`, the whole chain.

Names are imported on first use, so ``import kinepose.frontends.tracking`` loads neither torch nor MediaPipe.
"""

from __future__ import annotations

import importlib

__all__ = [
    "Landmarks",
    "Media",
    "PredictResult",
    "RepairReport",
    "detect",
    "landmarks_to_rotations",
    "open_media",
    "repair_sequence",
    "video_to_rotations",
]

_WHERE = {
    "Landmarks": "mediapipe", "Media": "mediapipe", "detect": "mediapipe", "open_media": "mediapipe",
    "RepairReport": "tracking", "repair_sequence": "tracking",
    "PredictResult": "pipeline", "landmarks_to_rotations": "pipeline", "video_to_rotations": "pipeline",
}  # fmt: skip


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(f"kinepose.frontends.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'kinepose.frontends' has no attribute {name!r}")
