"""alpaca_eval plug-in: leaderboard numbers, the weighted m/M parser, order handling, caching,
the 0-100 score mode, and a whole run through the engine with fake models.

Reference numbers: alpaca-7b's row of alpaca_eval's weighted_alpaca_eval_gpt4_turbo
leaderboard and its shipped annotations (tests/data/alpaca_eval, unchanged upstream files).
"""
from __future__ import annotations

import csv
import gzip
import json
import math
import re
from pathlib import Path

import pytest

from harness.api import BenchmarkConfig, GenerateRequest, LoglikelihoodResult, Model, ModelInfo, RunContext
from harness.errors import HarnessError
from harness_plugins.alpaca_eval import STOPS, AlpacaEval
from harness_plugins.alpaca_eval.cache import JudgeCache
from harness_plugins.alpaca_eval.metrics import LC_NAME, head2head, length_controlled_local
from harness_plugins.alpaca_eval.pairwise import (
    PairwiseJudge,
    is_switched,
    label_preference,
    preference_from_top_logprobs,
    weighted_preference,
)
from harness_plugins.alpaca_eval.score import parse_score

DATA = Path(__file__).parent / "data" / "alpaca_eval"
_SHOWN = re.compile(r'"model_identifier": "([mM])",\n\s+"output": """(.*?)"""', re.S)


@pytest.fixture(scope="module")
def annotations() -> list[dict]:
    with gzip.open(DATA / "alpaca-7b.weighted_alpaca_eval_gpt4_turbo.annotations.json.gz", "rt") as fh:
        return json.load(fh)


class ScriptedJudge(Model):
    """A judge with a known rule: strength 1 + 3·#"good" per output, and a 2x bias for the
    first position: p(m) = 2·s1 / (2·s1 + s2). Counts every request it answers."""

    def __init__(self, fingerprint: str = "scripted-v1", can_score: bool = True) -> None:
        self.info = ModelInfo(spec="scripted", backend="fake", fingerprint=fingerprint)
        self.can_score, self.requests = can_score, 0

    def p_first(self, prompt: str) -> float:
        shown = dict(_SHOWN.findall(prompt))
        s1, s2 = (1 + 3 * shown[k].count("good") for k in ("m", "M"))
        return 2 * s1 / (2 * s1 + s2)

    def loglikelihood(self, requests, progress=True):
        if not self.can_score:
            raise NotImplementedError
        self.requests += len(requests)
        return [LoglikelihoodResult(math.log(self.p_first(r.context) if r.continuation == "m"
                                             else 1 - self.p_first(r.context)), False) for r in requests]

    def generate(self, requests, progress=True):
        self.requests += len(requests)
        return [" m" if self.p_first(r.prompt) > 0.5 else "M\n" for r in requests]


class ReplyJudge(Model):
    """A 0-100 judge that replies from a table keyed by a word in the scored response."""

    def __init__(self, replies: dict[str, str]) -> None:
        self.info = ModelInfo(spec="reply", backend="fake", fingerprint="reply-v1")
        self.replies, self.requests = replies, 0

    def loglikelihood(self, requests, progress=True):
        raise NotImplementedError

    def generate(self, requests, progress=True):
        self.requests += len(requests)
        out = []
        for r in requests:
            response = r.prompt.split("score the model response `", 1)[1]
            out.append(next(v for k, v in self.replies.items() if response.startswith(k)))
        return out


class Answerer(Model):
    """An evaluated model: answers every prompt with ``answer`` (prompt-specific via a dict)."""

    def __init__(self, spec: str, answer) -> None:
        self.info = ModelInfo(spec=spec, backend="fake", fingerprint=spec)
        self.answer = answer

    def loglikelihood(self, requests, progress=True):
        raise NotImplementedError

    def generate(self, requests: list[GenerateRequest], progress=True):
        return [self.answer(r.prompt) if callable(self.answer) else self.answer for r in requests]


