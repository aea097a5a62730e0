"""harness.sandbox: unit checks, and hostile programs run from a throw-away PID namespace.

The hostile programs live in tests/sandbox_hostile/; runner.py runs them as pid 1
of a new PID namespace, so a sandbox bug cannot take the machine down. These tests
fail loudly (never skip) when bubblewrap is missing: CI runs
scripts/install-system-deps.sh first. Only non-Linux machines skip.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import sys
import time
from pathlib import Path

import pytest
from sandbox_hostile.isolation import HOSTILE, INSTALL, host_procs_with, run_hostile

from harness.errors import HarnessError
from harness.sandbox import Limits, Sandbox
from harness.sandbox import bwrap as sandbox_bwrap
from harness.sandbox.runner import _Capped, classify

if not sys.platform.startswith("linux"):
    pytest.skip("the sandbox needs Linux namespaces", allow_module_level=True)

TOKEN = secrets.token_hex(6)
SLACK_S = 60  # timeout for checks that must end at a resource limit, however busy the machine


# ---------------------------------------------------------------- unit checks (no processes)

@pytest.mark.parametrize("rc,stderr,timed_out,status,reason", [
    (0, "", False, "passed", "exit code 0"),
    (1, "Traceback...\nAssertionError\n", False, "failed", "exit code 1: AssertionError"),
    (139, "", False, "killed", "SIGSEGV"),
    (-9, "", False, "killed", "SIGKILL"),
    (128 + 24, "", False, "killed", "cpu time limit (4s, SIGXCPU)"),
    (1, "Traceback\nMemoryError\n", False, "failed", "memory limit (MemoryError)"),
    (1, "OSError: [Errno 27] File too large\n", False, "failed", "file size limit (EFBIG: File too large)"),
    (-9, "", True, "timed_out", "timeout after 2.5s"),
])
def test_classify(rc: int, stderr: str, timed_out: bool, status: str, reason: str) -> None:
    assert classify(rc, stderr, timed_out, Limits(timeout_s=2.5)) == (status, reason)


def test_capped_keeps_head_and_counts_rest() -> None:
    cap = _Capped(10)
    for chunk in (b"abcdef", b"ghijkl", b"mnop"):
        cap.feed(chunk)
    assert bytes(cap.data) == b"abcdefghij" and cap.dropped == 6
    assert cap.text().startswith("abcdefghij\n[... 6 more bytes dropped]")


def test_missing_bwrap_refuses_naming_tool_and_flag(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sandbox_bwrap, "_probe_result", {})
    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap on this PATH
    with pytest.raises(HarnessError) as err:
        Sandbox()
    msg = str(err.value)
    assert "bwrap" in msg and "apt-get install bubblewrap" in msg and "--allow-weak-sandbox" in msg


def test_weak_mode_only_when_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("harness.sandbox.runner.probe_bwrap", lambda: "bubblewrap (`bwrap`) is not installed")
    with pytest.raises(HarnessError):
        Sandbox(allow_weak=False)
    box = Sandbox(Limits(timeout_s=1), allow_weak=True)
    assert box.mode == "weak"
    ok, loop, env = box.run_many(["print(6 * 7)", "while True: pass",
                                  "import os; print(sorted(os.environ))"])
    assert (ok.status, ok.stdout) == ("passed", "42\n")
    assert loop.status == "timed_out"
    assert "HOME" not in env.stdout and "PATH" in env.stdout
    monkeypatch.setattr("harness.sandbox.runner.shutil.which", lambda name: None)
    with pytest.raises(HarnessError, match="needs `prlimit`"):
        Sandbox(allow_weak=True)


# ---------------------------------------------------------------- real sandbox, harmless programs

@pytest.fixture(scope="module")
def box() -> Sandbox:
    assert shutil.which("bwrap"), INSTALL
    return Sandbox(Limits(timeout_s=5))


def test_bwrap_mode_is_used(box: Sandbox) -> None:
    assert box.mode == "bwrap"


def test_limits_are_set_and_cannot_be_raised(box: Sandbox) -> None:
    limits = Limits(timeout_s=5, cpu_s=3, memory_bytes=512 << 20, nproc=9, fsize_bytes=1 << 20)
    code = ("import resource as r, json\n"
            "names = ['RLIMIT_CPU', 'RLIMIT_AS', 'RLIMIT_NPROC', 'RLIMIT_FSIZE']\n"
            "print(json.dumps([r.getrlimit(getattr(r, n)) for n in names]))\n"
            "try:\n    r.setrlimit(r.RLIMIT_NPROC, (99, 99)); print('raised')\n"
            "except (ValueError, OSError) as e: print('refused')\n")
    res = box.run(code, limits)
    assert res.status == "passed", res
    first, second = res.stdout.splitlines()
    assert json.loads(first) == [[3, 4], [512 << 20, 512 << 20], [9, 9], [1 << 20, 1 << 20]]
    assert second == "refused"


def test_namespaces_and_view(box: Sandbox) -> None:
    code = ("import os, socket, json\n"
            "print(json.dumps({'host': socket.gethostname(), 'pid': os.getpid(), 'cwd': os.getcwd(),\n"
            "  'root': sorted(os.listdir('/')), 'uid': os.getuid(),\n"
            "  'ifaces': sorted(l.split(':')[0].strip() for l in open('/proc/net/dev').readlines()[2:])}))")
    res = box.run(code)
    info = json.loads(res.stdout)
    assert info["host"] == "sandbox" and info["pid"] < 10 and info["cwd"] == "/tmp"
    assert info["ifaces"] == ["lo"]
    assert not {"root", "home", "work", "run", "var", "sys"} & set(info["root"])
    if os.geteuid() == 0:
        assert info["uid"] == sandbox_bwrap.SANDBOX_UID


def test_run_many_parallel_keeps_order(box: Sandbox) -> None:
    codes = [f"import time; time.sleep(0.6); print({i})" for i in range(4)]
    start = time.monotonic()
    results = box.run_many(codes, workers=4)
    assert [r.stdout for r in results] == [f"{i}\n" for i in range(4)]
    assert time.monotonic() - start < 4 * 0.6  # not one after the other


# ---------------------------------------------------------------- hostile programs (fast set)

@pytest.fixture(scope="module")
def fast(tmp_path_factory: pytest.TempPathFactory):
    """One isolated runner for every fast hostile check, with the host-side bait set up."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.setblocking(False)
    home = Path.home()
    canary_dir = home / f".harness-sandbox-canary-{TOKEN}"
    canary_dir.mkdir(mode=0o777)
    (canary_dir / "canary.txt").write_text("still here")
    os.chmod(canary_dir / "canary.txt", 0o666)
    outside = [f"/etc/harness-pwned-{TOKEN}", f"/harness-pwned-{TOKEN}", f"/usr/lib/harness-pwned-{TOKEN}",
               "/program/main.py", f"/dev/harness-pwned-{TOKEN}", f"/proc/harness-pwned-{TOKEN}",
               f"{HOSTILE}/harness-pwned-{TOKEN}", f"../harness-pwned-{TOKEN}", f"{canary_dir}/pwned"]
    secret = f"s3cr3t-{TOKEN}"
    checks = [
        {"name": "segfault", "program": "segfault.py"},
        # the bombs stop at a resource limit, not a clock: a generous timeout keeps a busy machine
        # (which slows the allocation/writes, not the limit) from turning them into timeouts
        {"name": "memory_bomb", "program": "memory_bomb.py", "limits": {"timeout_s": SLACK_S}},
        {"name": "disk_bomb", "program": "disk_bomb.py", "limits": {"timeout_s": SLACK_S}},
        {"name": "infinite_loop", "program": "infinite_loop.py", "limits": {"timeout_s": 0.5}},
        {"name": "write_outside", "program": "write_outside.py",
         "args": {"paths": outside + [f"/tmp/harness-private-{TOKEN}"]}},
        {"name": "rm_home", "program": "rm_home.py",
         "args": {"home": str(home), "canary_dir": str(canary_dir), "canary": str(canary_dir / "canary.txt")}},
        {"name": "shell_out", "program": "shell_out.py", "args": {"target": f"/etc/harness-pwned-{TOKEN}"}},
        {"name": "kill_parent", "program": "kill_parent.py"},
        {"name": "orphan", "program": "orphan.py", "args": {"marker": f"ORPHAN-{TOKEN}"}},
        {"name": "network", "program": "network.py", "args": {"port": listener.getsockname()[1]}},
        {"name": "read_secret", "program": "read_secret.py", "args": {"secret": secret}},
        {"name": "output_flood", "program": "output_flood.py", "args": {"mib": 16}},
    ]
    try:
        results = run_hostile(checks, env=dict(os.environ, HARNESS_TEST_SECRET=secret), timeout=600)
        yield {"results": results, "listener": listener, "canary": canary_dir / "canary.txt",
               "outside": outside, "secret": secret}
    finally:
        listener.close()
        shutil.rmtree(canary_dir, ignore_errors=True)


