"""One verdict over everything: judged win rates tested against 50 % and counted with the
metric deltas (headline, summary.md, CLI), score-mode judge failures, saved responses and
`harness score alpaca_eval --model-outputs`.

Reference numbers: the exact binomial tail written out with math.comb, alpaca_eval's
discrete win rate of alpaca-7b (2.298136645962733, its leaderboard row), Wilson by hand.
"""
from __future__ import annotations

import gzip
import json
import math
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness import stats
from harness.api import GenerateRequest, Model, ModelInfo
from harness.report import render_report
from harness.report.verdict import cli_lines
from harness.results import holm_adjust
from harness_plugins.alpaca_eval import AlpacaEval
from harness_plugins.alpaca_eval.metrics import head2head, sign_test
from harness_plugins.alpaca_eval.outputs import score_outputs

DATA = Path(__file__).parent / "data" / "alpaca_eval"


def binom_two_sided(w: int, loss: int) -> float:
    n, k = w + loss, min(w, loss)
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n) if n else 1.0


def wilson_by_hand(s: float, n: int) -> tuple[float, float]:
    z = 1.959963984540054
    p = s / n
    c = (p + z * z / (2 * n)) / (1 + z * z / n)
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return c - h, c + h


@pytest.mark.parametrize("w, loss, d", [(0, 5, 0), (3, 1, 1), (17, 785, 3), (10, 10, 0), (0, 0, 4), (40, 25, 2)])
def test_win_rate_test_against_exact_binomial(w, loss, d):
    out = stats.win_rate_test(w, loss, d)
    assert out["value"] == pytest.approx((w + d / 2) / (w + loss + d))
    assert out["ci95"] == pytest.approx(list(wilson_by_hand(w + d / 2, w + loss + d)))
    assert out["delta"]["p_value"] == pytest.approx(binom_two_sided(w, loss), rel=1e-12)
    assert out["delta"]["test"] == "sign_exact"
    plug = sign_test(w, loss, d)  # the plug-in's own copy (it imports only harness.api)
    assert plug["p_value"] == pytest.approx(out["delta"]["p_value"], rel=1e-12)
    assert plug["value"] == pytest.approx(out["value"]) and plug["ci95"] == pytest.approx(out["ci95"])


def test_zero_of_five_is_not_significant_but_shown():
    out = stats.win_rate_test(0, 5)
    assert out["delta"]["p_value"] == pytest.approx(2 / 32) and out["value"] == 0.0


def test_discrete_win_rate_of_alpaca_7b_equals_the_leaderboard():
    with gzip.open(DATA / "alpaca-7b.weighted_alpaca_eval_gpt4_turbo.annotations.json.gz", "rt") as fh:
        prefs = [a["preference"] for a in json.load(fh)]
    h = head2head(prefs)
    out = stats.win_rate_test(h["n_wins"], h["n_wins_base"], h["n_draws"])
    assert 100 * out["value"] == pytest.approx(2.298136645962733, abs=1e-12)
    assert out["delta"]["p_value"] == pytest.approx(binom_two_sided(17, 785), rel=1e-9)
    assert out["delta"]["p_value"] < 1e-200


def _results(pairwise: dict | None, metric_p: float | None = 0.01) -> dict:
    metrics = {}
    if metric_p is not None:
        metrics["acc"] = {"kind": "binary", "higher_is_better": True, "model": {"value": 0.6, "ci95": [0.5, 0.7]},
                          "base": {"value": 0.5, "ci95": [0.4, 0.6]},
                          "delta": {"value": 0.1, "ci95": [0.02, 0.18], "p_value": metric_p, "test": "mcnemar_exact"}}
    bench = {"alpaca_eval": {"n": 5, "metrics": {}, "pairwise": pairwise}} if pairwise else {}
    return {"schema_version": 1, "models": {"model": {"spec": "ft"}, "base": {"spec": "base"}},
            "benchmarks": {"mmlu": {"n": 100, "metrics": metrics}, **bench}}


LOST = {"mode": "pairwise", "model_vs_base": {"win_rate": 26.0, "standard_error": 1.9, "n_wins": 0, "n_wins_base": 5,
                                              "n_draws": 0, "n_total": 5, "discrete_win_rate": 0.0},
        "judge": {"spec": "smollm2", "check": {"reliable": False, "verdict": "judge at chance: agreement 50 %"}}}


