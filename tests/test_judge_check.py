"""harness judge check: agreement with GPT-4-turbo's annotations, position and length bias,
counted by hand on known judges; judge failures are never disagreements.

The shipped reference (tasks/alpaca_eval) must be the same file as tests/data/alpaca_eval.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import math
import re
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.api import LoglikelihoodResult, Model, ModelInfo
from harness_plugins.alpaca_eval.cache import JudgeCache
from harness_plugins.alpaca_eval.check import check_judge, load_annotations, measure, reference_path, select

DATA = Path(__file__).parent / "data" / "alpaca_eval"
_SHOWN = re.compile(r'"model_identifier": "([mM])",\n\s+"output": """(.*?)"""', re.S)


@pytest.fixture(scope="module")
def annotations() -> list[dict]:
    return load_annotations()


class RuleJudge(Model):
    """p(m) from a rule over the two shown outputs: "first" (always the first shown), "longer",
    "oracle" (the side GPT-4-turbo chose, looked up by output text), "broken" (no label)."""

    def __init__(self, rule: str, oracle: dict[str, dict] | None = None) -> None:
        self.info = ModelInfo(spec=f"rule-{rule}", backend="fake", fingerprint=f"rule-{rule}")
        self.rule, self.oracle, self.requests = rule, oracle or {}, 0

    def p_first(self, prompt: str) -> float:
        shown = dict(_SHOWN.findall(prompt))
        first, second = shown["m"], shown["M"]
        if self.rule == "first":
            return 0.8
        if self.rule == "longer":
            return 0.9 if len(first) > len(second) else 0.1
        # oracle: the reference pair whose outputs are in the prompt; which one is shown first
        pair = next(p for p in self.oracle.values() if p["output_1"] in prompt and p["output_2"] in prompt)
        second_first = prompt.index(pair["output_2"]) < prompt.index(pair["output_1"])
        return 0.9 if (pair["preference"] > 1.5) == second_first else 0.1

    def loglikelihood(self, requests, progress=True):
        self.requests += len(requests)
        if self.rule == "broken":
            return [LoglikelihoodResult(-math.inf, False) for _ in requests]
        return [LoglikelihoodResult(math.log(self.p_first(r.context) if r.continuation == "m"
                                             else 1 - self.p_first(r.context)), False) for r in requests]

    def generate(self, requests, progress=True):
        raise NotImplementedError


def test_shipped_reference_is_the_upstream_file():
    shipped = hashlib.sha256(reference_path().read_bytes()).hexdigest()
    tested = hashlib.sha256((DATA / reference_path().name).read_bytes()).hexdigest()
    assert shipped == tested == "2573f5f8f37418a8ea078094ba2c5422b4d51bcfa80c9580ced1dd5477a9a8d2"
    with gzip.open(DATA / reference_path().name, "rt") as fh:
        assert len(json.load(fh)) == 805


def test_sample_is_balanced_seeded_and_short(annotations):
    pairs = select(annotations, 20, seed=0)
    assert len(pairs) == 20 and sum(p["preference"] > 1.5 for p in pairs) == 10
    assert all(len(p["instruction"]) + len(p["output_1"]) + len(p["output_2"]) <= 3000 for p in pairs)
    assert select(annotations, 20, seed=0) == pairs and select(annotations, 20, seed=1) != pairs
    wide = select(annotations, 100, seed=0, max_chars=0)  # only 17 pairs where alpaca-7b won exist
    assert len(wide) == 100 and sum(p["preference"] > 1.5 for p in wide) == 17


def test_position_biased_judge_is_at_chance(annotations, tmp_path):
    out = check_judge(RuleJudge("first"), n=20, cache=JudgeCache(tmp_path / "c.sqlite"))
    # always the first shown: each pair agrees in exactly one of its two orders -> 1/2 per pair
    assert out["agreement"] == pytest.approx(0.5) and out["chance"] == 0.5
    assert out["position_flip_rate"] == 1.0 and out["first_position_rate"] == 1.0
    assert out["at_chance"] and out["position_biased"] and not out["reliable"]
    assert "not evidence" in out["verdict"] and "--judge openai:URL" in out["verdict"]
    assert out["agreement_ci95"][0] < 0.5 < out["agreement_ci95"][1]


def test_oracle_and_length_judges_counted_by_hand(annotations, tmp_path):
    pairs = select(annotations, 20, seed=0)
    oracle = {p["instruction"]: p for p in pairs}
    out = check_judge(RuleJudge("oracle", oracle), n=20, cache=JudgeCache(None))
    assert out["agreement"] == 1.0 and out["position_flip_rate"] == 0.0 and out["reliable"]
    assert out["agreement_ci95"][0] > 0.8
    longer = check_judge(RuleJudge("longer"), n=20, cache=JudgeCache(None))
    # by hand: the longer-answer judge agrees where GPT-4-turbo chose the longer answer
    hand = sum((p["preference"] > 1.5) == (len(p["output_2"]) > len(p["output_1"])) for p in pairs) / 20
    assert longer["agreement"] == pytest.approx(hand) and longer["longer_rate"] == 1.0
    assert longer["reference_longer_rate"] == pytest.approx(hand)
    assert longer["position_flip_rate"] == 0.0


def test_judge_failures_are_not_disagreement(annotations):
    pairs = select(annotations, 4, seed=0)
    prefs = [{"as_is": None, "switched": None}, {"as_is": 1.2, "switched": None},
             {"as_is": 1.5, "switched": 1.9}, {"as_is": 1.9, "switched": 1.1}]
    out = measure(pairs, prefs)
    refs = [p["preference"] > 1.5 for p in pairs]
    agree = lambda pref, ref: 0.5 if pref == 1.5 else float((pref > 1.5) == ref)  # noqa: E731
    hand = [agree(1.2, refs[1]), (agree(1.5, refs[2]) + agree(1.9, refs[2])) / 2,
            (agree(1.9, refs[3]) + agree(1.1, refs[3])) / 2]
    assert out["judge_failed"] == 3 and out["n_scored"] == 3
    assert out["agreement"] == pytest.approx(sum(hand) / 3)
    assert out["n_decided_both_orders"] == 1 and out["position_flip_rate"] == 1.0


def test_broken_judge_fails_every_judgement_and_is_not_believed(tmp_path):
    out = check_judge(RuleJudge("broken"), n=6, cache=JudgeCache(None))
    assert out["judge_failed"] == 12 and out["agreement"] is None and not out["reliable"]


def test_check_is_cached_per_judge(tmp_path):
    cache = tmp_path / "c.sqlite"
    first = RuleJudge("first")
    a = check_judge(first, n=6, cache=JudgeCache(cache))
    again = RuleJudge("first")
    b = check_judge(again, n=6, cache=JudgeCache(cache))
    assert first.requests == 24 and again.requests == 0 and b["cached"] and not a["cached"]
    assert {k: v for k, v in a.items() if k != "cached"} == {k: v for k, v in b.items() if k != "cached"}


def test_cli_prints_and_writes_json(tmp_path, monkeypatch):
    from harness.cli import cli

    monkeypatch.setenv("HARNESS_JUDGE_CACHE", "off")
    cli_judge = sys.modules["harness.cli.judge"]  # the module (the package attribute is the click group)
    monkeypatch.setattr(cli_judge, "load", lambda ctx, spec, **kw: RuleJudge("first"))
    out = tmp_path / "check.json"
    res = CliRunner().invoke(cli, ["judge", "check", "--n", "6", "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    assert "agreement with GPT-4-turbo  50.0 %" in res.output and "position flips              100.0 %" in res.output
    assert "WARNING: judge at chance" in res.output
    assert json.loads(out.read_text())["position_flip_rate"] == 1.0
    bad = CliRunner().invoke(cli, ["judge", "check", "--n", "0"])
    assert bad.exit_code == 2 and "--n must be a positive integer" in bad.output
