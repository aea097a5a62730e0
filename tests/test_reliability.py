"""What a hostile user found (issue 13), each with the test that would have caught it:
the prompt cut to make room for max_tokens, plug-ins that raise or exit, a full disk,
a bad --base noticed only after the first model's evaluation."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections import namedtuple
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.api import GenerateRequest as G
from harness.cli import cli
from harness.engine import Engine, RunConfig
from harness.errors import HarnessError
from harness.models import load_model
from harness.suite import parse_suite
from harness.testing import FakeModel, make_tiny_gpt2, torch_threads

TESTS = Path(__file__).parent


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return make_tiny_gpt2(tmp_path_factory.mktemp("tiny") / "gpt2")  # context 64


# -- the prompt wins over max_tokens ---------------------------------------------------------
def test_max_tokens_near_the_context_never_cuts_the_prompt(tiny):
    with torch_threads(1):
        model = load_model(str(tiny))
        L = model.max_length
        prompt = "The quick brown fox jumps over the lazy dog and runs far away into the woods"
        ids = model.tok_encode(prompt)
        n = len(ids)
        assert L == 64 and 10 < n < 40
        big = G(prompt, max_tokens=L - 1)  # the old decode kept 1 prompt token for this
        assert model.max_new_tokens(big) == L - n
        assert model.max_new_tokens(G(prompt, max_tokens=5)) == 5
        new = list(model._decode([big], [ids]))[-1][0]
        assert len(new) <= L - n
        short = list(model._decode([G(prompt, max_tokens=5)], [ids]))[-1][0]
        assert new[:len(short)] == short  # the same greedy start: the whole prompt was read


def test_a_prompt_longer_than_the_window_keeps_one_new_token(tiny):
    with torch_threads(1):
        model = load_model(str(tiny))
        ids = model.tok_encode("word " * 100)
        assert len(ids) > model.max_length
        assert model.max_new_tokens(G("word " * 100, max_tokens=10)) == 1
        new = list(model._decode([G("x", max_tokens=10)], [ids]))[-1][0]
        cut = list(model._decode([G("x", max_tokens=1)], [ids[-(model.max_length - 1):]]))[-1][0]
        assert len(new) <= 1 and new == cut


def test_engine_records_a_capped_budget_humaneval_on_a_small_context(tmp_path):
    """HumanEval asks 1,024 new tokens; a GPT-2 of context 256 cannot give them after the prompt."""
    from harness.evaluate import evaluate

    ckpt = make_tiny_gpt2(tmp_path / "ctx256", context_length=256)
    with torch_threads(1):
        results = evaluate(str(ckpt), suite="humaneval", limit=1, out=tmp_path / "run", progress=False,
                           report=False, allow_code_execution=True, allow_weak_sandbox=True)
        model = load_model(str(ckpt))
    assert results["benchmarks"]["humaneval"]["error"] is None
    rec = json.loads((tmp_path / "run" / "samples" / "humaneval.jsonl").read_text().splitlines()[0])
    expected = 256 - len(model.tok_encode(rec["prompt"]))
    assert 0 < expected < 1024
    assert rec["model"]["max_tokens_capped"] == expected


# -- plug-ins that raise or exit ------------------------------------------------------------
FLAKY = '''
import sys
from harness.api import Benchmark, Instance, LoglikelihoodRequest, Metric, hookimpl

class Good(Benchmark):
    name = "good"
    metrics = (Metric("acc"),)
    subsets = ("good",)
    def instances(self, config):
        for i in range(3):
            yield Instance(str(i), "good", {}, f"q{i}", "A", [LoglikelihoodRequest(f"q{i}", " A")])
    def process(self, instance, responses):
        return {"answer": "A", "scores": {"acc": float(responses[0].is_greedy)}}

class BadInstances(Good):
    name = "bad_instances"
    def instances(self, config):
        raise RuntimeError("instances exploded")

class ExitsInProcess(Good):
    name = "exits_in_process"
    def process(self, instance, responses):
        sys.exit(3)

class ExitsInPostprocess(Good):
    name = "exits_in_postprocess"
    def postprocess(self, records, context):
        raise SystemExit("bye")

class BadAggregate(Good):
    name = "bad_aggregate"
    def aggregate(self, records):
        raise ZeroDivisionError("aggregate divided by zero")

class ReturnsNone(Good):
    name = "returns_none"
    def process(self, instance, responses):
        return None

class BrokenScore(Good):
    name = "broken_score"
    score_options = {"predictions": "a file"}
    def score_files(self, context, predictions):
        raise RuntimeError("scorer bug")

class BadAttributes(Good):
    name = "bad_attributes"
    metrics = 5

@hookimpl
def register_benchmarks(register):
    for b in (Good(), BadInstances(), ExitsInProcess(), ExitsInPostprocess(), BadAggregate(), ReturnsNone(),
              BrokenScore(), BadAttributes()):
        register(b)
'''


@pytest.fixture()
def plugins_dir(tmp_path) -> Path:
    d = tmp_path / "plugs"
    d.mkdir()
    (d / "flaky.py").write_text(FLAKY)
    (d / "exits_at_import.py").write_text("import sys\nsys.exit(4)\n")
    (d / "exits_in_register.py").write_text(textwrap.dedent("""
        import sys
        from harness.api import hookimpl

        @hookimpl
        def register_benchmarks(register):
            sys.exit(5)
    """))
    return d


def test_every_plugin_call_is_isolated_and_blamed_by_name(tiny, plugins_dir, tmp_path):
    suite = "bad_instances,exits_in_process,good,exits_in_postprocess,bad_aggregate,returns_none"
    with torch_threads(1):
        res = CliRunner().invoke(cli, ["--plugins-dir", str(plugins_dir), "run", "--model", str(tiny), "--suite", suite,
                                       "--out", str(tmp_path / "run"), "--no-report", "--quiet"],
                                 catch_exceptions=False)
    assert res.exit_code == 1, res.output  # some benchmarks failed; the run itself finished
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    errors = {name: b["error"] for name, b in results["benchmarks"].items()}
    assert errors["good"] is None and results["benchmarks"]["good"]["metrics"]["acc"]["model"]["n"] == 3
    assert errors["bad_instances"] == ("plug-in 'flaky' failed in bad_instances.instances(): "
                                       "RuntimeError: instances exploded")
    assert errors["exits_in_process"] == "plug-in 'flaky' failed in exits_in_process.process(): SystemExit: 3"
    assert errors["exits_in_postprocess"] == ("plug-in 'flaky' failed in exits_in_postprocess.postprocess(): "
                                              "SystemExit: bye")
    assert errors["bad_aggregate"].startswith("plug-in 'flaky' failed in bad_aggregate.aggregate(): ZeroDivisionError")
    assert "returns_none.process(): TypeError: process() must return one dict per instance" in errors["returns_none"]
    failed = {e["plugin"]: e["error"] for e in results["plugin_errors"]}
    assert failed["exits_at_import"] == "SystemExit: 4" and failed["exits_in_register"] == "SystemExit: 5"
    assert "Traceback" not in res.output
    assert (tmp_path / "run" / "samples" / "good.jsonl").is_file()


def test_a_plugin_exiting_at_import_does_not_stop_other_commands(plugins_dir):
    res = CliRunner().invoke(cli, ["--plugins-dir", str(plugins_dir), "tasks"], catch_exceptions=False)
    assert res.exit_code == 0 and "mmlu" in res.stdout and "good" in res.stdout
    assert "plug-in 'exits_at_import' failed to load: SystemExit: 4" in res.stderr
    res = CliRunner().invoke(cli, ["--plugins-dir", str(plugins_dir), "plugins"], catch_exceptions=False)
    assert res.exit_code == 0 and "FAILED: SystemExit: 4" in res.stdout


def test_a_raising_score_files_is_one_line_naming_the_plugin(plugins_dir):
    res = CliRunner().invoke(cli, ["--plugins-dir", str(plugins_dir), "score", "broken_score", "--predictions", "p"],
                             catch_exceptions=False)
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert res.stderr.strip().splitlines()[-1] == ("error: harness score broken_score: plug-in 'flaky' failed in "
                                                   "score_files(): RuntimeError: scorer bug")


def test_tasks_names_a_benchmark_it_cannot_describe_and_lists_the_rest(plugins_dir):
    res = CliRunner().invoke(cli, ["--plugins-dir", str(plugins_dir), "tasks"], catch_exceptions=False)
    assert res.exit_code == 0 and "squad" in res.stdout and "broken_score" in res.stdout
    assert "(benchmark 'bad_attributes' of plug-in 'flaky' cannot be described: TypeError" in res.stderr


def test_keyboard_interrupt_is_not_swallowed(tmp_path):
    class Interrupting(FakeModel):
        pass

    from harness.api import Benchmark, Metric

    class Stop(Benchmark):
        name = "stop"
        metrics = (Metric("acc"),)

        def instances(self, config):
            raise KeyboardInterrupt

        def process(self, instance, responses):
            return {}

    benches = {"stop": Stop()}
    config = RunConfig(suite=parse_suite("stop", benches), out=tmp_path, model="m", progress=False)
    with pytest.raises(KeyboardInterrupt):
        Engine(config, benches, lambda spec, role="model": Interrupting()).run()


def test_when_every_benchmark_fails_to_build_no_model_loads(tmp_path, plugins_dir):
    loaded = []
    from harness.plugins import load_registry

    registry = load_registry(plugins_dir)
    config = RunConfig(suite=parse_suite("bad_instances", registry.benchmarks), out=tmp_path, model="m", progress=False)
    results = Engine(config, registry.benchmarks, lambda spec, role="model": loaded.append(spec)).run()
    assert loaded == [] and "instances exploded" in results["benchmarks"]["bad_instances"]["error"]


# -- --base /nonexistent before any model loads ----------------------------------------------
def test_a_bad_base_fails_before_the_model_loads(tiny, tmp_path, monkeypatch):
    import harness.models

    calls = []
    real = harness.models.load_model
    monkeypatch.setattr(harness.models, "load_model", lambda *a, **k: calls.append(a) or real(*a, **k))
    res = CliRunner().invoke(cli, ["run", "--model", str(tiny), "--base", "/nonexistent", "--suite", "mmlu",
                                   "--out", str(tmp_path / "run")], catch_exceptions=False)
    assert res.exit_code == 2 and res.stderr.startswith("error: --base /nonexistent"), res.stderr
    assert calls == []


# -- a full disk -------------------------------------------------------------------------------
def _toy_engine(out: Path, n: int = 200):
    sys.path.insert(0, str(TESTS))
    from test_engine import BENCHES

    models = {"m": FakeModel("m", "model-salt")}
    config = RunConfig(suite=parse_suite("toy", BENCHES), out=out, model="m", limit=n, progress=False)
    return Engine(config, BENCHES, lambda spec, role="model": models[spec])


def test_full_disk_keeps_results_json_and_names_what_is_needed(tmp_path, monkeypatch):
    import harness.runfiles as runfiles

    Usage = namedtuple("Usage", "total used free")
    state = {}
    monkeypatch.setattr(runfiles.shutil, "disk_usage", lambda p: Usage(10**12, 0, state["free"]))
    state["free"] = runfiles.MARGIN + 40_000  # room for results.json, not for 400 sample records
    with pytest.raises(HarnessError) as err:
        _toy_engine(tmp_path).run()
    msg = str(err.value)
    assert str(tmp_path / "samples" / "toy.jsonl") in msg and "not enough disk space: needs" in msg
    assert "MB free" in msg and str(tmp_path / "results.json") in msg and "\n" not in msg
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["benchmarks"]["toy"]["metrics"]["acc"]["model"]["n"] == 400  # what was computed is kept
    assert not (tmp_path / "samples" / "toy.jsonl").exists()
    assert not [p for p in tmp_path.rglob(".*") if p.is_file()]  # no temp file left behind


FSIZE_SCRIPT = """
import resource, signal, sys
sys.path.insert(0, {tests!r})
from pathlib import Path
from harness.errors import HarnessError
from test_reliability import _toy_engine
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead of killing us
engine = _toy_engine(Path({out!r}), n=300)
resource.setrlimit(resource.RLIMIT_FSIZE, (60_000, 60_000))
try:
    engine.run()
