"""What the engine lends a benchmark while it runs: the judge, the sandbox, paths, options."""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..errors import HarnessError
from .model import Model

ALLOW_CODE_ENV = "HARNESS_ALLOW_CODE_EXECUTION"


class SandboxResult(Protocol):
    status: str  # "passed" | "failed" | "timed_out" | "killed" | ...
    reason: str
    duration_s: float

    @property
    def passed(self) -> bool: ...

    def to_dict(self) -> dict[str, Any]: ...


class CodeSandbox(Protocol):
    """Runs untrusted programs (harness.sandbox.Sandbox is the implementation)."""

    mode: str  # "bwrap" | "weak": how strongly programs are isolated

    def run(self, code: str) -> SandboxResult: ...

    def run_many(self, codes: Sequence[str], workers: int | None = None,
                 progress: bool = False) -> Iterable[SandboxResult]: ...


@dataclass
class RunContext:
    out_dir: Path | None = None
    seed: int = 1234
    allow_code_execution: bool = False  # --allow-code-execution / HARNESS_ALLOW_CODE_EXECUTION=1
    allow_weak_sandbox: bool = False  # rlimit-only mode when no namespace tool exists
    progress: bool = True
    options: dict[str, Any] = field(default_factory=dict)
    judge_factory: Callable[[], Model] | None = None  # built lazily: most suites need no judge
    sandbox_factory: Callable[..., CodeSandbox] | None = None  # (timeout_s=, allow_weak=) -> sandbox
    _judge: Model | None = None

    @property
    def judge(self) -> Model | None:
        if self._judge is None and self.judge_factory is not None:
            self._judge = self.judge_factory()
        return self._judge

    def code_execution_allowed(self) -> bool:
        return self.allow_code_execution or os.environ.get(ALLOW_CODE_ENV, "").lower() in ("1", "true", "yes", "on")

    def sandbox(self, timeout_s: float = 3.0, what: str = "this benchmark",
                flag: str = "--allow-code-execution") -> CodeSandbox:
        """A sandbox for model-generated code; refuses (HarnessError) without the user's opt-in."""
        if not self.code_execution_allowed():
            raise HarnessError(f"{what} runs model-generated code (in a sandbox); allow it with "
                               f"{flag} or {ALLOW_CODE_ENV}=1")
        if self.sandbox_factory is None:
            raise HarnessError(f"{what}: no sandbox is available in this context")
        return self.sandbox_factory(timeout_s=timeout_s, allow_weak=self.allow_weak_sandbox)