def _get(fast: dict, name: str) -> dict:
    rec = fast["results"][name]
    assert rec["leftover"] == [], f"{name} left processes behind: {rec['leftover']}"
    return rec["result"]


def test_hostile_segfault_is_killed(fast: dict) -> None:
    res = _get(fast, "segfault")
    assert (res["status"], res["reason"]) == ("killed", "SIGSEGV")


def test_hostile_memory_bomb_hits_memory_limit(fast: dict) -> None:
    res = _get(fast, "memory_bomb")
    assert (res["status"], res["reason"]) == ("failed", "memory limit (MemoryError)"), res


def test_hostile_disk_bomb_hits_file_size_limit(fast: dict) -> None:
    res = _get(fast, "disk_bomb")
    assert res["status"] == "failed" and res["reason"].startswith("file size limit")


def test_hostile_infinite_loop_times_out(fast: dict) -> None:
    res = _get(fast, "infinite_loop")
    assert (res["status"], res["reason"]) == ("timed_out", "timeout after 0.5s")
    assert res["duration_s"] < 3


def test_hostile_writes_outside_fail_and_host_untouched(fast: dict) -> None:
    res = _get(fast, "write_outside")
    report = json.loads(res["stdout"])
    assert report.pop(f"/tmp/harness-private-{TOKEN}") == "written"  # its own private dir works
    assert all(v != "written" for v in report.values()), report
    for path in fast["outside"] + [f"/tmp/harness-private-{TOKEN}"]:
        assert not (Path("/tmp") / path).resolve().exists() or path == "/program/main.py", path
    assert fast["canary"].read_text() == "still here"


