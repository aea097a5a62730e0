"""lm-eval both ways: lm-eval's tasks as the harness benchmark ``lm-eval`` and harness models inside
lm-eval, checked against lm-eval's own ``simple_evaluate`` (its hf backend and model="harness")
on local YAML tasks and a tiny random GPT-2; the YAML key check; lm-eval's results layout."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.api import BenchmarkConfig, HarnessError

pytest.importorskip("lm_eval")
pytest.importorskip("transformers")

MC = [{"q": f"What is {a} plus {b}?", "choices": [str(a + b), str(a + b + 1), str(a * b + 3)], "label": (a + b) % 3}
      for a in range(1, 5) for b in range(1, 4)]
GEN = [{"q": f"Say the word {w}.", "answer": w} for w in ("apple", "river", "stone", "cloud", "green", "seven")]
TEXT = [{"text": t} for t in ("The cat sat on the mat.", "Rivers run to the sea, and the sea is never full.",
                              "One two three four five.")]


def write_tasks(d: Path) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    for name, rows in (("mc", MC), ("gen", GEN), ("text", TEXT)):
        (d / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (d / "t_mc.yaml").write_text(f"""task: t_mc
dataset_path: json
dataset_kwargs:
  data_files: {{test: {d / 'mc.jsonl'}}}
test_split: test
output_type: multiple_choice
doc_to_text: "Question: {{{{q}}}}\\nAnswer:"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: label
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
""")
    (d / "t_gen.yaml").write_text(f"""task: t_gen
dataset_path: json
dataset_kwargs:
  data_files: {{test: {d / 'gen.jsonl'}}}
test_split: test
output_type: generate_until
doc_to_text: "{{{{q}}}}\\nAnswer:"
doc_to_target: "{{{{answer}}}}"
generation_kwargs:
  until: ["\\n"]
  max_gen_toks: 6
  do_sample: false
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
""")
    (d / "t_ppl.yaml").write_text(f"""task: t_ppl
dataset_path: json
dataset_kwargs:
  data_files: {{test: {d / 'text.jsonl'}}}
test_split: test
output_type: loglikelihood_rolling
doc_to_text: ""
doc_to_target: "{{{{text}}}}"
metric_list:
  - metric: word_perplexity
  - metric: byte_perplexity
  - metric: bits_per_byte
