"""SQuAD plug-ins: `harness score` equals the official scripts; run mode; data errors.

Expected numbers were produced by running the official evaluate-v1.1.py and
evaluate-v2.0.py (rajpurkar/SQuAD-explorer) outside this repository on the fixture
files below, and pasted here; the scripts themselves are not part of the project.
"""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.api import (
    BenchmarkConfig,
    GenerateRequest,
    Instance,
    LoglikelihoodRequest,
    LoglikelihoodResult,
    RunContext,
)
from harness.errors import HarnessError
from harness_plugins import squad
from harness_plugins.squad import Squad, SquadV2

DATA = Path(__file__).parent / "data" / "squad"
BUNDLE = Path(__file__).parent / "data" / "squad" / "dev-v1.1-first200.json"
V2, V2_PREDS, V2_NA = DATA / "dev-v2.0-mini.json", DATA / "preds-v2.0-mini.json", DATA / "na-prob-v2.0-mini.json"

# evaluate-v2.0.py dev-v2.0-mini.json preds-v2.0-mini.json
OFFICIAL_V2 = {"exact": 50.0, "f1": 70.55555555555554, "total": 12, "HasAns_exact": 37.5,
               "HasAns_f1": 68.33333333333333, "HasAns_total": 8, "NoAns_exact": 75.0, "NoAns_f1": 75.0,
               "NoAns_total": 4}
# ... -n na-prob-v2.0-mini.json   (default --na-prob-thresh 1.0)
OFFICIAL_V2_NA = {**OFFICIAL_V2, "best_exact": 50.0, "best_exact_thresh": 0.1,
                  "best_f1": 67.77777777777777, "best_f1_thresh": 0.5}
# ... -n na-prob-v2.0-mini-dataorder.json: the same probabilities listed in data order. The script's
# best-threshold walk is a stable sort, so ties (q08/q11 at 0.6) resolve by file order and best_f1 moves.
OFFICIAL_V2_NA_DATAORDER = {**OFFICIAL_V2, "best_exact": 50.0, "best_exact_thresh": 0.1,
                            "best_f1": 70.55555555555556, "best_f1_thresh": 0.6}
# ... with every prediction .strip()ped (what run mode scores: q09's " " becomes "", which the
# best-threshold walk no longer counts as an answer) and -n na-prob-v2.0-mini-dataorder.json
OFFICIAL_V2_STRIPPED_DATAORDER = {**OFFICIAL_V2, "best_exact": 58.333333333333336, "best_exact_thresh": 0.5,
                                  "best_f1": 78.88888888888889, "best_f1_thresh": 0.6}
# ... -n na-prob-v2.0-mini.json -t 0.25
OFFICIAL_V2_NA_025 = {"exact": 50.0, "f1": 56.666666666666664, "total": 12, "HasAns_exact": 25.0,
                      "HasAns_f1": 35.0, "HasAns_total": 8, "NoAns_exact": 100.0, "NoAns_f1": 100.0,
                      "NoAns_total": 4, "best_exact": 50.0, "best_exact_thresh": 0.1,
                      "best_f1": 67.77777777777777, "best_f1_thresh": 0.5}
# ... -n na-prob-v2.0-mini.json -t 0.5   (q06, q12 sit exactly at 0.5: "exceeds" is strict)
OFFICIAL_V2_NA_05 = {"exact": 58.333333333333336, "f1": 76.1111111111111, "total": 12, "HasAns_exact": 37.5,
                     "HasAns_f1": 64.16666666666666, "HasAns_total": 8, "NoAns_exact": 100.0, "NoAns_f1": 100.0,
                     "NoAns_total": 4, "best_exact": 50.0, "best_exact_thresh": 0.1,
                     "best_f1": 67.77777777777777, "best_f1_thresh": 0.5}
# evaluate-v1.1.py / evaluate-v2.0.py on dev-v1.1-mini.json (gold "." makes exact_match != exact)
OFFICIAL_V1_MINI = {"exact_match": 50.0, "f1": 62.5}
OFFICIAL_V1_MINI_V2SCRIPT = {"exact": 25.0, "f1": 62.5, "total": 4, "HasAns_exact": 25.0, "HasAns_f1": 62.5,
                             "HasAns_total": 4}
# both scripts on the bundled dev-v1.1-first200.json with preds-v1.1-first200.json
OFFICIAL_BUNDLE_V1 = {"exact_match": 39.5, "f1": 59.449321833996756}
OFFICIAL_BUNDLE_V2SCRIPT = {"exact": 39.5, "f1": 59.449321833996756, "total": 200, "HasAns_exact": 39.5,
                            "HasAns_f1": 59.449321833996756, "HasAns_total": 200}


def v1_expected(v1: dict, v2: dict) -> dict:
    """For v1.1 data: the v1.1 script's keys, then the v2.0 script's (its f1 is the v1.1 one)."""
    return {**v1, **{k: v for k, v in v2.items() if k != "f1"}}


