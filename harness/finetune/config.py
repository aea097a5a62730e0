"""The hyper-parameters of a fine-tuning run (saved as ``OUT/train_config.json``)."""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import HarnessError


@dataclass
class TrainConfig:
    """Hyper-parameters (saved as train_config.json). ``lr=None`` picks 5e-5 for full
    fine-tuning (LLMs-from-scratch ch07) and 2e-4 with LoRA (adapters start at zero and
    need larger steps)."""

    model: str | None = None
    data: str | None = None
    format: str | None = None
    template: str | None = None
    limit: int | None = None
    val_frac: float = 0.05
    test_frac: float = 0.10
    epochs: int = 1
    lr: float | None = None
    batch_size: int = 8
    grad_accum: int = 1
    max_length: int | None = None  # None: the longest that fits in RAM, at most the context length
    group_by_length: bool = True  # batches of similar lengths (little padding); False: plain shuffled batches
    mask_instruction: bool = False
    eval_every: int = 10  # optimizer steps
    patience: int = 3  # evaluations without improvement before stopping; 0: never stop early
    seed: int = 123
    weight_decay: float = 0.1
    warmup_frac: float = 0.1
    min_lr_frac: float = 0.1
    grad_clip: float = 1.0
    lora_rank: int = 0  # 0: full fine-tuning
    lora_alpha: float | None = None  # None: 2 * rank
    lora_targets: str = "all"
    device: str = "cpu"
    bf16: bool = False  # bfloat16 autocast for the forward pass (fp32 master weights)
    test_max_tokens: int = 256

    def validate(self) -> None:
        for name in ("epochs", "batch_size", "grad_accum", "eval_every"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise HarnessError(f"--{name.replace('_', '-')} must be a positive integer (got {v})")
        for name in ("patience", "lora_rank", "test_max_tokens"):
            if getattr(self, name) < 0:
                raise HarnessError(f"--{name.replace('_', '-')} must be 0 or more (got {getattr(self, name)})")
        if self.lr is not None and not (self.lr > 0 and math.isfinite(self.lr)):
            raise HarnessError(f"--lr must be a positive finite number (got {self.lr})")
        if self.max_length is not None and self.max_length < 2:
            raise HarnessError(f"--max-length must be at least 2 (got {self.max_length})")
        if self.limit is not None and self.limit < 1:
            raise HarnessError(f"--limit must be a positive integer (got {self.limit})")

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else (2e-4 if self.lora_rank else 5e-5)

    @property
    def alpha(self) -> float:
        return self.lora_alpha if self.lora_alpha is not None else 2.0 * self.lora_rank
