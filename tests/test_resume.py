"""Run directories: a killed run resumes from its cache; a run is never overwritten silently;
--merge adds benchmarks. Real `harness run`s on a tiny random model."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import cli
from harness.testing import make_tiny_gpt2, torch_threads

PLUGIN = '''
import harness
from harness.api import Benchmark, GenerateRequest, Instance, LoglikelihoodRequest, Metric


class Many(Benchmark):
    name = "many"
    metrics = (Metric("acc", "binary"), Metric("len", "continuous"))
    subsets = ("many",)

    def instances(self, config):
        for i in range(config.limit or 10):
            q = f"Question {i}: what is {i} plus {i * 7}? Answer:"
            yield Instance(str(i), "many", {}, q, " yes",
                           [LoglikelihoodRequest(q, " yes"), LoglikelihoodRequest(q, " no"),
                            GenerateRequest(q, ("\\n",), 6)])

    def process(self, instance, responses):
        yes, no, text = responses
        return {"answer": text, "scores": {"acc": float(yes.logprob > no.logprob), "len": float(len(text))}}


@harness.hookimpl
def register_benchmarks(register):
    register(Many())
'''
N_DOCS, BATCH = 80, 2
TOTAL = 3 * N_DOCS  # unique requests
CHUNK = 4 * BATCH  # harness.answering.CHUNK_BATCHES batches


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    (root / "plug").mkdir()
    (root / "plug" / "many.py").write_text(PLUGIN)
    return {"root": root, "model": str(make_tiny_gpt2(root / "tiny")), "plug": str(root / "plug")}


def _cli(*args: str) -> tuple[int, str]:
    with torch_threads(1):
        result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def _args(env, *extra: str, suite: str = "many", limit: str = str(N_DOCS)) -> list[str]:
    return ["--plugins-dir", env["plug"], "run", "--model", env["model"], "--suite", suite, "--limit", limit,
            "--batch-size", str(BATCH), "--quiet", "--no-report", *extra]


def _rows(path: Path) -> int:
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(path, timeout=30) as conn:
            return conn.execute("SELECT COUNT(*) FROM answers").fetchone()[0]
    except sqlite3.OperationalError:  # created, no table yet
        return 0


def test_a_killed_run_resumes_from_its_cache_and_matches_an_uninterrupted_run(env):
    out = env["root"] / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "harness", *_args(env, "--out", str(out))],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    observed, deadline = 0, time.monotonic() + 900  # a bound against a hang, not a speed limit
    while proc.poll() is None and time.monotonic() < deadline:
        observed = _rows(out / "cache.sqlite")
        if observed >= 2 * CHUNK:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, f"the run ended before it was killed: {proc.stderr.read()[-2000:]}"
    proc.stderr.close()
    at_kill = _rows(out / "cache.sqlite")
    assert 2 * CHUNK <= at_kill < TOTAL and at_kill % CHUNK == 0  # whole chunks only
    assert json.loads((out / "results.json").read_text())["complete"] is False

    code, msg = _cli(*_args(env, "--out", str(out)))  # without --resume: refused, nothing touched
    assert code == 2 and "holds a run of" in msg.splitlines()[-1] and "use --resume" in msg, msg

    code, msg = _cli(*_args(env, "--out", str(out), "--resume"))
    assert code == 0, msg
    resumed = json.loads((out / "results.json").read_text())
    stats = resumed["benchmarks"]["many"]["cache"]["model"]
    assert stats == {"hits": at_kill, "misses": TOTAL - at_kill}
    assert 0 < stats["hits"] and stats["misses"] <= TOTAL - observed + CHUNK

    ref = env["root"] / "uninterrupted"
    code, msg = _cli(*_args(env, "--out", str(ref), "--no-cache"))
    assert code == 0, msg
    reference = json.loads((ref / "results.json").read_text())
    assert resumed["benchmarks"]["many"]["metrics"] == reference["benchmarks"]["many"]["metrics"]
    assert (out / "samples" / "many.jsonl").read_text() == (ref / "samples" / "many.jsonl").read_text()
    assert "cache" not in reference["benchmarks"]["many"] and not (ref / "cache.sqlite").exists()

    code, msg = _cli(*_args(env, "--out", str(out), "--resume"))  # the same command again: all cached
    assert code == 0, msg
    again = json.loads((out / "results.json").read_text())
    assert again["benchmarks"]["many"]["cache"]["model"] == {"hits": TOTAL, "misses": 0}
    assert again["benchmarks"]["many"]["metrics"] == reference["benchmarks"]["many"]["metrics"]


@pytest.fixture(scope="module")
def small_run(env):
    out = env["root"] / "small"
    code, msg = _cli(*_args(env, "--out", str(out), limit="4"))
    assert code == 0, msg
    return out


@pytest.mark.parametrize("extra, needle", [
    ((), "holds a run of"),
    (("--resume", "--limit", "5"), "--resume: {out} holds a run with other options (limit=4 there, limit=5 in this"),
    (("--resume", "--suite", "example_mc"), "suite='many' there, suite='example_mc' in this command"),
    (("--merge", "--base", "{model}"), "--merge: {out} holds a run with other options (base=None there"),
    (("--merge", "--limit", "3"), "--merge: {out} already holds many with limit=4 (this command: 3)"),
    (("--resume", "--merge"), "--resume and --merge: choose one"),
])
def test_a_run_directory_is_never_overwritten_silently(env, small_run, extra, needle):
    before = (small_run / "results.json").read_text()
    args = [a.format(model=env["model"]) for a in extra]
    code, msg = _cli(*_args(env, "--out", str(small_run), limit="4"), *args)
    last = msg.splitlines()[-1]  # after any plug-in load warnings
    assert code == 2 and last.startswith("error: ") and "Traceback" not in msg, msg
    assert needle.format(out=small_run) in last, msg
    assert (small_run / "results.json").read_text() == before


def test_merge_adds_benchmarks_and_keeps_the_old_ones(env, small_run, tmp_path):
    import shutil

    out = tmp_path / "merged"
    shutil.copytree(small_run, out)
    before = json.loads((out / "results.json").read_text())
    code, msg = _cli(*_args(env, "--out", str(out), "--merge", suite="example_mc", limit="2"))
    assert code == 0, msg
    after = json.loads((out / "results.json").read_text())
    assert list(after["benchmarks"]) == ["many", "example_mc"] and after["complete"] is True
    assert after["benchmarks"]["many"]["metrics"] == before["benchmarks"]["many"]["metrics"]
    assert after["benchmarks"]["example_mc"]["n"] == 2
    assert [s["benchmark"] for s in after["config"]["suite"]] == ["many", "example_mc"]
    assert after["history"] == [{"command": before["command"], "created": before["created"]}]
    assert (out / "samples" / "many.jsonl").exists() and (out / "samples" / "example_mc.jsonl").exists()
    # merging the same benchmark again with the same options recomputes it from the cache
    code, msg = _cli(*_args(env, "--out", str(out), "--merge", suite="example_mc", limit="2"))
    assert code == 0, msg
    again = json.loads((out / "results.json").read_text())
    assert again["benchmarks"]["example_mc"]["cache"]["model"]["misses"] == 0
    assert again["benchmarks"]["example_mc"]["metrics"] == after["benchmarks"]["example_mc"]["metrics"]


def test_merge_refuses_other_weights_under_the_same_name(env, small_run, tmp_path):
    import shutil

    out = tmp_path / "merged"
    shutil.copytree(small_run, out)
    make_tiny_gpt2(env["model"], seed=1)  # same path, other weights
    try:
        before = (out / "results.json").read_text()
        code, msg = _cli(*_args(env, "--out", str(out), "--merge", suite="example_mc", limit="2"))
        assert code == 2 and "--merge:" in msg and "weights" in msg, msg
        assert (out / "results.json").read_text() == before
    finally:
        make_tiny_gpt2(env["model"], seed=0)
