"""Pairwise LLM judge as AlpacaEval 2.0's ``weighted_alpaca_eval_gpt4_turbo`` annotator.

The judge sees the upstream ChatML prompt with the two outputs labelled ``m`` (first)
and ``M`` (second) and its next-token log-probabilities of the two labels give a
*weighted* preference ``2 − p(m)/(p(m)+p(M))`` in [1, 2] (1: output_1, the baseline,
is better; 2: output_2, the evaluated system, is better). Why log-probabilities: a
single sampled label throws away the judge's uncertainty, which is what makes small
judges usable at all; a backend that cannot score (NotImplementedError) falls back to
the greedy label (``m`` → 1, ``M`` → 2). Position bias is handled as upstream: the
order is randomised per example, seeded on the instruction, and mapped back with
``3 − x``; ``swap`` judges both orders and averages instead.
"""
from __future__ import annotations

import math
import random
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.api import GenerateRequest, HarnessError, LoglikelihoodRequest, Model
from harness.api.chat import chatml_to_messages, messages_to_chatml
from harness.api.data import bundled, read_json

from .cache import JudgeCache, cache_key, judge_fingerprint

LABELS = ("m", "M")  # first output, second output
ANNOTATOR = "weighted_alpaca_eval_gpt4_turbo"
_PLACEHOLDER = re.compile(r"\{(instruction|output_1|output_2)\}")
_GEN_LABEL = re.compile(r"\s*[\"'`]?([mM])(?![A-Za-z0-9])")


def prompt_file() -> Path:
    return Path(str(bundled("alpaca_eval", f"judge_prompt.{ANNOTATOR}.json")))


def load_template(path: str | Path | None = None) -> str:
    """The upstream ChatML judge prompt (``alpaca_eval_clf_gpt4_turbo/alpaca_eval_clf.txt``)."""
    path = Path(path) if path else prompt_file()
    obj = read_json(path, "judge prompt")
    if not isinstance(obj, dict) or not isinstance(obj.get("prompt_template"), str):
        raise HarnessError(f"judge prompt {path}: no 'prompt_template' string; reinstall harness")
    return obj["prompt_template"]


def render(template: str, instruction: str, output_1: str, output_2: str) -> str:
    """Fill the three placeholders in one pass (an output containing ``{output_2}`` stays literal)."""
    values = {"instruction": instruction, "output_1": output_1, "output_2": output_2}
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def judge_context(chatml_prompt: str) -> str:
    """The text a completion-style judge continues: the prompt's turns plus an open assistant turn."""
    return messages_to_chatml(chatml_to_messages(chatml_prompt))


def is_switched(instruction: str, seed: int = 0) -> bool:
    """alpaca_eval's ``RandomSwitchTwoColumnsProcessor``: ``random_seeded_choice`` over [False, True]
    seeded with ``"is_switched_outputs" + instruction + str(seed)`` (annotator seed 0)."""
    return random.Random("is_switched_outputs" + instruction + str(seed)).choices([False, True], k=1)[0]


def weighted_preference(logprob_m: float | None, logprob_M: float | None) -> float | None:
    """``2 − exp(lp_m − logsumexp(lp_m, lp_M))``; None when neither label has any probability."""
    if logprob_m is None or logprob_M is None or math.isnan(logprob_m) or math.isnan(logprob_M):
        return None
    top = max(logprob_m, logprob_M)
    if top == -math.inf:
        return None
    lse = top + math.log(math.exp(logprob_m - top) + math.exp(logprob_M - top))
    return 2.0 - math.exp(logprob_m - lse)


def preference_from_top_logprobs(top_logprobs: Sequence[dict[str, Any]]) -> float | None:
    """Upstream ``logprob_parser`` on an OpenAI ``top_logprobs`` list: a missing label has probability 0."""
    found = {t["token"]: t["logprob"] for t in top_logprobs if t.get("token") in LABELS}
    if not found:
        return None
    return weighted_preference(found.get("m", -math.inf), found.get("M", -math.inf))


def label_preference(text: str) -> float | None:
    """A generated label: ``m`` -> 1.0, ``M`` -> 2.0, anything else -> None (unparseable)."""
    match = _GEN_LABEL.match(text or "")
    return None if match is None else (1.0 if match.group(1) == "m" else 2.0)


