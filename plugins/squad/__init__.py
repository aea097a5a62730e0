"""SQuAD v1.1 (``squad``) and v2.0 (``squad_v2``): zero-shot extractive QA, official EM/F1.

Prompt and requests follow lm-eval's ``squadv2`` task (``Title: .. Background: ..
Question: .. Answer:``, greedy generation until "\\n", plus for v2 the loglikelihood of
" unanswerable" whose exp() is the no-answer probability). Scores use the official
scripts (:mod:`.metric`). Units: per sample ``exact``/``exact_match`` is 0/1 and ``f1``
0..1, so run metrics are fractions; ``harness score`` prints percentages as the scripts do.

No-answer (v2): a generation that is empty or normalises to "unanswerable" (lm-eval's
target for unanswerable questions) is scored as the empty answer "".
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness.api import (
    Benchmark,
    BenchmarkConfig,
    GenerateRequest,
    HarnessError,
    Instance,
    LoglikelihoodRequest,
    Metric,
    RunContext,
    hookimpl,
)
from harness.api.data import bundled, data_dir, effective_limit, load_hub, read_json, select_subsets, take

from . import metric as sm

DEFAULT_LIMIT = 50  # questions in the default run (~2 min for a 135M model on 2 cores), spread over articles
MAX_TOKENS = 32
BUNDLED_V1 = ("squad", "dev-v1.1.json.gz")  # the official dev set, byte-identical once gunzipped
NO_ANSWER = "unanswerable"


def prompt_for(doc: dict[str, Any]) -> str:
    """lm-eval squadv2 ``doc_to_text``."""
    return f"Title: {doc['title']}\n\nBackground: {doc['context']}\n\nQuestion: {doc['question']}\n\nAnswer:"


def _need(obj: Any, key: str, typ: type, where: str, source: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise HarnessError(f"{source}: {where} has no {key!r} field")
    if not isinstance(obj[key], typ):
        raise HarnessError(f"{source}: {where}.{key} must be a {typ.__name__}, got {type(obj[key]).__name__}")
    return obj[key]


def spread_over_articles(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Round-robin over articles (each in file order), so the first N questions of the bundled
    dev set come from many articles: the dev set's first 200 are all about one (Super Bowl 50),
    and a sample from one article cannot tell a model that reads better from one that knows
    more about football. ``--full`` and ``--data-dir`` keep the file order, as lm-eval does."""
    by_title: dict[str, list[dict[str, Any]]] = {}
    for doc in docs:
        by_title.setdefault(doc["title"], []).append(doc)
    queues = list(by_title.values())
    out: list[dict[str, Any]] = []
    for rank in range(max(len(q) for q in queues)):
        out.extend(q[rank] for q in queues if rank < len(q))
    return out


def parse_squad(obj: Any, source: str) -> tuple[str | None, list[dict[str, Any]]]:
    """Validate an official SQuAD JSON file and flatten it to docs in file order.

    Returns ``(version, docs)``; a doc is ``{id, title, context, question, answers: [text]}``.
    """
    if not isinstance(obj, dict):
        raise HarnessError(f"{source}: expected a SQuAD data file (a JSON object with 'version' and 'data')")
    articles = _need(obj, "data", list, "the top level", source)
    docs: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, art in enumerate(articles):
        title = art.get("title", "") if isinstance(art, dict) else ""
        for j, par in enumerate(_need(art, "paragraphs", list, f"data[{i}]", source)):
            where = f"data[{i}].paragraphs[{j}]"
            context = _need(par, "context", str, where, source)
            for k, qa in enumerate(_need(par, "qas", list, where, source)):
                qwhere = f"{where}.qas[{k}]"
                qid = _need(qa, "id", str, qwhere, source)
                if qid in seen:
                    raise HarnessError(f"{source}: {qwhere}: duplicate question id {qid!r}")
                seen.add(qid)
                answers = [_need(a, "text", str, f"{qwhere}.answers[{n}]", source)
                           for n, a in enumerate(_need(qa, "answers", list, qwhere, source))]
                docs.append({"id": qid, "title": str(title), "context": context,
                             "question": _need(qa, "question", str, qwhere, source), "answers": answers})
    if not docs:
        raise HarnessError(f"{source}: no questions in the data file")
    version = obj.get("version")
    return (str(version) if version is not None else None), docs


def _from_hub(row: dict[str, Any]) -> dict[str, Any]:
    """A ``rajpurkar/squad(_v2)`` row in the shape :func:`parse_squad` returns."""
    return {"id": row["id"], "title": row["title"], "context": row["context"],
            "question": row["question"], "answers": list(row["answers"]["text"])}


