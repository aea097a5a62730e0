"""TokenLM: the batching layer every token-level backend shares (in the spirit of lm-eval's
TemplateLM + HFLM), so scoring semantics are identical across native, GGUF and HF models.

A subclass supplies a tokenizer (encode/decode, eot/prefix ids), a context length and
a forward pass with an optional KV cache; this class does the rest:

* ``loglikelihood``: lm-eval's tokenisation (trailing context spaces move to the
  continuation; encode ``context + continuation`` and split), left truncation to the
  context length, each distinct input once (MMLU's " A".." D" after one prompt share
  it), and token prefixes shared by several inputs (a subject's few-shot block, a context
  before several continuations) run once with their KV cache reused, the short inputs
  after one prefix packed into one forward where the backend ``packs_inputs``
  (:mod:`.prefix`; ``HARNESS_PREFIX_CACHE=0`` turns the sharing off for comparison). The
  forwards depend on the inputs only, so scores are bit-identical at any batch size,
  cache on or off.
* ``generate``: left-padded batches with a KV cache, greedy or sampled with one
  ``torch.Generator`` per request, stop strings, ``max_tokens``.
"""
from __future__ import annotations

import copy
import os
from abc import abstractmethod
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from ..api import GenerateRequest, LoglikelihoodRequest, LoglikelihoodResult, Model
from ..api.chat import cut_at_stop

DEFAULT_SEED = 1234  # sampling seed for requests that give none


