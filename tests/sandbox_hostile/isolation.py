"""Launching runner.py in a throw-away PID namespace, and host-side checks for the tests.

Why a separate namespace: if the sandbox failed to contain a fork bomb or an orphan,
whatever escaped is still inside this namespace and dies with the runner, instead of
lingering on (or taking down) the machine running the tests.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

HOSTILE = Path(__file__).resolve().parent
INSTALL = "bubblewrap is missing: run `sudo scripts/install-system-deps.sh`"


def isolated(cmd: list[str]) -> list[str]:
    """Prefix that runs ``cmd`` as pid 1 of a new PID namespace (everything dies with it)."""
    if os.geteuid() == 0:
        return ["unshare", "--pid", "--fork", "--kill-child", "--mount-proc", *cmd]
    return ["bwrap", "--dev-bind", "/", "/", "--proc", "/proc", "--unshare-pid", "--as-pid-1",
            "--die-with-parent", "--", *cmd]


def run_hostile(checks: list[dict], env: dict | None = None, timeout: float = 120,
                parallel: bool = False) -> dict:
    """Run checks through runner.py in isolation; ``{name: {"result", "leftover"}}``.

    Fails (never skips) when bwrap is missing, and when the runner did not survive.
    """
    assert shutil.which("bwrap"), INSTALL
    cmd = isolated([sys.executable, str(HOSTILE / "runner.py")])
    request = json.dumps({"checks": checks, "parallel": parallel})
    proc = subprocess.run(cmd, input=request, capture_output=True, text=True, timeout=timeout, env=env)
    lines = [json.loads(ln) for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert proc.returncode == 0 and lines and lines[-1] == {"runner": "alive"}, \
        f"the harness side did not survive: rc={proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    assert lines[0] == {"mode": "bwrap", "pid": 1}  # really in its own PID namespace
    return {ln["name"]: ln for ln in lines[1:-1]}


def host_procs_with(marker: str) -> list[str]:
    """Pids of processes anywhere on the host whose command line contains ``marker``."""
    hits = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if marker.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                hits.append(pid)
        except OSError:
            pass
    return hits