def _load_mapping(path: str, what: str, value_ok, expected: str) -> dict[str, Any]:
    """A JSON object {question id: value}; wrong shapes name the file and the key."""
    obj = read_json(Path(path), what)
    if not isinstance(obj, dict):
        raise HarnessError(f"{what} {path}: expected a JSON object mapping question id to {expected}")
    for key, value in obj.items():
        if not value_ok(value):
            raise HarnessError(f"{what} {path}: value for {key!r} must be {expected}, got {value!r:.60}")
    return obj


def _check_ids(ids: list[str], mapping: dict[str, Any], path: str, what: str, data: str) -> None:
    """Both directions: a file for another data set must not score as zeros or be ignored."""
    known = set(ids)
    unknown = [k for k in mapping if k not in known]
    if unknown:
        raise HarnessError(f"{what} {path}: {len(unknown)} of {len(mapping)} ids are not questions in {data} "
                           f"(first: {unknown[0]!r}); is it for a different data set?")
    missing = [q for q in ids if q not in mapping]
    if missing:
        raise HarnessError(f"{what} {path}: no entry for {len(missing)} of {len(ids)} questions in {data} "
                           f"(first: {missing[0]!r})")


class _SquadBase(Benchmark):
    """Shared loading, requests and `harness score` for both versions."""

    v2 = False
    file_name = ""  # official dev file looked up in --data-dir
    hub_path = ""
    options = {"max_tokens": f"max new tokens per answer (default {MAX_TOKENS})"}
    score_options = {
        "data": "official SQuAD data JSON (dev-v1.1.json / dev-v2.0.json; .gz accepted)",
        "predictions": "JSON object {question id: predicted answer text}",
        "na_prob": "optional JSON object {question id: no-answer probability} (v2 script's --na-prob-file)",
        "na_prob_thresh": "predict '' when the no-answer probability exceeds this (default 1.0)",
    }

    def _docs(self, config: BenchmarkConfig) -> tuple[list[dict[str, Any]], bool]:
        """(docs, from_bundled_subset)."""
        root = data_dir(config, self.name)
        if root is not None:
            path = root / self.file_name if root.is_dir() else root
            if root.is_dir() and not path.is_file() and (root / (self.file_name + ".gz")).is_file():
                path = root / (self.file_name + ".gz")
            docs = parse_squad(read_json(path, f"--data-dir {self.name}"), str(path))[1]
        elif config.full:
            docs = [_from_hub(r) for r in load_hub(self.name, self.hub_path, None, "validation")]
        elif not self.v2:
            docs = parse_squad(read_json(bundled(*BUNDLED_V1), "bundled data"), "/".join(BUNDLED_V1))[1]
            return spread_over_articles(docs), True
        else:
            raise HarnessError(
                f"{self.name} has no bundled data: pass --data-dir {self.name}=DIR (holding the official "
                f"{self.file_name}) or --full (downloads {self.hub_path})"
            )
        if not self.v2 and any(not d["answers"] for d in docs):
            bad = next(d["id"] for d in docs if not d["answers"])
            raise HarnessError(f"{self.name}: question {bad!r} has no gold answer (SQuAD v2 data? use squad_v2)")
        return docs, False

    def instances(self, config: BenchmarkConfig) -> Iterator[Instance]:
        select_subsets(self.name, config.subsets, self.subsets, None, {})
        if config.num_fewshot:
            raise HarnessError(f"{self.name} is zero-shot (as lm-eval's squadv2); drop --num-fewshot")
        max_tokens = config.options.get("max_tokens", MAX_TOKENS)
        if isinstance(max_tokens, str) and max_tokens.isdigit():
            max_tokens = int(max_tokens)
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
            raise HarnessError(f"{self.name}: option max_tokens must be a positive integer, got {max_tokens!r}")
        docs, from_bundle = self._docs(config)
        for doc in take(docs, effective_limit(config, from_bundle, DEFAULT_LIMIT)):
            prompt = prompt_for(doc)
            requests: list = [GenerateRequest(prompt, stop=("\n",), max_tokens=max_tokens, temperature=0.0)]
            if self.v2:
                requests.append(LoglikelihoodRequest(prompt, " " + NO_ANSWER))
            yield Instance(doc_id=doc["id"], subset=self.name, doc=doc, prompt=prompt,
                           target=sm.golds_v2(doc["answers"]) if self.v2 else doc["answers"], requests=requests)

    def score_files(self, context: RunContext, data: str | None = None, predictions: str | None = None,
                    na_prob: str | None = None, na_prob_thresh: float | str = 1.0) -> dict[str, Any]:
        """The official script for the data's version: v2.0 keys always; v1.1 data adds ``exact_match``
        and takes ``f1`` from the v1.1 script (it equals ``HasAns_f1`` unless a gold normalises to "")."""
        if not data or not predictions:
            raise HarnessError(f"harness score {self.name}: --data and --predictions are required")
        try:
            thresh = float(na_prob_thresh)
        except (TypeError, ValueError):
            raise HarnessError(f"--na-prob-thresh must be a number, got {na_prob_thresh!r}") from None
        version, docs = parse_squad(read_json(Path(data), "data file"), str(data))
        ids = [d["id"] for d in docs]
        preds = _load_mapping(predictions, "predictions file", lambda v: isinstance(v, str), "a string")
        _check_ids(ids, preds, predictions, "predictions file", data)
        probs = None
        if na_prob:
            probs = _load_mapping(na_prob, "na-prob file", lambda v: isinstance(v, (int, float))
                                  and not isinstance(v, bool), "a number")
            _check_ids(ids, probs, na_prob, "na-prob file", data)
        questions = [(d["id"], d["answers"]) for d in docs]
        out = sm.evaluate_v2(questions, preds, probs, thresh)
        if version != "1.1":
            return out
        if any(not answers for _, answers in questions):
            raise HarnessError(f"{data}: version 1.1 data with an unanswerable question; set version to v2.0")
        return {**sm.evaluate_v1(questions, preds), **{k: v for k, v in out.items() if k != "f1"}}


