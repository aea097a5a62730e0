"""``harness.evaluate``: the Python API of ``harness run`` (lm-eval's ``simple_evaluate`` role).

The one path of data: CLI -> :func:`evaluate` -> ``load_model`` -> engine -> plug-ins ->
results -> report. Everything the user typed is checked here, before any model loads.
"""
from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import HarnessError

if TYPE_CHECKING:  # pragma: no cover
    from .api import Model
    from .plugins import Registry

DEFAULT_SUITE = "mmlu,squad"


def default_out(model: str | None) -> Path:
    """``runs/<model name>-<time>``."""
    stem = Path(model.split(":", 1)[-1]).name if model else "smollm2-135m-instruct"
    return Path("runs") / f"{stem}-{datetime.now():%Y%m%d-%H%M%S}"


def resolve_device(device: str) -> str:
    """``--device auto``: cuda when torch sees a GPU, else cpu (torch is imported only for auto)."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def evaluate(model: str | None = None, base: str | None = None, suite: str = DEFAULT_SUITE, *,
             out: str | Path | None = None, limit: int | None = None, limits: dict[str, int] | None = None,
             num_fewshot: int | None = None, batch_size: int = 8, seed: int = 1234, device: str = "cpu",
             data_dirs: dict[str, str] | None = None, full: bool = False,
             options: dict[str, dict[str, Any]] | None = None, model_args: dict[str, Any] | None = None,
             base_args: dict[str, Any] | None = None, judge: str | None = None,
             judge_args: dict[str, Any] | None = None, allow_code_execution: bool = False,
             allow_weak_sandbox: bool = False, progress: bool = True, report: bool = True,
             registry: Registry | None = None, command: list[str] | None = None) -> dict[str, Any]:
    """Evaluate ``model`` (and ``base``) on ``suite``; writes ``out/results.json``, ``out/samples/``
    and (``report``) ``out/index.html``; returns the results dict (see docs/ARCHITECTURE.md)."""
    from .engine import Engine, RunConfig, log
    from .models.loading import resolve
    from .plugins import get_registry
    from .suite import parse_suite

    registry = registry or get_registry()
    selections = parse_suite(suite, registry.benchmarks)
    for name in set(limits or {}) - {s.benchmark for s in selections}:
        raise HarnessError(f"--limit {name}=…: {name!r} is not in --suite {suite}")
    for name in set(options or {}) - {s.benchmark for s in selections}:
        raise HarnessError(f"--option {name}.…: {name!r} is not in --suite {suite}")
    for flag, spec in (("--model", model), ("--base", base)):
        try:
            resolve(spec, registry)  # a bad path or backend fails now, not after the model's evaluation
        except HarnessError as exc:
            raise HarnessError(str(exc).replace("--model", flag, 1)) from None
    out = Path(out) if out is not None else default_out(model)
    device = resolve_device(device)
    config = RunConfig(
        suite=selections, out=Path(out), model=model, base=base, limit=limit, limits=dict(limits or {}),
        num_fewshot=num_fewshot, seed=seed, batch_size=batch_size, device=device, data_dirs=dict(data_dirs or {}),
        full=full, options=dict(options or {}), allow_code_execution=allow_code_execution,
        allow_weak_sandbox=allow_weak_sandbox, progress=progress, report=report,
        command=list(command if command is not None else sys.argv),
    )

    def load(spec: str | None, role: str = "model") -> Model:
        from .models import load_model

        args = (base_args if role == "base" else model_args) or {}
        return load_model(spec, registry=registry, device=device, batch_size=batch_size, **args)

    def load_judge() -> Model:
        from .models import load_model

        return load_model(judge, registry=registry, device=device, batch_size=batch_size, **(judge_args or {}))

    from .sandbox import make_sandbox

    plugin_errors = [{"plugin": p.name, "module": p.module, "error": p.error} for p in registry.failures]
    for p in registry.failures:
        log(f"warning: plug-in {p.name!r} failed to load: {p.error}")
    engine = Engine(config, registry.benchmarks, load, plugin_errors, load_judge, make_sandbox)
    results = engine.run()
    if report:
        from .report import render_report

        render_report(Path(out))
    return results
