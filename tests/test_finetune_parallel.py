"""Fine-tuning speed and data parallelism (issue 12): length-grouped batches compute little
padding, validation batches are collated once, and ``torchrun --nproc_per_node 2`` trains
with DistributedDataParallel on gloo to the same loss curve as one process with the same
global batch, rank 0 alone writing the checkpoint."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.finetune import train
from harness.finetune.collate import Encoded, batches, length_grouped_batches
from harness.finetune.runner import finetune
from harness.finetune.train import TrainConfig, epoch_order
from harness.testing import make_tiny_gpt2

QUICK = dict(limit=40, val_frac=0.2, test_frac=0.1, batch_size=4, max_length=48, test_max_tokens=2, lr=3e-3)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> str:
    return str(make_tiny_gpt2(tmp_path_factory.mktemp("tiny") / "gpt2"))


def padded_tokens(bs: list[list[Encoded]]) -> int:
    return sum(len(b) * max(len(e.ids) for e in b) for b in bs)


def test_length_grouped_batches_cover_the_data_with_little_padding():
    lengths = [(i * 37) % 200 + 1 for i in range(400)]
    data = [Encoded(ids=[0] * n, prompt_len=1, index=i) for i, n in enumerate(lengths)]
    order = epoch_order(len(data), 123, 0)
    grouped = length_grouped_batches(data, order, 8, seed=5, mega=10)
    assert sorted(e.index for b in grouped for e in b) == list(range(400))
    assert all(len(b) == 8 for b in grouped)
    plain = batches(data, order, 8)
    assert padded_tokens(grouped) < 0.75 * padded_tokens(plain)
    assert [e.index for b in grouped for e in b] == \
        [e.index for b in length_grouped_batches(data, order, 8, seed=5, mega=10) for e in b]  # deterministic
    assert grouped != length_grouped_batches(data, order, 8, seed=6, mega=10)  # and shuffled by the seed
    assert len(length_grouped_batches(data[:21], list(range(21)), 8, seed=1)[-1]) == 5  # the short one last


def test_the_trainer_groups_by_length_and_collates_validation_once(tiny, tmp_path, monkeypatch):
    seen: list[int] = []
    real = train.collate

    def counting(items, *a, **k):
        seen.extend(e.index for e in items)
        return real(items, *a, **k)

    monkeypatch.setattr(train, "collate", counting)
    out = tmp_path / "g"
    summary = finetune(TrainConfig(model=tiny, eval_every=2, **QUICK), out, progress=False)
    split = json.loads((out / "split.json").read_text())
    n_evals = len((out / "metrics.jsonl").read_text().splitlines())
    assert n_evals >= 4 and summary["steps"] == 7
    assert all(seen.count(i) == 1 for i in split["val"])  # collated once for all evaluations
    plain = TrainConfig(model=tiny, eval_every=2, group_by_length=False, **QUICK)
    finetune(plain, tmp_path / "p", progress=False)
    tokens = [json.loads(line)["tokens"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    plain_tokens = [json.loads(line)["tokens"] for line in (tmp_path / "p" / "metrics.jsonl").read_text().splitlines()]
    assert tokens[-1] < plain_tokens[-1]  # fewer (padding) tokens computed for the same records


def test_torchrun_two_ranks_equal_one_process_with_the_same_global_batch(tiny, tmp_path):
    common = ["--model", tiny, "--limit", "40", "--val-frac", "0.2", "--test-frac", "0.1", "--batch-size", "4",
              "--max-length", "48", "--test-max-tokens", "2", "--lr", "3e-3", "--eval-every", "2", "--quiet"]
    one, two = tmp_path / "one", tmp_path / "two"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          "-m", "harness", "finetune", "--out", str(two), *common],
                         capture_output=True, text=True, env=env, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stderr.count("fine-tuned checkpoint:") == 1  # rank 0 alone reports
    cfg = TrainConfig(model=tiny, eval_every=2, grad_accum=2, **QUICK)
    finetune(cfg, one, progress=False)
    m1, m2 = (json.loads(p.read_text()) for p in (one / "config.json", two / "config.json"))
    assert m2["finetune"]["steps"] == m1["finetune"]["steps"] == 4
    rows1, rows2 = ([json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines()] for d in (one, two))
    assert [r["step"] for r in rows2] == [r["step"] for r in rows1]
    assert [r["tokens"] for r in rows2] == [r["tokens"] for r in rows1]
    for r1, r2 in zip(rows1, rows2):
        assert r2["train_loss"] == pytest.approx(r1["train_loss"], rel=1e-5)
        assert r2["val_loss"] == pytest.approx(r1["val_loss"], rel=1e-5)
    log = (two / "train.log").read_text()
    assert "2 ranks (DistributedDataParallel)" in log and log.count("keeping the best evaluation") == 1
    assert sorted(p.name for p in two.iterdir()) == sorted(p.name for p in one.iterdir())
    assert not list(Path(two).glob(".harness-write-test*"))