""")
    return d


def test_yaml_typo_names_file_key_and_line(tmp_path):
    from harness_plugins.lm_eval import LmEval

    d = write_tasks(tmp_path / "t")
    bad = d / "t_bad.yaml"
    bad.write_text("task: t_bad\n# a comment\ndataset_pth: json\ntest_split: test\n")
    with pytest.raises(HarnessError) as err:
        LmEval().resolve_subsets(["t_mc"], {"include_path": str(d)})
    msg = str(err.value)
    assert f"{bad}:3: unknown key 'dataset_pth'" in msg and "did you mean 'dataset_path'" in msg
    assert "\n" not in msg


def test_yaml_typo_from_the_command_line(tmp_path):
    d = write_tasks(tmp_path / "t")
    (d / "t_mc.yaml").write_text((d / "t_mc.yaml").read_text().replace("doc_to_choice", "doc_to_choise"))
    proc = subprocess.run([sys.executable, "-m", "harness", "run", "--suite", "lm-eval:t_mc", "--include-path", str(d),
                           "--out", str(tmp_path / "out"), "--model", "nowhere"], capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith("error: ") and "t_mc.yaml:8: unknown key 'doc_to_choise'" in line
    assert "did you mean 'doc_to_choice'" in line and "Traceback" not in proc.stderr


def test_unknown_local_task_is_checked_before_any_model(tmp_path, monkeypatch):
    from harness_plugins.lm_eval import tasks as lt

    d = write_tasks(tmp_path / "t")
    monkeypatch.setattr(lt, "manager", lambda paths, defaults: type("TM", (), {"all_tasks": ["t_mc", "t_gen"]})())
    with pytest.raises(HarnessError, match="no task or group 't_mcc' .*did you mean 't_mc'"):
        lt.manager_for(["t_mcc"], {"include_path": str(d)})


def test_offline_dataset_error_is_one_line(tmp_path):
    from harness_plugins.lm_eval import LmEval

    d = tmp_path / "t"
    d.mkdir()
    (d / "t_hub.yaml").write_text("task: t_hub\ndataset_path: json\ndataset_kwargs:\n  data_files: {test: missing.jsonl}\n"
                                  "test_split: test\noutput_type: generate_until\ndoc_to_text: x\ndoc_to_target: y\n")
    with pytest.raises(HarnessError) as err:
        list(LmEval().instances(BenchmarkConfig(subsets=["t_hub"], options={"include_path": str(d)})))
    msg = str(err.value)
    assert msg.startswith("lm-eval task t_hub: cannot load dataset json") and "HF_DATASETS_OFFLINE" in msg
    assert "--include-path" in msg and "\n" not in msg


def test_fraction_limit_is_per_task_as_lm_eval(tmp_path):
    from harness_plugins.lm_eval import LmEval

    d = write_tasks(tmp_path / "t")
    insts = list(LmEval().instances(BenchmarkConfig(subsets=["t_mc", "t_gen"], limit=0.25,
                                                    options={"include_path": str(d)})))
    per = {s: sum(i.subset == s for i in insts) for s in ("t_mc", "t_gen")}
    assert per == {"t_mc": 3, "t_gen": 2}  # ceil(12 * .25), ceil(6 * .25), lm-eval's get_sample_size


def _strip(results: dict) -> dict:
    return {t: {k: v for k, v in r.items() if k.endswith(",none") and "stderr" not in k} for t, r in results.items()}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from harness.testing import make_tiny_gpt2

    root = tmp_path_factory.mktemp("lmeval")
    return {"tasks": write_tasks(root / "tasks"), "model": make_tiny_gpt2(root / "m", fmt="hf", seed=0),
            "base": make_tiny_gpt2(root / "b", fmt="hf", seed=3), "root": root}


def test_harness_run_equals_lm_eval_simple_evaluate(tiny):
    """The same tasks, documents and model: harness's engine (native GPT-2 backend), lm-eval with
    model="harness", and lm-eval's own hf backend give the same scores and the same generations."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    import harness.lmeval  # noqa: F401 - registers model="harness"
    from harness.evaluate import evaluate

    out = tiny["root"] / "run"
    res = evaluate(str(tiny["model"]), str(tiny["base"]), "lm-eval:t_mc,lm-eval:t_gen,lm-eval:t_ppl",
                           out=out, include_path=[str(tiny["tasks"])], progress=False, report=False, batch_size=4)
    bench = res["benchmarks"]["lm-eval"]
    assert bench["error"] is None and set(bench["subsets"]) == {"t_mc", "t_gen", "t_ppl"}
    assert bench["subsets"]["t_mc"]["metrics"]["acc"]["delta"]["test"] == "mcnemar_exact"  # paired, per task

    mine = json.loads((out / "lm-eval" / "results.json").read_text())
    assert mine["n-shot"]["t_mc"] == 0 and "t_mc" in mine["configs"] and "t_mc" in mine["versions"]
    assert mine["results"]["t_mc"]["acc_stderr,none"] == bench["subsets"]["t_mc"]["metrics"]["acc"]["model"]["stderr"]
    tm = TaskManager(include_path=str(tiny["tasks"]), include_defaults=False)
    runs = {}
    for name, args in (("harness", f"model={tiny['model']}"), ("hf", f"pretrained={tiny['model']},dtype=float32")):
        runs[name] = lm_eval.simple_evaluate(model=name, model_args=args, tasks=["t_mc", "t_gen", "t_ppl"],
                                             task_manager=tm, batch_size=4, device="cpu", log_samples=True)
    ours = _strip(mine["results"])
    for name, run in runs.items():
        theirs = _strip(run["results"])
        assert set(theirs) == set(ours)
        for task, metrics in theirs.items():
            assert set(metrics) == set(ours[task]), (name, task)
            for k, v in metrics.items():
                assert ours[task][k] == pytest.approx(v, rel=1e-4, abs=1e-6), (name, task, k)
    # the generations themselves, sample by sample
    gen = [json.loads(x) for x in (out / "lm-eval" / "samples_t_gen.jsonl").read_text().splitlines()]
    hf_gen = sorted(runs["hf"]["samples"]["t_gen"], key=lambda s: s["doc_id"])
    assert [g["filtered_resps"] for g in sorted(gen, key=lambda s: s["doc_id"])] == [s["filtered_resps"] for s in hf_gen]
    # a harness run's base model gets its own lm-eval layout
    assert (out / "lm-eval" / "base" / "results.json").is_file()


@pytest.mark.slow  # lm-eval's CLI indexes all its ~15k task YAMLs first
def test_python_m_harness_lmeval_runs_lm_eval_cli(tiny):
    out = tiny["root"] / "cli"
    proc = subprocess.run([sys.executable, "-m", "harness.lmeval", "--model", "harness", "--model_args",
                           f"model={tiny['model']}", "--tasks", "t_mc", "--include_path", str(tiny["tasks"]),
                           "--output_path", str(out), "--batch_size", "4"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    files = list(out.rglob("results_*.json"))
    assert files and "acc,none" in json.loads(files[0].read_text())["results"]["t_mc"]
