"""Per-token log-probabilities of a text for token-level backends (what ``harness serve`` returns
for ``logprobs``/``echo``): one forward pass, the same tokenisation and left truncation as
``TokenLM.loglikelihood``."""
from __future__ import annotations

from typing import Any

import torch

Token = tuple[str, int, "float | None", list]  # text, char offset, logprob (None: first), top [(tok, lp)]


def _token_texts(model: Any, ids: list[int], text: str) -> list[tuple[str, int]]:
    """(token text, char offset) per id, exact when the ids decode back to ``text``."""
    enc = getattr(getattr(model, "tokenizer", None), "encoding", None)
    if enc is not None and hasattr(enc, "decode_with_offsets"):
        decoded, offs = enc.decode_with_offsets(ids)
        if decoded == text:
            ends = offs[1:] + [len(text)]
            return [(text[a:b], a) for a, b in zip(offs, ends)]
    parts = [model.tok_decode([i]) for i in ids]
    out, pos = [], 0
    for part in parts:
        out.append((part, pos))
        pos += len(part)
    return out


def token_logprobs(model: Any, text: str, top_k: int, start_char: int) -> list[Token]:
    """The tokens of ``text`` from character ``start_char`` on, each with its logprob and top-k."""
    plain = model.tok_encode(text, add_special=False)
    ids = model.tok_encode(text)
    lead = len(ids) - len(plain)
    if lead < 0 or ids[lead:] != plain:
        ids, lead = plain, 0
    start = max(0, len(ids) - (model.max_length + 1))  # TokenLM's left truncation
    window = ids[start:]
    rows = lse = tops = None
    if len(window) > 1:
        with torch.inference_mode():
            rows = model.forward(torch.tensor([window[:-1]], dtype=torch.long, device=model.device))[0].float().cpu()
            lse = torch.logsumexp(rows, dim=-1)  # log-softmax without a second vocab-sized matrix
            tops = rows.topk(top_k, dim=-1) if top_k > 0 else None
    out: list[Token] = []
    for k, (tid, (piece, off)) in enumerate(zip(plain, _token_texts(model, plain, text))):
        if off < start_char:
            continue
        r = lead + k - 1 - start
        if rows is None or lse is None or r < 0:
            out.append((piece, off, None, []))
            continue
        top = [] if tops is None else [(model.tok_decode([int(i)]), float(v - lse[r]))
                                       for v, i in zip(tops.values[r], tops.indices[r])]
        out.append((piece, off, float(rows[r, tid] - lse[r]), top))
    return out


def next_token_logprobs(model: Any, prompt: str, k: int) -> list[tuple[str, float]]:
    """Top-k next tokens after ``prompt`` (for a generation that produced nothing)."""
    ids = (model.tok_encode(prompt) or [model.prefix_id])[-model.max_length:]
    with torch.inference_mode():
        logits = model.forward(torch.tensor([ids], dtype=torch.long, device=model.device), logits_to_keep=1)
    top = torch.log_softmax(logits[0, -1].float(), dim=-1).cpu().topk(max(k, 1))
    return [(model.tok_decode([int(i)]), float(v)) for v, i in zip(top.values, top.indices)]
