"""Run untrusted generated code (HumanEval completions) without trusting it.

Generated code never runs in the harness process. Each program runs in its own
bubblewrap sandbox (see :mod:`harness.sandbox.bwrap` for the exact policy):
fresh user/PID/network/IPC/UTS/mount namespaces, a read-only view of the system
directories only, a private size-limited tmpfs as working dir, minimal /proc and
/dev, a cleaned environment, closed stdin, an unprivileged uid, rlimits on CPU,
memory, processes and file size, and a wall-clock timeout after which the whole
namespace is killed (its init dies, so every process in it dies).

Where bubblewrap cannot run, :class:`Sandbox` refuses (``HarnessError``) unless
the user accepted the weaker rlimit-only mode explicitly (``allow_weak``).

Usage::

    box = Sandbox(Limits(timeout_s=3))
    results = box.run_many(["print(1)", "while True: pass"])
    results[1].status, results[1].reason   # ("timed_out", "timeout after 3s")
"""
from __future__ import annotations

import os
import selectors
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import HarnessError
from .bwrap import SAFE_ENV, WEAK_HINT, Limits, bwrap_command, choose_python, drop_uid, probe_bwrap

__all__ = ["Limits", "Sandbox", "SandboxResult", "STATUSES"]

STATUSES = ("passed", "failed", "timed_out", "killed")
_KILL_GRACE_S = 2.0  # after the kill, how long to wait for pipes to close
_DRAIN_S = 1.0  # after the program exited, how long to keep reading its pipes


@dataclass
class SandboxResult:
    """What happened to one program. ``status`` is one of :data:`STATUSES`."""

    status: str
    reason: str  # "exit code 1", "SIGSEGV", "timeout after 3s", "memory limit (MemoryError)", ...
    stdout: str = ""
    stderr: str = ""
    returncode: int | None = None
    duration_s: float = 0.0
    truncated: bool = False  # output beyond Limits.output_bytes was dropped

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _signal_name(num: int) -> str:
    try:
        return signal.Signals(num).name
    except ValueError:
        return f"signal {num}"


def classify(returncode: int, stderr: str, timed_out: bool, limits: Limits) -> tuple[str, str]:
    """Map an exit to (status, reason).

    bwrap reports a child killed by signal N as exit code 128+N, so codes above
    128 are read as signals (a program calling ``sys.exit(139)`` is misread; no
    HumanEval test does that). Python ignores SIGXFSZ and raises MemoryError,
    so those two limits are recognised from the traceback instead.
    """
    if timed_out:
        return "timed_out", f"timeout after {limits.timeout_s:g}s"
    sig = -returncode if returncode < 0 else returncode - 128 if 128 < returncode < 160 else 0
    if sig:
        name = _signal_name(sig)
        why = {"SIGXCPU": f"cpu time limit ({limits.cpu_seconds()}s, SIGXCPU)",
               "SIGXFSZ": "file size limit (SIGXFSZ)"}.get(name, name)
        return "killed", why
    if returncode == 0:
        return "passed", "exit code 0"
    tail = stderr.strip().splitlines()[-1] if stderr.strip() else ""
    if tail.startswith("MemoryError"):
        return "failed", "memory limit (MemoryError)"
    if "File too large" in tail:
        return "failed", "file size limit (EFBIG: File too large)"
    return "failed", f"exit code {returncode}" + (f": {tail[:200]}" if tail else "")


class _Capped:
    """Keeps the first ``cap`` bytes of a stream and counts (but drops) the rest,
    so an output flood costs CPU until the timeout, never memory."""

    def __init__(self, cap: int) -> None:
        self.cap, self.data, self.dropped = cap, bytearray(), 0

    def feed(self, chunk: bytes) -> None:
        room = self.cap - len(self.data)
        self.data += chunk[:max(room, 0)]
        self.dropped += max(len(chunk) - max(room, 0), 0)

    def text(self) -> str:
        tail = f"\n[... {self.dropped} more bytes dropped]" if self.dropped else ""
        return self.data.decode("utf-8", errors="replace") + tail


