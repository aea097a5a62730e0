"""What a fine-tuning run needs from the machine, checked before it is spent.

* ``--out`` must be a writable directory (checked before the model loads);
* memory: weights, gradients, AdamW moments and activations, estimated from the
  model's size, the batch size and the sequence length against the RAM available
  now, so a run that cannot fit fails in one line, and the default ``--max-length``
  is the longest that fits rather than the model's context (8,192 for SmolLM2);
* disk: the free space is checked before each checkpoint or state write, and a
  write that fails anyway (quota, file-size limit) becomes one line too.

The memory model was calibrated on GPT-2-shaped modules (peak RSS of one
forward, backward and AdamW step, fp32, SDPA attention): ~3 float32 copies of the
logits per token (logits, log-softmax, their gradient) plus ~70 bytes per token,
layer and hidden unit; it errs on the large side by 10-50 %.
"""
from __future__ import annotations

import errno
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import torch

from ..errors import HarnessError
from .collate import Encoded
from .config import TrainConfig

MEMORY_SHARE = 0.8  # of the available RAM a run may plan to use
RUNTIME_BYTES = 256 << 20  # torch itself, the tokenizer, the data
DISK_MARGIN = 16 << 20


def gb(n: float) -> str:
    return f"{n / 1e9:.1f} GB"


def available_memory() -> int | None:
    """Bytes of RAM available now: MemAvailable, capped by a cgroup v2 limit; None if unknown."""
    avail: int | None = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                avail = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    if avail is None:
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            return None
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text().strip())
        if limit != "max":
            avail = min(avail, int(limit) - used)
    except (OSError, ValueError):
        pass
    return avail


def model_shape(module: torch.nn.Module) -> tuple[int, int, int]:
    """``(vocab, hidden, layers)`` from the largest embedding and the other parameters' count
    (a transformer layer holds ~12 * hidden^2 parameters)."""
    embs = [m for m in module.modules() if isinstance(m, torch.nn.Embedding)]
    if not embs:
        n = sum(p.numel() for p in module.parameters())
        return 0, max(1, int((n / 12) ** 0.5)), 1
    vocab, hidden = max(embs, key=lambda m: m.num_embeddings).weight.shape
    body = sum(p.numel() for p in module.parameters() if set(p.shape) != {vocab, hidden}
               and not (p.dim() == 2 and vocab in p.shape))
    return int(vocab), int(hidden), max(1, round(body / (12 * hidden * hidden)))


def training_bytes(module: torch.nn.Module, n_trainable: int, batch: int, length: int) -> int:
    """Estimated peak bytes of one training step in float32 (see the module docstring)."""
    vocab, hidden, layers = model_shape(module)
    n_params = sum(p.numel() for p in module.parameters())
    static = 4 * n_params + 20 * n_trainable  # weights; grads, AdamW m and v, the best copy
    per_token = 12 * vocab + 72 * hidden * layers
    return RUNTIME_BYTES + static + batch * length * per_token


def fit_length(module: torch.nn.Module, n_trainable: int, batch: int, want: int,
               available: int | None) -> int:
    """The longest sequence <= ``want`` whose training step fits ``available`` RAM.

    Raises a one-line HarnessError when not even 32 tokens fit.
    """
    if available is None:
        return want
    budget = MEMORY_SHARE * available
    if training_bytes(module, n_trainable, batch, want) <= budget:
        return want
    lo, hi = 0, want
    while lo < hi:  # the largest length with training_bytes <= budget
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if training_bytes(module, n_trainable, batch, mid) <= budget else (lo, mid - 1)
    if lo < 32:
        need = training_bytes(module, n_trainable, batch, min(want, 32))
        raise HarnessError(f"not enough memory: batch {batch} x 32 tokens needs about {gb(need)}, "
                           f"{gb(available)} available; lower --batch-size (or use --lora-rank)")
    return lo


def check_memory(module: torch.nn.Module, n_trainable: int, batch: int, length: int,
                 available: int | None) -> None:
    """One line naming what to lower when ``batch x length`` cannot fit."""
    if available is None:
        return
    need = training_bytes(module, n_trainable, batch, length)
    if need > MEMORY_SHARE * available:
        raise HarnessError(f"not enough memory: batch {batch} x {length} tokens needs about {gb(need)}, "
                           f"{gb(available)} available; lower --max-length or --batch-size "
                           "(or use --lora-rank)")


def trainable_count(module: torch.nn.Module, lora_rank: int) -> int:
    """Parameters a run will train: all, or LoRA's A and B on every linear layer (an upper bound)."""
    if not lora_rank:
        return sum(p.numel() for p in module.parameters())
    return sum(lora_rank * (m.in_features + m.out_features) for m in module.modules()
               if isinstance(m, torch.nn.Linear))


def resolve_max_length(cfg: TrainConfig, resumed_config: Path | None, module: torch.nn.Module, ctx: int,
                       data: Sequence[Encoded]) -> int:
    """``--max-length``, else the longest that fits in RAM (at most the context); checked against RAM.

    A resumed run keeps the length it started with (``resumed_config``), so it truncates the same way.
    """
    if resumed_config is not None:
        saved = json.loads(resumed_config.read_text(encoding="utf-8")).get("resolved_max_length")
        if isinstance(saved, int):
            return saved
    longest = max((len(e.ids) for e in data), default=1)
    n_trainable, available = trainable_count(module, cfg.lora_rank), available_memory()
    if cfg.max_length:
        length = min(cfg.max_length, ctx)
        check_memory(module, n_trainable, cfg.batch_size, min(length, longest), available)
        return length
    fit = fit_length(module, n_trainable, cfg.batch_size, min(ctx, longest), available)
    return ctx if fit >= longest else fit


def check_disk(path: Path, need: int) -> None:
    """Fail in one line, before writing, when ``path``'s file system has less than ``need`` bytes free."""
    try:
        free = shutil.disk_usage(path if path.exists() else path.parent).free
    except OSError:
        return
    if free < need + DISK_MARGIN:
        raise HarnessError(f"{path}: not enough disk space to write {gb(need + DISK_MARGIN)} "
                           f"({gb(free)} free); free some space or choose another --out")


def tensor_bytes(tensors: object) -> int:
    """Bytes of the tensors in a (nested) dict/list/tuple."""
    if isinstance(tensors, torch.Tensor):
        return tensors.numel() * tensors.element_size()
    if isinstance(tensors, dict):
        return sum(tensor_bytes(v) for v in tensors.values())
    if isinstance(tensors, (list, tuple)):
        return sum(tensor_bytes(v) for v in tensors)
    return 0


def write_error(path: Path, e: Exception) -> HarnessError:
    """A failed checkpoint write as one line. Full disks, quotas and file-size limits reach us
    as OSError, or as safetensors' error carrying the OS message; anything else keeps its text."""
    text = (e.strerror if isinstance(e, OSError) and e.strerror else str(e)).splitlines()[0][:160]
    full = (isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)) or any(
        f"os error {n})" in text for n in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG))
    hint = "free some space or choose another --out" if full else "check the directory"
    return HarnessError(f"{path}: write failed ({text}); {hint} (the last complete training state is kept; "
                        "continue with --resume)")
