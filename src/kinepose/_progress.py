"""When to draw progress bars: on an interactive terminal, never in CI or when asked to be quiet.

Every long command (``kinepose train``, ``evaluate``, ``ik`` on long clips, the benchmarks) asks
:func:`progress_enabled` rather than deciding for itself, so one environment variable silences all of them.
"""

from __future__ import annotations

import os
import sys

__all__ = ["progress_enabled"]

_FALSE = {"", "0", "false", "no", "off"}


def progress_enabled(requested: bool = True) -> bool:
    """Whether to draw a progress bar.

    ``requested=False`` (``--quiet``) always wins. Then ``KINEPOSE_PROGRESS=1``/``0`` forces bars on/off; then a
    ``CI`` environment variable (set by GitHub Actions, GitLab CI and ``.ci/run``) turns them off; otherwise
    they are drawn when stderr is a terminal (a redirected log gets no carriage-return noise).
    """
    if not requested:
        return False
    forced = os.environ.get("KINEPOSE_PROGRESS")
    if forced is not None:
        return forced.strip().lower() not in _FALSE
    if os.environ.get("CI", "").strip().lower() not in _FALSE:
        return False
    return bool(getattr(sys.stderr, "isatty", lambda: False)())