except HarnessError as exc:
    print(f"error: {{exc}}", file=sys.stderr)
    sys.exit(2)
"""


def test_a_real_file_size_limit_is_one_line_and_keeps_results(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-c", FSIZE_SCRIPT.format(tests=str(TESTS), out=str(out))],
                          capture_output=True, text=True, timeout=600)
    lines = [x for x in proc.stderr.splitlines() if x.startswith("error:")]
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert "samples/toy.jsonl: disk full or file too large" in lines[0]
    assert json.loads((out / "results.json").read_text())["benchmarks"]["toy"]["n"] == 600


def test_a_full_disk_while_rendering_the_report_keeps_the_results(tiny, tmp_path, monkeypatch):
    import errno

    import harness.report
    from harness.evaluate import evaluate

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(harness.report, "render_report", full)
    with torch_threads(1), pytest.raises(HarnessError, match=r"cannot write the report \(No space left on device\); "
                                                             r"the results are in .*results\.json"):
        evaluate(str(tiny), suite="mmlu:abstract_algebra", limit=1, out=tmp_path / "run", progress=False)
    assert json.loads((tmp_path / "run" / "results.json").read_text())["complete"] is True
    assert (tmp_path / "run" / "samples" / "mmlu.jsonl").is_file()


def test_a_backend_that_raises_while_loading_is_one_line(tmp_path):
    plugs = tmp_path / "plugs"
    plugs.mkdir()
    (plugs / "boom_backend.py").write_text(textwrap.dedent("""
        import sys
        from harness.api import hookimpl

        def load(path, **options):
            sys.exit("cannot load " + path)

        @hookimpl
        def register_models(register):
            register("boom", load)
    """))
    res = CliRunner().invoke(cli, ["--plugins-dir", str(plugs), "run", "--model", "boom:x", "--suite", "mmlu",
                                   "--limit", "1", "--out", str(tmp_path / "run"), "--no-report"],
                             catch_exceptions=False)
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert res.stderr.strip().splitlines()[-1] == ("error: [model] boom:x: loading failed (SystemExit: cannot load x); "
                                                   "HARNESS_DEBUG=1 shows where")
    res = CliRunner().invoke(cli, ["--plugins-dir", str(plugs), "generate", "--model", "boom:y", "hi"],
                             catch_exceptions=False)
    assert res.exit_code == 2 and res.stderr == ("error: --model boom:y: loading failed (SystemExit: cannot load y); "
                                                 "HARNESS_DEBUG=1 shows where\n")