class Squad(_SquadBase):
    """SQuAD v1.1: every question answerable; scored with the v1.1 script's EM/F1."""

    name = "squad"
    version = "1"
    description = "SQuAD v1.1 dev, zero-shot extractive QA (lm-eval squadv2 prompt), official v1.1 EM/F1"
    metrics = (Metric("exact_match", "binary", True, "normalised answer equals a gold answer"),
               Metric("f1", "continuous", True, "token F1, max over gold answers"))
    subsets = ("squad",)  # one subset named as the benchmark: no separate subset block in results
    file_name = "dev-v1.1.json"
    hub_path = "rajpurkar/squad"

    def process(self, instance: Instance, responses: list) -> dict[str, Any]:
        answer = responses[0].strip()
        golds = instance.doc["answers"]
        return {"answer": answer, "scores": {"exact_match": float(sm.max_v1(sm.exact_v1, answer, golds)),
                                             "f1": float(sm.max_v1(sm.f1_v1, answer, golds))}}


class SquadV2(_SquadBase):
    """SQuAD v2.0: ``exact``/``f1`` at the script's default threshold 1.0 (a probability never exceeds
    it, so every generation counts as given), plus ``best_*`` from the " unanswerable" probability."""

    name = "squad_v2"
    version = "1"
    description = "SQuAD v2.0 dev (needs --data-dir or --full), zero-shot, official v2.0 EM/F1 and best thresholds"
    metrics = (
        Metric("exact", "binary", True, "exact match; '' (or 'unanswerable') is right on NoAns questions"),
        Metric("f1", "continuous", True, "token F1, max over gold answers"),
        Metric("HasAns_exact", "binary"), Metric("HasAns_f1", "continuous"),
        Metric("NoAns_exact", "binary"), Metric("NoAns_f1", "continuous"),
        Metric("best_exact", "continuous", True, "exact at the best no-answer threshold (not a mean)"),
        Metric("best_f1", "continuous", True, "f1 at the best no-answer threshold (not a mean)"),
    )
    subsets = ("squad_v2",)
    v2 = True
    file_name = "dev-v2.0.json"
    hub_path = "rajpurkar/squad_v2"

    def process(self, instance: Instance, responses: list) -> dict[str, Any]:
        answer = responses[0].strip()
        pred = "" if sm.normalize_answer(answer) == NO_ANSWER else answer
        golds = sm.golds_v2(instance.doc["answers"])
        exact = float(max(sm.compute_exact(g, pred) for g in golds))
        f1 = float(max(sm.compute_f1(g, pred) for g in golds))
        split = "HasAns" if instance.doc["answers"] else "NoAns"
        return {"answer": answer, "prediction": pred, "na_prob": math.exp(responses[1].logprob),
                "has_answer": bool(instance.doc["answers"]),
                "scores": {"exact": exact, "f1": f1, f"{split}_exact": exact, f"{split}_f1": f1}}

    def aggregate(self, records: list[dict[str, Any]]) -> dict[str, float]:
        """Means, plus the v2.0 script's ``best_exact``/``best_f1`` over the records' no-answer
        probabilities (as lm-eval reports; the thresholds themselves only in `harness score`)."""
        out = super().aggregate(records)
        if not records or not all("na_prob" in r for r in records):
            return out
        preds = {str(i): r["prediction"] for i, r in enumerate(records)}
        probs = {str(i): r["na_prob"] for i, r in enumerate(records)}
        has_ans = {str(i): r["has_answer"] for i, r in enumerate(records)}
        for name in ("exact", "f1"):
            raw = {str(i): r["scores"][name] for i, r in enumerate(records)}
            best, _thresh = sm.best_thresh_count(preds, raw, probs, has_ans)
            out[f"best_{name}"] = best / len(raw)
        return out


@hookimpl
def register_benchmarks(register):
    register(Squad())
    register(SquadV2())