# -- alpaca_eval's numbers -----------------------------------------------------------------
def test_win_rates_equal_the_leaderboard(annotations):
    out = head2head([a["preference"] for a in annotations])
    with open(DATA / "weighted_alpaca_eval_gpt4_turbo_leaderboard.csv", newline="") as fh:
        row = next(r for r in csv.DictReader(fh) if r[""] == "alpaca-7b")
    # SOURCES.md / leaderboard: 2.591450540223602(3), 0.4870855382635108, 2.298136645962733
    assert out["win_rate"] == pytest.approx(2.591450540223602, abs=1e-12)
    assert out["standard_error"] == pytest.approx(0.4870855382635108, abs=1e-13)
    assert out["discrete_win_rate"] == pytest.approx(2.298136645962733, abs=1e-12)
    assert (out["n_wins"], out["n_wins_base"], out["n_draws"], out["n_total"]) == (17, 785, 3, 805)
    for key in ("win_rate", "standard_error", "discrete_win_rate"):
        assert out[key] == pytest.approx(float(row[key]), abs=1e-12)
    for key in ("n_wins", "n_wins_base", "n_draws", "n_total"):
        assert out[key] == int(row[key])


def test_parser_and_order_reproduce_every_annotation(annotations):
    """Upstream's raw top-5 logprobs -> our parser -> our seeded order -> upstream's preference."""
    prefs = []
    for a in annotations:
        if a["raw_completion"] is None:  # upstream does not call the judge for identical outputs
            assert a["output_1"] == a["output_2"] and a["preference"] == 1.5
            prefs.append(1.5)
            continue
        shown = preference_from_top_logprobs(a["raw_completion"]["logprobs"]["content"][0]["top_logprobs"])
        pref = 3 - shown if is_switched(a["instruction"]) else shown
        assert pref == pytest.approx(a["preference"], abs=1e-9)  # the file rounds to 10 digits
        prefs.append(pref)
    assert head2head(prefs)["win_rate"] == pytest.approx(2.591450540223602, abs=1e-7)


def test_weighted_preference_on_fixed_logprobs():
    assert weighted_preference(math.log(0.25), math.log(0.75)) == pytest.approx(1.75)
    assert weighted_preference(-3.0, -3.0) == pytest.approx(1.5)
    assert weighted_preference(-math.inf, -1.0) == 2.0 and weighted_preference(-0.1, -math.inf) == 1.0
    assert weighted_preference(-math.inf, -math.inf) is None
    # first annotation's top-5: M -6.704e-07, m -15.515626 (shown order; upstream switched it back)
    top = [{"token": "M", "logprob": -6.704e-07}, {"token": "The", "logprob": -15.453126},
           {"token": "m", "logprob": -15.515626}]
    assert preference_from_top_logprobs(top) == pytest.approx(2 - 1 / (1 + math.exp(15.515626 - 6.704e-07)))
    assert preference_from_top_logprobs([{"token": "The", "logprob": -0.1}]) is None
    assert [label_preference(t) for t in ("m", " M", "'m'", "Model", "")] == [1.0, 2.0, 1.0, None, None]


def test_length_controlled_local_equals_an_independent_fit(annotations):
    sklearn = pytest.importorskip("sklearn.linear_model")
    import numpy as np

    prefs = [a["preference"] for a in annotations]
    l1, l2 = [len(a["output_1"]) for a in annotations], [len(a["output_2"]) for a in annotations]
    lc = length_controlled_local(prefs, l1, l2)
    y = np.array(prefs) - 1
    delta = np.array(l1, float) - np.array(l2, float)
    X = np.column_stack([np.tanh(delta / delta.std(ddof=1)), np.ones_like(delta)])
    ref = sklearn.LogisticRegression(C=100, fit_intercept=False, tol=1e-12, max_iter=10000).fit(
        np.vstack([X, X]), np.r_[np.ones(len(y)), np.zeros(len(y))], sample_weight=np.r_[y, 1 - y])
    assert list(lc["weights"].values()) == pytest.approx(list(ref.coef_[0]), abs=1e-6)
    assert lc["value"] == pytest.approx(100 / (1 + math.exp(-ref.coef_[0][1])), abs=1e-6)
    assert "instruction-difficulty" in lc["note"]


# -- the judge -----------------------------------------------------------------------------
GOOD, BAD = "a good answer", "an answer"


def test_order_mapping_and_swap_with_a_biased_judge():
    as_is, switched = "Name a fruit.", "Translate cat."
    assert (is_switched(as_is), is_switched(switched)) == (False, True)
    items = [(as_is, BAD, GOOD), (switched, BAD, GOOD), (as_is, GOOD, GOOD)]
    method, verdicts = PairwiseJudge(ScriptedJudge(), method="logprobs").judge_pairs(items)
    assert method == "logprobs"
    # as shown: p(m) = 2/(2+4) -> 2 - 1/3; switched: p(m) = 8/9 -> 2 - 8/9, mapped back 3 - x
    assert verdicts[0]["preference"] == pytest.approx(5 / 3) and verdicts[0]["order"] == "as_is"
    assert verdicts[1]["preference"] == pytest.approx(17 / 9) and verdicts[1]["order"] == "switched"
    assert verdicts[2] == {"preference": 1.5, "order": "identical", "raw": None, "cached": False}
    assert set(verdicts[0]["raw"]) == {"logprob_m", "logprob_M"}
    _, both = PairwiseJudge(ScriptedJudge(), swap=True).judge_pairs(items[:2])
    assert [v["preference"] for v in both] == pytest.approx([16 / 9, 16 / 9])
    assert both[0]["order"] == "both" and set(both[0]["raw"]) == {"as_is", "switched"}


