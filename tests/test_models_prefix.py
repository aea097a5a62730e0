"""Shared-prefix KV reuse in TokenLM.loglikelihood: the same scores, bit for bit, at every batch
size and with the prefix cache on or off, on realistic MMLU prompts and tiny random models;
each shared token prefix runs once; splits only on the full prompts' own token boundaries."""
from __future__ import annotations

import pytest
import torch

from harness.api import BenchmarkConfig
from harness.api import LoglikelihoodRequest as L
from harness.models import load_model
from harness.models.prefix import count_forwards, plan
from harness.testing import make_tiny_gpt2, make_tiny_llama, torch_threads
from harness_plugins.mmlu import MMLU


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    with torch_threads(1):
        yield


@pytest.fixture(scope="module", params=["gpt2", "llama"])
def model(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(request.param)
    if request.param == "gpt2":  # contexts long enough for whole 5-shot prompts (no truncation)
        path = make_tiny_gpt2(root / "m", seed=5, context_length=1024)
    else:
        path = make_tiny_llama(root / "m", seed=6, max_position_embeddings=2048)
    return load_model(str(path), batch_size=8)


@pytest.fixture(scope="module")
def mmlu_requests():
    """lm-eval's MMLU 5-shot prompts: a shared few-shot block, different questions, " A".." D"."""
    cfg = BenchmarkConfig(subsets=["abstract_algebra", "world_religions"], limit=3)
    reqs = [r for inst in MMLU().instances(cfg) for r in inst.requests]
    # and multi-token continuations after a shared context
    ctx = reqs[0].context
    return reqs + [L(ctx, " B. because the group is cyclic"), L(ctx, " C. neither"), L(ctx, " B")]


def scores(model, reqs, batch_size, cache):
    model.batch_size, model.prefix_cache = batch_size, cache
    try:
        return [(r.logprob, r.is_greedy) for r in model.loglikelihood(reqs, progress=False)]
    finally:
        model.batch_size, model.prefix_cache = 8, True


def reference(model, req):
    """One plain forward over the whole input, no cache (what lm-eval computes)."""
    ctx, cont = model.encode_pair(req.context, req.continuation)
    ids = (ctx + cont)[-(model.max_length + 1):]
    with torch.inference_mode():
        lp = torch.log_softmax(model.module(torch.tensor([ids[:-1]]))[0].float(), -1)[-len(cont):]
    return float(lp.gather(1, torch.tensor(cont)[:, None]).sum())


def test_bit_identical_at_every_batch_size_with_and_without_prefix_cache(model, mmlu_requests):
    base = scores(model, mmlu_requests, 1, True)
    for bs in (1, 7, 32):
        for cache in (True, False):
            assert scores(model, mmlu_requests, bs, cache) == base, (bs, cache)  # exact float equality
    assert len({lp for lp, _ in base}) > len(base) // 2  # really different numbers
    for req, (lp, _) in zip(mmlu_requests, base):
        assert lp == pytest.approx(reference(model, req), abs=1e-4)


def test_shared_prefix_runs_once(model, mmlu_requests, monkeypatch):
    """With the cache, forwarded tokens = distinct tokens of the request tree; without, every
    question recomputes its few-shot block."""
    counts = {}
    real = model.forward

    def counting(idx, **kw):
        counts["tokens"] = counts.get("tokens", 0) + idx.numel()
        counts["rows"] = max(counts.get("rows", 0), idx.shape[0])
        counts["calls"] = counts.get("calls", 0) + 1
        return real(idx, **kw)

    monkeypatch.setattr(model, "forward", counting)
    scores(model, mmlu_requests, 8, True)
    shared, counts = counts, {}
    scores(model, mmlu_requests, 8, False)
    unshared = counts
    pairs = [model.encode_pair(r.context, r.continuation) for r in mmlu_requests]
    inputs = {tuple(ctx + cont)[:-1] for ctx, cont in pairs}
    assert unshared["tokens"] == sum(len(i) for i in inputs)  # each distinct input once, whole
    assert shared["tokens"] < unshared["tokens"] / 2
    assert shared["rows"] == unshared["rows"] == 1  # one row per forward
    # the questions after a subject's few-shot block are packed: far fewer forwards than inputs
    assert shared["calls"] <= len(inputs) // 2


def test_splits_fall_on_the_full_prompts_token_boundaries(model):
    """A few-shot block ending in a blank line: alone, GPT-2's BPE gives it one "\\n\\n" token;
    inside each prompt it is two "\\n" tokens. Splitting on the string would score other tokens."""
    block = "".join(f"Q: what is {i} plus {i}?\nA: {2 * i}\n\n" for i in range(12))
    assert model.tok_encode(block)[-1] != model.tok_encode(block + "Q")[-2]  # the boundary moves
    reqs = [L(block + f"Q: what is {a} times {b}?\nA:", f" {a * b}") for a, b in ((3, 4), (5, 6), (7, 8))]
    got = model.loglikelihood(reqs, progress=False)
    for req, res in zip(reqs, got):
        assert res.logprob == pytest.approx(reference(model, req), abs=1e-4)
    inputs = [tuple(model.encode_pair(r.context, r.continuation)[0]) for r in reqs]
    (root,) = plan(inputs, [len(i) - 1 for i in inputs])
    assert all(i[:root.end] == inputs[0][:root.end] for i in inputs)
    n = len(model.tok_encode(block))
    assert root.end == len(model.tok_encode(block + "Q: what is"))  # through both "\n" tokens and on
    assert [model.tok_decode([t]) for t in inputs[0][n - 1:n + 1]] == ["\n", "\n"]


def test_plan_shares_long_runs_only_and_keeps_needed_logits():
    a = tuple(range(100)) + (1, 2, 3)
    b = tuple(range(100)) + (1, 2, 4, 5)
    c = tuple(range(100)) + (7,)
    d = (9,) * 20
    (root, other) = plan([a, b, c, d], [102, 103, 100, 19], share_min=8)
    assert (root.start, root.end, root.keep) == (0, 100, 1)  # a, b share "1, 2": too short to split
    assert sorted((e.start, e.end, e.keep) for e in root.children) == [(100, 101, 1), (100, 103, 1), (100, 104, 1)]
    assert (other.start, other.end, other.keep, other.leaves) == (0, 20, 1, [3])
    assert count_forwards([root, other]) == 5
    # inputs that end inside another's path (one context, several continuations) keep their rows
    (edge,) = plan([tuple(range(50)), tuple(range(60))], [40, 49], share_min=8)
    assert (edge.end, edge.keep, edge.leaves) == (50, 10, [0])
    # by default a run shorter than MIN_SHARED (64) is not worth a forward of its own
    assert [(e.start, e.end) for e in plan([tuple(range(50)), tuple(range(60))], [40, 49])] == [(0, 50), (0, 60)]


def test_prefix_cache_env_var_turns_it_off(monkeypatch, tmp_path):
    monkeypatch.setenv("HARNESS_PREFIX_CACHE", "0")
    assert load_model(str(make_tiny_gpt2(tmp_path / "m", seed=1))).prefix_cache is False
    monkeypatch.delenv("HARNESS_PREFIX_CACHE")
    assert load_model(str(tmp_path / "m")).prefix_cache is True


def test_hf_backend_forks_its_cache(tmp_path, mmlu_requests):
    pytest.importorskip("transformers")
    hf = load_model(f"hf:{make_tiny_llama(tmp_path / 'h', seed=6, fmt='hf', max_position_embeddings=2048)}")
    native = load_model(str(make_tiny_llama(tmp_path / "n", seed=6, max_position_embeddings=2048)))
    reqs = mmlu_requests[:8] + mmlu_requests[-3:]
    on = scores(hf, reqs, 8, True)
    assert scores(hf, reqs, 3, False) == on
    for (a, _), (b, _) in zip(on, scores(native, reqs, 8, True)):
        assert a == pytest.approx(b, abs=1e-4)


def test_a_few_shot_block_is_reused_across_calls_until_the_weights_change(model, monkeypatch):
    """Engine chunks split a subject's questions over several calls: the block runs once, and
    the scores are those of calls that each compute it afresh."""
    cfg = BenchmarkConfig(subsets=["abstract_algebra"], limit=5)
    subject = [r for inst in MMLU().instances(cfg) for r in inst.requests]
    fresh = []
    for part in (subject[:8], subject[8:]):
        model._last_root = None
        fresh.append(scores(model, part, 8, True))
    seen = []
    real = model.forward
    monkeypatch.setattr(model, "forward", lambda idx, **kw: seen.append(idx.shape[1]) or real(idx, **kw))
    model._last_root = None
    assert [scores(model, subject[:8], 8, True), scores(model, subject[8:], 8, True)] == fresh
    block = seen[0]  # the first call: the block, then its two questions packed
    assert len(seen) == 3 and seen.count(block) == 1  # the second call reused the block
    with torch.no_grad():
        next(model.module.parameters()).mul_(1.0)  # an in-place update (as an optimizer step)
    seen.clear()
    scores(model, subject[8:], 8, True)
    assert seen[0] == block and len(seen) == 2  # computed again
