"""One way to write files: to a temporary file beside the target, then ``os.replace`` over it.

A failure at any point leaves an existing target untouched and no partial or temporary file behind. A writer
killed outright (SIGKILL, out of memory) cannot clean up: its temporary ``.<name>.<pid>.<hex>.tmp`` carries its
pid, and the next write to the same target removes those whose process is gone.
"""

from __future__ import annotations

import os
import re
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
    name = os.path.basename(target)
    _sweep_stale(folder, name)
    tmp = os.path.join(folder, f".{name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp")
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


def _sweep_stale(folder: str, name: str) -> None:
    """Remove the temporary files of writes to ``folder/name`` whose writer process no longer exists.

    Only names of exactly our pattern are touched, and only for a pid that is gone: a live writer's file (this
    process's or another's) stays. Best effort: a file that cannot be listed or removed is left.
    """
    if os.name != "posix":  # os.kill(pid, 0) terminates the process on Windows instead of probing it
        return
    pattern = re.compile(rf"\.{re.escape(name)}\.([1-9][0-9]{{0,9}})\.[0-9a-f]{{12}}\.tmp")
    try:
        entries = list(os.scandir(folder))
    except OSError:  # no folder yet (atomic_write creates it), or not listable: nothing to sweep
        return
    for entry in entries:
        m = pattern.fullmatch(entry.name)
        if m is None or not entry.is_file(follow_symlinks=False) or _pid_alive(int(m.group(1))):
            continue
        try:
            os.remove(entry.path)
        except OSError:  # already removed by a concurrent writer's sweep, or not ours to remove
            pass


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (as far as this machine can tell: any doubt counts as alive)."""
    try:
        os.kill(pid, 0)  # signal 0: existence and permission check only, nothing is delivered
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):  # PermissionError: alive, another user's; anything else: do not guess
        return True
    return True