def test_hostile_rm_rf_home_leaves_canary(fast: dict) -> None:
    res = _get(fast, "rm_home")
    assert res["stdout"].split()[0] == "False"  # no HOME in its environment
    assert fast["canary"].read_text() == "still here" and Path.home().is_dir()


def test_hostile_os_system_and_subprocess_stay_inside(fast: dict) -> None:
    res = _get(fast, "shell_out")
    assert res["status"] == "passed"
    if os.geteuid() == 0:
        assert "uid=65534" in res["stdout"]
    assert "Read-only file system" in res["stderr"] + res["stdout"]
    assert not Path(f"/etc/harness-pwned-{TOKEN}").exists()


def test_hostile_kill_parent_and_kill_all(fast: dict) -> None:
    res = _get(fast, "kill_parent")  # run_hostile already checked the runner survived
    assert res["status"] == "passed" and "still alive" in res["stdout"]


def test_hostile_orphan_is_gone(fast: dict) -> None:
    res = _get(fast, "orphan")
    assert res["status"] == "passed" and "parent exits" in res["stdout"]
    assert host_procs_with(f"ORPHAN-{TOKEN}") == []


def test_hostile_network_is_unreachable(fast: dict) -> None:
    res = _get(fast, "network")
    assert res["stdout"].startswith("no connection"), res
    with pytest.raises(BlockingIOError):
        fast["listener"].accept()  # nothing ever connected


