"""HumanEval plug-in: pass@k against the paper's formula, real sandboxed runs, run and score modes.

Expected pass@k values come from exact rational arithmetic on the definition
1 - C(n-c, k) / C(n, k) (fractions + math.comb), not from the plug-in's stable product form.
"""
from __future__ import annotations

import gzip
import json
import re
from fractions import Fraction
from importlib import metadata, resources
from math import comb
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import FakeModel

from harness.api import BenchmarkConfig, GenerateRequest, RunContext
from harness.engine import Engine, RunConfig
from harness.errors import HarnessError
from harness.sandbox import make_sandbox
from harness.suite import parse_suite
from harness_plugins import humaneval as he
from harness_plugins.humaneval import HumanEval, estimate_pass_at_k, load_problems, pass_at_k

PROBLEMS = load_problems(resources.files("harness_tasks") / "humaneval" / "HumanEval.jsonl.gz")
WRONG = "    return None\n"
LOOP = "    while True:\n        pass\n"
ALLOW = RunContext(allow_code_execution=True, progress=False, sandbox_factory=make_sandbox)


def exact(n: int, c: int, k: int) -> float:
    return float(1 - Fraction(comb(n - c, k), comb(n, k)))


@pytest.mark.parametrize("n,c,k", [(1, 0, 1), (1, 1, 1), (5, 2, 1), (5, 2, 2), (10, 3, 5), (20, 5, 10),
                                   (200, 7, 10), (200, 13, 100), (200, 0, 100), (200, 150, 100), (100, 1, 100)])
def test_estimator_matches_the_definition(n: int, c: int, k: int) -> None:
    assert estimate_pass_at_k(n, c, k) == pytest.approx(exact(n, c, k), rel=1e-12, abs=1e-15)


def test_estimator_hand_values() -> None:
    assert estimate_pass_at_k(5, 2, 2) == pytest.approx(0.7)  # 1 - C(3,2)/C(5,2) = 1 - 3/10
    assert estimate_pass_at_k(10, 3, 5) == pytest.approx(1 - 21 / 252)  # C(7,5)=21, C(10,5)=252
    assert estimate_pass_at_k(4, 1, 1) == pytest.approx(0.25)
    with pytest.raises(ValueError):
        estimate_pass_at_k(5, 1, 10)  # undefined: fewer samples than k


def test_pass_at_k_reports_only_k_every_problem_reaches() -> None:
    got = pass_at_k([(10, 3), (20, 20), (10, 0)])
    assert set(got) == {"pass@1", "pass@10"}
    assert got["pass@1"] == pytest.approx((0.3 + 1 + 0) / 3)
    assert got["pass@10"] == pytest.approx((1 + 1 + 0) / 3)
    assert pass_at_k([(100, 40), (5, 1)], ks=(1, 10, 100)) == {"pass@1": pytest.approx((0.4 + 0.2) / 2)}


def test_instances_follow_lm_eval_and_human_eval() -> None:
    assert len(list(HumanEval().instances(BenchmarkConfig()))) == he.DEFAULT_LIMIT  # the default run's subset
    insts = list(HumanEval().instances(BenchmarkConfig(full=True)))
    assert len(insts) == 164 and insts[0].doc_id == "HumanEval/0" and insts[-1].doc_id == "HumanEval/163"
    req = insts[5].requests[0]
    assert (req.prompt, req.temperature, req.seed, len(insts[5].requests)) == (
        PROBLEMS["HumanEval/5"]["prompt"], 0.0, None, 1)
    assert insts[5].target == PROBLEMS["HumanEval/5"]["canonical_solution"]
    yaml_path = Path(pytest.importorskip("lm_eval").__file__).parent / "tasks" / "humaneval" / "humaneval.yaml"
    text = yaml_path.read_text()
    until = re.search(r"until:\n((?:\s+- .*\n)+)", text).group(1)
    stops = tuple(json.loads(line.strip()[2:]).replace("\\n", "\n") for line in until.splitlines())
    assert req.stop == stops == ("\nclass", "\ndef", "\n#", "\nif", "\nprint")
    assert req.max_tokens == int(re.search(r"max_gen_toks: (\d+)", text).group(1)) == 1024


