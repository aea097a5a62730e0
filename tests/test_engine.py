"""The engine on fake models: records, results schema, comparisons, failures."""
from __future__ import annotations

import json

import pytest
from conftest import FakeModel

from harness.api import Benchmark, GenerateRequest, Instance, LoglikelihoodRequest, Metric
from harness.engine import Engine, RunConfig, run_requests
from harness.errors import HarnessError
from harness.suite import parse_suite


class ToyMC(Benchmark):
    name = "toy"
    metrics = (Metric("acc", "binary"),)
    subsets = ("a", "b")
    groups = {"all": ["a", "b"]}

    def instances(self, config):
        for subset in config.subsets or self.subsets:
            for i in range(config.limit or 20):
                q = f"{subset} question {i}"
                yield Instance(f"{subset}-{i}", subset, {"gold": i % 3}, q, "ABC"[i % 3],
                               [LoglikelihoodRequest(q, f" {c}") for c in "ABC"])

    def process(self, instance, responses):
        lls = [r.logprob for r in responses]
        pick = lls.index(max(lls))
        return {"answer": "ABC"[pick], "loglikelihoods": lls, "scores": {"acc": float(pick == instance.doc["gold"])}}


class ToyGen(Benchmark):
    name = "toygen"
    metrics = (Metric("em", "binary"), Metric("len", "continuous"))
    subsets = ("toygen",)

    def instances(self, config):
        for i in range(config.limit or 10):
            yield Instance(str(i), "toygen", {}, f"prompt {i}", "answer1",
                           [GenerateRequest(f"prompt {i}", ("\n",), 8)])

    def process(self, instance, responses):
        return {"answer": responses[0], "scores": {"em": float(responses[0] == "answer1"),
                                                   "len": float(len(responses[0]))}}


class Broken(ToyGen):
    name = "broken"

    def process(self, instance, responses):
        raise RuntimeError("scorer crashed")


BENCHES = {b.name: b for b in (ToyMC(), ToyGen(), Broken())}


def _engine(tmp_path, suite="toy,toygen", base=True, **kw):
    models = {"m": FakeModel("m", "model-salt"), "b": FakeModel("b", "base-salt")}
    config = RunConfig(suite=parse_suite(suite, BENCHES), out=tmp_path, model="m", base="b" if base else None,
                       progress=False, **kw)
    return Engine(config, BENCHES, lambda spec, role="model": models[spec]), models


def test_run_writes_schema_samples_and_paired_comparison(tmp_path):
    engine, _ = _engine(tmp_path)
    results = engine.run()
    on_disk = json.loads((tmp_path / "results.json").read_text())
    assert on_disk == json.loads(json.dumps(results, default=str)) or on_disk["complete"] is True
    assert on_disk["schema_version"] == 1 and on_disk["complete"] is True
    toy = on_disk["benchmarks"]["toy"]
    assert toy["n"] == 40 and set(toy["subsets"]) == {"a", "b"} and toy["groups"]["all"]["n"] == 40
    samples = [json.loads(line) for line in (tmp_path / "samples" / "toy.jsonl").read_text().splitlines()]
    assert len(samples) == 40
    acc_model = sum(s["model"]["scores"]["acc"] for s in samples) / 40
    acc_base = sum(s["base"]["scores"]["acc"] for s in samples) / 40
    entry = toy["metrics"]["acc"]
    assert entry["model"]["value"] == pytest.approx(acc_model)
    assert entry["base"]["value"] == pytest.approx(acc_base)
    assert entry["delta"]["value"] == pytest.approx(acc_model - acc_base)
    assert entry["delta"]["test"] == "mcnemar_exact" and 0 <= entry["delta"]["p_value"] <= 1
    assert "p_value_holm" in entry["delta"]
    assert len(samples[0]["model"]["loglikelihoods"]) == 3
    assert on_disk["benchmarks"]["toygen"]["metrics"]["len"]["delta"]["test"] == "paired_bootstrap"


def test_requests_are_deduplicated_and_returned_in_order():
    model = FakeModel("x", "s")
    reqs = [LoglikelihoodRequest("c", " A"), GenerateRequest("p"), LoglikelihoodRequest("c", " A")]
    out = run_requests(model, reqs, progress=False)
    assert out[0] == out[2] and isinstance(out[1], str)
    assert sorted(model.calls) == [1, 1]  # one unique loglikelihood request, one generate request


def test_a_failing_benchmark_is_recorded_and_the_others_still_run(tmp_path):
    engine, _ = _engine(tmp_path, suite="broken,toy")
    results = engine.run()
    assert "scorer crashed" in results["benchmarks"]["broken"]["error"]
    assert results["benchmarks"]["toy"]["metrics"]["acc"]["model"]["value"] is not None
    assert (tmp_path / "samples" / "toy.jsonl").exists()


def test_without_base_only_model_scores(tmp_path):
    engine, models = _engine(tmp_path, base=False, limit=3)
    results = engine.run()
    entry = results["benchmarks"]["toy"]["metrics"]["acc"]
    assert "base" not in entry and "delta" not in entry and results["models"]["base"] is None
    assert results["benchmarks"]["toy"]["n"] == 6  # --limit is per subset


def test_suite_parsing_validates_names_and_subsets():
    sel = parse_suite("toy:a,toygen", BENCHES)
    assert [(s.benchmark, s.subsets) for s in sel] == [("toy", ["a"]), ("toygen", None)]
    assert parse_suite("toy:all", BENCHES)[0].subsets == ["a", "b"]  # a group expands
    with pytest.raises(HarnessError, match="did you mean 'toygen'"):
        parse_suite("toygn", BENCHES)
    with pytest.raises(HarnessError, match="no subset 'c'"):
        parse_suite("toy:c", BENCHES)


def test_outputs_are_readable_like_ordinary_files(tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        engine, _ = _engine(tmp_path, base=False, limit=2)
        engine.run()
    finally:
        os.umask(old)
    for path in (tmp_path / "results.json", tmp_path / "samples" / "toy.jsonl"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path


def test_num_fewshot_applies_to_few_shot_benchmarks_only(tmp_path):
    class FewShot(ToyMC):
        name = "toyfew"
        default_num_fewshot = 5

    benches = {**BENCHES, "toyfew": FewShot()}
    config = RunConfig(suite=parse_suite("toyfew,toygen", benches), out=tmp_path, num_fewshot=3, progress=False)
    engine = Engine(config, benches, lambda spec, role="model": None)
    few, zero = (engine.bench_config(s) for s in config.suite)
    assert (few.num_fewshot, zero.num_fewshot) == (3, None)


def test_a_metric_on_some_samples_gets_its_own_interval_and_comparison():
    from harness.results import metric_block

    class Partial(ToyGen):
        metrics = (Metric("has", "binary"),)

    recs = [{"model": {"scores": {"has": float(i % 2)} if i < 6 else {}},
             "base": {"scores": {"has": 0.0} if i < 6 else {}}} for i in range(10)]
    block = metric_block(Partial(), recs, ("model", "base"), seed=0)["has"]
    assert block["model"]["value"] == 0.5 and block["model"]["n"] == 6  # 3 of the 6 that carry it
    assert block["model"]["ci95"] is not None and block["delta"]["value"] == 0.5
