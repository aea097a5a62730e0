"""Shared-prefix scoring: each distinct token prefix that several inputs share runs once.

MMLU's five-shot block is 73-93% of every prompt of a subject; multi-token continuations
share their context. :func:`plan` builds a radix tree over the *tokenised* inputs (so a
split always falls on a token boundary of the full prompt: a prefix tokenised alone can
end in different tokens, e.g. one ``"\\n\\n"`` token where the full prompt has two
``"\\n"``), and :func:`score` walks it: a shared edge runs once and its KV cache is forked
for every branch below it.

Bit-identical by construction: every input's logits come from the same forwards (same
token segments, same packs, same shapes, same cache contents) whether or not the prefix
cache is on (``share=False`` recomputes each input's whole path) and whatever the batch
size (every forward holds one row; the plan depends on the inputs only). Batching padded
rows would not be: the CPU sgemm picks other kernels for few rows, and SDPA's block sizes
follow the sequence length, which moves the last bits of the scores.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from .gpt2 import Packed

# A shared run shorter than this is recomputed per branch: a forward streams every weight
# (~0.1 s for 135M parameters here), as much as ~30 tokens of compute, and without the
# prefix cache each input pays one forward per edge on its path.
MIN_SHARED = 64
PACK_TOKENS = 512  # tokens of packed last edges per forward (M large enough for the matmuls)


@dataclass
class Edge:
    """Tokens ``[start, end)`` of the inputs below it; logits kept for ``[end - keep, end)``."""

    start: int
    end: int
    keep: int
    children: list[Edge] = field(default_factory=list)
    leaves: list[int] = field(default_factory=list)  # inputs that end at ``end``


def _lcp(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def plan(inputs: Sequence[Sequence[int]], need: Sequence[int], share_min: int = MIN_SHARED) -> list[Edge]:
    """The radix tree (roots) over distinct ``inputs``; ``need[u]`` is the first position of
    input ``u`` whose logits are wanted (positions ``need[u]..len-1`` score its continuations)."""
    order = sorted(range(len(inputs)), key=lambda u: tuple(inputs[u]))
    return _split(inputs, need, order, 0, share_min)


def _split(inputs, need, group: list[int], s: int, share_min: int) -> list[Edge]:
    if len(group) == 1:
        u = group[0]
        return [Edge(s, len(inputs[u]), max(1, len(inputs[u]) - max(s, need[u])), leaves=[u])]
    lcp = _lcp(inputs[group[0]], inputs[group[-1]])  # sorted: the LCP of the whole group
    enders = [u for u in group if len(inputs[u]) == lcp]
    parts: dict[int, list[int]] = {}
    for u in group:
        if len(inputs[u]) > lcp:
            parts.setdefault(inputs[u][lcp], []).append(u)
    if lcp - s < share_min:  # too short to be worth a forward of its own: each branch runs it
        out = [e for u in enders for e in _split(inputs, need, [u], s, share_min)]
        for p in parts.values():
            out += _split(inputs, need, p, s, share_min)
        return out
    first = max(s, min(need[u] for u in group))
    edge = Edge(s, lcp, max(1, lcp - first), leaves=enders)
    for p in parts.values():
        edge.children += _split(inputs, need, p, lcp, share_min)
    return [edge]


def score(lm: Any, inputs: Sequence[Sequence[int]], roots: list[Edge], share: bool,
          emit: Callable[[int, list[tuple[int, torch.Tensor]]], None]) -> None:
    """Run the tree; ``emit(u, segments)`` per input with ``(first position, log-softmax rows)``
    for every edge on its path. ``share=False`` recomputes every path from scratch.

    With ``lm.packs_inputs`` the short last edges below one edge (an MMLU subject's questions
    after its few-shot block) run packed into one row, each seeing the shared prefix and
    itself only (a :class:`~.gpt2.Packed` mask, positions restarting after the prefix): a forward
    streams all the weights once, so one of 512 tokens costs far less than eight of 64.
    Packs depend on the inputs only, and ``share=False`` runs the same packs."""
    packs = bool(getattr(lm, "packs_inputs", False))
    # the last call's few-shot block: kept on the model, keyed by its weights' version counters
    memo = share and getattr(lm, "module", None) is not None and hasattr(lm, "_last_root")

    def run(edge: Edge, u: int, cache: Any) -> torch.Tensor:
        idx = torch.tensor([inputs[u][edge.start:edge.end]], dtype=torch.long, device=lm.device)
        logits = lm.forward(idx, cache=cache, logits_to_keep=edge.keep)
        return torch.log_softmax(logits[0].float(), dim=-1).cpu()

    def rep(edge: Edge) -> int:  # an input below the edge (they all share its tokens)
        return edge.leaves[0] if edge.leaves else rep(edge.children[0])

    def remembered(edge: Edge) -> tuple[Any, torch.Tensor]:
        """A root edge's cache and rows, reused from the previous call when its tokens match:
        a subject's questions span several calls (engine chunks) that all start with its
        few-shot block. Computed in a fresh cache either way, so the bits are the same."""
        module = lm.module  # weights changed in place (training) must not hit
        weights = tuple(p._version for p in module.parameters())
        key = (tuple(inputs[rep(edge)][:edge.end]), edge.keep, id(module), weights)
        last = lm._last_root
        if last is None or last[0] != key:
            cache = lm.new_cache()
            last = (key, cache, run(edge, rep(edge), cache))
            lm._last_root = last
        return lm.fork_cache(last[1]), last[2]

    def from_scratch(u: int, shared: list[Edge]) -> tuple[list[tuple[int, torch.Tensor]], Any]:
        """Input ``u``'s path recomputed edge by edge in a fresh cache (no sharing)."""
        fresh = lm.new_cache()
        return [(e.end - e.keep, run(e, u, fresh)) for e in shared], fresh

    def walk(edge: Edge, cache: Any, path: list[tuple[int, torch.Tensor]], shared: list[Edge]) -> None:
        if memo and not shared and edge.children:  # a few-shot block: maybe the last call's
            cache, rows = remembered(edge)
            path = [(edge.end - edge.keep, rows)]
        elif share:
            cache = lm.fork_cache(cache)
            path = path + [(edge.end - edge.keep, run(edge, rep(edge), cache))]
        shared = shared + [edge]
        for u in edge.leaves:
            emit(u, path if share else from_scratch(u, shared)[0])
        below(edge.children, cache, path, shared)

    def below(edges: list[Edge], cache: Any, path: list, shared: list[Edge]) -> None:
        tips = [e for e in edges if packs and not e.children and len(e.leaves) == 1
                and e.end - e.start <= PACK_TOKENS // 2]
        packed = {id(t) for t in tips}
        for edge in edges:
            if id(edge) not in packed:
                walk(edge, cache, path, shared)
        for group in _groups(tips):
            run_pack(group, cache, path, shared)

    def run_pack(group: list[Edge], cache: Any, path: list, shared: list[Edge]) -> None:
        if share:
            cache, paths = lm.fork_cache(cache), [path] * len(group)
        else:  # every input pays for its own prefix; the pack runs on the last one's cache
            paths = []
            for e in group:
                segments, cache = from_scratch(e.leaves[0], shared)
                paths.append(segments)
        ids: list[int] = []
        pos: list[int] = []
        want: list[bool] = []
        for e in group:
            ids += inputs[e.leaves[0]][e.start:e.end]
            pos += range(e.start, e.end)
            want += [False] * (e.end - e.start - e.keep) + [True] * e.keep
        dev = lm.device
        packed = Packed(group[0].start, tuple(e.end - e.start for e in group))
        logits = lm.forward(torch.tensor([ids], device=dev), position_ids=torch.tensor([pos], device=dev),
                            attention_mask=packed, cache=cache, logits_at=torch.tensor([want], device=dev))
        rows = torch.log_softmax(logits.float(), dim=-1).cpu()
        first = 0
        for e, p in zip(group, paths):
            emit(e.leaves[0], p + [(e.end - e.keep, rows[first:first + e.keep])])
            first += e.keep

    below(roots, lm.new_cache(), [], [])


def _groups(tips: list[Edge]) -> list[list[Edge]]:
    """Consecutive tips packed up to ``PACK_TOKENS`` tokens a forward."""
    out: list[list[Edge]] = []
    size = PACK_TOKENS
    for e in tips:
        n = e.end - e.start
        if size + n > PACK_TOKENS:
            out.append([])
            size = 0
        out[-1].append(e)
        size += n
    return out


def count_forwards(roots: list[Edge]) -> int:
    """Forwards a shared walk makes (one per edge)."""
    return sum(1 + count_forwards(e.children) for e in roots)
