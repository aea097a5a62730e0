"""Measuring a judge before believing it: agreement with GPT-4-turbo, position and length bias.

Why: a small judge can produce confident-looking win rates that carry no information (the
135M default model prefers whichever answer is shown first). The shipped reference is
alpaca_eval's own annotations of alpaca-7b vs gpt4_1106_preview by
``weighted_alpaca_eval_gpt4_turbo`` (805 pairs, ``tasks/alpaca_eval``).

How: a seeded sample balanced between pairs GPT-4-turbo gave to each side (so a judge that
ignores the content, always first / always second / a coin, agrees 50 %: the chance level),
each pair judged in both orders with the run's prompt and parser. Reported:

* ``agreement``: per pair, the mean over both orders of 1 (same side as the reference),
  ½ (an exact tie), 0 (the other side); its mean over pairs with a Wilson interval;
* ``position_flip_rate``: pairs whose winner changes when the order is swapped (both
  orders decided), and ``first_position_rate``: how often the first-shown answer wins;
* ``longer_rate`` vs ``reference_longer_rate``: how often the judge / the reference picks
  the longer answer (characters; equal lengths left out);
* ``judge_failed``: judgements the parser could not read, never counted as disagreement.

Pairs longer than ``max_chars`` (instruction + both outputs) are left out by default, so a
small judge's context holds the prompt and the check stays quick; every judge call goes
through the judge cache, so a repeated check costs nothing.
"""
from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

from harness.api import HarnessError, Model
from harness.api.data import bundled, read_json

from .cache import JudgeCache, cache_key
from .pairwise import ANNOTATOR, PairwiseJudge, load_template

REFERENCE_FILE = f"alpaca-7b.{ANNOTATOR}.annotations.json.gz"
DEFAULT_N, DEFAULT_MAX_CHARS, FLIP_LIMIT = 20, 3000, 1 / 3
Z95 = 1.959963984540054
VERSION = 1


def reference_path() -> Path:
    return Path(str(bundled("alpaca_eval", REFERENCE_FILE)))


def load_annotations(path: str | Path | None = None) -> list[dict[str, Any]]:
    """The reference annotations: ``[{instruction, output_1, output_2, preference, ...}]``."""
    path = Path(path) if path else reference_path()
    recs = read_json(path, "judge reference annotations")
    if not isinstance(recs, list) or not all(isinstance(r, dict) and {"instruction", "output_1", "output_2",
                                                                       "preference"} <= set(r) for r in recs):
        raise HarnessError(f"{path}: expected alpaca_eval annotations (instruction, output_1, output_2, "
                           "preference); reinstall harness")
    return recs