def test_label_fallback_when_the_judge_cannot_score():
    judge = ScriptedJudge(can_score=False)
    method, verdicts = PairwiseJudge(judge).judge_pairs([("Name a fruit.", BAD, GOOD), ("Translate cat.", BAD, GOOD)])
    assert method == "generate" and [v["preference"] for v in verdicts] == [2.0, 2.0]
    assert verdicts[0]["raw"] == {"text": "M\n"} and verdicts[1]["raw"] == {"text": " m"}
    with pytest.raises(HarnessError, match="neither score"):
        PairwiseJudge(judge, method="logprobs").judge_pairs([("Name a fruit.", BAD, GOOD)])


def test_judge_calls_are_cached(tmp_path):
    items = [("Name a fruit.", BAD, GOOD), ("Translate cat.", GOOD, BAD)]
    first_judge = ScriptedJudge()
    cache = JudgeCache(tmp_path / "c.sqlite")
    _, first = PairwiseJudge(first_judge, cache=cache).judge_pairs(items)
    assert first_judge.requests == 4 and cache.misses == 2
    again = ScriptedJudge()  # a new process: same weights fingerprint, nothing in memory
    _, second = PairwiseJudge(again, cache=JudgeCache(tmp_path / "c.sqlite")).judge_pairs(items)
    assert again.requests == 0 and [v["cached"] for v in second] == [True, True]
    assert [v["preference"] for v in second] == [v["preference"] for v in first]
    other = ScriptedJudge(fingerprint="another-judge")
    PairwiseJudge(other, cache=JudgeCache(tmp_path / "c.sqlite")).judge_pairs(items)
    assert other.requests == 4


# -- the benchmark ---------------------------------------------------------------------------
def _records(tmp_path: Path) -> Path:
    recs = [{"instruction": "Name a fruit.", "input": "", "output": "apple"},
            {"instruction": "Translate cat.", "input": "to French", "output": "chat"},
            {"instruction": "Say hi.", "input": "", "output": "hi"},
            {"instruction": "List colours.", "input": "", "output": "red, blue"}]
    path = tmp_path / "test-responses.json"
    path.write_text(json.dumps(recs))
    return path


def test_default_instances_cover_every_source():
    insts = list(AlpacaEval().instances(BenchmarkConfig()))
    assert len(insts) == 20
    assert {i.subset for i in insts} == {"helpful_base", "koala", "oasst", "selfinstruct", "vicuna"}
    first = insts[0]
    assert first.doc_id == "alpaca_eval-000"
    assert first.prompt == "What are the names of some famous actors that started their careers on Broadway?"
    assert first.target.startswith("Several famous actors started their careers on Broadway")
    assert first.requests[0].prompt == first.prompt and first.requests[0].max_tokens == 128


@pytest.mark.parametrize("options, match", [
    ({"mode": "vote"}, "mode="), ({"swapp": True}, "did you mean 'swap'"), ({"swap": "maybe"}, "swap="),
    ({"max_tokens": "x"}, "max_tokens"),
])
def test_bad_options(options, match):
    with pytest.raises(HarnessError, match=match):
        list(AlpacaEval().instances(BenchmarkConfig(options=options)))


def test_reference_mode_needs_outputs(tmp_path):
    path = tmp_path / "noref.json"
    path.write_text(json.dumps([{"instruction": "Say hi."}]))
    with pytest.raises(HarnessError, match="needs an 'output'"):
        list(AlpacaEval().instances(BenchmarkConfig(options={"data": str(path), "against": "reference"})))


