"""One way to write files: to a temporary file beside the target, then ``os.replace`` over it.

A failure at any point leaves an existing target untouched and no partial or temporary file behind.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from typing import IO

from kinepose.errors import FileFormatError

__all__ = ["atomic_write"]


def atomic_write(target: str | os.PathLike, write: Callable[[IO], None], binary: bool = False) -> None:
    """Call ``write(f)`` on a temporary file in the target's folder (created if missing), then rename it
    over ``target``. ``OSError`` becomes a :class:`FileFormatError` naming the target."""
    target = os.fspath(target)
    folder = os.path.dirname(os.path.abspath(target))
    tmp = os.path.join(folder, f".{os.path.basename(target)}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        try:
            os.makedirs(folder, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies, as for open()
            kw = {} if binary else {"encoding": "utf-8", "newline": "\n"}
            with os.fdopen(fd, "wb" if binary else "w", **kw) as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except OSError as exc:
            raise FileFormatError(f"cannot write ({exc.strerror or exc})", target) from exc
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
