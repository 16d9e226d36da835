"""Start-up time of the command line, side by side with the imports it is made of.

Each command runs ``--rounds`` times, the commands interleaved round by round so that a busy machine slows them
alike; the table gives the median wall time and its ratio to ``python -c "import torch"``.

Run: ``.venv/bin/python benchmarks/cli_startup.py`` (about a minute on 2 cores). Writes
``benchmarks/results/cli_startup.json`` and prints a Markdown table (copied into the README).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.path.dirname(sys.executable)
KINEPOSE = os.path.join(BIN, "kinepose")

COMMANDS = {
    'python -c "pass"': [sys.executable, "-c", "pass"],
    'python -c "import kinepose"': [sys.executable, "-c", "import kinepose"],
    "kinepose --help": [KINEPOSE, "--help"],
    "kinepose train --help": [KINEPOSE, "train", "--help"],
    'python -c "import torch"': [sys.executable, "-c", "import torch"],
    'python -c "import kinepose.kinematics"': [sys.executable, "-c", "import kinepose.kinematics"],
    'python -c "import lightning"': [sys.executable, "-c", "import lightning"],
    "kinepose skeleton humanoid": [KINEPOSE, "skeleton", "humanoid"],
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--out", default=os.path.join(HERE, "results", "cli_startup.json"))
    args = ap.parse_args()
    env = {**os.environ, "CI": "true"}
    times: dict[str, list[float]] = {k: [] for k in COMMANDS}
    for _ in range(args.rounds):
        for name, cmd in COMMANDS.items():
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
            times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    ref = med['python -c "import torch"']
    rows = [{"command": k, "median_s": med[k], "min_s": min(times[k]), "ratio_to_import_torch": med[k] / ref}
            for k in COMMANDS]  # fmt: skip
    payload = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
               "python": platform.python_version(), "rounds": args.rounds, "rows": rows, "raw_s": times}  # fmt: skip
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(payload, f, indent=1)
    print("| command | median wall (s) | fastest (s) | x `import torch` |\n|---|---:|---:|---:|")
    for r in rows:
        print(f"| `{r['command']}` | {r['median_s']:.3f} | {r['min_s']:.3f} | {r['ratio_to_import_torch']:.2f} |")
    print(f"\n{args.rounds} interleaved rounds, {payload['machine']}, Python {payload['python']}, {payload['date']}")


if __name__ == "__main__":
    main()
