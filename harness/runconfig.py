"""What one evaluation run was asked to do (``RunConfig``), as results.json records it."""
from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .distributed import SINGLE, Dist
from .suite import Selection


@dataclass
class RunConfig:
    suite: list[Selection]
    out: Path
    model: str | None = None  # None: the embedded default model
    base: str | None = None
    limit: int | None = None
    limits: dict[str, int] = field(default_factory=dict)  # per benchmark, overrides limit
    num_fewshot: int | None = None
    seed: int = 1234
    batch_size: int = 8
    device: str = "cpu"
    data_dirs: dict[str, str] = field(default_factory=dict)
    full: bool = False
    options: dict[str, dict[str, Any]] = field(default_factory=dict)  # benchmark -> options
    allow_code_execution: bool = False
    allow_weak_sandbox: bool = False
    progress: bool = True
    report: bool = True
    command: list[str] = field(default_factory=list)
    model_args: dict[str, Any] = field(default_factory=dict)  # backend options: part of the cache key
    base_args: dict[str, Any] = field(default_factory=dict)
    cache: Path | None = None  # the request cache (harness/cache.py); None: no cache
    previous: dict[str, Any] | None = None  # --merge: the run's results so far
    dist: Dist = SINGLE  # torchrun: this process's rank
    apply_chat_template: bool = False  # every prompt through each model's chat template (lm-eval's flag)
    system_instruction: str | None = None  # the system turn with apply_chat_template


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def config_dict(c: RunConfig) -> dict[str, Any]:
    """results.json ``config``: what the run was asked (compared by --resume and --merge)."""
    return {"model": c.model, "base": c.base, "model_args": c.model_args, "base_args": c.base_args,
            "suite": [asdict(s) for s in c.suite], "limit": c.limit, "limits": c.limits, "num_fewshot": c.num_fewshot,
            "seed": c.seed, "batch_size": c.batch_size, "device": c.device, "full": c.full,
            "data_dirs": c.data_dirs, "options": c.options, "cache": str(c.cache) if c.cache else None,
            **({"apply_chat_template": True, "system_instruction": c.system_instruction}
               if c.apply_chat_template else {})}
