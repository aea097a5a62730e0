"""TriviaQA closed-book (rc.nocontext): greedy short answers scored two ways.

The prompt, stop strings and answer filter follow lm-eval's ``triviaqa`` task
(``"Question: {{question}}?\\nAnswer:"``, ``until: ["\\n", ".", ","]``, strip) so the
``lmeval_exact_match`` metric is comparable with lm-eval; the official TriviaQA EM/F1
is reported beside it (see :mod:`harness_plugins.triviaqa.metric` for why both).
lm-eval's template appends ``?`` to questions that usually end in one already; the
``prompt=plain`` option drops the extra mark at the cost of lm-eval comparability.

Data: a 3,000-question subset ships in ``harness_tasks/triviaqa`` (the default run uses
its first 50 questions so it stays short on a CPU); ``--full`` loads the validation split
through ``datasets`` and ``--data-dir`` reads a local copy (official JSON, JSONL, parquet).
"""
from __future__ import annotations

import io
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

from harness.api import (
    Benchmark,
    BenchmarkConfig,
    GenerateRequest,
    HarnessError,
    Instance,
    Metric,
    RunContext,
    hookimpl,
)
from harness.api.data import bundled, iter_jsonl, read_json, read_text, take

from .metric import evaluate_official, lmeval_exact_match, lmeval_filter, make_doc, official_scores

HF_PATH, HF_NAME = "mandarjoshi/trivia_qa", "rc.nocontext"
DEFAULT_LIMIT = 50
LMEVAL_STOP = ("\n", ".", ",")
SUBSET = "nocontext"
_CTX_HEAD, _CTX_TAIL = "Question: ", "\nAnswer:"


def bundled_path() -> Path:
    return Path(str(bundled("triviaqa", "triviaqa_sm_sub.jsonl.gz")))


def _doc_from_record(rec: dict[str, Any], index: int, where: str) -> dict[str, Any]:
    """A bundled-style (``context``/``aliases``) or HF-style (``question``/``answer``) record."""
    if "context" in rec and "aliases" in rec:  # llm-foundry subset: no ids, assign by index
        ctx = rec["context"]
        question = ctx[len(_CTX_HEAD):] if ctx.startswith(_CTX_HEAD) else ctx
        question = question[: -len(_CTX_TAIL)] if question.endswith(_CTX_TAIL) else question
        return make_doc(f"sm_sub-{index:04d}", question, rec["aliases"], value=rec.get("answer", ""))
    if "question" in rec and isinstance(rec.get("answer"), dict):  # HF mandarjoshi/trivia_qa row
        ans = rec["answer"]
        return make_doc(str(rec.get("question_id", index)), rec["question"], ans.get("aliases", []),
                        ans.get("normalized_aliases"), value=ans.get("value", ""))
    raise HarnessError(f"{where}: record {index} is neither TriviaQA JSONL ({{context, aliases}}) "
                       f"nor a trivia_qa row ({{question, answer}})")


def _docs_from_official(data: dict[str, Any], where: str) -> list[dict[str, Any]]:
    """Official schema (``Data[].QuestionId``, ``Answer.NormalizedAliases``), verified-eval filter applied.

    Keyed by question: closed-book answers do not depend on the evidence documents,
    so the web domain's (question, document) keys of the official script collapse.
    """
    rows = data["Data"]
    if data.get("VerifiedEval"):
        rows = [d for d in rows if d.get("QuestionPartOfVerifiedEval")]
    docs = []
    for d in rows:
        try:
            ans = d["Answer"]
            docs.append(make_doc(d["QuestionId"], d["Question"], ans.get("Aliases", []), ans["NormalizedAliases"],
                                 ans.get("HumanAnswers"), value=ans.get("Value", "")))
        except KeyError as exc:
            raise HarnessError(f"{where}: a question lacks the official field {exc.args[0]!r}") from None
    return docs


def load_file(path: str | Path) -> list[dict[str, Any]]:
    """Questions from one file: official ``.json``, a JSON list, ``.jsonl(.gz)`` or ``.parquet``."""
    path = Path(path)
    if not path.is_file():
        raise HarnessError(f"{path}: no such file; give a TriviaQA .json/.jsonl/.parquet file")
    if path.suffix == ".parquet":
        import datasets  # lazy: heavy, only for local HF copies

        rows = datasets.load_dataset("parquet", data_files=str(path), split="train")
        return [_doc_from_record(r, i, str(path)) for i, r in enumerate(rows)]
    if path.name.endswith((".jsonl", ".jsonl.gz")):
        # Lines split as reading the file in text mode does; str.splitlines() would also split
        # records at U+0085 and the like, which occur inside the bundled subset's strings.
        lines = io.StringIO(read_text(path, "triviaqa data"), newline=None)
        recs: Any = [rec for _, rec in iter_jsonl(lines, f"triviaqa data {path}")]
    else:
        recs = read_json(path, "triviaqa data")
    if isinstance(recs, dict) and "Data" in recs:
        return _docs_from_official(recs, str(path))
    if not isinstance(recs, list):
        raise HarnessError(f"{path}: expected the official {{'Data': [...]}} format or a list of records")
    return [_doc_from_record(r, i, str(path)) for i, r in enumerate(recs)]


