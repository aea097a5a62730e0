"""`harness run` end to end: the same per-sample log-likelihoods, bit for bit, at batch sizes
1, 7 and 32, with the prefix cache on and off (issue: scores must not move with the batch size)."""
from __future__ import annotations

import json

import pytest

from harness.evaluate import evaluate
from harness.testing import make_tiny_llama, torch_threads


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return str(make_tiny_llama(tmp_path_factory.mktemp("m") / "m", seed=3, max_position_embeddings=2048))


def loglikelihoods(tiny, out, batch_size):
    with torch_threads(1):
        evaluate(tiny, suite="mmlu:abstract_algebra,mmlu:world_religions", limit=6, out=out, batch_size=batch_size,
                 progress=False, report=False, cache=False)
    rows = [json.loads(line) for line in (out / "samples" / "mmlu.jsonl").read_text().splitlines()]
    return [(r["doc_id"], json.dumps(r, sort_keys=True)) for r in rows]


def test_samples_are_bit_identical_at_any_batch_size_with_and_without_the_prefix_cache(tiny, tmp_path, monkeypatch):
    base = loglikelihoods(tiny, tmp_path / "b1", 1)
    assert len(base) == 12 and "loglikelihoods" in base[0][1]
    for bs in (7, 32):
        assert loglikelihoods(tiny, tmp_path / f"b{bs}", bs) == base, bs
    monkeypatch.setenv("HARNESS_PREFIX_CACHE", "0")
    assert loglikelihoods(tiny, tmp_path / "nocache", 7) == base
