"""MMLU plug-in: prompts equal lm-eval's `mmlu` byte for byte; data sources; errors.

The expected prompts come from lm-eval itself (its yaml + ConfigurableTask with the
dataset swapped for the bundled rows, read here with the csv module), never from the
plug-in's own formatting code.
"""
from __future__ import annotations

import csv
import importlib.resources
import io
from pathlib import Path

import pytest

from harness.api import BenchmarkConfig, LoglikelihoodResult
from harness.errors import HarnessError
from harness_plugins import mmlu
from harness_plugins.mmlu import MMLU

BUNDLE = Path(str(importlib.resources.files("harness_tasks") / "mmlu"))


def rows(split: str, subject: str, root: Path = BUNDLE) -> list[list[str]]:
    with open(root / split / f"{subject}_{split}.csv", newline="", encoding="utf-8") as f:
        return list(csv.reader(f))[1:]


def hub_docs(split: str, subject: str) -> list[dict]:
    """The bundled rows in the shape of the hub's cais/mmlu (what lm-eval reads)."""
    return [{"question": r[0], "subject": subject, "choices": r[1:5], "answer": int(r[5])}
            for r in rows(split, subject)]


def _lm_eval_dir() -> Path:
    lm_eval = pytest.importorskip("lm_eval")
    return Path(lm_eval.__file__).parent / "tasks" / "mmlu" / "default"


def lm_eval_task(subject: str):
    """lm-eval's own mmlu_<subject> task with the bundled rows as its dataset."""
    datasets = pytest.importorskip("datasets")
    from lm_eval.api.task import ConfigurableTask
    from lm_eval.tasks._yaml_loader import load_yaml

    cfg = load_yaml(_lm_eval_dir() / f"mmlu_{subject}.yaml")
    cfg.pop("tag", None)
    data = datasets.DatasetDict({s: datasets.Dataset.from_list(hub_docs(s, subject)) for s in ("test", "dev")})
    cfg["custom_dataset"] = lambda **_: data
    return ConfigurableTask(config=cfg)


def by_subject(instances) -> dict[str, list]:
    out: dict[str, list] = {}
    for inst in instances:
        out.setdefault(inst.subset, []).append(inst)
    return out


# Rows with leading/trailing whitespace and newlines (nutrition, formal_logic, world_religions)
# and choices with trailing spaces (professional_law dev) are the ones a re-implementation gets wrong.
TRICKY = ["nutrition", "formal_logic", "professional_law", "world_religions"]


@pytest.mark.parametrize("k, subjects", [(5, None), (0, TRICKY), (2, TRICKY)])
def test_prompts_and_requests_equal_lm_eval(k, subjects):
    ours = by_subject(MMLU().instances(BenchmarkConfig(subsets=subjects, limit=5, num_fewshot=k)))
    assert sorted(ours) == sorted(subjects or mmlu.SUBJECTS)
    for subject, insts in ours.items():
        task = lm_eval_task(subject)
        docs = list(task.test_docs())
        assert len(insts) == len(docs) == 5
        for inst, doc in zip(insts, docs):
            ctx = task.fewshot_context(doc, num_fewshot=k)
            assert inst.prompt == ctx, subject
            expected = [r.arguments for r in task.construct_requests(doc=doc, ctx=ctx, metadata=("mmlu", 0, 1))]
            assert [(r.context, r.continuation) for r in inst.requests] == expected
            assert inst.target == "ABCD"[doc["answer"]]


def test_categories_are_lm_eval_groups():
    yaml = pytest.importorskip("yaml")
    expected: dict[str, set[str]] = {}
    for path in _lm_eval_dir().glob("mmlu_*.yaml"):
        cfg = yaml.safe_load(path.read_text())
        group = cfg["tag"].removeprefix("mmlu_").removesuffix("_tasks")
        expected.setdefault(group, set()).add(cfg["dataset_name"])
    assert {g: set(s) for g, s in MMLU.groups.items()} == expected
    assert sum(map(len, expected.values())) == 57


def test_default_run_is_small_and_limit_is_per_subject():
    default = by_subject(MMLU().instances(BenchmarkConfig()))
    assert {len(v) for v in default.values()} == {mmlu.DEFAULT_LIMIT} and len(default) == 57
    three = by_subject(MMLU().instances(BenchmarkConfig(limit=3)))
    assert {len(v) for v in three.values()} == {3}
    assert [i.doc_id for i in three["anatomy"]] == ["anatomy/0", "anatomy/1", "anatomy/2"]


def test_subsets_and_groups_select_subjects():
    insts = list(MMLU().instances(BenchmarkConfig(subsets=["virology", "humanities"], limit=1)))
    assert {i.subset for i in insts} == set(MMLU.groups["humanities"]) | {"virology"}
    with pytest.raises(HarnessError, match="unknown subset 'virologyy'.*did you mean 'virology'"):
        list(MMLU().instances(BenchmarkConfig(subsets=["virologyy"])))


