"""CLI start-up time: ``harness --help`` and ``harness plugins`` vs a bare ``python -c pass``.

    python bench/bench_startup.py [--runs 5]

Each command runs as a subprocess; the best of N wall times is kept (the least disturbed by
other load). The bare interpreter is the baseline the CLI cannot beat; the difference is what
harness's imports cost. ``python -X importtime -m harness plugins`` shows where it goes.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time

COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "harness --help": [sys.executable, "-m", "harness", "--help"],
    "harness plugins": [sys.executable, "-m", "harness", "plugins"],
}


def best_of(cmd: list[str], runs: int) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    times = {name: best_of(cmd, args.runs) for name, cmd in COMMANDS.items()}
    base = times["python -c pass"]
    for name, t in times.items():
        print(f"{name:18s} {t:6.3f} s  ({t / base:5.1f}x bare python)  target < 0.5 s: "
              f"{'met' if t < 0.5 else 'MISSED'}")


if __name__ == "__main__":
    main()
