"""Fuzzing the readers: thousands of seeded bad inputs, each reader's outcomes counted.

The cases are those of ``tests/data/test_fuzz.py`` (its generators are plain functions of a
:class:`random.Random`): real files written by the library's writers, mutated byte- and token-wise, and
structured bad values. Case ``i`` goes to reader ``i % len(READERS)`` with ``random.Random(f"{seed}:{i}")``, so
a run is reproducible and a single case can be replayed. Each outcome is one of

- ``ok``: the reader returned finite, well-shaped output;
- ``clear error``: a :class:`~kinepose.errors.KineposeError` whose message names the file (or the key);
- ``unclear error``: a KineposeError that does not;
- ``other exception``: any other exception escaped (printed with its type and the kind of input);
- ``non-finite output``: the reader returned NaN, inf or a malformed shape;
- ``hang``: the case ran past ``--timeout`` seconds (``signal.setitimer``).

Run: ``.venv/bin/python benchmarks/fuzz_readers.py --cases 12000 --seed 0``. Writes
``benchmarks/results/fuzz_readers.json`` and the ``fuzz_readers`` section of ``benchmarks/RESULTS.md``
(``--no-markdown`` to skip it); exits 1 when any case is not ``ok`` or ``clear error``.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import importlib.util
import json
import os
import platform
import random
import shlex
import signal
import sys
import tempfile
import time
from types import ModuleType

import numpy as np

from kinepose._atomic import atomic_write

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from foundation import _write_section  # noqa: E402

CASES_MODULE = os.path.join(ROOT, "tests", "data", "test_fuzz.py")
OUTCOMES = ("ok", "clear error", "unclear error", "other exception", "non-finite output", "hang")
GOOD = ("ok", "clear error")


class Hang(BaseException):
    """Raised by the alarm in a case that runs too long (a BaseException, so no reader's handler catches it)."""


def _on_alarm(signum: int, frame: object) -> None:
    raise Hang


def load_cases() -> ModuleType:
    """The test module with the generators and readers, imported from its path (tests/ is not a package)."""
    spec = importlib.util.spec_from_file_location("kinepose_fuzz_cases", CASES_MODULE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def run(cases: int, seed: int, timeout: float, folder: str) -> dict:
    """Run the cases; per reader the outcome counts and seconds, and every case that was not ok or a clear error."""
    fz = load_cases()
    valid = fz.valid_inputs(os.path.join(folder, "valid"))
    readers = fz.READERS
    counts = {r.name: collections.Counter() for r in readers}
    seconds = collections.Counter()
    escapes: list[dict] = []
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    start = time.perf_counter()
    try:
        for i in range(cases):
            reader = readers[i % len(readers)]
            kind = "(generating)"
            t0 = time.perf_counter()
            try:
                signal.setitimer(signal.ITIMER_REAL, timeout)
                case = reader.generate(valid, random.Random(f"{seed}:{i}"))
                kind = case[0]
                outcome, detail = fz.run_case(reader, case, folder)
            except Hang:
                outcome, detail = "hang", f"over {timeout} s on {kind}"
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            seconds[reader.name] += time.perf_counter() - t0
            counts[reader.name][outcome] += 1
            if outcome not in GOOD:
                escapes.append({"case": i, "reader": reader.name, "outcome": outcome, "detail": detail})
                print(f"case {i} ({reader.name}): {outcome}: {detail}", file=sys.stderr)
            if (i + 1) % 1000 == 0:
                print(f"{i + 1}/{cases} cases, {time.perf_counter() - start:.0f} s", file=sys.stderr)
    finally:
        signal.signal(signal.SIGALRM, previous)
    return {
        "readers": {
            r.name: {
                "cases": sum(counts[r.name].values()),
                "outcomes": {o: counts[r.name][o] for o in OUTCOMES},
                "seconds": round(seconds[r.name], 2),
            }
            for r in readers
        },
        "escapes": escapes,
        "wall_s": round(time.perf_counter() - start, 1),
    }


def markdown(result: dict) -> str:
    """The ``fuzz_readers`` section of RESULTS.md: command, date, the outcome table."""
    rows = result["readers"]
    head = ["reader", "cases", *OUTCOMES]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    total = collections.Counter()
    for name, r in rows.items():
        lines.append(f"| {name} | {r['cases']} | " + " | ".join(str(r["outcomes"][o]) for o in OUTCOMES) + " |")
        total["cases"] += r["cases"]
        total.update(r["outcomes"])
    lines.append(f"| **all** | {total['cases']} | " + " | ".join(str(total[o]) for o in OUTCOMES) + " |")
    bad = len(result["escapes"])
    verdict = (
        "No case escaped: every input gave finite output or a KineposeError naming the file (or the key)."
        if bad == 0
        else f"{bad} case(s) were not ok or a clear error; see `escapes` in `benchmarks/results/fuzz_readers.json`."
    )
    return (
        "## Fuzzing the readers\n\n"
        f"Command: `{result['command']}` (measured {result['date']}, {result['wall_s']:.0f} s, Python "
        f"{result['python']}, numpy {result['numpy']}, {result['cpu_count']} CPU cores).\n\n"
        "Seeded cases from `tests/data/test_fuzz.py`'s generators: the library's own files (6 frames of the "
        "`walk` clip as BVH, joints `.npz/.npy/.csv`, rotations `.npz/.csv/.json`; `configs/humanoid_hybrid.yaml`; "
        "the humanoid as a dict) mutated byte- and token-wise, plus NaN, inf, 1e400, huge integers, deep nesting, "
        "non-UTF-8 bytes, truncated or damaged zips and `.npy` headers announcing huge shapes. `clear error`: a "
        f"KineposeError whose message names the file (or the key); `hang`: over {result['timeout_s']:g} s.\n\n"
        + "\n".join(lines)
        + f"\n\n{verdict}\n\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=12000, help="number of cases (default 12000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the case generators (default 0)")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds per case before it is a hang")
    parser.add_argument("--json", default=os.path.join(HERE, "results", "fuzz_readers.json"), help="results file")
    parser.add_argument("--no-markdown", action="store_true", help="do not write benchmarks/RESULTS.md")
    args = parser.parse_args(argv)
    command = ".venv/bin/python benchmarks/fuzz_readers.py " + shlex.join(
        ["--cases", str(args.cases), "--seed", str(args.seed)]
        + (["--timeout", f"{args.timeout:g}"] if args.timeout != 5.0 else [])
    )
    with tempfile.TemporaryDirectory() as folder:
        result = {
            "command": command,
            "date": datetime.date.today().isoformat(),
            "seed": args.seed,
            "cases": args.cases,
            "timeout_s": args.timeout,
            "python": platform.python_version(),
            "numpy": np.__version__,
            "cpu_count": os.cpu_count(),
            **run(args.cases, args.seed, args.timeout, folder),
        }
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    atomic_write(args.json, lambda f: json.dump(result, f, indent=1))
    text = markdown(result)
    print(text)
    if not args.no_markdown:
        _write_section(os.path.join(HERE, "RESULTS.md"), "fuzz_readers", text)
    return 0 if not result["escapes"] else 1


if __name__ == "__main__":
    sys.exit(main())
