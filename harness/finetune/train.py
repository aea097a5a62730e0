"""The training loop: AdamW, warm-up + cosine schedule, clipping, accumulation, evaluation,
early stopping, and exact resumption.

Everything that decides the next update lives in :class:`Progress` plus the
optimizer/scheduler/RNG states saved by :mod:`.state`, and the data order of an epoch
is a pure function of ``(seed, epoch)``. So a run killed at any point and resumed
from its last checkpoint replays exactly the same updates as one that never stopped
(bit-identical on the same machine and thread count).
"""
from __future__ import annotations

import contextlib
import inspect
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from tqdm.auto import tqdm

from ..errors import HarnessError
from .collate import IGNORE_INDEX, Encoded, batches, collate, length_grouped_batches
from .config import TrainConfig  # noqa: F401 (imported from here by the runner, tests and bench)
from .distributed import Ranks, wrap
from .loss import cross_entropy


@dataclass
class Progress:
    """Where the run is: the next micro-batch is ``batch`` of epoch ``epoch``."""

    epoch: int = 0
    batch: int = 0
    step: int = 0
    tokens: int = 0
    loss_sum: float = 0.0  # train loss since the last evaluation
    loss_n: int = 0
    best_val: float | None = None
    best_step: int | None = None
    bad_evals: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    stopped_early: bool = False
    finished: bool = False
    elapsed: float = 0.0


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """The shuffled order of epoch ``epoch``: depends on nothing else, so resume can rebuild it."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g).tolist()


def _takes(fn: Callable[..., Any], name: str) -> bool:
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def lr_factor(step: int, total: int, warmup: int, min_frac: float) -> float:
    """Linear warm-up to 1 over ``warmup`` steps, then cosine decay to ``min_frac``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_frac + (1.0 - min_frac) * 0.5 * (1.0 + math.cos(math.pi * progress))