def test_sampling_options_seeds_and_metric_kinds() -> None:
    bench = HumanEval()
    insts = list(bench.instances(BenchmarkConfig(limit=2, seed=7, options={"samples": 12})))
    reqs = insts[0].requests
    assert len(reqs) == 12 and {r.temperature for r in reqs} == {0.8} and len({r.seed for r in reqs}) == 12
    again = list(HumanEval().instances(BenchmarkConfig(limit=2, seed=7, options={"samples": 12})))
    assert [r.seed for r in again[0].requests] == [r.seed for r in reqs]
    other = list(HumanEval().instances(BenchmarkConfig(limit=2, seed=8, options={"samples": 12})))
    assert [r.seed for r in other[0].requests] != [r.seed for r in reqs]
    assert [(m.name, m.kind) for m in bench.metrics] == [("pass@1", "continuous"), ("pass@10", "continuous")]
    list(bench.instances(BenchmarkConfig(limit=1)))
    assert [(m.name, m.kind) for m in bench.metrics] == [("pass@1", "binary")]
    hot = list(HumanEval().instances(BenchmarkConfig(limit=1, options={"samples": "2", "temperature": "0.2"})))
    assert [r.temperature for r in hot[0].requests] == [0.2, 0.2]


@pytest.mark.parametrize("options,needle", [({"samples": 0}, "samples=0"), ({"samples": "x"}, "samples='x'"),
                                            ({"samples": 1.5}, "samples=1.5"), ({"temperature": -1}, "temperature"),
                                            ({"timeout": 0}, "timeout"), ({"sample": 3}, "did you mean 'samples'")])
def test_bad_options(options: dict, needle: str) -> None:
    with pytest.raises(HarnessError, match=re.escape(needle)):
        list(HumanEval().instances(BenchmarkConfig(options=options)))