@pytest.mark.parametrize("kwargs, expected", [
    ({}, OFFICIAL_V2),
    ({"na_prob": str(V2_NA)}, OFFICIAL_V2_NA),
    ({"na_prob": str(V2_NA), "na_prob_thresh": "0.25"}, OFFICIAL_V2_NA_025),  # the CLI passes strings
    ({"na_prob": str(DATA / "na-prob-v2.0-mini-dataorder.json")}, OFFICIAL_V2_NA_DATAORDER),
])
def test_score_v2_equals_official_script(kwargs, expected):
    got = SquadV2().score_files(context=RunContext(), data=str(V2), predictions=str(V2_PREDS), **kwargs)
    assert got == expected and list(got) == list(expected)


@pytest.mark.parametrize("data, preds, expected", [
    (DATA / "dev-v1.1-mini.json", DATA / "preds-v1.1-mini.json",
     v1_expected(OFFICIAL_V1_MINI, OFFICIAL_V1_MINI_V2SCRIPT)),
    (BUNDLE, DATA / "preds-v1.1-first200.json", v1_expected(OFFICIAL_BUNDLE_V1, OFFICIAL_BUNDLE_V2SCRIPT)),
])
def test_score_v1_equals_official_scripts(data, preds, expected):
    assert Squad().score_files(context=RunContext(), data=str(data), predictions=str(preds)) == expected


def test_score_through_the_cli():
    from harness.cli import cli

    result = CliRunner().invoke(cli, ["score", "squad_v2", "--data", str(V2), "--predictions", str(V2_PREDS),
                                      "--na-prob", str(V2_NA), "--na-prob-thresh=0.5"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == OFFICIAL_V2_NA_05


def _write(tmp_path: Path, name: str, obj) -> str:
    path = tmp_path / name
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj), encoding="utf-8")
    return str(path)


def test_score_input_errors_name_file_and_key(tmp_path):
    data = json.loads(V2.read_text())
    preds = json.loads(V2_PREDS.read_text())

    def err(match, **kw):
        with pytest.raises(HarnessError, match=match):
            SquadV2().score_files(context=RunContext(), **{"data": str(V2), "predictions": str(V2_PREDS), **kw})

    err(r"broken\.json: invalid JSON at line 2 column 1", data=_write(tmp_path, "broken.json", '{"data": [\n,]}'))
    del data["data"][1]["paragraphs"][0]["qas"][2]["id"]
    err(r"noid\.json: data\[1\]\.paragraphs\[0\]\.qas\[2\] has no 'id' field",
        data=_write(tmp_path, "noid.json", data))
    err(r"list\.json: expected a JSON object mapping question id", predictions=_write(tmp_path, "list.json", ["x"]))
    err(r"value for 'q01' must be a string", predictions=_write(tmp_path, "num.json", {**preds, "q01": 3}))
    err(r"other\.json: 1 of 13 ids are not questions in .*first: 'zz'.*different data set",
        predictions=_write(tmp_path, "other.json", {**preds, "zz": "x"}))
    err(r"short\.json: no entry for 1 of 12 questions .*first: 'q12'",
        predictions=_write(tmp_path, "short.json", {k: v for k, v in preds.items() if k != "q12"}))
    err(r"na\.json: no entry for 12 of 12 questions", na_prob=_write(tmp_path, "na.json", {}))
    err(r"--na-prob-thresh must be a number", na_prob_thresh="high")
    err(r"missing\.json: not found", data=str(tmp_path / "missing.json"))


# ---- run mode ---------------------------------------------------------------------------

def test_prompt_and_requests_follow_lm_eval_squadv2():
    task = pytest.importorskip("lm_eval.tasks.squadv2.task")
    insts = list(SquadV2().instances(BenchmarkConfig(data_dir=str(V2))))
    assert len(insts) == 12
    for inst in insts:
        doc = {**inst.doc, "answers": {"text": inst.doc["answers"]}}
        ctx = task.SQuAD2.doc_to_text(None, doc)  # uses no state: no dataset download needed
        lm = [r.arguments for r in task.SQuAD2.construct_requests(None, doc, ctx, metadata=("squadv2", 0, 1))]
        assert inst.prompt == ctx
        gen, ll = inst.requests
        assert isinstance(gen, GenerateRequest) and (gen.prompt, list(gen.stop)) == (lm[0][0], lm[0][1]["until"])
        assert gen.temperature == 0 and gen.max_tokens == squad.MAX_TOKENS
        assert ll == LoglikelihoodRequest(*lm[1])