def load_data_dir(path: str | Path) -> list[dict[str, Any]]:
    """A file, or a folder whose validation/dev files (else all supported files) are read in name order."""
    path = Path(path)
    if path.is_file():
        return load_file(path)
    if not path.is_dir():
        raise HarnessError(f"--data-dir triviaqa={path}: not found")
    files = sorted(p for p in path.iterdir()
                   if p.name.endswith((".json", ".jsonl", ".jsonl.gz", ".parquet")) and "sample" not in p.name)
    dev = [p for p in files if "validation" in p.name or "dev" in p.name]
    if not (dev or files):
        raise HarnessError(f"--data-dir triviaqa={path}: no .json/.jsonl/.parquet files in it")
    return [doc for f in (dev or files) for doc in load_file(f)]


@lru_cache(maxsize=1)
def _bundled() -> tuple[dict[str, Any], ...]:
    """The shipped subset, parsed once per process (it never changes)."""
    return tuple(load_file(bundled_path()))


def load_hf() -> list[dict[str, Any]]:
    try:
        import datasets
    except ImportError:  # pragma: no cover - datasets is a dependency
        raise HarnessError("triviaqa --full needs the `datasets` package") from None
    try:
        rows = datasets.load_dataset(HF_PATH, HF_NAME, split="validation")
    except Exception as exc:  # noqa: BLE001 - offline, missing auth, ...: one line for the user
        raise HarnessError(f"triviaqa --full: cannot load {HF_PATH} {HF_NAME} ({type(exc).__name__}); "
                           f"use --data-dir triviaqa=DIR with a local copy") from None
    return [_doc_from_record(r, i, HF_PATH) for i, r in enumerate(rows)]


class TriviaQA(Benchmark):
    name = "triviaqa"
    version = "1"
    description = "TriviaQA closed-book (rc.nocontext), greedy answers; official EM/F1 and lm-eval EM"
    metrics = (
        Metric("official_exact_match", "binary",
               description="official TriviaQA script: normalised EM, max over aliases"),
        Metric("official_f1", "continuous", description="official TriviaQA script: token F1, max over aliases"),
        Metric("lmeval_exact_match", "binary",
               description="lm-eval triviaqa: strip, exact_match ignore_case+ignore_punctuation, any alias"),
    )
    subsets = (SUBSET,)
    options = {
        "prompt": "lmeval (default: lm-eval's 'Question: {q}?\\nAnswer:', doubled '?' included) | plain",
        "stop": "lmeval (default: newline, '.', ',') | newline",
        "max_tokens": f"answer length cap in tokens (default 32); default limit {DEFAULT_LIMIT} questions",
    }
    score_options = {
        "data": "official TriviaQA JSON (Data[].QuestionId, Answer.NormalizedAliases) or the bundled JSONL",
        "predictions": "JSON object {question id: answer}",
    }

    def load(self, config: BenchmarkConfig) -> list[dict[str, Any]]:
        if config.data_dir:
            return load_data_dir(config.data_dir)
        if config.full:
            return load_hf()
        return list(_bundled())

    def instances(self, config: BenchmarkConfig) -> Iterable[Instance]:
        opts = config.options
        style, stop_name = opts.get("prompt", "lmeval"), opts.get("stop", "lmeval")
        if style not in ("lmeval", "plain"):
            raise HarnessError(f"triviaqa option prompt={style!r}: expected lmeval or plain")
        if stop_name not in ("lmeval", "newline"):
            raise HarnessError(f"triviaqa option stop={stop_name!r}: expected lmeval or newline")
        try:
            max_tokens = int(opts.get("max_tokens", 32))
        except (TypeError, ValueError):
            raise HarnessError(f"triviaqa option max_tokens={opts.get('max_tokens')!r}: expected an integer") from None
        stop = LMEVAL_STOP if stop_name == "lmeval" else ("\n",)
        default = None if (config.full or config.data_dir) else DEFAULT_LIMIT
        limit = config.limit if config.limit is not None else default
        docs = self.load(config)
        for doc in take(docs, limit):
            q = doc["question"]
            prompt = f"Question: {q}?\nAnswer:" if style == "lmeval" else f"Question: {q}\nAnswer:"
            yield Instance(doc_id=doc["id"], subset=SUBSET, doc=doc, prompt=prompt, target=doc["aliases"],
                           requests=[GenerateRequest(prompt=prompt, stop=stop, max_tokens=max_tokens)])

    def process(self, instance: Instance, responses: list) -> dict[str, Any]:
        raw = responses[0] if responses else ""
        answer = lmeval_filter(raw)
        em, f1 = official_scores(raw, instance.doc)
        return {"answer": answer, "scores": {
            "official_exact_match": em, "official_f1": f1,
            "lmeval_exact_match": lmeval_exact_match(answer, instance.doc["aliases"]),
        }}

    def score_files(self, context: RunContext, **kwargs: Any) -> dict[str, Any]:
        """`harness score triviaqa --data D --predictions P`: the official script's output + lm-eval EM."""
        data, preds_path = kwargs.get("data"), kwargs.get("predictions")
        if not data or not preds_path:
            raise HarnessError("harness score triviaqa needs --data FILE and --predictions FILE")
        docs = {d["id"]: d for d in load_data_dir(data)}
        preds = read_json(Path(preds_path), "--predictions")
        if not isinstance(preds, dict):
            raise HarnessError(f"--predictions {preds_path}: expected a JSON object {{question id: answer}}")
        # The official sample keys predictions "QuestionId--Filename"; closed-book scoring is per question.
        preds = {(k if k in docs else k.split("--", 1)[0]): v for k, v in preds.items()}
        return evaluate_official(docs, preds)


@hookimpl
def register_benchmarks(register):
    register(TriviaQA())
