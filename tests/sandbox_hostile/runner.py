"""Runs hostile programs through harness.sandbox, from inside a throw-away PID namespace.

tests/test_sandbox.py starts this script as pid 1 of a new PID namespace
(``unshare --pid --fork --kill-child`` or bwrap), so if the sandbox failed to
contain something, killing this process kills whatever escaped, and the test
process itself is never in the blast radius.

Protocol: a JSON request on stdin::

    {"allow_weak": false, "parallel": false, "checks": [{"name", "program", "args", "limits"}]}

and one JSON line per check on stdout: ``{"name", "result", "leftover"}``, where
``leftover`` lists processes other than this runner still alive in the
namespace after ``Sandbox.run`` returned (must be empty), then ``{"runner": "alive"}``.
"""
from __future__ import annotations

import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from harness.sandbox import Limits, Sandbox

HERE = Path(__file__).resolve().parent


def _reap() -> None:
    """As pid 1 we inherit orphans (bwrap's namespace init among them) and must reap them."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _others() -> list[str]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
                state = [ln for ln in Path(f"/proc/{entry}/status").read_text().splitlines()
                         if ln.startswith("State:")]
            except OSError:
                continue
            found.append(f"{entry}: {cmd.strip()[:120]} {state[0] if state else ''}")
    return found


def _leftover(grace_s: float = 2.0) -> list[str]:
    """Processes still around after the run (zombies of reaped parents are collected first)."""
    deadline = time.monotonic() + grace_s
    while True:
        _reap()
        others = _others()
        if not others or time.monotonic() > deadline:
            return others
        time.sleep(0.05)


def _run(box: Sandbox, check: dict) -> dict:
    source = (HERE / check["program"]).read_text()
    code = f"import json\nARGS = json.loads({json.dumps(check.get('args', {}))!r})\n{source}"
    return box.run(code, Limits(**check.get("limits", {}))).to_dict()


def main() -> None:
    request = json.load(sys.stdin)
    box = Sandbox(allow_weak=request.get("allow_weak", False))
    print(json.dumps({"mode": box.mode, "pid": os.getpid()}), flush=True)
    if request.get("parallel"):  # all at once: neighbours must not disturb each other
        with ThreadPoolExecutor(max_workers=len(request["checks"])) as pool:
            results = list(pool.map(lambda c: _run(box, c), request["checks"]))
        leftover = _leftover()
        for check, result in zip(request["checks"], results):
            print(json.dumps({"name": check["name"], "result": result, "leftover": leftover}))
    else:
        for check in request["checks"]:
            result = _run(box, check)
            print(json.dumps({"name": check["name"], "result": result, "leftover": _leftover()}),
                  flush=True)
    print(json.dumps({"runner": "alive"}), flush=True)


if __name__ == "__main__":
    main()