def test_bundled_v1_default_limit_and_data_dir(tmp_path):
    default = list(Squad().instances(BenchmarkConfig()))
    assert len(default) == squad.DEFAULT_LIMIT and {i.subset for i in default} == {"squad"}
    assert default[0].doc_id == "56be4db0acb8001400a502ec" and default[0].target == ["Denver Broncos"] * 3
    assert len({i.doc["title"] for i in default}) == 48  # spread over all 48 articles, not one
    assert all(len(i.requests) == 1 and i.requests[0].stop == ("\n",) for i in default)
    everything = list(Squad().instances(BenchmarkConfig(limit=20000)))
    assert len(everything) == 10570 and len({i.doc_id for i in everything}) == 10570
    shutil.copy(BUNDLE, tmp_path / "dev-v1.1.json")  # --data-dir DIR holding the official file name
    assert len(list(Squad().instances(BenchmarkConfig(data_dir=str(tmp_path))))) == 200
    opt = next(iter(Squad().instances(BenchmarkConfig(limit=1, options={"max_tokens": 8}))))
    assert opt.requests[0].max_tokens == 8


def test_v2_needs_data_and_v1_rejects_unanswerable():
    with pytest.raises(HarnessError, match="squad_v2 has no bundled data: pass --data-dir squad_v2=DIR"):
        list(SquadV2().instances(BenchmarkConfig()))
    with pytest.raises(HarnessError, match="question 'q04' has no gold answer"):
        list(Squad().instances(BenchmarkConfig(data_dir=str(V2))))
    with pytest.raises(HarnessError, match="zero-shot"):
        list(Squad().instances(BenchmarkConfig(num_fewshot=3)))


def test_hub_rows_are_converted(monkeypatch):
    calls = []

    def fake_hub(bench, path, name, split):
        calls.append((bench, path, name, split))
        return [{"id": "h1", "title": "T", "context": "C", "question": "Q?",
                 "answers": {"text": [], "answer_start": []}}]

    monkeypatch.setattr(squad, "load_hub", fake_hub)
    (inst,) = SquadV2().instances(BenchmarkConfig(full=True))
    assert calls == [("squad_v2", "rajpurkar/squad_v2", None, "validation")]
    assert inst.doc["answers"] == [] and inst.target == [""]


def _run(bench, data: Path, preds: dict, na: dict | None) -> tuple[list[Instance], list[dict]]:
    """What the engine does, with the fixture predictions as the model's generations."""
    insts = list(bench.instances(BenchmarkConfig(data_dir=str(data))))
    records = []
    for inst in insts:
        responses: list = [" " + preds[inst.doc_id]]  # generations start after "Answer:"
        if na is not None:
            responses.append(LoglikelihoodResult(math.log(na[inst.doc_id]), False))
        records.append(bench.process(inst, responses))
    return insts, records


def test_run_mode_v2_matches_official_numbers():
    preds, na = json.loads(V2_PREDS.read_text()), json.loads(V2_NA.read_text())
    insts, records = _run(SquadV2(), V2, preds, na)
    agg = SquadV2().aggregate(records)
    # run mode strips generations and sees no-answer probabilities in data order (as lm-eval passes them)
    for key in ("exact", "f1", "HasAns_exact", "HasAns_f1", "NoAns_exact", "NoAns_f1", "best_exact", "best_f1"):
        assert agg[key] == pytest.approx(OFFICIAL_V2_STRIPPED_DATAORDER[key] / 100, abs=1e-12), key
    q04 = records[[i.doc_id for i in insts].index("q04")]
    assert q04["na_prob"] == pytest.approx(0.9) and q04["has_answer"] is False


def test_unanswerable_generation_counts_as_no_answer():
    inst = next(i for i in SquadV2().instances(BenchmarkConfig(data_dir=str(V2))) if i.doc_id == "q04")
    out = SquadV2().process(inst, [" Unanswerable.", LoglikelihoodResult(-0.5, False)])
    assert out["answer"] == "Unanswerable." and out["prediction"] == ""
    assert out["scores"] == {"exact": 1.0, "f1": 1.0, "NoAns_exact": 1.0, "NoAns_f1": 1.0}
    wrong = SquadV2().process(inst, [" Marta Solis", LoglikelihoodResult(-0.5, False)])
    assert wrong["scores"]["exact"] == 0.0 and wrong["na_prob"] == pytest.approx(math.exp(-0.5))


def test_run_mode_v1_matches_official_on_bundle():
    preds = json.loads((DATA / "preds-v1.1-first200.json").read_text())
    insts, records = _run(Squad(), BUNDLE, preds, None)
    assert records[0]["answer"] == preds[insts[0].doc_id]  # the generation, stripped
    agg = Squad().aggregate(records)
    assert agg["exact_match"] == pytest.approx(OFFICIAL_BUNDLE_V1["exact_match"] / 100, abs=1e-12)
    assert agg["f1"] == pytest.approx(OFFICIAL_BUNDLE_V1["f1"] / 100, abs=1e-12)


def test_both_versions_registered():
    got: list = []
    squad.register_benchmarks(got.append)
    assert [b.name for b in got] == ["squad", "squad_v2"]