def _run(bench: AlpacaEval, tmp_path: Path, judge: Model, options: dict, roles: dict[str, Model]):
    cfg = BenchmarkConfig(options={"data": str(_records(tmp_path)), "judge_cache": str(tmp_path / "j.sqlite"),
                                   "judge_check": 0, **options})
    insts = list(bench.instances(cfg))
    ctx = RunContext(out_dir=tmp_path, judge_factory=lambda: judge, progress=False)
    records = [{"doc_id": i.doc_id, "subset": i.subset, "prompt": i.prompt, "target": i.target} for i in insts]
    for role, model in roles.items():
        answers = [[a] for a in model.generate([i.requests[0] for i in insts])]
        for rec, out in zip(records, bench.process_batch(insts, answers, ctx)):
            rec[role] = out
    return records, bench.postprocess(records, ctx)


def test_model_vs_base_pairwise_results(tmp_path):
    judge = ScriptedJudge()
    roles = {"model": Answerer("ft", lambda p: GOOD if "fruit" in p or "cat" in p else BAD),
             "base": Answerer("base", BAD)}
    records, pair = _run(AlpacaEval(), tmp_path, judge, {}, roles)
    mvb = pair["model_vs_base"]
    # fruit: as_is 5/3; cat: switched 17/9; hi, colours: identical answers -> 1.5, no call
    assert mvb["win_rate"] == pytest.approx(100 * (2 / 3 + 8 / 9 + 0.5 + 0.5) / 4)
    assert (mvb["n_wins"], mvb["n_draws"], mvb["n_total"]) == (2, 2, 4)
    assert mvb["discrete_win_rate"] == pytest.approx(75.0) and LC_NAME in mvb and mvb["baseline"] == "base"
    assert judge.requests == 4 and pair["judge"]["calls"] == 4 and pair["judge"]["method"] == "logprobs"
    verdict = records[1]["judge"]["model_vs_base"]
    assert verdict["order"] == "switched" and verdict["preference"] == pytest.approx(17 / 9)
    assert "logprob_m" in verdict["raw"] and pair["judge"]["cache"]["path"].endswith("j.sqlite")


def test_without_base_compares_with_references(tmp_path):
    _, pair = _run(AlpacaEval(), tmp_path, ScriptedJudge(), {}, {"model": Answerer("ft", GOOD)})
    assert set(pair) == {"mode", "model_vs_reference", "judge"}
    assert pair["model_vs_reference"]["baseline"].startswith("reference:")
    _, both = _run(AlpacaEval(), tmp_path, ScriptedJudge(), {"against": "reference"},
                   {"model": Answerer("ft", GOOD), "base": Answerer("b", BAD)})
    assert {"model_vs_reference", "base_vs_reference"} <= set(both)
    assert both["model_vs_reference"]["win_rate"] > both["base_vs_reference"]["win_rate"]


def test_rerun_costs_no_judge_calls(tmp_path):
    roles = {"model": Answerer("ft", GOOD), "base": Answerer("base", BAD)}
    _, first = _run(AlpacaEval(), tmp_path, ScriptedJudge(), {}, roles)
    judge = ScriptedJudge()
    _, second = _run(AlpacaEval(), tmp_path, judge, {}, roles)
    assert judge.requests == 0 and second["judge"]["calls"] == 0 and second["judge"]["cache"]["hits"] == 4
    assert second["model_vs_base"] == first["model_vs_base"]


def test_no_judge_is_a_one_line_error(tmp_path):
    bench = AlpacaEval()
    list(bench.instances(BenchmarkConfig(options={"data": str(_records(tmp_path))})))
    with pytest.raises(HarnessError, match="needs a judge"):
        bench.postprocess([{"doc_id": "file-0000", "subset": "file", "model": {"answer": "x"}}], RunContext())


def test_score_mode_counts_unparseable_replies(tmp_path):
    replies = {"apple": "85", "chat": "I would give it 70.", "hi": "", "red": "150", "no": " 90\n"}
    judge = ReplyJudge(replies)
    answers = {"fruit": "apple", "cat": "chat", "hi": "hi", "colours": "red"}
    model = Answerer("ft", lambda p: next(v for k, v in answers.items() if k in p))
    records, pair = _run(AlpacaEval(), tmp_path, judge, {"mode": "score"},
                         {"model": model, "base": Answerer("b", "no")})
    assert [r["model"]["judge"]["score"] for r in records] == [85, None, None, None]
    # a failed judge reply is no score at all (never a 0, never "wrong"); the sample keeps the raw reply
    assert [r["model"]["scores"] for r in records] == [{"judge_score": 85.0}, {}, {}, {}]
    assert records[1]["judge"]["score"]["model"]["raw"] == "I would give it 70."
    assert records[1]["model"]["judge"]["raw"] == "I would give it 70."
    summary = pair["score"]["model"]
    assert (summary["n"], summary["n_scored"], summary["n_unparseable"], summary["mean"]) == (4, 1, 3, 85.0)
    assert summary["unparseable_doc_ids"] == ["file-0001", "file-0002", "file-0003"]
    assert pair["score"]["base"]["mean"] == 90.0 and pair["score"]["base"]["n_unparseable"] == 0
    assert judge.requests == 8  # one call per distinct (instruction, expected, response) prompt
    lenient, _ = _run(AlpacaEval(), tmp_path, ReplyJudge(replies), {"mode": "score", "score_parse": "lenient",
                                                                    "judge_cache": "off"}, {"model": model})
    assert [r["model"]["judge"]["score"] for r in lenient] == [85, 70, None, None]


