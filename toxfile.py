"""tox's inline plug-in (loaded from next to tox.ini): one torch for every env.

torch's CPU wheel unpacks to ~1 GB; installing it into each of the nine envs costs minutes and disk.
Before anything is installed into an env, torch (the constraints.txt pin) is installed once into
``.tox/.shared-torch`` with ``pip install --target`` and a ``.pth`` file puts that dir on the env's
``sys.path``: pip then sees the pinned torch as already installed and installs only its small
dependencies. ``HARNESS_TOX_OWN_TORCH=1`` turns this off (each env installs its own torch).
"""
from __future__ import annotations

import fcntl
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from tox.plugin import impl

ROOT = Path(__file__).resolve().parent
PTH = "_harness_shared_torch.pth"


def _pin() -> str:
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if re.match(r"^torch\s*==", line.strip()):
            return line.strip()
    return "torch"


def _shared(work_dir: Path) -> Path:
    target = work_dir / ".shared-torch"
    with open(work_dir / ".shared-torch.lock", "w") as lock:  # parallel envs install it once
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / ".complete").is_file():
            subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
                            str(target), "--upgrade", _pin()], check=True)
            (target / ".complete").write_text(_pin() + "\n")
    return target


@impl
def tox_on_install(tox_env: Any, arguments: Any, section: str, of_type: str) -> None:
    if os.environ.get("HARNESS_TOX_OWN_TORCH") or not hasattr(tox_env, "env_site_package_dir"):
        return
    try:
        if tox_env.conf["skip_install"]:  # lint, types: no harness, no torch
            return
    except KeyError:
        return
    site = Path(tox_env.env_site_package_dir())
    if (site / PTH).is_file() or not site.is_dir():
        return
    work_dir = Path(tox_env.core["work_dir"])
    work_dir.mkdir(parents=True, exist_ok=True)
    (site / PTH).write_text(str(_shared(work_dir)) + "\n")
