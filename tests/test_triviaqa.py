"""TriviaQA plug-in: official EM/F1 equal the official script, lm-eval EM equals lm-eval.

Expected official numbers were produced by mandarjoshi90/triviaqa's
``evaluation/triviaqa_evaluation.py`` run outside this repo on the fixtures in
``tests/data/triviaqa`` (the script is not vendored). The lm-eval variant is checked
against lm-eval's own ``triviaqa`` task (its yaml, filter and ``exact_match``).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.api import BenchmarkConfig, GenerateRequest, LoglikelihoodResult, Model, ModelInfo, RunContext
from harness.errors import HarnessError
from harness_plugins import triviaqa
from harness_plugins.triviaqa import TriviaQA
from harness_plugins.triviaqa.metric import lmeval_exact_match, lmeval_filter, normalize_answer, official_scores

DATA = Path(__file__).parent / "data" / "triviaqa"


class CannedModel(Model):
    """Answers each prompt from a table (unknown prompts: an empty answer)."""

    def __init__(self, answers: dict[str, str]) -> None:
        self.info = ModelInfo(spec="canned", backend="fake")
        self.answers = answers

    def loglikelihood(self, requests, progress=True):
        return [LoglikelihoodResult(0.0, True) for _ in requests]

    def generate(self, requests: list[GenerateRequest], progress=True):
        return [self.answers.get(r.prompt, "") for r in requests]


@pytest.mark.parametrize("text, expected", [
    ("The_Beatles\u2019", "beatles"),
    ("Sunset Blvd.", "sunset blvd"),
    ("A  Tale of `Two\u00b4 Cities", "tale of two cities"),
    ("Washington, D.C.", "washington d c"),
    ("\u2018An\u2019 apple", "apple"),
])
def test_normalize_answer_matches_official_rules(text, expected):
    assert normalize_answer(text) == expected


@pytest.mark.parametrize("fixture, preds, expected", [
    # {'exact_match': ..., 'f1': ..., ...} as printed by the official script on these files
    ("official_fixture.json", "preds.json",
     {"exact_match": 63.63636363636363, "f1": 75.58441558441558, "common": 43, "denominator": 44,
      "pred_len": 44, "gold_len": 44}),
    ("official_fixture2.json", "preds2.json",  # VerifiedEval filter, HumanAnswers, word order
     {"exact_match": 66.66666666666667, "f1": 100.0, "common": 3, "denominator": 3, "pred_len": 4, "gold_len": 3}),
])
def test_score_files_equals_official_script(fixture, preds, expected):
    out = TriviaQA().score_files(context=RunContext(), data=str(DATA / fixture), predictions=str(DATA / preds))
    for key, value in expected.items():
        assert out[key] == pytest.approx(value, abs=1e-12), key


def _lmeval_task():
    """lm-eval's own triviaqa task (default.yaml) over the fixture questions in hub shape."""
    datasets = pytest.importorskip("datasets")
    lm_eval = pytest.importorskip("lm_eval")
    from lm_eval.api.task import ConfigurableTask
    from lm_eval.tasks._yaml_loader import load_yaml

    fixture = json.loads((DATA / "official_fixture.json").read_text())
    docs = [{"question": d["Question"], "question_id": d["QuestionId"], "answer": {"aliases": d["Answer"]["Aliases"]}}
            for d in fixture["Data"]]
    cfg = load_yaml(Path(lm_eval.__file__).parent / "tasks" / "triviaqa" / "default.yaml")
    data = datasets.DatasetDict({s: datasets.Dataset.from_list(docs) for s in ("train", "validation")})
    cfg["custom_dataset"] = lambda **_: data
    return ConfigurableTask(config=cfg)


def test_prompt_stops_and_lmeval_em_equal_lm_eval():
    task = _lmeval_task()
    from lm_eval.api.registry import get_filter

    strip = get_filter("remove_whitespace")()
    preds = json.loads((DATA / "preds.json").read_text())
    bench = TriviaQA()
    docs = {d["id"]: d for d in triviaqa.load_file(DATA / "official_fixture.json")}
    insts = {i.doc_id: i for i in bench.instances(BenchmarkConfig(data_dir=str(DATA / "official_fixture.json")))}
    total = 0.0
    for doc in task.validation_docs():
        inst = insts[doc["question_id"]]
        assert inst.prompt == task.doc_to_text(doc)
        assert list(inst.requests[0].stop) == task.config.generation_kwargs["until"]
        if doc["question_id"] not in preds:
            continue
        raw = preds[doc["question_id"]]
        expected = task.process_results(doc, [strip.apply([[raw]], [doc])[0][0]])["exact_match"]
        ours = lmeval_exact_match(lmeval_filter(raw), docs[doc["question_id"]]["aliases"])
        assert ours == expected, raw
        total += ours
    assert total == 15  # 15 of the 44 fixture questions (lm-eval deletes punctuation, keeps articles)


