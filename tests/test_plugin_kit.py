"""The plug-in kit: `harness plugin new` scaffolds a package that installs and runs with no edit, and
`harness.testing.check_benchmark` names each way a benchmark breaks the contract."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.api import Benchmark, GenerateRequest, Instance, LoglikelihoodRequest, Metric
from harness.testing import BenchmarkContractError, check_benchmark

BIN = Path(sys.executable).parent


class Good(Benchmark):
    name = "good"
    metrics = (Metric("acc"),)
    subsets = ("good",)

    def instances(self, config):
        for i in range(5)[: config.limit]:
            yield Instance(str(i), "good", {"i": i}, f"Q{i}", "A", [LoglikelihoodRequest(f"Q{i}", " A"),
                                                                 GenerateRequest(f"Q{i}", max_tokens=4)])

    def process(self, instance, responses):
        return {"answer": responses[1], "scores": {"acc": float(responses[0].logprob > -2.5)}}


def test_check_benchmark_passes_a_good_benchmark_and_runs_it():
    summary = check_benchmark(Good(), limit=3)
    assert summary["n"] == 3 and summary["requests"] == 6
    assert 0.0 <= summary["aggregate"]["acc"] <= 1.0 and summary["pairwise"] is None


def _variant(**attrs):
    return type("Bad", (Good,), attrs)()


def _inst(doc_id="0", subset="good", requests=None):
    return Instance(doc_id, subset, {}, "Q", "A", [LoglikelihoodRequest("Q", " A")] if requests is None else requests)


BROKEN = [
    (object(), "not an instance of a harness.api.Benchmark subclass"),
    (_variant(name=""), "has no name"),
    (_variant(name="a:b"), "which --suite cannot address"),
    (_variant(metrics=()), "declares no metrics"),
    (_variant(metrics=("acc",)), "not a harness.api.Metric"),
    (_variant(metrics=(Metric("acc", "ordinal"),)), "use 'binary' or 'continuous'"),
    (_variant(metrics=(Metric("acc"), Metric("acc"))), "declares a name twice"),
    (_variant(instances=lambda self, c: iter([])), "yielded nothing"),
    (_variant(instances=lambda self, c: [{"doc_id": "0"}]), "yielded a dict, not a harness.api.Instance"),
    (_variant(instances=lambda self, c: [_inst(doc_id=0)]), "doc_id 0 is a int; use str(...)"),
    (_variant(instances=lambda self, c: [_inst(), _inst()]), "doc_id '0' appears twice"),
    (_variant(instances=lambda self, c: [_inst(subset="other")]), "has subset 'other', not one of subsets"),
    (_variant(instances=lambda self, c: [_inst(str(i)) for i in range(9)]), "more than limit=3 instances"),
    (_variant(instances=lambda self, c: [_inst(requests=[])]), "has no requests"),
    (_variant(instances=lambda self, c: [_inst(requests=["Q A"])]), "has a request of type str"),
    (_variant(process_batch=lambda self, i, r, c: []), "want one dict per instance"),
    (_variant(process=lambda self, i, r: ("A", 1.0)), "returned a tuple"),
    (_variant(process=lambda self, i, r: {"scores": {"acc": 1.0}}), "want at least 'answer' and 'scores'"),
    (_variant(process=lambda self, i, r: {"answer": 3, "scores": {"acc": 1.0}}), "answer is a int; want str"),
    (_variant(process=lambda self, i, r: {"answer": "", "scores": [1.0]}), "scores is a list"),
    (_variant(process=lambda self, i, r: {"answer": "", "scores": {"acc": True}}), "score 'acc' is True (bool); want a float"),
    (_variant(process=lambda self, i, r: {"answer": "", "scores": {"acc": 1.0, "f1": 0.5}}), "metric 'f1', which is not declared"),
    (_variant(process=lambda self, i, r: {"answer": "", "scores": {"acc": 1.0}, "x": {1, 2}}), "JSON cannot store"),
    (_variant(aggregate=lambda self, recs: [0.5]), "aggregate returned a list"),
    (_variant(aggregate=lambda self, recs: {"f1": 0.5}), "no value for declared metric 'acc'"),
    (_variant(aggregate=lambda self, recs: {"acc": float("nan")}), "want a finite float"),
    (_variant(postprocess=lambda self, recs, ctx: ["win"]), "postprocess returned a list"),
]


@pytest.mark.parametrize("bench,message", BROKEN, ids=[m for _, m in BROKEN])
def test_check_benchmark_names_each_breach(bench, message):
    with pytest.raises(BenchmarkContractError) as exc:
        check_benchmark(bench, limit=3)
    assert message in str(exc.value)


def test_plugin_new_refuses_bad_names_and_existing_dirs(tmp_path):
    env = {**os.environ, "HARNESS_DEBUG": ""}
    bad = subprocess.run([BIN / "harness", "plugin", "new", "My-Bench", "--dir", str(tmp_path)],
                         capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and "lower-case letters" in bad.stderr and "Traceback" not in bad.stderr
    (tmp_path / "harness-x").mkdir()
    taken = subprocess.run([BIN / "harness", "plugin", "new", "x", "--dir", str(tmp_path)],
                           capture_output=True, text=True, env=env)
    assert taken.returncode == 2 and "already exists" in taken.stderr


def test_scaffolded_plugin_installs_lists_runs_and_passes_its_tests(tmp_path):
    """`harness plugin new`, `pip install -e`, then `harness plugins` / `harness run --suite` with no edit."""
    from harness.testing import make_tiny_gpt2

    def sh(*args, check=True):
        proc = subprocess.run([str(a) for a in args], capture_output=True, text=True, cwd=tmp_path)
        assert not check or proc.returncode == 0, proc.stdout + proc.stderr
        return proc

    sh(BIN / "harness", "plugin", "new", "kit_demo", "--dir", tmp_path)
    pkg = tmp_path / "harness-kit-demo"
    assert (pkg / "harness_kit_demo" / "__init__.py").is_file() and (pkg / "tests" / "test_harness_kit_demo.py").is_file()
    assert '[project.entry-points.harness]\nkit_demo = "harness_kit_demo"' in (pkg / "pyproject.toml").read_text()
    sh(sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "-e", pkg)
    try:
        listing = sh(BIN / "harness", "plugins").stdout
        assert "harness-kit-demo" in listing and "kit_demo" in listing
        model = make_tiny_gpt2(tmp_path / "tiny")
        sh(BIN / "harness", "run", "--model", model, "--suite", "kit_demo", "--limit", "3", "--out", tmp_path / "run",
           "--no-report", "--quiet")
        results = json.loads((tmp_path / "run" / "results.json").read_text())
        bench = results["benchmarks"]["kit_demo"]
        assert bench["error"] is None and bench["n"] == 3 and set(bench["metrics"]) == {"acc", "exact_match"}
        tests = sh(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", pkg / "tests")
        assert "2 passed" in tests.stdout
    finally:
        sh(sys.executable, "-m", "pip", "uninstall", "--yes", "--quiet", "harness-kit-demo", check=False)
    assert "kit_demo" not in sh(BIN / "harness", "plugins").stdout
