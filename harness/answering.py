"""Asking a model for answers: each unique request once, from the cache where it can, the rest
in chunks that are committed to the cache as they finish, sharded across torchrun's ranks.

Why chunks: a run killed at 90% should lose one chunk, not 90%. Requests are ordered by kind,
then log-likelihoods by context (requests that share a prompt or a few-shot block meet in one
chunk, where the backend computes the shared part once) and generations by length (similar
lengths batch well). Log-likelihood chunks hold ``LL_CHUNK`` requests whatever the batch
size; generation chunks ``CHUNK_BATCHES`` batches. Chunks are cut from *all* the requests
before the cache is consulted and each torchrun rank answers whole chunks, so a chunk holds
the same requests at any batch size, number of ranks, or after a resume: a backend whose
scores depend on what a call holds (shared prefixes, packed inputs) still gives the same bits.
"""
from __future__ import annotations

from typing import Any

from tqdm.auto import tqdm

from .api import GenerateRequest, LoglikelihoodRequest, Model
from .cache import RequestCache, request_key
from .distributed import SINGLE, Dist
from .errors import HarnessError

CHUNK_BATCHES = 4
LL_CHUNK = 256  # log-likelihood requests a chunk (64 MMLU questions): a few-shot prefix is shared within one


def _answer(model: Model, requests: list) -> list:
    """One model call per request kind, answers in the order of ``requests``."""
    out: list[Any] = [None] * len(requests)
    for kind, call in ((LoglikelihoodRequest, model.loglikelihood), (GenerateRequest, model.generate)):
        idx = [i for i, r in enumerate(requests) if isinstance(r, kind)]
        if idx:
            for i, res in zip(idx, call([requests[i] for i in idx], progress=False)):
                out[i] = res
    return out


def _answer_or_error(model: Model, requests: list, dist: Dist) -> list | tuple[bool, str]:
    """Under torchrun a failure is sent to the other ranks as a message instead of raised alone."""
    if not dist.active:
        return _answer(model, requests)
    try:
        return _answer(model, requests)
    except HarnessError as exc:
        return True, f"rank {dist.rank}: {exc}"
    except Exception as exc:  # noqa: BLE001 - re-raised on every rank by run_requests
        return False, f"rank {dist.rank}: {type(exc).__name__}: {exc}"


def _order(req: Any) -> tuple:
    """Log-likelihood requests by context text, so requests sharing a prompt or a few-shot block
    (an MMLU subject's) sit in one chunk and the backend computes the shared prefix once;
    generation longest first, so a chunk's batches hold similar lengths."""
    if isinstance(req, LoglikelihoodRequest):
        return (0, req.context, req.continuation)
    return (1, -len(req.prompt) - req.max_tokens, req.prompt)


def run_requests(model: Model, requests: list, progress: bool = True, *, cache: RequestCache | None = None,
                 cache_model: str | None = None, dist: Dist = SINGLE, chunk_size: int = 32,
                 ll_chunk_size: int = LL_CHUNK, stats: dict[str, int] | None = None) -> list:
    """Answer a mixed list of requests, each unique request once, in the given order.

    With ``cache`` and ``cache_model`` (the :func:`harness.cache.model_key` of ``model``),
    cached answers are used and new ones committed chunk by chunk; ``stats`` gets
    ``hits``/``misses`` (unique requests) added. Under torchrun (``dist``) rank 0 reads and
    writes the cache, every rank answers its share of each chunk and gets all answers back.
    """
    unique: dict[Any, int] = {}
    for req in requests:
        unique.setdefault(req, len(unique))
    keys = list(unique)
    if not all(isinstance(k, (LoglikelihoodRequest, GenerateRequest)) for k in keys):
        raise TypeError("a benchmark emitted a request that is neither loglikelihood nor generate")
    dist.check_same("run_requests", keys)
    answers: list[Any] = [None] * len(keys)
    todo = list(range(len(keys)))
    cached = cache is not None and cache_model is not None and dist.is_main
    hashes = [request_key(k) for k in keys] if cached else []
    if cached:
        found = cache.get_many(cache_model, hashes)
        todo = [i for i, h in enumerate(hashes) if h not in found]
        answers = [found.get(h) for h in hashes]
    if dist.active:
        todo, answers = dist.broadcast((todo, answers))
    if stats is not None:
        stats["hits"] = stats.get("hits", 0) + len(keys) - len(todo)
        stats["misses"] = stats.get("misses", 0) + len(todo)
    order = sorted(range(len(keys)), key=lambda i: _order(keys[i]))
    n_ll = sum(isinstance(k, LoglikelihoodRequest) for k in keys)
    size = max(1, chunk_size)
    chunks = [order[a:min(a + ll_chunk_size, n_ll)] for a in range(0, n_ll, ll_chunk_size)]
    chunks += [order[a:a + size] for a in range(n_ll, len(order), size)]
    pending = set(todo)  # chunks are cut from all requests, so a resumed run meets the same ones
    chunks = [c for c in ([i for i in c if i in pending] for c in chunks) if c]
    world = dist.world_size
    with tqdm(total=len(todo), disable=not (progress and dist.is_main), desc=model.info.spec, leave=False) as bar:
        for r in range(0, len(chunks), world):  # each rank takes whole chunks
            batch = chunks[r:r + world]
            mine = batch[dist.rank] if dist.rank < len(batch) else []
            parts = dist.all_gather(_answer_or_error(model, [keys[i] for i in mine], dist))
            failed = [p for p in parts if isinstance(p, tuple)]
            if failed:  # every rank fails alike, so none waits forever in the next collective
                harness_error, msg = failed[0]
                raise (HarnessError if harness_error else RuntimeError)(msg)
            for chunk, got in zip(batch, parts):
                for i, a in zip(chunk, got):
                    answers[i] = a
                if cached:
                    cache.put_many(cache_model, [(hashes[i], a) for i, a in zip(chunk, got)])
            bar.update(sum(len(c) for c in batch))
    return [answers[unique[r]] for r in requests]