def test_process_is_argmax_first_on_ties():
    inst = next(iter(MMLU().instances(BenchmarkConfig(subsets=["anatomy"], limit=1))))
    gold = inst.doc["answer"]
    lls = [-4.0, -4.0, -4.0, -4.0]
    lls[gold] = -1.0
    out = MMLU().process(inst, [LoglikelihoodResult(x, False) for x in lls])
    assert out == {"answer": "ABCD"[gold], "scores": {"acc": 1.0}, "loglikelihoods": lls}
    tie = MMLU().process(inst, [LoglikelihoodResult(-2.0, False)] * 4)
    assert tie["answer"] == "A" and tie["scores"]["acc"] == float(gold == 0)


def _write_hendrycks(root: Path, subjects: list[str]) -> None:
    """Original tarball layout: no header, answer as a letter."""
    for split in ("dev", "test"):
        (root / split).mkdir(parents=True, exist_ok=True)
        for s in subjects:
            with open(root / split / f"{s}_{split}.csv", "w", newline="", encoding="utf-8") as f:
                csv.writer(f).writerows([*r[:5], "ABCD"[int(r[5])]] for r in rows(split, s))


def test_data_dir_in_hendrycks_format_gives_the_same_prompts(tmp_path):
    subjects = ["nutrition", "professional_law"]
    _write_hendrycks(tmp_path / "data", subjects)  # the tarball extracts to data/{dev,test}
    local = list(MMLU().instances(BenchmarkConfig(subsets=subjects, data_dir=str(tmp_path), full=True)))
    bundled = list(MMLU().instances(BenchmarkConfig(subsets=subjects, limit=5)))
    assert len(local) == 10  # --data-dir: no default limit
    assert [(i.prompt, i.target, i.requests) for i in local] == [(i.prompt, i.target, i.requests) for i in bundled]
    with pytest.raises(HarnessError, match=r"data/dev/anatomy_dev\.csv not found"):
        list(MMLU().instances(BenchmarkConfig(subsets=["anatomy"], data_dir=str(tmp_path))))


def test_hub_is_used_for_full_without_data_dir(monkeypatch):
    calls = []

    def fake_hub(bench, path, name, split):
        calls.append((bench, path, name, split))
        return hub_docs(split, name)

    monkeypatch.setattr(mmlu, "load_hub", fake_hub)
    insts = list(MMLU().instances(BenchmarkConfig(subsets=["virology"], full=True)))
    assert calls == [("mmlu", "cais/mmlu", "virology", "dev"), ("mmlu", "cais/mmlu", "virology", "test")]
    assert len(insts) == 5 and insts[0].prompt.startswith(mmlu.description("virology"))


@pytest.mark.parametrize("content, message", [
    ('q,a,b,c,d,A\n"multi\nline q",a,b,c\nq3,a,b,c,d,A\n', r"anatomy_test\.csv line 2: expected 6 fields"),
    ('"multi\nline",a,b,c,d,A\nq2,a,b,c,d,E\n', r"anatomy_test\.csv line 3: answer 'E' is not one of A-D or 0-3"),
    ('q,a,b,c,d,B\n"q2" x,a,b,c,d,B\n', r"anatomy_test\.csv line 2: malformed CSV"),
])
def test_malformed_csv_names_file_and_line(tmp_path, content, message):
    for split in ("dev", "test"):
        (tmp_path / split).mkdir()
    (tmp_path / "test" / "anatomy_test.csv").write_text(content, encoding="utf-8")
    (tmp_path / "dev" / "anatomy_dev.csv").write_text("q,a,b,c,d,A\n" * 5, encoding="utf-8")
    with pytest.raises(HarnessError, match=message):
        list(MMLU().instances(BenchmarkConfig(subsets=["anatomy"], data_dir=str(tmp_path))))


def test_too_many_shots_is_an_error():
    with pytest.raises(HarnessError, match="--num-fewshot 6 but the dev split has 5 rows"):
        list(MMLU().instances(BenchmarkConfig(subsets=["anatomy"], num_fewshot=6)))


def test_registered_through_entry_point():
    from importlib.metadata import entry_points

    assert any(ep.name == "mmlu" and ep.value == "harness_plugins.mmlu" for ep in entry_points(group="harness"))
    got: list = []
    mmlu.register_benchmarks(got.append)
    assert [b.name for b in got] == ["mmlu"] and isinstance(got[0], MMLU)


def test_bundled_test_split_is_whole_and_starts_with_the_five_row_files():
    """full/ holds all 14,042 test questions (checked against SHA256SUMS, independent of the
    parser); the 5-row files lm-eval's YAML task reads are their first rows."""
    import gzip
    import hashlib

    sums = dict(line.split()[::-1] for line in (BUNDLE / "full" / "SHA256SUMS").read_text().splitlines())
    assert len(sums) == 57
    total = 0
    for subject in mmlu.SUBJECTS:
        raw = gzip.decompress((BUNDLE / "full" / f"{subject}_test.csv.gz").read_bytes())
        assert hashlib.sha256(raw).hexdigest() == sums[f"{subject}_test.csv"]
        full = list(csv.reader(io.StringIO(raw.decode("utf-8"), newline="")))[1:]
        assert full[:5] == rows("test", subject)
        total += len(full)
    assert total == 14042
    every = by_subject(MMLU().instances(BenchmarkConfig(subsets=["professional_law", "anatomy"], limit=2000)))
    assert {s: len(v) for s, v in every.items()} == {"anatomy": 135, "professional_law": 1534}