def select(annotations: list[dict[str, Any]], n: int, seed: int = 0,
           max_chars: int = DEFAULT_MAX_CHARS) -> list[dict[str, Any]]:
    """``n`` pairs, half won by output_2 per the reference and half by output_1 (as far as
    the data has them), seeded; reference draws and identical outputs are left out."""
    if n < 2:
        raise HarnessError(f"judge check --n {n}: needs at least 2 pairs")
    ok = [a for a in annotations if a["output_1"] != a["output_2"] and float(a["preference"]) != 1.5
          and (not max_chars or len(a["instruction"]) + len(a["output_1"]) + len(a["output_2"]) <= max_chars)]
    wins = [a for a in ok if float(a["preference"]) > 1.5]
    losses = [a for a in ok if float(a["preference"]) < 1.5]
    k_win = min(len(wins), n // 2)
    k_loss = min(len(losses), n - k_win)
    k_win = min(len(wins), n - k_loss)
    rng = random.Random(f"judge-check-{seed}")
    chosen = {id(a) for a in rng.sample(wins, k_win) + rng.sample(losses, k_loss)}
    return [a for a in annotations if id(a) in chosen]


def _wilson(successes: float, n: int) -> list[float]:
    p, z2 = successes / n, Z95 * Z95
    denom = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = Z95 / denom * math.sqrt(max(p * (1 - p) / n + z2 / (4 * n * n), 0.0))
    return [max(0.0, centre - half), min(1.0, centre + half)]


def _agree(pref: float, ref: float) -> float:
    if pref == 1.5:
        return 0.5
    return 1.0 if (pref > 1.5) == (ref > 1.5) else 0.0


def measure(pairs: list[dict[str, Any]], prefs: list[dict[str, float | None]]) -> dict[str, Any]:
    """The figures from each pair's preferences in both orders (``{"as_is", "switched"}``, both
    mapped to "> 1.5: output_2 wins"; None: judge failed)."""
    scores, flips, decided_pairs, firsts, longer, ref_longer = [], 0, 0, [], [], []
    failed = 0
    for pair, p in zip(pairs, prefs):
        ref = float(pair["preference"])
        valid = {k: v for k, v in p.items() if v is not None}
        failed += len(p) - len(valid)
        if valid:
            scores.append(sum(_agree(v, ref) for v in valid.values()) / len(valid))
        decided = {k: v > 1.5 for k, v in valid.items() if v != 1.5}
        if len(decided) == 2:
            decided_pairs += 1
            flips += decided["as_is"] != decided["switched"]
        for order, second_wins in decided.items():
            firsts.append(second_wins == (order == "switched"))  # switched: output_2 was shown first
        len_1, len_2 = len(pair["output_1"]), len(pair["output_2"])
        if len_1 != len_2:
            longer += [second_wins == (len_2 > len_1) for second_wins in decided.values()]
            ref_longer.append((ref > 1.5) == (len_2 > len_1))
    n = len(scores)
    share = sum(float(a["preference"]) > 1.5 for a in pairs) / len(pairs) if pairs else 0.5
    chance = max(share, 1 - share)
    agreement = sum(scores) / n if n else None
    ci = _wilson(sum(scores), n) if n else None
    flip_rate = flips / decided_pairs if decided_pairs else None
    at_chance = ci is None or ci[0] <= chance
    biased = flip_rate is not None and flip_rate > FLIP_LIMIT
    return {
        "n_pairs": len(pairs), "n_scored": n, "judge_failed": failed,
        "agreement": agreement, "agreement_ci95": ci, "chance": chance,
        "position_flip_rate": flip_rate, "n_decided_both_orders": decided_pairs,
        "first_position_rate": sum(firsts) / len(firsts) if firsts else None,
        "longer_rate": sum(longer) / len(longer) if longer else None,
        "reference_longer_rate": sum(ref_longer) / len(ref_longer) if ref_longer else None,
        "at_chance": at_chance, "position_biased": biased, "reliable": not (at_chance or biased),
    }


def verdict_text(check: dict[str, Any]) -> str:
    """One plain sentence: may the judge's verdicts be read as evidence?"""
    agreement, ci = check.get("agreement"), check.get("agreement_ci95")
    figures = (f"agreement with GPT-4-turbo {100 * agreement:.0f} % [{100 * ci[0]:.0f}, {100 * ci[1]:.0f}] "
               f"(chance {100 * check['chance']:.0f} %, n={check['n_scored']})" if agreement is not None and ci
               else "no usable judgement")
    flip = check.get("position_flip_rate")
    figures += f", position flips {100 * flip:.0f} %" if flip is not None else ""
    if check.get("reliable"):
        return f"judge measured: {figures}"
    return (f"judge at chance: {figures}; its verdicts are not evidence. Bring a real judge: "
            "--judge openai:URL (e.g. a local Ollama or vLLM server, or `harness serve --model BIG`)")


def check_judge(judge: Model, *, n: int = DEFAULT_N, seed: int = 0, max_chars: int = DEFAULT_MAX_CHARS,
                method: str = "auto", cache: JudgeCache | None = None, progress: bool = False,
                annotations: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Judge ``n`` reference pairs in both orders and measure (see the module docstring)."""
    cache = cache or JudgeCache(None)
    pj = PairwiseJudge(judge, load_template(), method=method, swap=True, cache=cache, progress=progress)
    params = {"n": n, "seed": seed, "max_chars": max_chars, "method": method, "version": VERSION}
    key = cache_key(pj.fingerprint, "judge-check", params)
    if annotations is None:
        stored = cache.get_many([key]).get(key)
        if stored is not None:
            return {**stored, "cached": True}
    pairs = select(annotations if annotations is not None else load_annotations(), n, seed, max_chars)
    used, verdicts = pj.judge_pairs([(a["instruction"], a["output_1"], a["output_2"]) for a in pairs])
    out = measure(pairs, [v.get("preferences") or {} for v in verdicts])
    out.update(params, fingerprint=pj.fingerprint, method_used=used, calls=pj.calls,
               reference=f"{ANNOTATOR} annotations of alpaca-7b vs gpt4_1106_preview",
               pairs=[{"instruction": a["instruction"][:120], "reference": float(a["preference"]),
                       "preferences": v.get("preferences"), "raw": v.get("raw")} for a, v in zip(pairs, verdicts)])
    out["verdict"] = verdict_text(out)
    if annotations is None:
        cache.put_many({key: out})
    return {**out, "cached": False}


def measured(judge: Model, n: int, cache: JudgeCache, method: str = "auto") -> dict[str, Any]:
    """The quick judge check a judged run records (without the per-pair details)."""
    out = check_judge(judge, n=n, cache=cache, method=method)
    return {k: v for k, v in out.items() if k != "pairs"}