def test_parse_score_rules():
    assert [parse_score(t) for t in ("85", " 7 \n", "+3", "-1", "101", "85.", "8 5")] == [
        85, 7, 3, None, None, None, None]
    assert [parse_score(t, lenient=True) for t in ("Score: 85/100", "3.5", "none")] == [85, None, None]


def test_engine_run_writes_pairwise_and_judge_fields(tmp_path, monkeypatch):
    from harness.engine import Engine, RunConfig
    from harness.suite import Selection

    monkeypatch.setenv("HARNESS_JUDGE_CACHE", str(tmp_path / "cache.sqlite"))
    models = {"ft": Answerer("ft", GOOD), "base": Answerer("base", BAD)}
    for attempt, expect_calls in ((1, 8), (2, 0)):
        judge = ScriptedJudge()
        cfg = RunConfig(suite=[Selection("alpaca_eval", None)], out=tmp_path / f"run{attempt}", model="ft",
                        base="base", options={"alpaca_eval": {"data": str(_records(tmp_path)), "judge_check": 0}}, progress=False)
        results = Engine(cfg, {"alpaca_eval": AlpacaEval()}, lambda spec, role="model": models[spec],
                         judge_factory=lambda judge=judge: judge).run()
        entry = results["benchmarks"]["alpaca_eval"]
        assert entry["error"] is None and judge.requests == expect_calls
        assert entry["pairwise"]["model_vs_base"]["n_total"] == 4
        samples = tmp_path / f"run{attempt}" / "samples" / "alpaca_eval.jsonl"
        rows = [json.loads(x) for x in samples.read_text().splitlines()]
        assert all("preference" in r["judge"]["model_vs_base"] for r in rows)


def test_prompt_format_option_formats_for_every_model(tmp_path, monkeypatch):
    from harness.engine import Engine, RunConfig
    from harness.prompts import format_prompt
    from harness.suite import Selection

    bench = AlpacaEval()
    insts = list(bench.instances(BenchmarkConfig(limit=1, options={"prompt_format": "alpaca"})))
    assert bench.instruction_following is True  # the engine formats (once): the plug-in emits the bare prompt
    assert insts[0].requests[0].prompt == insts[0].doc["instruction"]
    default = AlpacaEval()
    list(default.instances(BenchmarkConfig(limit=1)))
    assert default.instruction_following is True  # each model's own format, applied by the engine

    seen: dict[str, list[GenerateRequest]] = {}

    class Recorder(Answerer):
        def generate(self, requests, progress=True):
            seen.setdefault(self.info.spec, []).extend(requests)
            return super().generate(requests, progress)

    monkeypatch.setenv("HARNESS_JUDGE_CACHE", "off")
    models = {"ft": Recorder("ft", GOOD), "base": Recorder("base", BAD)}
    cfg = RunConfig(suite=[Selection("alpaca_eval", None)], out=tmp_path / "run", model="ft", base="base",
                    options={"alpaca_eval": {"data": str(_records(tmp_path)), "prompt_format": "alpaca"}},
                    progress=False)
    entry = Engine(cfg, {"alpaca_eval": AlpacaEval()}, lambda spec, role="model": models[spec],
                   judge_factory=ScriptedJudge).run()["benchmarks"]["alpaca_eval"]
    assert entry["error"] is None
    for spec in models:  # every model in the forced format, formatted exactly once
        reqs = seen[spec]
        assert len(reqs) == 4 and format_prompt("alpaca", "Name a fruit.") in [r.prompt for r in reqs]
        assert all(r.prompt.count("### Instruction:") == 1 for r in reqs)
        assert all(set(STOPS) <= set(r.stop) for r in reqs)  # the plug-in's stops are kept
