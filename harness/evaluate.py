"""``harness.evaluate``: the Python API of ``harness run`` (lm-eval's ``simple_evaluate`` role).

The one path of data: CLI -> :func:`evaluate` -> ``load_model`` -> engine -> plug-ins ->
results -> report. Everything the user typed is checked here, before any model loads.
"""
from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import HarnessError, did_you_mean

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


def check_options(options: dict[str, dict[str, Any]], selections: list, benchmarks: dict, suite: str) -> None:
    """``--option BENCH.KEY=V``: BENCH must be in the suite and KEY one of ``Benchmark.options``."""
    chosen = [s.benchmark for s in selections]
    for name in sorted(options):
        if name not in benchmarks:
            raise HarnessError(f"--option {name}.…: unknown benchmark {name!r}{did_you_mean(name, chosen or benchmarks)}"
                               f"; --suite is {suite}")
        if name not in chosen:
            raise HarnessError(f"--option {name}.…: {name!r} is not in --suite {suite}")
        known = dict(getattr(benchmarks[name], "options", None) or {})
        for key in sorted(options[name]):
            if key not in known:
                listed = ", ".join(sorted(known)) or "none"
                raise HarnessError(f"--option {name}.{key}: {name} has no option {key!r}{did_you_mean(key, known)}; "
                                   f"its options: {listed} (`harness tasks {name}`)")


def _lmeval_options(options: dict[str, dict[str, Any]] | None, suite: str, include_path: list[str] | None,
                    chat: bool, system: str | None) -> dict[str, dict[str, Any]]:
    """``--include-path``, ``--apply-chat-template`` and ``--system-instruction`` as the lm-eval
    benchmark's options (when it is in the suite)."""
    options = {k: dict(v) for k, v in (options or {}).items()}
    if include_path and "lm-eval" not in [p.strip().partition(":")[0] for p in suite.split(",")]:
        raise HarnessError(f"--include-path: adds lm-eval YAML tasks, but --suite {suite} has no lm-eval:TASK")
    if "lm-eval" in [p.strip().partition(":")[0] for p in suite.split(",")]:
        opts = options.setdefault("lm-eval", {})
        if include_path:
            opts["include_path"] = [*([opts["include_path"]] if isinstance(opts.get("include_path"), str)
                                      else opts.get("include_path") or []), *include_path]
        if chat:
            opts["apply_chat_template"] = True
        if system:
            opts["system_instruction"] = system
        if not opts:
            del options["lm-eval"]
    if system and not chat and any(p.strip().partition(":")[0] != "lm-eval" for p in suite.split(",") if p.strip()):
        from .engine import log

        log("note: --system-instruction without --apply-chat-template reaches lm-eval tasks only")
    return options


def evaluate(model: str | None = None, base: str | None = None, suite: str = DEFAULT_SUITE, *,
             out: str | Path | None = None, limit: int | None = None, limits: dict[str, int] | None = None,
             num_fewshot: int | None = None, batch_size: int = 8, seed: int = 1234, device: str = "cpu",
             data_dirs: dict[str, str] | None = None, full: bool = False,
             options: dict[str, dict[str, Any]] | None = None, model_args: dict[str, Any] | None = None,
             base_args: dict[str, Any] | None = None, judge: str | None = None,
             judge_args: dict[str, Any] | None = None, allow_code_execution: bool = False,
             allow_weak_sandbox: bool = False, progress: bool = True, report: bool = True,
             registry: Registry | None = None, command: list[str] | None = None,
             cache: str | Path | bool | None = None, resume: bool = False, merge: bool = False,
             apply_chat_template: bool = False, system_instruction: str | None = None,
             include_path: list[str] | None = None) -> dict[str, Any]:
    """Evaluate ``model`` (and ``base``) on ``suite``; writes ``out/results.json``, ``out/samples/``
    and (``report``) ``out/index.html``; returns the results dict (see docs/ARCHITECTURE.md).

    ``cache``: the request cache, ``out/cache.sqlite`` by default, a path to share one across runs,
    False for none. ``out`` holding a run is refused unless ``resume`` (continue it: same options)
    or ``merge`` (add these benchmarks to it: same models). Under torchrun the requests are
    sharded across ranks and rank 0 writes (harness/distributed.py).

    lm-eval's habits: ``apply_chat_template`` renders every prompt through each model's chat
    template (with ``system_instruction`` as the system turn); ``include_path`` adds lm-eval YAML
    task directories (``lm-eval:TASK``); ``out/lm-eval/`` gets lm-eval's results layout."""
    from .engine import Engine, RunConfig, log
    from .models.loading import resolve
    from .plugins import get_registry
    from .suite import parse_suite

    registry = registry or get_registry()
    options = _lmeval_options(options, suite, include_path, apply_chat_template, system_instruction)
    selections = parse_suite(suite, registry.benchmarks, options)
    for name in set(limits or {}) - {s.benchmark for s in selections}:
        raise HarnessError(f"--limit {name}=…: {name!r} is not in --suite {suite}")
    check_options(options or {}, selections, registry.benchmarks, suite)
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
        model_args=dict(model_args or {}), base_args=dict(base_args or {}),
        apply_chat_template=apply_chat_template, system_instruction=system_instruction,
    )
    from .distributed import from_env, rank_device
    from .engine import config_dict
    from .rundir import open_run_dir

    config.dist = from_env(device)
    device = rank_device(device, config.dist)  # torchrun + cuda: this rank's GPU
    config.cache, config.previous = open_run_dir(config.out, config_dict(config), cache=cache, resume=resume,
                                                 merge=merge, dist=config.dist)

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
    engine = Engine(config, registry.benchmarks, load, plugin_errors, load_judge, make_sandbox,
                    plugin_of=registry.benchmark_plugin)
    results = engine.run()
    if config.dist.is_main:
        from .results_lmeval import write_lmeval_layout

        write_lmeval_layout(Path(out), results, engine.records, registry.benchmarks)
    if report and config.dist.is_main:
        from .report import render_report

        try:
            render_report(Path(out))
        except OSError as exc:  # a full disk after the evaluation: results.json and samples/ are kept
            raise HarnessError(f"{out}: cannot write the report ({exc.strerror or exc}); the results are in "
                               f"{Path(out) / 'results.json'}; free some space, then `harness report {out}`") from None
    return results