def test_hostile_secret_not_visible(fast: dict) -> None:
    res = _get(fast, "read_secret")
    assert res["stdout"].startswith("not found"), res
    assert fast["secret"] not in res["stdout"] + res["stderr"]
    assert "'HOME'" not in res["stdout"]


def test_hostile_output_flood_is_capped(fast: dict) -> None:
    res = _get(fast, "output_flood")
    cap = Limits().output_bytes
    assert res["status"] == "passed" and res["truncated"]
    assert cap <= len(res["stdout"]) < cap + 100 and len(res["stderr"]) < cap + 100
    assert "more bytes dropped" in res["stdout"]


# ---------------------------------------------------------------- hostile programs (heavier: tox -e sandbox)

@pytest.mark.sandbox
def test_hostile_heavy_sequential() -> None:
    marker = f"ORPHAN-LOOP-{TOKEN}"
    results = run_hostile([
        {"name": "fork_bomb", "program": "fork_bomb.py", "limits": {"timeout_s": 2}},
        {"name": "ignore_sigterm", "program": "ignore_sigterm.py", "limits": {"timeout_s": 1}},
        {"name": "disk_bomb_many_files", "program": "disk_bomb_many_files.py"},
        {"name": "cpu_limit", "program": "infinite_loop.py", "limits": {"timeout_s": 20, "cpu_s": 1}},
        {"name": "orphan_then_loop", "program": "orphan.py", "limits": {"timeout_s": 1},
         "args": {"marker": marker, "loop": True}},
    ])
    for name, rec in results.items():
        assert rec["leftover"] == [], f"{name} left processes behind: {rec['leftover']}"
    res = {name: rec["result"] for name, rec in results.items()}
    assert (res["fork_bomb"]["status"], res["fork_bomb"]["reason"]) == ("timed_out", "timeout after 2s")
    assert "fork refused errno=11" in res["fork_bomb"]["stderr"]  # RLIMIT_NPROC did refuse
    assert res["ignore_sigterm"]["status"] == "timed_out"
    assert res["disk_bomb_many_files"]["status"] == "failed"
    assert "No space left on device" in res["disk_bomb_many_files"]["reason"]
    assert (res["cpu_limit"]["status"], res["cpu_limit"]["reason"]) == ("killed", "cpu time limit (1s, SIGXCPU)")
    assert res["cpu_limit"]["duration_s"] < 10
    assert res["orphan_then_loop"]["status"] == "timed_out"
    assert host_procs_with(marker) == []


@pytest.mark.sandbox
def test_hostile_fork_bombs_do_not_starve_a_neighbour() -> None:
    """RLIMIT_NPROC is per sandbox (set inside the user namespace), not per shared uid."""
    bomb = {"program": "fork_bomb.py", "limits": {"timeout_s": 4}}
    checks = [dict(bomb, name="bomb1"), dict(bomb, name="bomb2"),
              {"name": "neighbour", "program": "shell_out.py", "limits": {"timeout_s": 8},
               "args": {"target": f"/tmp/neighbour-{TOKEN}"}}]
    results = run_hostile(checks, parallel=True)
    assert results["bomb1"]["leftover"] == []
    assert results["bomb1"]["result"]["status"] == results["bomb2"]["result"]["status"] == "timed_out"
    neighbour = results["neighbour"]["result"]
    assert neighbour["status"] == "passed" and "subprocess rc" in neighbour["stdout"], neighbour