def test_holm_family_includes_judged_win_rates():
    res = _results(json.loads(json.dumps(LOST)))
    holm_adjust(res)
    v = res["benchmarks"]["alpaca_eval"]["pairwise"]["model_vs_base"]["verdict"]
    assert v["delta"]["p_value"] == pytest.approx(0.0625)
    # Holm over {0.01, 0.0625}: 0.02 and max(0.02, 0.0625)
    assert res["benchmarks"]["mmlu"]["metrics"]["acc"]["delta"]["p_value_holm"] == pytest.approx(0.02)
    assert v["delta"]["p_value_holm"] == pytest.approx(0.0625)


def test_headline_summary_and_cli_count_the_judged_comparison(tmp_path):
    res = _results(json.loads(json.dumps(LOST)), metric_p=None)
    holm_adjust(res)
    (tmp_path / "results.json").write_text(json.dumps(res))
    render_report(tmp_path)
    summary = (tmp_path / "summary.md").read_text()
    assert "No paired comparisons" not in summary
    assert "no evidence of a difference at this n on 1 of 1 comparisons" in summary
    assert "win rate 26.0 % ± 1.9" in summary and "0 wins · 5 losses" in summary and "p = 0.0625" in summary
    assert "judge at chance" in summary and "> ⚠" in summary
    index = (tmp_path / "index.html").read_text()
    assert "win rate 26.0 %" in index and 'class="warn judge-banner"' in index
    lines = cli_lines(res)
    assert lines[0].startswith("verdict: Model significantly better on 0, worse on 0")
    assert any("win rate 26.0 %" in line for line in lines) and any(line.startswith("WARNING: judge") for line in lines)


def test_significant_loss_counts_as_worse(tmp_path):
    pair = json.loads(json.dumps(LOST))
    pair["model_vs_base"].update(n_wins=1, n_wins_base=19, n_total=20)
    res = _results(pair)
    holm_adjust(res)
    (tmp_path / "results.json").write_text(json.dumps(res))
    render_report(tmp_path)
    assert "better on 1, worse on 1, no evidence of a difference at this n on 0 of 2" in (tmp_path / "summary.md").read_text()


# -- the plug-in: score-mode failures, saved responses, existing outputs ---------------------------------------
class Replies(Model):
    """A judge/model that answers every prompt with a fixed text and counts what it was asked."""

    def __init__(self, text: str, spec: str = "replies") -> None:
        self.info = ModelInfo(spec=spec, backend="fake", fingerprint=spec)
        self.text, self.asked = text, []

    def loglikelihood(self, requests, progress=True):
        raise NotImplementedError

    def generate(self, requests: list[GenerateRequest], progress=True):
        self.asked += requests
        return [self.text for _ in requests]


def _engine(tmp_path, data: Path, models: dict, judge: Model, options: dict, base: str | None = None):
    from harness.engine import Engine, RunConfig
    from harness.suite import Selection

    cfg = RunConfig(suite=[Selection("alpaca_eval", None)], out=tmp_path / "run", model="ft", base=base,
                    options={"alpaca_eval": {"data": str(data), "judge_check": 0, "judge_cache": "off", **options}},
                    progress=False)
    return Engine(cfg, {"alpaca_eval": AlpacaEval()}, lambda spec, role="model": models[spec],
                  judge_factory=lambda: judge).run()


def _responses(tmp_path: Path) -> Path:
    recs = [{"instruction": f"Task {i}.", "input": "", "output": f"expected {i}", "model_response": f"saved {i}"}
            for i in range(3)]
    path = tmp_path / "test-responses.json"
    path.write_text(json.dumps(recs))
    return path


def test_score_mode_judge_failures_are_not_wrong_answers(tmp_path):
    ft = Replies("an answer", "ft")
    results = _engine(tmp_path, _responses(tmp_path), {"ft": ft}, Replies("I cannot score this."),
                      {"mode": "score", "use_responses": False})
    assert results["benchmarks"]["alpaca_eval"]["error"] is None
    render_report(tmp_path / "run")
    html = "".join(p.read_text() for p in (tmp_path / "run" / "report" / "samples" / "alpaca_eval").glob("page-*"))
    assert "judge failed" in html and "I cannot score this." in html
    idx = (tmp_path / "run" / "report" / "samples" / "alpaca_eval" / "index.js").read_text()
    assert "XXX" not in idx and "???" in idx  # no "wrong": three samples without a judge score


