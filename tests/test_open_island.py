"""OpenAI Evals basic evals, lm-eval's results layout for harness's own benchmarks, the shipped
lm-eval YAML tasks, --apply-chat-template and lm-eval's flag spellings. Model-free (FakeModel)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.api import BenchmarkConfig, GenerateRequest, HarnessError, Instance, LoglikelihoodRequest
from harness.testing import FakeModel


# -- OpenAI Evals: cases worked by hand from openai/evals (evals/api.py, elsuite/basic/*, elsuite/utils.py)
def test_openai_evals_checks_follow_the_reference():
    from harness_plugins.openai_evals.metrics import chat_to_text, f1_score, fuzzy_match, includes, match

    assert match("Paris, of course", ["Paris"]) and not match("It is Paris", ["Paris"])  # startswith only
    assert match("Rome", ["Paris", "Rome"])
    assert includes("It is Paris.", ["Paris"]) and not includes("It is paris.", ["Paris"])
    assert includes("It is paris.", ["Paris"], ignore_case=True)
    assert fuzzy_match("The Paris!", "paris") and fuzzy_match("paris", "Paris, France")  # either way
    assert not fuzzy_match("", "paris") and fuzzy_match("the", "a")  # both normalize to "": equal
    assert f1_score("the capital is Paris", ["Paris"]) == pytest.approx(2 * (1 / 3) * 1 / (1 / 3 + 1))
    assert f1_score("nothing", ["Paris", "Rome"]) == 0.0
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of Peru?"}]
    assert chat_to_text(msgs) == "Be brief.\nUser: Capital of Peru?\nAssistant:"
    assert chat_to_text(msgs[1:]) == "Capital of Peru?"


def write_registry(root: Path) -> Path:
    (root / "evals").mkdir(parents=True)
    (root / "data" / "ex").mkdir(parents=True)
    (root / "data" / "ex" / "s.jsonl").write_text(
        json.dumps({"input": [{"role": "user", "content": "Say hi"}], "ideal": ["hi", "hello"]}) + "\n"
        + json.dumps({"input": "Say bye", "ideal": "bye"}) + "\n")
    (root / "evals" / "ex.yaml").write_text(
        "ex-inc:\n  id: ex-inc.dev.v0\n  metrics: [accuracy]\nex-inc.dev.v0:\n"
        "  class: evals.elsuite.basic.includes:Includes\n  args:\n    samples_jsonl: ex/s.jsonl\n"
        "ex-graded:\n  id: ex-graded.dev.v0\n  metrics: [accuracy]\nex-graded.dev.v0:\n"
        "  class: evals.elsuite.modelgraded.classify:ModelBasedClassify\n  args:\n    samples_jsonl: ex/s.jsonl\n")
    return root


def test_openai_evals_registry_round_trip(tmp_path):
    from harness_plugins.openai_evals import OpenAIEvals

    bench = OpenAIEvals()
    assert set(bench.subsets) >= {"capitals-match", "capitals-includes", "capitals-fuzzy"}  # the shipped example
    opts = {"registry": str(write_registry(tmp_path / "reg"))}
    assert bench.resolve_subsets(["ex-inc"], opts) == ["ex-inc"]
    with pytest.raises(HarnessError, match="no basic OpenAI eval 'ex-graded'"):  # model-graded: not a basic eval
        bench.resolve_subsets(["ex-graded"], opts)
    insts = list(bench.instances(BenchmarkConfig(subsets=["ex-inc"], options=opts)))
    assert [i.prompt for i in insts] == ["Say hi", "Say bye"] and insts[0].target == ["hi", "hello"]
    outs = [bench.process(i, [a]) for i, a in zip(insts, ["well, hello there", "see you"])]
    assert [o["scores"]["accuracy"] for o in outs] == [1.0, 0.0]
    fuzzy = list(bench.instances(BenchmarkConfig(subsets=["capitals-fuzzy"], limit=1)))[0]
    assert fuzzy.requests[0].max_tokens == 16 and fuzzy.prompt.endswith("Assistant:")
    assert bench.process(fuzzy, ["paris."])["scores"] == {"accuracy": 1.0, "f1_score": 1.0}


# -- lm-eval's results layout for a harness benchmark, and lm-eval's flag spellings
def test_lmeval_layout_for_harness_benchmarks(tmp_path):
    from harness.cli import cli

    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "fakebackend.py").write_text(
        "from harness.api import hookimpl\nfrom harness.testing import FakeModel\n\n\n@hookimpl\n"
        "def register_models(register):\n"
        "    register('fake', lambda path, **o: FakeModel(spec='fake:' + path, salt=path))\n")
    out = tmp_path / "run"
    res = CliRunner().invoke(cli, ["--plugins-dir", str(plugins), "run", "--model", "fake:a", "--base", "fake:b",
                                   "--tasks", "openai_evals", "--output-path", str(out), "--limit", "0.5",
                                   "--no-report", "--quiet"])
    assert res.exit_code == 0, res.output
    ours = json.loads((out / "results.json").read_text())
    lm = json.loads((out / "lm-eval" / "results.json").read_text())
    block = ours["benchmarks"]["openai_evals"]
    assert block["subsets"]["capitals-match"]["n"] == 5  # ceil(10 * 0.5): --limit as a fraction per subset
    assert lm["group_subtasks"]["openai_evals"] == [f"openai_evals_{s}" for s in sorted(block["subsets"])]
    acc = block["subsets"]["capitals-fuzzy"]["metrics"]["f1_score"]["model"]
    assert lm["results"]["openai_evals_capitals-fuzzy"]["f1_score,none"] == acc["value"]
    assert lm["results"]["openai_evals_capitals-fuzzy"]["f1_score_stderr,none"] == acc["stderr"]
    assert lm["results"]["openai_evals"]["accuracy,none"] == block["metrics"]["accuracy"]["model"]["value"]
    lines = [json.loads(x) for x in (out / "lm-eval" / "samples_openai_evals_capitals-match.jsonl").read_text().splitlines()]
    assert len(lines) == 5 and {"doc_id", "doc", "arguments", "resps", "filtered_resps", "accuracy"} <= set(lines[0])
    base = json.loads((out / "lm-eval" / "base" / "results.json").read_text())
    assert base["results"]["openai_evals"]["accuracy,none"] == block["metrics"]["accuracy"]["base"]["value"]


def test_shipped_yaml_tasks_read_their_data_beside_them():
    from harness_plugins.lm_eval import LmEval

    bench = LmEval()
    assert set(bench.subsets) == {"mmlu_bundled", "triviaqa_bundled"}
    insts = list(bench.instances(BenchmarkConfig(limit=2)))
    mc = [i for i in insts if i.subset == "mmlu_bundled"]
    assert len(mc) == 2 and [r.continuation for r in mc[0].requests] == [" A", " B", " C", " D"]
    assert mc[0].prompt.endswith("\nAnswer:")
    gen = [i for i in insts if i.subset == "triviaqa_bundled"]
    assert gen[0].requests[0].stop == ("\n", ".", ",") and gen[0].requests[0].max_tokens == 32
    model = FakeModel()
    outs = [bench.process(i, [model.loglikelihood([r], progress=False)[0] if isinstance(r, LoglikelihoodRequest)
                              else model.generate([r], progress=False)[0] for r in i.requests]) for i in insts]
    assert {m.name for m in bench.metrics} == {"acc", "exact_match,remove_whitespace"}
    assert all(set(o["scores"]) in ({"acc"}, {"exact_match,remove_whitespace"}) for o in outs)


def test_apply_chat_template_renders_each_prompt_in_the_models_template():
    from harness.instances import chat_requests

    inst = Instance("1", "s", {}, "Q?", "A", [GenerateRequest("Q?"), LoglikelihoodRequest("Q?", " A"),
                                                LoglikelihoodRequest("", "rolling text")])
    out = chat_requests(FakeModel(), [inst], "Be brief.")[0].requests
    want = "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nQ?<|im_end|>\n<|im_start|>assistant\n"
    assert out[0].prompt == want and out[1].context == want and out[1].continuation == " A"
    assert out[2] == inst.requests[2]  # a whole-text (rolling) request has no prompt to template


def test_flags_reach_evaluate(monkeypatch, tmp_path):
    import harness.evaluate as ev
    from harness.cli import cli

    seen = {}
    monkeypatch.setattr(ev, "evaluate", lambda *a, **k: seen.update(k, suite=a[2]) or {"benchmarks": {}})
    res = CliRunner().invoke(cli, ["run", "--tasks", "lm-eval:mmlu_bundled", "--limit", "0.1", "--output-path",
                                   str(tmp_path / "o"), "--include-path", str(tmp_path), "--apply-chat-template",
                                   "--system-instruction", "Be brief.", "--no-report"])
    assert res.exit_code == 0, res.output
    assert seen["suite"] == "lm-eval:mmlu_bundled" and seen["limit"] == 0.1 and seen["out"] == tmp_path / "o"
    assert seen["include_path"] == [str(tmp_path)] and seen["apply_chat_template"] is True
    assert seen["system_instruction"] == "Be brief."
    bad = CliRunner().invoke(cli, ["run", "--limit", "1.5", "--out", str(tmp_path / "o2")])
    assert bad.exit_code == 2 and "fraction must be between 0 and 1" in bad.output
