"""atomic_write: a writer killed mid-write leaves its temporary file, and the next write to that target removes it,
never a live process's temporary file nor anything that does not match the pattern exactly."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

import pytest

from kinepose._atomic import atomic_write
from kinepose.errors import FileFormatError

pytestmark = pytest.mark.skipif(os.name != "posix", reason="the stale-temporary sweep is POSIX only")

WRITER = textwrap.dedent("""
    import sys, time
    from kinepose._atomic import atomic_write

    def write(f):
        f.write(b"x" * 4_000_000)  # a large file, cut off before it is complete
        f.flush()
        print("writing", flush=True)
        time.sleep(120)
        f.write(b"never")

    atomic_write(sys.argv[1], write, binary=True)
""")


def _temps(folder, name: str, pid: int) -> list[str]:
    pattern = re.compile(rf"\.{re.escape(name)}\.{pid}\.[0-9a-f]{{12}}\.tmp")
    return sorted(n for n in os.listdir(folder) if pattern.fullmatch(n))


def _killed_writer(target) -> int:
    """Start a process writing ``target`` through atomic_write and SIGKILL it mid-write; return its pid."""
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(target)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
    finally:
        proc.kill()  # SIGKILL: no handler, no finally, no cleanup in the writer
        proc.wait(timeout=30)
    assert proc.returncode == -9
    return proc.pid


def test_killed_writer_leaves_temp_that_next_write_removes(tmp_path):
    target = tmp_path / "big.bin"
    target.write_bytes(b"old")
    dead = _killed_writer(target)
    stale = _temps(tmp_path, "big.bin", dead)
    assert len(stale) == 1 and os.path.getsize(tmp_path / stale[0]) == 4_000_000  # what a kill leaves behind
    assert target.read_bytes() == b"old"  # the target itself is untouched
    live = f".big.bin.{os.getpid()}.{'a' * 12}.tmp"  # this process is alive: another write of ours in progress
    unrelated = [
        f".other.bin.{dead}.{'b' * 12}.tmp",  # another target's
        f"big.bin.{dead}.{'c' * 12}.tmp",  # no leading dot
        f".big.bin.{dead}.{'d' * 12}.tmp.bak",  # trailing text
        f".big.bin.{dead}.{'E' * 12}.tmp",  # not lowercase hex
        f".big.bin.{dead}.{'f' * 11}.tmp",  # short hex
        f".big.bin.0.{'1' * 12}.tmp",  # pid 0 (os.kill(0, 0) would probe the process group)
        f".big.bin.{'2' * 12}.tmp",  # the format before pids: no pid to check
        ".big.bin.tmp",
    ]
    for name in [live, *unrelated]:
        (tmp_path / name).write_bytes(b"keep")
    atomic_write(target, lambda f: f.write(b"new"), binary=True)
    assert target.read_bytes() == b"new"
    assert _temps(tmp_path, "big.bin", dead) == []
    assert sorted(os.listdir(tmp_path)) == sorted(["big.bin", live, *unrelated])
    assert all((tmp_path / n).read_bytes() == b"keep" for n in [live, *unrelated])


def test_temp_of_another_live_process_is_left(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        other = tmp_path / f".out.json.{sleeper.pid}.{'0' * 12}.tmp"
        other.write_text("in progress")
        atomic_write(tmp_path / "out.json", lambda f: f.write("{}"))
        assert other.read_text() == "in progress"
    finally:
        sleeper.kill()
        sleeper.wait(timeout=30)
    atomic_write(tmp_path / "out.json", lambda f: f.write("{}"))  # now its writer is gone: swept
    assert not other.exists()


def test_temp_carries_pid_and_failure_leaves_nothing(tmp_path):
    seen = []

    def write(f) -> None:
        seen.extend(_temps(tmp_path, "a.txt", os.getpid()))
        raise OSError(28, "No space left on device")

    with pytest.raises(FileFormatError, match="a.txt: cannot write"):
        atomic_write(tmp_path / "a.txt", write)
    assert len(seen) == 1  # the temporary file was there, named with this pid
    assert os.listdir(tmp_path) == []


def test_write_into_new_folder(tmp_path):
    target = tmp_path / "new" / "deeper" / "a.txt"
    atomic_write(target, lambda f: f.write("hi"))
    assert target.read_text() == "hi" and os.listdir(target.parent) == ["a.txt"]
