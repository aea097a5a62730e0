"""alpaca_eval's options and instruction data: the bundled 805 instructions or a file.

Kept apart from the benchmark class so that ``harness score alpaca_eval`` and
``harness judge check`` read the same records with the same one-line errors.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.api import HarnessError, did_you_mean
from harness.api.data import bundled, read_json, read_jsonl

DATASETS = ("helpful_base", "koala", "oasst", "selfinstruct", "vicuna")
FILE_SUBSET = "file"
DEFAULT_LIMIT, DEFAULT_FILE_LIMIT = 4, 20  # per AlpacaEval source (20 instructions) / for data=FILE
REFERENCE_GENERATOR = "gpt4_1106_preview"
STOPS = ("\n\n### Instruction", "\n\n### Input", "<|im_end|>", "<|endoftext|>", "<|end|>")
CHOICES = {"mode": ("pairwise", "score"), "against": ("auto", "base", "reference"),
           "judge_method": ("auto", "logprobs", "generate"), "judge_format": ("chatml", "raw"),
           "score_parse": ("strict", "lenient")}
DEFAULTS: dict[str, Any] = {"mode": "pairwise", "against": "auto", "swap": False, "data": None,
                            "prompt_format": None, "max_tokens": 128, "judge_method": "auto",
                            "judge_cache": None, "judge_format": "chatml", "score_parse": "strict", "order_seed": 0,
                            "use_responses": True, "judge_check": 20}


def bundled_path() -> Path:
    return Path(str(bundled("alpaca_eval", f"{REFERENCE_GENERATOR}.model_outputs.json.gz")))


def _as_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("1", "true", "yes", "on"):
        return True
    if str(value).lower() in ("0", "false", "no", "off"):
        return False
    raise HarnessError(f"alpaca_eval option {name}={value!r}: expected true or false")


def parse_options(raw: dict[str, Any]) -> dict[str, Any]:
    """Validate ``--option alpaca_eval.NAME=VALUE`` values before any model loads."""
    for key in raw:
        if key not in DEFAULTS:
            raise HarnessError(f"alpaca_eval has no option {key!r}{did_you_mean(key, DEFAULTS)}; "
                               f"options: {', '.join(DEFAULTS)}")
    opts = {**DEFAULTS, **raw}
    for key, allowed in CHOICES.items():
        if opts[key] not in allowed:
            raise HarnessError(f"alpaca_eval option {key}={opts[key]!r}: expected one of {', '.join(allowed)}")
    for key in ("swap", "use_responses"):
        opts[key] = _as_bool(key, opts[key])
    for key in ("max_tokens", "order_seed", "judge_check"):
        try:
            opts[key] = int(opts[key])
        except (TypeError, ValueError):
            raise HarnessError(f"alpaca_eval option {key}={opts[key]!r}: expected an integer") from None
    return opts


def load_records(path: str | Path) -> list[dict[str, Any]]:
    """A JSON list / JSONL of ``{"instruction", "input"?, "output"?, "dataset"?}`` records."""
    path = Path(path)
    what = "alpaca_eval data file"
    recs = [rec for _, rec in read_jsonl(path, what)] if ".jsonl" in path.name else read_json(path, what)
    if not isinstance(recs, list) or not recs:
        raise HarnessError(f"alpaca_eval data={path}: expected a non-empty JSON list of instruction records")
    for i, rec in enumerate(recs):
        if not isinstance(rec, dict) or not isinstance(rec.get("instruction"), str) or not rec["instruction"].strip():
            raise HarnessError(f"alpaca_eval data={path}: record {i} has no 'instruction' string")
        for key in ("output", "model_response"):
            if rec.get(key) is not None and not isinstance(rec[key], str):
                raise HarnessError(f"alpaca_eval data={path}: record {i}: {key!r} must be a string")
    return recs


def docs_of(opts: dict[str, Any]) -> list[dict[str, Any]]:
    data = opts["data"]
    recs = load_records(data or bundled_path())
    docs = []
    for i, rec in enumerate(recs):
        instruction, inp = rec["instruction"], rec.get("input") or ""
        docs.append({
            "id": f"{FILE_SUBSET}-{i:04d}" if data else f"alpaca_eval-{i:03d}",
            "subset": FILE_SUBSET if data else rec.get("dataset", "unknown"),
            "instruction": instruction, "input": inp,
            # what the judge and the evaluated models see (input as its own paragraph, as finetune does)
            "prompt": f"{instruction}\n\n{inp}" if inp else instruction,
            "reference": rec.get("output"),
            # an answer the evaluated model already wrote (harness finetune's test-responses.json)
            "response": rec.get("model_response"),
        })
    return docs