def test_data_dir_file_or_directory(tmp_path: Path) -> None:
    _write(tmp_path / "HumanEval.jsonl", [PROBLEMS["HumanEval/3"], PROBLEMS["HumanEval/4"]])
    for where in (tmp_path, tmp_path / "HumanEval.jsonl"):
        insts = list(HumanEval().instances(BenchmarkConfig(data_dir=str(where))))
        assert [i.doc_id for i in insts] == ["HumanEval/3", "HumanEval/4"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(HarnessError, match="no HumanEval.jsonl.gz or HumanEval.jsonl in that directory"):
        list(HumanEval().instances(BenchmarkConfig(data_dir=str(tmp_path / "empty"))))


def test_few_shot_is_refused() -> None:
    with pytest.raises(HarnessError, match="zero-shot"):
        list(HumanEval().instances(BenchmarkConfig(num_fewshot=3)))


def _batch(task_ids: list[str], completions: list[list[str]], context: RunContext = ALLOW, **options) -> list[dict]:
    bench = HumanEval()
    insts = [i for i in bench.instances(BenchmarkConfig(full=True, options=options)) if i.doc_id in task_ids]
    return bench.process_batch(insts, completions, context)


def test_canonical_pass_wrong_fails_loop_times_out() -> None:
    ids = ["HumanEval/0", "HumanEval/2", "HumanEval/53"]
    canon = [[PROBLEMS[t]["canonical_solution"], WRONG, LOOP] for t in ids]
    out = _batch(ids, canon, samples=3, timeout=0.5)
    for rec in out:
        assert rec["passed"] == [True, False, False]
        assert [r["status"] for r in rec["results"]] == ["passed", "failed", "timed_out"]
        assert "AssertionError" in rec["results"][1]["reason"] and rec["results"][2]["reason"] == "timeout after 0.5s"
        assert rec["scores"] == {"pass@1": pytest.approx(1 / 3)} and rec["n_passed"] == 1
        assert rec["completions"][1] == WRONG and rec["sandbox"] == "bwrap"


def test_execution_needs_the_opt_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(he.ALLOW_ENV, raising=False)
    with pytest.raises(HarnessError) as err:
        _batch(["HumanEval/0"], [[WRONG]], RunContext(sandbox_factory=make_sandbox))
    assert "--allow-code-execution" in str(err.value) and "HARNESS_ALLOW_CODE_EXECUTION=1" in str(err.value)
    monkeypatch.setenv(he.ALLOW_ENV, "1")
    assert _batch(["HumanEval/0"], [[WRONG]], RunContext(sandbox_factory=make_sandbox))[0]["passed"] == [False]


class Solver(FakeModel):
    """Answers each HumanEval prompt with its canonical solution, or always with ``fixed``."""

    def __init__(self, spec: str, fixed: str | None = None) -> None:
        super().__init__(spec, spec)
        self.fixed, self.by_prompt = fixed, {p["prompt"]: p["canonical_solution"] for p in PROBLEMS.values()}

    def generate(self, requests: list[GenerateRequest], progress: bool = True) -> list[str]:
        return [self.fixed if self.fixed is not None else self.by_prompt[r.prompt] for r in requests]


def _engine_run(tmp_path: Path, allow: bool) -> dict:
    models = {"m": Solver("m"), "b": Solver("b", WRONG)}
    benches = {"humaneval": HumanEval()}
    config = RunConfig(suite=parse_suite("humaneval", benches), out=tmp_path, model="m", base="b", limit=4,
                       progress=False, report=False, allow_code_execution=allow)
    return Engine(config, benches, lambda spec, role="model": models[spec], sandbox_factory=make_sandbox).run()


def test_engine_run_compares_model_and_base(tmp_path: Path) -> None:
    entry = _engine_run(tmp_path, allow=True)["benchmarks"]["humaneval"]
    assert entry["error"] is None and entry["n"] == 4
    metric = entry["metrics"]["pass@1"]
    assert (metric["kind"], metric["model"]["value"], metric["base"]["value"]) == ("binary", 1.0, 0.0)
    assert metric["delta"]["test"] == "mcnemar_exact"
    rec = json.loads((tmp_path / "samples" / "humaneval.jsonl").read_text().splitlines()[0])
    assert rec["model"]["results"][0]["status"] == "passed" and rec["base"]["passed"] == [False]


def test_engine_without_opt_in_refuses_before_loading_a_model(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(he.ALLOW_ENV, raising=False)
    with pytest.raises(HarnessError, match="--allow-code-execution or HARNESS_ALLOW_CODE_EXECUTION=1"):
        _engine_run(tmp_path, allow=False)
    assert not (tmp_path / "samples").exists()


# ---------------------------------------------------------------- score mode

IDS = ["HumanEval/0", "HumanEval/1", "HumanEval/2"]


def _write(path: Path, rows: list, gz: bool = False) -> Path:
    text = "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows)
    path.write_bytes(gzip.compress(text.encode()) if gz else text.encode())
    return path


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    problems = _write(tmp_path / "problems.jsonl.gz", [PROBLEMS[t] for t in IDS], gz=True)
    # 0: 2 of 3 right; 1: 0 of 3; 2: 3 of 3 (one blank line in between, as human-eval tolerates)
    plan = {"HumanEval/0": [True, False, True], "HumanEval/1": [False] * 3, "HumanEval/2": [True] * 3}
    rows: list = [{"task_id": t, "completion": PROBLEMS[t]["canonical_solution"] if ok else WRONG}
                  for t, oks in plan.items() for ok in oks]
    preds = _write(tmp_path / "samples.jsonl", rows[:4] + [""] + rows[4:])
    return {"problems": problems, "preds": preds, "dir": tmp_path}


def test_score_files_prints_human_eval_keys(files: dict[str, Path]) -> None:
    got = HumanEval().score_files(RunContext(sandbox_factory=make_sandbox), predictions=str(files["preds"]),
                                  data=str(files["problems"]), k="1,2,10", allow_code_execution="1")
    assert got == {"pass@1": pytest.approx((2 / 3 + 0 + 1) / 3), "pass@2": pytest.approx((exact(3, 2, 2) + 0 + 1) / 3)}
    rows = [json.loads(x) for x in (files["dir"] / "samples.jsonl_results.jsonl").read_text().splitlines()]
    assert len(rows) == 9 and rows[0]["passed"] is True and rows[0]["result"] == "passed"
    assert rows[1]["result"].startswith("failed: ") and rows[1]["status"] == "failed"


def test_score_via_cli_with_bundled_data(files: dict[str, Path], tmp_path: Path) -> None:
    from harness.cli import cli

    args = ["score", "humaneval", "--predictions", str(files["preds"]), "--ignore-incomplete", "1",
            "--allow-code-execution", "1", "--results", str(tmp_path / "out.jsonl")]
    if "humaneval" not in {ep.name for ep in metadata.entry_points(group="harness")}:
        (tmp_path / "plugs").mkdir()  # until setup.cfg lists the entry point
        (tmp_path / "plugs" / "he_shim.py").write_text("from harness_plugins.humaneval import register_benchmarks\n")
        args = ["--plugins-dir", str(tmp_path / "plugs"), *args]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    printed = json.JSONDecoder().raw_decode(res.output[res.output.index("{"):])[0]  # stderr may be mixed in
    assert printed == {"pass@1": pytest.approx((2 / 3 + 0 + 1) / 3)}
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 9
    bad = CliRunner().invoke(cli, args[:-4] + ["--data", str(files["dir"] / "nope.jsonl")])
    assert bad.exit_code == 2 and "nope.jsonl: not found" in bad.output


def _score(files: dict[str, Path], **kw) -> dict:
    kw = {"predictions": str(files["preds"]), "data": str(files["problems"]), "allow_code_execution": True,
          "results": "none", **kw}
    return HumanEval().score_files(RunContext(sandbox_factory=make_sandbox), **kw)


def test_score_problem_file_missing_field_names_file_line_field(files: dict[str, Path]) -> None:
    broken = dict(PROBLEMS["HumanEval/1"])
    del broken["test"]
    bad = _write(files["dir"] / "bad.jsonl", [PROBLEMS["HumanEval/0"], broken, PROBLEMS["HumanEval/2"]])
    with pytest.raises(HarnessError, match=re.escape(f"problems file {bad} line 2: missing field 'test'")):
        _score(files, data=str(bad))


@pytest.mark.parametrize("rows,needle", [
    (['{"task_id": "HumanEval/0", "completion": "x"', ], "line 1: invalid JSON"),
    (["[1, 2]"], "line 1: expected a JSON object"),
    ([{"task_id": "HumanEval/0"}], "line 1: missing field 'completion'"),
    ([{"task_id": "HumanEval/0", "completion": 3}], "field 'completion' must be a string"),
    ([{"task_id": "HumanEval/0", "completion": ""}, {"task_id": "HumanEval/999", "completion": ""}],
     "line 2: task_id 'HumanEval/999' is not a problem in"),
    ([""], "no records"),
    ([{"task_id": "HumanEval/0", "completion": "    return True\n"}], "no completion for 2 of 3 problems"),
])
def test_score_bad_predictions(files: dict[str, Path], rows: list, needle: str) -> None:
    bad = _write(files["dir"] / "bad-preds.jsonl", rows)
    with pytest.raises(HarnessError, match=re.escape(needle)):
        _score(files, predictions=str(bad))


@pytest.mark.parametrize("kw,needle", [({"k": "1,x"}, "--k '1,x'"), ({"k": "0"}, "positive integers"),
                                       ({"predictions": "/nonexistent/s.jsonl"}, "not found"),
                                       ({"timeout": "soon"}, "timeout='soon'"),
                                       ({"allow_code_execution": "0"}, "--allow-code-execution 1 or")])
def test_score_bad_arguments(files: dict[str, Path], monkeypatch: pytest.MonkeyPatch, kw: dict, needle: str) -> None:
    monkeypatch.delenv(he.ALLOW_ENV, raising=False)
    with pytest.raises(HarnessError, match=re.escape(needle)):
        _score(files, **kw)


def test_score_problem_file_bad_lines(files: dict[str, Path]) -> None:
    dup = _write(files["dir"] / "dup.jsonl", [PROBLEMS["HumanEval/0"], PROBLEMS["HumanEval/0"]])
    with pytest.raises(HarnessError, match="line 2: duplicate task_id 'HumanEval/0'"):
        _score(files, data=str(dup))
    typed = _write(files["dir"] / "typed.jsonl", [{**PROBLEMS["HumanEval/0"], "entry_point": 5}])
    with pytest.raises(HarnessError, match="line 1: field 'entry_point' must be a string"):
        _score(files, data=str(typed))
