"""What the engine lends a benchmark while it runs (judge, sandbox opt-in, paths)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .model import Model


@dataclass
class RunContext:
    out_dir: Path | None = None
    seed: int = 1234
    allow_code_execution: bool = False  # --allow-code-execution / HARNESS_ALLOW_CODE_EXECUTION=1
    allow_weak_sandbox: bool = False  # rlimit-only mode when no namespace tool exists
    progress: bool = True
    options: dict[str, Any] = field(default_factory=dict)
    judge_factory: Callable[[], Model] | None = None  # built lazily: most suites need no judge
    _judge: Model | None = None

    @property
    def judge(self) -> Model | None:
        if self._judge is None and self.judge_factory is not None:
            self._judge = self.judge_factory()
        return self._judge
