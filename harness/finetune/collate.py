"""Tokenising examples and collating them into padded ``(inputs, targets)`` batches.

The batch semantics are LLMs-from-scratch ch07's ``custom_collate_fn``: append one
end-of-text token to every sequence, pad with it to the batch's longest + 1, take
``inputs = padded[:-1]`` and ``targets = padded[1:]``, replace the padding after the
first end token in the targets by -100 (so the model learns to stop, once), and
truncate to ``max_length`` last. Two deliberate refinements:

* padding is masked by *position*, not by token value, so an end token that is part
  of the text (ChatML's ``<|im_end|>`` is SmolLM2's end token) is still learnt;
  for texts without one this is identical to ch07;
* a text that already ends with the end token gets no second one.

With ``mask_instruction`` (ch07 exercise 7.2) every target that predicts a prompt
token, up to and including the response marker, is -100 as well.

Prompt and answer are tokenised separately and concatenated, so the prompt tokens
in training are exactly those the model sees at inference (BPE could otherwise
merge across the boundary).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import torch

from ..prompts import Example, PromptFormat

IGNORE_INDEX = -100


class TokenizerLike(Protocol):
    eot_id: int
    bos_id: int | None
    add_bos: bool

    def encode(self, text: str) -> list[int]: ...


@dataclass
class Encoded:
    """Token ids of one full text and how many of them are the prompt (BOS included)."""

    ids: list[int]
    prompt_len: int
    index: int = 0


def encode_example(tokenizer: TokenizerLike, fmt: PromptFormat, ex: Example) -> Encoded:
    prompt, full = fmt.texts(ex)
    bos = [tokenizer.bos_id] if getattr(tokenizer, "add_bos", False) and tokenizer.bos_id is not None else []
    p = bos + tokenizer.encode(prompt)
    return Encoded(ids=p + tokenizer.encode(full[len(prompt):]), prompt_len=len(p), index=ex.index)


def encode_examples(tokenizer: TokenizerLike, fmt: PromptFormat, examples: Sequence[Example]) -> list[Encoded]:
    return [encode_example(tokenizer, fmt, ex) for ex in examples]


def collate(batch: Sequence[Encoded], eot_id: int, max_length: int | None = None,
            mask_instruction: bool = False, ignore_index: int = IGNORE_INDEX) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad a batch to ``(inputs, targets)`` LongTensors of shape ``[B, min(L, max_length)]``."""
    items = [e.ids if e.ids and e.ids[-1] == eot_id else e.ids + [eot_id] for e in batch]
    width = max(len(it) for it in items)  # the longest text + its end token
    inputs, targets = [], []
    for enc, item in zip(batch, items):
        padded = item + [eot_id] * (width - len(item))
        x = torch.tensor(padded[:-1], dtype=torch.long)
        y = torch.tensor(padded[1:], dtype=torch.long)
        y[len(item) - 1:] = ignore_index  # padding after the (first) end token
        if mask_instruction:
            y[:max(enc.prompt_len - 1, 0)] = ignore_index
        if max_length is not None:
            x, y = x[:max_length], y[:max_length]
        inputs.append(x)
        targets.append(y)
    return torch.stack(inputs), torch.stack(targets)


def batches(data: Sequence[Encoded], order: Sequence[int], batch_size: int) -> list[list[Encoded]]:
    """Consecutive batches of ``data`` in ``order`` (the last one may be short)."""
    return [[data[i] for i in order[s:s + batch_size]] for s in range(0, len(order), batch_size)]


def length_grouped_batches(data: Sequence[Encoded], order: Sequence[int], batch_size: int, seed: int,
                           mega: int = 50) -> list[list[Encoded]]:
    """Batches of similar lengths, so little padding is computed, in a still random order.

    As transformers' ``LengthGroupedSampler``: ``order`` is cut into chunks of ``mega``
    batches, each chunk sorted longest first and cut into batches, and the batches are
    shuffled with ``seed``. Only the last batch may be short.
    """
    out: list[list[Encoded]] = []
    step = batch_size * mega
    for s in range(0, len(order), step):
        chunk = sorted(order[s:s + step], key=lambda i: -len(data[i].ids))
        out += [[data[i] for i in chunk[j:j + batch_size]] for j in range(0, len(chunk), batch_size)]
    short = [b for b in out if len(b) < batch_size]
    full = [b for b in out if len(b) == batch_size]
    perm = torch.randperm(len(full), generator=torch.Generator().manual_seed(seed)).tolist()
    return [full[i] for i in perm] + short