class Sandbox:
    """Runs Python programs in isolated, resource-limited processes.

    Construct once and reuse: the bubblewrap check happens at construction so a
    missing tool fails the run up front, not per program.
    """

    def __init__(self, limits: Limits | None = None, allow_weak: bool = False) -> None:
        self.limits = limits or Limits()
        why = probe_bwrap()
        if why is None:
            self.mode = "bwrap"
        elif allow_weak:
            if shutil.which("prlimit") is None:
                raise HarnessError("the rlimit-only sandbox needs `prlimit` (util-linux): "
                                   "install it with `sudo apt-get install util-linux`")
            self.mode = "weak"
        else:
            raise HarnessError(f"code execution needs a sandbox, but {why}; {WEAK_HINT}")
        self.uid = drop_uid()
        self.python, self.extra_ro = choose_python(self.uid)

    def run(self, code: str, limits: Limits | None = None) -> SandboxResult:
        """Run one program; never raises for anything the program does."""
        limits = limits or self.limits
        if self.mode == "bwrap":
            return self._run_bwrap(code, limits)
        return self._run_weak(code, limits)

    def run_many(self, codes: Sequence[str], workers: int | None = None, limits: Limits | None = None,
                 progress: bool = False) -> list[SandboxResult]:
        """Run programs in parallel (one subprocess per thread), results in input order;
        ``progress`` shows a bar on stderr (thousands of programs take minutes)."""
        workers = max(1, workers or os.cpu_count() or 1)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sandbox") as pool:
            results = pool.map(lambda c: self.run(c, limits), codes)
            if progress:
                from tqdm import tqdm

                results = tqdm(results, total=len(codes), desc="running programs", unit="prog")
            return list(results)

    def _run_bwrap(self, code: str, limits: Limits) -> SandboxResult:
        fd = os.memfd_create("program")
        try:
            os.write(fd, code.encode("utf-8", errors="surrogatepass"))
            os.lseek(fd, 0, os.SEEK_SET)
            cmd = bwrap_command(limits, fd, self.python, self.extra_ro)
            return self._execute(cmd, limits, pass_fds=(fd,), cwd=None, user=None)
        finally:
            os.close(fd)

    def _run_weak(self, code: str, limits: Limits) -> SandboxResult:
        """rlimits + another uid + a temp dir only: no namespaces (the user accepted that)."""
        with tempfile.TemporaryDirectory(prefix="harness-sandbox-") as tmp:
            path = os.path.join(tmp, "main.py")
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(code)
            if self.uid is not None:
                os.chown(tmp, self.uid, self.uid)
            cmd = ["prlimit", *limits.prlimit_args(), self.python, "-I", "-B", path]
            return self._execute(cmd, limits, pass_fds=(), cwd=tmp, user=self.uid)

    def _execute(self, cmd: list[str], limits: Limits, pass_fds: tuple[int, ...],
                 cwd: str | None, user: int | None) -> SandboxResult:
        start = time.monotonic()
        env = dict(SAFE_ENV, TMPDIR=cwd) if cwd else dict(SAFE_ENV)
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, pass_fds=pass_fds, cwd=cwd, env=env,
                                start_new_session=True, user=user, group=user,
                                extra_groups=[] if user is not None else None)
        out, err = _Capped(limits.output_bytes), _Capped(limits.output_bytes)
        timed_out = _pump(proc, {proc.stdout: out, proc.stderr: err}, start + limits.timeout_s)
        if timed_out:
            _kill_group(proc)
            _pump(proc, {proc.stdout: out, proc.stderr: err}, time.monotonic() + _KILL_GRACE_S)
        try:
            proc.wait(timeout=_KILL_GRACE_S)
        except subprocess.TimeoutExpired:  # pipes were closed early: kill anyway
            _kill_group(proc)
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            stream.close()
        status, reason = classify(proc.returncode, err.text(), timed_out, limits)
        return SandboxResult(status, reason, out.text(), err.text(), proc.returncode,
                             round(time.monotonic() - start, 3), bool(out.dropped or err.dropped))


def _pump(proc: subprocess.Popen, sinks: dict[Any, _Capped], deadline: float) -> bool:
    """Read both pipes until they close or ``deadline``; True on timeout.

    Once the process has exited, whatever still holds the pipes (in weak mode, an
    orphan the program left) gets ``_DRAIN_S`` more, so a finished program is not
    reported as timed out.
    """
    exited = False
    with selectors.DefaultSelector() as sel:
        for stream in sinks:
            if not stream.closed:
                os.set_blocking(stream.fileno(), False)
                sel.register(stream, selectors.EVENT_READ)
        while sel.get_map():
            if not exited and proc.poll() is not None:
                exited, deadline = True, min(deadline, time.monotonic() + _DRAIN_S)
            left = deadline - time.monotonic()
            if left <= 0:
                return not exited
            for key, _ in sel.select(timeout=min(left, 0.1)):
                chunk = os.read(key.fileobj.fileno(), 65536)
                if chunk:
                    sinks[key.fileobj].feed(chunk)
                else:
                    sel.unregister(key.fileobj)
    return False


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the sandbox's process group: with bwrap that kills the namespace's init
    (--die-with-parent), and the kernel then kills every process in the namespace."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