def make_optimizer(module: torch.nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW; weight decay on matrices only (biases and norm gains are not decayed)."""
    params = [p for p in module.parameters() if p.requires_grad]
    if not params:
        raise HarnessError("nothing to train: the model has no trainable parameters")
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    groups = [g for g in groups if g["params"]]
    try:  # one fused kernel for all parameters (CPU too): the per-parameter loop was ~15% of a small model's step
        return torch.optim.AdamW(groups, lr=cfg.learning_rate, fused=True)
    except (RuntimeError, TypeError):  # a dtype or device the fused kernel does not take
        return torch.optim.AdamW(groups, lr=cfg.learning_rate)


class Trainer:
    """Runs :class:`TrainConfig` on pre-encoded data; calls ``on_eval(self)`` after each
    evaluation on rank 0 (the runner writes metrics and checkpoints there).

    With ``ranks.world > 1`` (torchrun) the module is wrapped in DistributedDataParallel
    and each optimizer step takes ``grad_accum x world`` micro-batches, ``grad_accum`` per
    rank: the same updates as one process with ``grad_accum x world``.
    """

    def __init__(self, cfg: TrainConfig, forward: Callable[[torch.Tensor], torch.Tensor],
                 module: torch.nn.Module, eot_id: int, train: Sequence[Encoded], val: Sequence[Encoded],
                 max_length: int, on_eval: Callable[[Trainer], None] = lambda t: None,
                 log: Callable[[str], None] = print, progress_bar: bool = True, ranks: Ranks | None = None) -> None:
        ranks = ranks or Ranks()
        self.cfg, self.forward, self.module, self.eot_id, self.ranks = cfg, forward, module, eot_id, ranks
        self.ddp = wrap(module, ranks, cfg.device) if ranks.world > 1 else None
        self.train_data, self.val_data, self.max_length = list(train), list(val), max_length
        self.on_eval, self.log, self.progress_bar = on_eval, log, progress_bar
        self.params = [p for p in module.parameters() if p.requires_grad]
        self.logits_at = _takes(forward, "logits_at") and _takes(module.forward, "logits_at")
        self.optimizer = make_optimizer(module, cfg)
        self.n_batches = math.ceil(len(self.train_data) / cfg.batch_size)
        self.per_step = cfg.grad_accum * ranks.world  # micro-batches per optimizer step, all ranks
        self.steps_per_epoch = math.ceil(self.n_batches / self.per_step)
        self.total_steps = cfg.epochs * self.steps_per_epoch
        warmup = round(cfg.warmup_frac * self.total_steps) if cfg.warmup_frac > 0 else 0
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: lr_factor(s, self.total_steps, warmup, cfg.min_lr_frac))
        self.p = Progress()
        self.best_state: dict[str, torch.Tensor] | None = None
        self.best_changed = False
        self.last_lr = 0.0
        self._cached: tuple[int, list[list[Encoded]]] = (-1, [])
        self._val_batches: list[tuple[torch.Tensor, torch.Tensor]] | None = None

    # ---- losses -------------------------------------------------------------------
    def _batch(self, items: Sequence[Encoded]) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = collate(items, self.eot_id, self.max_length, self.cfg.mask_instruction)
        return x.to(self.cfg.device), y.to(self.cfg.device)

    def _loss(self, x: torch.Tensor, y: torch.Tensor, reduction: str = "mean", train: bool = False) -> torch.Tensor:
        device_type = torch.device(self.cfg.device).type
        call = self.ddp if train and self.ddp is not None else self.forward
        kw = {}
        if self.logits_at:  # the LM head and the softmax only where a target is (no padding, no masked prompt)
            kw["logits_at"] = at = y != IGNORE_INDEX
            y = y[at]
        with torch.autocast(device_type, dtype=torch.bfloat16, enabled=self.cfg.bf16):
            logits = call(x, **kw)
        logits = getattr(logits, "logits", logits)  # DDP around a transformers model returns its output
        return cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), y.flatten(), reduction)

    @torch.no_grad()
    def mean_loss(self, data: Sequence[Encoded], max_batches: int | None = None) -> float | None:
        """Token-weighted mean loss over ``data``, in eval mode; each rank takes every world-th batch.

        The validation batches are collated once, longest texts together (no padding to
        recompute at every evaluation).
        """
        if not data:
            return None
        if data is self.val_data:
            if self._val_batches is None:
                order = sorted(range(len(data)), key=lambda i: -len(data[i].ids))
                self._val_batches = [self._batch(b) for b in batches(data, order, self.cfg.batch_size)]
            todo = self._val_batches
        else:
            todo = [self._batch(b) for b in batches(data, range(len(data)), self.cfg.batch_size)[:max_batches]]
        self.module.eval()
        total, count = 0.0, 0
        for x, y in todo[self.ranks.rank::self.ranks.world]:
            total += float(self._loss(x, y, reduction="sum"))
            count += int((y != IGNORE_INDEX).sum())
        self.module.train()
        total, count = self.ranks.sum([total, count])
        return total / count if count else None

    # ---- the loop -----------------------------------------------------------------
    def evaluate(self) -> dict[str, Any]:
        p = self.p
        if p.loss_n:
            train_loss: float | None = p.loss_sum / p.loss_n
        else:  # step 0: the untrained model on the first training batches
            first = [self.train_data[i] for i in epoch_order(len(self.train_data), self.cfg.seed, 0)]
            train_loss = self.mean_loss(first, max_batches=2)
        val_loss = self.mean_loss(self.val_data)
        self._check_finite(train_loss, "training loss", p.step)
        self._check_finite(val_loss, "validation loss", p.step)
        if not all(bool(torch.isfinite(t).all()) for t in self.params):
            self._check_finite(math.nan, "weights", p.step)
        done = p.epoch + p.batch / max(1, self.n_batches)
        rec = {"step": p.step, "epoch": round(done, 4), "tokens": p.tokens, "train_loss": train_loss,
               "val_loss": val_loss, "lr": self.last_lr}
        p.history.append(rec)
        p.loss_sum, p.loss_n = 0.0, 0
        self.best_changed = False
        if p.step > 0 and val_loss is not None:  # step 0 is the reference, not a candidate
            if p.best_val is None or val_loss < p.best_val:
                p.best_val, p.best_step, p.bad_evals = val_loss, p.step, 0
                self.best_state = {n: t.detach().cpu().clone() for n, t in self.trainable_state().items()}
                self.best_changed = True
            else:
                p.bad_evals += 1
                if self.cfg.patience and p.bad_evals >= self.cfg.patience:
                    p.stopped_early = True
        if self.ranks.main:
            self.on_eval(self)
        return rec

    def _micro_batches(self, group: list[list[Encoded]]) -> tuple[float, int]:
        """Forward and backward this rank's share of a step's micro-batches; returns the step's
        summed micro-batch losses and input tokens over all ranks.

        The gradient is the mean over the group's micro-batches. Under DDP (which averages
        over ranks) each loss is weighted by ``world / len(group)`` and only the last
        backward synchronises; a rank left without a micro-batch (a short last group)
        contributes one with weight 0, as every rank must join the all-reduce.
        """
        world = self.ranks.world
        mine = group[self.ranks.rank::world]
        loss_sum, tokens = 0.0, 0
        for i, items in enumerate(mine or group[:1]):
            x, y = self._batch(items)
            last = i == max(len(mine), 1) - 1
            with self.ddp.no_sync() if self.ddp is not None and not last else contextlib.nullcontext():
                loss = self._loss(x, y, train=True)
                (loss * world / len(group) if mine else loss * 0.0).backward()
            if mine:
                loss_sum += loss.item()
                tokens += x.numel()
        loss_sum, n = self.ranks.sum([loss_sum, tokens])
        return loss_sum, int(n)

    def _check_finite(self, value: float | None, what: str, step: int) -> None:
        """A NaN/inf loss stops the run before anything of it is saved or called best."""
        if value is not None and not math.isfinite(value):
            raise HarnessError(f"step {step}: the {what} is {value} (not finite), so training stopped "
                               f"and nothing of this step was kept; lower --lr (was {self.cfg.learning_rate:g}) "
                               "or check the data")

    def _epoch_batches(self, epoch: int) -> list[list[Encoded]]:
        if self._cached[0] != epoch:
            order = epoch_order(len(self.train_data), self.cfg.seed, epoch)
            if self.cfg.group_by_length:
                grouped = length_grouped_batches(self.train_data, order, self.cfg.batch_size,
                                                 self.cfg.seed * 1_000_003 + epoch + 1)
                self._cached = (epoch, grouped)
            else:
                self._cached = (epoch, batches(self.train_data, order, self.cfg.batch_size))
        return self._cached[1]

    def trainable_state(self) -> dict[str, torch.Tensor]:
        return {n: t for n, t in self.module.named_parameters() if t.requires_grad}

    def run(self) -> Progress:
        """Train until the last epoch ends or early stopping triggers; resumable from ``self.p``."""
        cfg, p = self.cfg, self.p
        self.module.train()
        if not p.history:
            self.evaluate()
        bar = tqdm(total=self.total_steps, initial=p.step, disable=not (self.progress_bar and self.ranks.main),
                   desc="finetune",
                   unit="step", dynamic_ncols=True)
        start = time.monotonic() - p.elapsed
        try:
            while p.epoch < cfg.epochs and not p.stopped_early:
                groups = self._epoch_batches(p.epoch)
                group = groups[p.batch:p.batch + self.per_step]
                self.optimizer.zero_grad(set_to_none=True)
                step_loss, tokens = self._micro_batches(group)
                p.tokens += tokens
                self._check_finite(step_loss, "training loss", p.step + 1)
                if cfg.grad_clip > 0:
                    norm = torch.nn.utils.clip_grad_norm_(self.params, cfg.grad_clip)
                    self._check_finite(float(norm), "gradient norm", p.step + 1)
                p.loss_sum += step_loss
                p.loss_n += len(group)
                self.last_lr = self.optimizer.param_groups[0]["lr"]
                self.optimizer.step()
                self.scheduler.step()
                p.step += 1
                p.batch += len(group)
                end_of_epoch = p.batch >= len(groups)
                if end_of_epoch:
                    p.epoch, p.batch = p.epoch + 1, 0
                bar.update(1)
                bar.set_postfix(loss=f"{p.loss_sum / max(1, p.loss_n):.3f}")
                if p.step % cfg.eval_every == 0 or end_of_epoch:
                    p.elapsed = time.monotonic() - start
                    self.evaluate()
        finally:
            bar.close()
        p.elapsed = time.monotonic() - start
        p.finished = True
        return p