def test_saved_model_responses_are_judged_without_generating(tmp_path):
    ft = Replies("fresh answer", "ft")
    judge = Replies("85")
    results = _engine(tmp_path, _responses(tmp_path), {"ft": ft}, judge, {"mode": "score"})
    assert ft.asked == []  # nothing regenerated
    rows = [json.loads(x) for x in (tmp_path / "run" / "samples" / "alpaca_eval.jsonl").read_text().splitlines()]
    assert [r["model"]["answer"] for r in rows] == ["saved 0", "saved 1", "saved 2"]
    assert all("saved" in r.prompt for r in judge.asked)
    assert results["benchmarks"]["alpaca_eval"]["pairwise"]["score"]["model"]["mean"] == 85.0
    again = _engine(tmp_path, _responses(tmp_path), {"ft": ft, "b": Replies("x", "b")}, judge, {"mode": "score"},
                    base="b")
    assert "use_responses=false" in again["benchmarks"]["alpaca_eval"]["error"]


def _outputs(tmp_path: Path, n: int = 3) -> Path:
    with gzip.open(Path(__file__).parents[1] / "tasks" / "alpaca_eval" / "gpt4_1106_preview.model_outputs.json.gz",
                   "rt") as fh:
        refs = json.load(fh)[:n]
    path = tmp_path / "model_outputs.json"
    path.write_text(json.dumps([{"instruction": r["instruction"], "output": f"short {i}", "generator": "mine"}
                                for i, r in enumerate(refs)]))
    return path


class Labels(Model):
    """A pairwise judge that generates a fixed label; cannot score log-probabilities."""

    def __init__(self, label: str) -> None:
        self.info = ModelInfo(spec=f"label-{label}", backend="fake", fingerprint=f"label-{label}")
        self.label = label

    def loglikelihood(self, requests, progress=True):
        raise NotImplementedError

    def generate(self, requests, progress=True):
        return [self.label for _ in requests]


def test_score_existing_outputs_against_bundled_references(tmp_path):
    out = score_outputs(Labels("nonsense"), model_outputs=str(_outputs(tmp_path)), judge_check=0,
                        judge_cache="off", progress=False)
    mvr = out["model_vs_reference"]
    assert out["generator"] == "mine" and out["reference"] == "gpt4_1106_preview" and out["n"] == 3
    assert mvr["n_total"] == 0 and mvr["judge_failed"] == 3  # unparseable: failed, never a loss
    assert [f["raw"]["text"] for f in out["judge_failed"]] == ["nonsense"] * 3
    scored = score_outputs(Replies("70"), model_outputs=str(_outputs(tmp_path)), mode="score", judge_check=0,
                           judge_cache="off", progress=False)
    assert scored["score"]["mean"] == 70.0 and scored["judge_failed"] == []
    saved = score_outputs(Replies("40"), model_outputs=str(_responses(tmp_path)), mode="score", judge_check=0,
                          judge_cache="off", progress=False)
    assert saved["reference"].endswith("(output)") and saved["score"]["mean"] == 40.0


def test_score_outputs_errors_name_the_record(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps([{"instruction": "Not an AlpacaEval instruction.", "output": "x"}]))
    from harness.errors import HarnessError

    with pytest.raises(HarnessError, match=r"bad.json: record 0: instruction .* --reference-outputs"):
        score_outputs(Labels("m"), model_outputs=str(path), judge_check=0, judge_cache="off")
    with pytest.raises(HarnessError, match="--model-outputs FILE is required"):
        score_outputs(Labels("m"), judge_check=0)


def test_cli_score_with_judge(tmp_path, monkeypatch):
    from harness.cli import cli

    score_mod = sys.modules["harness.cli.score"]
    seen = []
    monkeypatch.setattr(score_mod, "load", lambda ctx, spec, **kw: seen.append(spec) or Labels("M"))
    res = CliRunner().invoke(cli, ["score", "alpaca_eval", "--judge", "my-judge", "--model-outputs",
                                   str(_outputs(tmp_path)), "--judge-check", "0", "--judge-cache", "off"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output[res.output.index("{"):])
    mvr = out["model_vs_reference"]  # always "M": the second shown wins, so the seeded order decides
    assert seen == ["my-judge"] and mvr["n_total"] == 3 and mvr["judge_failed"] == 0
    assert mvr["verdict"]["p_value"] == pytest.approx(binom_two_sided(mvr["n_wins"], mvr["n_wins_base"]))
