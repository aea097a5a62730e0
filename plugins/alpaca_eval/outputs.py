"""Judging outputs that already exist: ``harness score alpaca_eval --model-outputs A.json``.

Why: answers are often produced elsewhere (alpaca_eval's ``--model_outputs`` files, or the
``test-responses.json`` harness finetune writes); regenerating them costs time and may not
even be possible. The layout is alpaca_eval's (a JSON list of ``{instruction, output,
generator}``); a record with ``model_response`` (test-responses.json) is read as the
model's answer with its ``output`` as the reference. References are matched by
instruction: ``--reference-outputs B.json``, else the file's own ``output`` (test-responses),
else the bundled gpt4_1106_preview outputs (the AlpacaEval 2.0 baseline).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.api import HarnessError, Model

from .cache import cache_from_option
from .check import measured
from .data import REFERENCE_GENERATOR, bundled_path, load_records, parse_options


def _answers(path: str) -> tuple[list[dict[str, Any]], str]:
    """``[{instruction, input, output, reference?}]`` and the generator's name."""
    recs = load_records(path)
    saved = any("model_response" in r for r in recs)
    out = []
    for i, rec in enumerate(recs):
        answer = rec.get("model_response") if saved else rec.get("output")
        if not isinstance(answer, str):
            field = "model_response" if saved else "output"
            raise HarnessError(f"{path}: record {i} has no {field!r} string (alpaca_eval layout: "
                               "[{instruction, output, generator}])")
        out.append({"instruction": rec["instruction"], "input": rec.get("input") or "", "output": answer,
                    "reference": rec.get("output") if saved else None})
    generator = str(recs[0].get("generator") or Path(path).stem)
    return out, generator


def _references(path: str | None) -> tuple[dict[str, str], str]:
    recs = load_records(path or bundled_path())
    table: dict[str, str] = {}
    for i, rec in enumerate(recs):
        if not isinstance(rec.get("output"), str):
            raise HarnessError(f"{path}: record {i} has no 'output' string (alpaca_eval layout)")
        table.setdefault(rec["instruction"], rec["output"])
    return table, (str(recs[0].get("generator") or Path(path).stem) if path else REFERENCE_GENERATOR)


def _int(name: str, value: Any) -> int:
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise HarnessError(f"harness score alpaca_eval --{name.replace('_', '-')} {value!r}: expected an integer") \
            from None
    if n < 0:
        raise HarnessError(f"harness score alpaca_eval --{name.replace('_', '-')} {n}: must be >= 0")
    return n


def score_outputs(judge: Model, *, model_outputs: str | None = None, reference_outputs: str | None = None,
                  mode: str = "pairwise", judge_check: Any = 20, judge_method: str = "auto",
                  judge_cache: str | None = None, progress: bool = True) -> dict[str, Any]:
    """Judge ``model_outputs`` against references; alpaca_eval's numbers and the test against 50 %."""
    from .metrics import comparison_summary, sign_test  # numpy: only when judging
    from .pairwise import PairwiseJudge, load_template
    from .score import ScoreJudge, score_summary

    if not model_outputs:
        raise HarnessError("harness score alpaca_eval: --model-outputs FILE is required "
                           "(a JSON list of {instruction, output, generator})")
    opts = parse_options({"mode": mode, "judge_method": judge_method, "judge_check": judge_check})
    n_check = _int("judge_check", opts["judge_check"])
    items, generator = _answers(model_outputs)
    if reference_outputs or any(it["reference"] is None for it in items):
        table, ref_name = _references(reference_outputs)
        for i, it in enumerate(items):
            if it["instruction"] not in table:
                raise HarnessError(f"{model_outputs}: record {i}: instruction {it['instruction'][:60]!r} is not in "
                                   f"{reference_outputs or 'the bundled AlpacaEval set'}; pass --reference-outputs "
                                   "with the baseline's answers to these instructions")
            it["reference"] = table[it["instruction"]]
    else:
        ref_name = f"{model_outputs} (output)"
    cache = cache_from_option(judge_cache)
    out: dict[str, Any] = {"mode": opts["mode"], "model_outputs": str(model_outputs), "generator": generator,
                           "reference": ref_name, "n": len(items)}
    prompts = [f"{it['instruction']}\n\n{it['input']}" if it["input"] else it["instruction"] for it in items]
    if opts["mode"] == "score":
        sj = ScoreJudge(judge, cache=cache, progress=progress)
        verdicts = sj.score([(it["instruction"], it["input"], it["reference"], it["output"]) for it in items])
        out["score"] = score_summary(verdicts, [str(i) for i in range(len(items))])
        out["judge_failed"] = [{"index": i, "raw": v["raw"]} for i, v in enumerate(verdicts) if v["score"] is None]
        calls = sj.calls
    else:
        pj = PairwiseJudge(judge, load_template(), method=opts["judge_method"], cache=cache, progress=progress)
        _, verdicts = pj.judge_pairs([(p, it["reference"], it["output"]) for p, it in zip(prompts, items)])
        summary = comparison_summary(verdicts, [it["reference"] for it in items], [it["output"] for it in items],
                                     ["all"] * len(items))
        summary.pop("by_subset", None)
        summary["verdict"] = sign_test(summary["n_wins"], summary["n_wins_base"], summary["n_draws"])
        out["model_vs_reference"] = summary
        out["judge_failed"] = [{"index": i, "raw": v["raw"]} for i, v in enumerate(verdicts)
                               if v["preference"] is None]
        calls = pj.calls
    info = getattr(judge, "info", None)
    out["judge"] = {"spec": getattr(info, "spec", ""), "backend": getattr(info, "backend", ""), "calls": calls}
    if n_check:
        out["judge"]["check"] = measured(judge, n_check, cache, opts["judge_method"])
    return out