def test_default_instances_are_short_and_stable():
    insts = list(TriviaQA().instances(BenchmarkConfig()))
    assert len(insts) == triviaqa.DEFAULT_LIMIT == 50
    first = insts[0]
    assert first.doc_id == "sm_sub-0000" and first.subset == "nocontext"
    # lm-eval's template adds '?' to a question that already has one
    assert first.prompt == "Question: Brunswick, Lancastrian and Pearl Pickler are types of which vegetable??\nAnswer:"
    assert first.requests[0].stop == ("\n", ".", ",") and first.requests[0].temperature == 0.0
    assert "Onion" in first.target
    plain = list(TriviaQA().instances(BenchmarkConfig(limit=3, options={"prompt": "plain", "stop": "newline"})))
    assert len(plain) == 3 and plain[0].prompt.endswith("vegetable?\nAnswer:") and plain[0].requests[0].stop == ("\n",)
    everything = list(TriviaQA().instances(BenchmarkConfig(limit=5000)))
    assert len(everything) == 3000 and everything[-1].doc_id == "sm_sub-2999"


def test_process_scores_both_definitions():
    bench = TriviaQA()
    insts = list(bench.instances(BenchmarkConfig(limit=3)))
    model = CannedModel({insts[0].prompt: " The onion", insts[1].prompt: " antelopes", insts[2].prompt: " no idea"})
    outs = [bench.process(i, model.generate(i.requests)) for i in insts]
    assert outs[0]["answer"] == "The onion"
    # official drops the article; lm-eval keeps it ("the onion" is no alias)
    assert outs[0]["scores"] == {"official_exact_match": 1.0, "official_f1": 1.0, "lmeval_exact_match": 0.0}
    assert outs[1]["scores"]["lmeval_exact_match"] == 1.0 and outs[1]["scores"]["official_exact_match"] == 1.0
    assert outs[2]["scores"] == {"official_exact_match": 0.0, "official_f1": 0.0, "lmeval_exact_match": 0.0}


def test_partial_f1_value():
    doc = {"normalized_aliases": ["sunset boulevard"], "aliases": ["Sunset Boulevard"]}
    em, f1 = official_scores("Sunset Boulevard musical", doc)  # p = 2/3, r = 1 -> F1 = 0.8
    assert em == 0.0 and f1 == pytest.approx(0.8)


def test_predictions_for_another_dataset_are_an_error(tmp_path):
    preds = tmp_path / "p.json"
    preds.write_text(json.dumps({"tc_1": "x", "tc_2": "y"}))
    with pytest.raises(HarnessError, match="another data set"):
        TriviaQA().score_files(context=RunContext(), data=str(DATA / "official_fixture.json"), predictions=str(preds))
    preds.write_text("[1, 2]")
    with pytest.raises(HarnessError, match="JSON object"):
        TriviaQA().score_files(context=RunContext(), data=str(DATA / "official_fixture.json"), predictions=str(preds))


def test_official_sample_with_document_keyed_predictions(tmp_path):
    preds = tmp_path / "p.json"  # the official sample keys predictions "QuestionId--Filename"
    preds.write_text(json.dumps({"tc_33--Andrew_Lloyd_Webber.txt": "Sunset Blvd"}))
    sample = Path(triviaqa.bundled_path()).parent / "triviaqa_original_schema_sample.json"
    out = TriviaQA().score_files(context=RunContext(), data=str(sample), predictions=str(preds))
    assert (out["exact_match"], out["f1"], out["lmeval_exact_match"], out["common"]) == (100.0, 100.0, 100.0, 1)


def test_bundled_jsonl_as_score_data(tmp_path):
    preds = tmp_path / "p.json"
    preds.write_text(json.dumps({"sm_sub-0000": "Onion", "sm_sub-0001": "Gazelle"}))
    out = TriviaQA().score_files(context=RunContext(), data=str(triviaqa.bundled_path()), predictions=str(preds))
    assert out["denominator"] == 3000 and out["common"] == 2
    assert out["exact_match"] == pytest.approx(100 / 3000)


def test_full_set_through_datasets(monkeypatch):
    datasets = pytest.importorskip("datasets")
    rows = [{"question": "Who wrote Hamlet?", "question_id": "qz_1",
             "answer": {"aliases": ["Shakespeare", "William Shakespeare"],
                        "normalized_aliases": ["shakespeare", "william shakespeare"], "value": "Shakespeare"}}]
    seen = {}

    def fake_load(path, name=None, split=None, **_):
        seen.update(path=path, name=name, split=split)
        return rows

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    insts = list(TriviaQA().instances(BenchmarkConfig(full=True)))
    assert seen == {"path": "mandarjoshi/trivia_qa", "name": "rc.nocontext", "split": "validation"}
    assert [i.doc_id for i in insts] == ["qz_1"] and insts[0].prompt == "Question: Who wrote Hamlet??\nAnswer:"


@pytest.mark.parametrize("options, match", [
    ({"prompt": "fancy"}, "prompt="), ({"stop": "comma"}, "stop="), ({"max_tokens": "many"}, "max_tokens"),
])
def test_bad_options(options, match):
    with pytest.raises(HarnessError, match=match):
        list(TriviaQA().instances(BenchmarkConfig(options=options)))


def test_bad_data_dir(tmp_path):
    (tmp_path / "dev.json").write_text('{"not": "triviaqa"}')
    with pytest.raises(HarnessError, match="official"):
        list(TriviaQA().instances(BenchmarkConfig(data_dir=str(tmp_path))))
    with pytest.raises(HarnessError, match="not found"):
        list(TriviaQA().instances(BenchmarkConfig(data_dir=str(tmp_path / "missing"))))