class TokenLM(Model):
    """Shared loglikelihood/generate implementation over a token-level forward pass."""

    packs_inputs = False  # True: forward takes a gpt2.Packed attention mask and logits_at (see .prefix)

    def __init__(self, *, batch_size: int = 8, device: str = "cpu") -> None:
        self.batch_size = max(1, int(batch_size))
        self.device = torch.device(device)
        # reuse the KV cache of shared token prefixes in loglikelihood (same scores either way)
        self.prefix_cache = os.environ.get("HARNESS_PREFIX_CACHE", "1").strip().lower() not in ("0", "false", "off")
        self._last_root: Any = None  # the last few-shot block's KV cache and rows (harness.models.prefix)

    # ---- what a backend provides -------------------------------------------------
    @abstractmethod
    def tok_encode(self, text: str, add_special: bool = True) -> list[int]:
        """Token ids; ``add_special`` adds BOS where the tokenizer does so by default."""

    @abstractmethod
    def tok_decode(self, ids: Sequence[int]) -> str: ...

    @property
    @abstractmethod
    def eot_id(self) -> int: ...

    @property
    def prefix_id(self) -> int:
        """Conditioning token for an empty context (lm-eval: BOS if any, else EOT)."""
        return self.eot_id

    @property
    def stop_ids(self) -> frozenset[int]:
        """Token ids that end a generation (not part of the returned text)."""
        return frozenset({self.eot_id})

    @property
    @abstractmethod
    def max_length(self) -> int:
        """Context length in tokens."""

    @abstractmethod
    def forward(self, idx: torch.Tensor, *, position_ids: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None, cache: Any = None,
                logits_to_keep: int = 0) -> torch.Tensor:
        """Logits [B, T or logits_to_keep, V]; ``cache`` is from :meth:`new_cache` and is updated."""

    @abstractmethod
    def new_cache(self) -> Any: ...

    # ---- loglikelihood -----------------------------------------------------------
    def encode_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        """lm-eval's ``_encode_pair`` (plus its empty-context rule)."""
        if context == "":
            cont = self.tok_encode(continuation, add_special=False)
            if cont and cont[0] == self.prefix_id:
                return cont[:1], cont[1:]
            return [self.prefix_id], cont
        n_spaces = len(context) - len(context.rstrip())
        if n_spaces:
            context, continuation = context[:-n_spaces], context[-n_spaces:] + continuation
        whole = self.tok_encode(context + continuation)
        ctx = self.tok_encode(context)
        if not ctx:  # an all-whitespace context: condition on the prefix token instead
            return [self.prefix_id], whole
        return ctx, whole[len(ctx):]

    def loglikelihood(self, requests: list[LoglikelihoodRequest],
                      progress: bool = True) -> list[LoglikelihoodResult]:
        from .prefix import plan, score

        results: list[LoglikelihoodResult | None] = [None] * len(requests)
        groups: dict[tuple[int, ...], list[tuple[int, list[int]]]] = {}
        for i, req in enumerate(requests):
            ctx, cont = self.encode_pair(req.context, req.continuation)
            if not cont:
                results[i] = LoglikelihoodResult(0.0, True)
                continue
            whole = (ctx + cont)[-(self.max_length + 1):]
            inp = tuple(whole[:-1])
            groups.setdefault(inp, []).append((i, cont[-len(inp):]))
        inputs = list(groups)
        need = [len(inp) - max(len(c) for _, c in groups[inp]) for inp in inputs]
        with torch.inference_mode(), tqdm(total=len(requests), disable=not progress,
                                          desc="loglikelihood") as bar:
            bar.update(len(requests) - sum(len(g) for g in groups.values()))

            def emit(u: int, segments: list[tuple[int, torch.Tensor]]) -> None:
                inp = inputs[u]
                for i, cont in groups[inp]:
                    results[i] = _score_continuation(segments, len(inp) - len(cont), cont)
                bar.update(len(groups[inp]))

            score(self, inputs, plan(inputs, need), self.prefix_cache, emit)
        return results  # type: ignore[return-value]

    def fork_cache(self, cache: Any) -> Any:
        """An independent copy of ``cache`` to extend (a backend may share the tensors)."""
        return copy.deepcopy(cache)

    def apply_chat_template(self, messages: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        """The checkpoint's fine-tuned format, else its own chat template, else ChatML."""
        from ..prompts import apply_chat_template

        return apply_chat_template(self, messages, add_generation_prompt)

    def token_logprobs(self, text: str, top_k: int = 0, start: int = 0) -> list:
        from .logprobs import token_logprobs

        return token_logprobs(self, text, top_k, start)

    def next_token_logprobs(self, prompt: str, k: int) -> list[tuple[str, float]]:
        from .logprobs import next_token_logprobs

        return next_token_logprobs(self, prompt, k)

    def count_tokens(self, text: str) -> int:
        return len(self.tok_encode(text, add_special=False))

    # ---- training (harness finetune) -------------------------------------------------
    def trainable(self) -> tuple[torch.nn.Module, Any, int] | None:
        """``(module, tokenizer with encode/eot_id/bos_id/add_bos, context length)``, or None."""
        return None

    def save(self, module: torch.nn.Module, out: Path, extra: dict[str, Any]) -> None:
        """Write ``module`` (this model's trained weights) as a loadable checkpoint dir ``out``."""
        raise NotImplementedError(f"{type(self).__name__} cannot save checkpoints")

    # ---- generate ----------------------------------------------------------------
    def generate(self, requests: list[GenerateRequest], progress: bool = True) -> list[str]:
        prompts = [self.tok_encode(r.prompt) or [self.prefix_id] for r in requests]
        order = sorted(range(len(requests)), key=lambda i: (-len(prompts[i]), i))
        out: list[str] = [""] * len(requests)
        with torch.inference_mode(), tqdm(total=len(requests), disable=not progress,
                                          desc="generate") as bar:
            for start in range(0, len(order), self.batch_size):
                ids = order[start:start + self.batch_size]
                texts = self._generate_batch([requests[i] for i in ids], [prompts[i] for i in ids])
                for i, t in zip(ids, texts):
                    out[i] = t
                bar.update(len(ids))
        return out

    def max_new_tokens(self, request: GenerateRequest) -> int:
        """``max_tokens``, less what the context window cannot hold after the prompt."""
        return _budget(request.max_tokens, len(self.tok_encode(request.prompt) or [self.prefix_id]), self.max_length)

    def _generate_batch(self, reqs: list[GenerateRequest], prompts: list[list[int]]) -> list[str]:
        new: list[list[int]] = [[] for _ in reqs]
        for step in self._decode(reqs, prompts):
            new = step
        return [cut_at_stop(self.tok_decode(t), tuple(s for s in r.stop if s)) for t, r in zip(new, reqs)]

    def stream(self, request: GenerateRequest) -> Iterator[str]:
        """The answer to one request piece by piece, as ``generate`` would give it whole."""
        stops = tuple(s for s in request.stop if s)
        emitted, text = 0, ""
        with torch.inference_mode():
            for new in self._decode([request], [self.tok_encode(request.prompt) or [self.prefix_id]]):
                text = cut_at_stop(self.tok_decode(new[0]), stops)
                safe = len(text) - _held_back(text, stops)
                if safe > emitted:
                    yield text[emitted:safe]
                    emitted = safe
        if len(text) > emitted:
            yield text[emitted:]

    def _decode(self, reqs: list[GenerateRequest], prompts: list[list[int]]) -> Iterator[list[list[int]]]:
        """The decode loop: left-padded batch, KV cache, one seeded generator per request;
        yields every row's new tokens after each step (stop tokens and strings end a row)."""
        L = self.max_length
        budgets = [_budget(r.max_tokens, len(p), L) for r, p in zip(reqs, prompts)]
        prompts = [p[-(L - n):] for p, n in zip(prompts, budgets)]  # cut only a prompt longer than L - 1
        B, P = len(reqs), max(len(p) for p in prompts)
        idx = torch.full((B, P), self.eot_id, dtype=torch.long)
        mask = torch.zeros((B, P), dtype=torch.long)
        for b, p in enumerate(prompts):
            idx[b, P - len(p):] = torch.tensor(p, dtype=torch.long)
            mask[b, P - len(p):] = 1
        pos = (mask.cumsum(1) - 1).clamp(min=0)
        gens = [torch.Generator().manual_seed(DEFAULT_SEED if r.seed is None else r.seed) for r in reqs]
        stops = [tuple(s for s in r.stop if s) for r in reqs]
        new: list[list[int]] = [[] for _ in reqs]
        done = [n == 0 for n in budgets]
        cache = self.new_cache()
        dev = self.device
        step_in, step_pos = idx, pos
        while not all(done):
            logits = self.forward(step_in.to(dev), position_ids=step_pos.clamp(max=L - 1).to(dev),
                                  attention_mask=mask.to(dev), cache=cache, logits_to_keep=1)
            last = logits[:, -1].float().cpu()
            nxt = torch.full((B,), self.eot_id, dtype=torch.long)
            for b, r in enumerate(reqs):
                if done[b]:
                    continue
                if r.temperature > 0:
                    probs = torch.softmax(last[b] / r.temperature, dim=-1)
                    tok = int(torch.multinomial(probs, 1, generator=gens[b]))
                else:
                    tok = int(last[b].argmax())
                if tok in self.stop_ids:
                    done[b] = True
                    continue
                nxt[b] = tok
                new[b].append(tok)
                if len(new[b]) >= budgets[b] or (stops[b] and _has_stop(self.tok_decode(new[b]), stops[b])):
                    done[b] = True
            yield new
            step_in = nxt[:, None]
            step_pos = step_pos[:, -1:] + 1
            mask = torch.cat([mask, torch.ones((B, 1), dtype=torch.long)], dim=1)


def _budget(max_tokens: int, n_prompt: int, context: int) -> int:
    """New tokens for a prompt of ``n_prompt`` tokens: the prompt wins over ``max_tokens``
    (never cut to make room); only a prompt that alone overflows the window keeps 1 new token."""
    return max(1, min(max_tokens, context - n_prompt)) if max_tokens > 0 else 0


def _score_continuation(segments: list[tuple[int, torch.Tensor]], first: int,
                        cont: list[int]) -> LoglikelihoodResult:
    """Sum of the log-probs of ``cont`` at positions ``first..`` from the path's log-softmax rows."""
    values, hits = [], []
    end = first + len(cont)
    for lo, rows in segments:
        a, b = max(first, lo), min(end, lo + len(rows))
        if a >= b:
            continue
        target = torch.tensor(cont[a - first:b - first], dtype=torch.long)
        part = rows[a - lo:b - lo]
        values.append(part.gather(1, target[:, None])[:, 0])
        hits.append(part.argmax(-1) == target)
    return LoglikelihoodResult(float(torch.cat(values).sum()), bool(torch.cat(hits).all()))


def _has_stop(text: str, stops: tuple[str, ...]) -> bool:
    return any(s in text for s in stops)


def _held_back(text: str, stops: Sequence[str]) -> int:
    """How many trailing chars might start a stop string or a split UTF-8 sequence."""
    hold = 1 if text.endswith("\ufffd") else 0
    for s in stops:
        for k in range(min(len(s) - 1, len(text)), 0, -1):
            if text.endswith(s[:k]):
                hold = max(hold, k)
                break
    return hold