class PairwiseJudge:
    """Judges (instruction, output_1, output_2) triples with any harness :class:`Model`.

    ``method``: ``"logprobs"`` (``Model.loglikelihood`` of each label), ``"generate"`` (greedy
    label) or ``"auto"`` (logprobs, else generate). Every judge call goes through ``cache``.
    """

    def __init__(self, judge: Model, template: str | None = None, *, method: str = "auto", swap: bool = False,
                 seed: int = 0, cache: JudgeCache | None = None, progress: bool = False) -> None:
        if method not in ("auto", "logprobs", "generate"):
            raise HarnessError(f"alpaca_eval option judge_method={method!r}: expected auto, logprobs or generate")
        self.judge, self.template = judge, template or load_template()
        self.method, self.swap, self.seed = method, swap, seed
        self.cache = cache or JudgeCache(None)
        self.progress = progress
        self.fingerprint = judge_fingerprint(judge)
        self.calls = 0  # judge requests actually sent (cache misses)

    def _key(self, method: str, context: str) -> str:
        payload = {"context": context, "labels": LABELS} if method == "logprobs" else \
            {"context": context, "max_tokens": 3, "temperature": 0.0}
        return cache_key(self.fingerprint, f"pairwise-{method}", payload)

    def _ask(self, method: str, contexts: list[str]) -> list[dict[str, Any]]:
        if method == "logprobs":
            reqs = [LoglikelihoodRequest(c, lab) for c in contexts for lab in LABELS]
            res = self.judge.loglikelihood(reqs, progress=self.progress)
            self.calls += len(reqs)
            return [{"logprob_m": res[2 * i].logprob, "logprob_M": res[2 * i + 1].logprob}
                    for i in range(len(contexts))]
        gens = self.judge.generate([GenerateRequest(c, stop=("\n",), max_tokens=3, temperature=0.0)
                                    for c in contexts], progress=self.progress)
        self.calls += len(contexts)
        return [{"text": t} for t in gens]

    def _raw(self, contexts: list[str]) -> tuple[str, list[dict[str, Any]], list[bool]]:
        """Raw judge outputs for each context (cache first); returns (method used, raws, cached flags)."""
        method = "logprobs" if self.method in ("auto", "logprobs") else "generate"
        for attempt in (method, "generate"):
            keys = [self._key(attempt, c) for c in contexts]
            found = self.cache.get_many(keys)
            todo = list(dict.fromkeys(c for c, k in zip(contexts, keys) if k not in found))
            try:
                fresh = dict(zip(todo, self._ask(attempt, todo))) if todo else {}
            except NotImplementedError:
                if attempt == "generate" or self.method == "logprobs":
                    raise HarnessError(f"judge {self.judge.info.spec}: its backend can neither score "
                                       f"nor generate labels; choose another --judge") from None
                continue
            self.cache.put_many({self._key(attempt, c): v for c, v in fresh.items()})
            raws = [found[k] if k in found else fresh[c] for c, k in zip(contexts, keys)]
            return attempt, raws, [k in found for k in keys]
        raise AssertionError("unreachable")

    def judge_pairs(self, items: Sequence[tuple[str, str, str]]) -> tuple[str, list[dict[str, Any]]]:
        """Judge ``(instruction, output_1, output_2)`` items; returns (method, one verdict per item).

        A verdict is ``{"preference", "order", "raw", "cached"}`` (with ``swap``: ``raw`` and
        ``preferences`` per order). Identical outputs are a draw (1.5) without a judge call,
        as in alpaca_eval. ``preference`` is None when the judge's answer is unusable.
        """
        plan: list[tuple[int, bool, str]] = []  # (item, switched, context)
        for i, (instr, out1, out2) in enumerate(items):
            if out1 == out2:
                continue
            for sw in ((False, True) if self.swap else (is_switched(instr, self.seed),)):
                first, second = (out2, out1) if sw else (out1, out2)
                plan.append((i, sw, judge_context(render(self.template, instr, first, second))))
        method, raws, cached = self._raw([c for _, _, c in plan]) if plan else (self.method, [], [])
        per_item: dict[int, list[tuple[bool, dict[str, Any], bool]]] = {}
        for (i, sw, _), raw, hit in zip(plan, raws, cached):
            per_item.setdefault(i, []).append((sw, raw, hit))
        verdicts = []
        for i in range(len(items)):
            if i not in per_item:
                verdicts.append({"preference": 1.5, "order": "identical", "raw": None, "cached": False})
                continue
            prefs, raw_by_order = {}, {}
            for sw, raw, _ in per_item[i]:
                shown = (weighted_preference(raw.get("logprob_m"), raw.get("logprob_M"))
                         if "logprob_m" in raw else label_preference(raw.get("text", "")))
                name = "switched" if sw else "as_is"
                prefs[name] = None if shown is None else (3.0 - shown if sw else shown)
                raw_by_order[name] = raw
            valid = [p for p in prefs.values() if p is not None]
            verdict: dict[str, Any] = {"preference": sum(valid) / len(valid) if valid else None,
                                       "cached": all(hit for _, _, hit in per_item[i])}
            if self.swap:
                verdict.update(order="both", raw=raw_by_order, preferences=prefs)
            else:
                (name, raw), = raw_by_order.items()
                verdict.update(order=name, raw=raw)
            verdicts.append(verdict)
        return method, verdicts
