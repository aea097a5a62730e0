"""Cross-entropy for training, with a leaner backward than ``F.cross_entropy``.

With a 50k vocabulary the loss is memory-bound: ``F.cross_entropy``'s backward fills a
zero ``[N, V]`` matrix for the NLL gradient, then log-softmax's backward reads it and the
saved log-probabilities to write a third. Here the backward turns the saved
log-probabilities into the gradient in place (``softmax - one_hot``): the same values
(to float rounding) in about 60% of the time, measured on ``[680, 50257]`` on 2 cores.
"""
from __future__ import annotations

from typing import Any

import torch

from .collate import IGNORE_INDEX


class _SummedCrossEntropy(torch.autograd.Function):
    """Sum over rows of ``-log_softmax(logits)[target]``; rows with ``ignore_index`` count 0."""

    @staticmethod
    def forward(ctx: Any, logits: torch.Tensor, target: torch.Tensor, ignore_index: int) -> torch.Tensor:
        logp = torch.log_softmax(logits, dim=-1)
        valid = target != ignore_index
        safe = torch.where(valid, target, 0)
        ctx.save_for_backward(logp, safe, valid)
        return -(logp.gather(1, safe[:, None])[:, 0] * valid).sum()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        logp, safe, valid = ctx.saved_tensors
        out = logp.exp_()  # the saved tensor is not needed again (a second backward is an error)
        out[torch.arange(len(safe)), safe] -= 1.0
        out.mul_((grad * valid)[:, None].to(out.dtype))
        return out, None, None


def cross_entropy(logits: torch.Tensor, target: torch.Tensor, reduction: str = "mean",
                  ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """``F.cross_entropy(logits [N, V], target [N])`` for ``reduction`` "sum" or "mean" (over
    the rows whose target is not ``ignore_index``, NaN if there are none, as torch)."""
    total = _SummedCrossEntropy.apply(logits, target, ignore_index)
    if reduction == "sum":
        return total
    if reduction == "mean":
        return total / (target != ignore_index).sum()
    raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")
