"""The plug-in manager: finds plug-ins, collects what they register, remembers what failed.

Plug-ins are the modules in :data:`DEFAULT_PLUGINS` (the built-in model backends),
modules listed under the entry-point group ``harness`` (the built-in benchmarks too, in
setup.cfg, exactly as a third party's) and ``*.py`` files in ``--plugins-dir``. All
register through the same hooks. A plug-in that fails to import or whose hook raises
(even ``SystemExit``) is recorded with its error and skipped, so one broken plug-in never
stops the others; ``HARNESS_STRICT_PLUGINS=1`` makes it fatal.
"""
from __future__ import annotations

import importlib.util
import os
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import pluggy

from . import hookspecs
from .errors import HarnessError

GROUP = "harness"
DEFAULT_PLUGINS = (
    "harness.models.backends.native",
    "harness.models.backends.hf",
    "harness.models.backends.openai",
    "harness.models.backends.peft",
)


@dataclass
class PluginInfo:
    name: str
    source: str  # "entry point" | "plugins dir"
    module: str = ""
    distribution: str = ""
    version: str = ""
    benchmarks: list[str] = field(default_factory=list)
    backends: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass
class Backend:
    name: str
    loader: Callable[..., Any]
    detect: Callable[[str], bool] | None
    plugin: str
    description: str = ""


class Registry:
    """Everything the installed plug-ins registered, plus the failures."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(GROUP)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}
        self.benchmarks: dict[str, Any] = {}
        self.benchmark_plugin: dict[str, str] = {}
        self.backends: dict[str, Backend] = {}
        self.plugins_dir: str | None = None

    # -- loading ---------------------------------------------------------------
    def load_defaults(self) -> None:
        for module in DEFAULT_PLUGINS:
            name = module.rsplit(".", 1)[-1]
            info = PluginInfo(name=name, source="built-in", module=module, distribution="harness",
                              version=_version())
            self.plugins[name] = info
            try:
                self.pm.register(importlib.import_module(module), name=name)
            except PLUGIN_ERRORS as exc:
                self._fail(info, exc)

    def load_entry_points(self) -> None:
        for ep in sorted(metadata.entry_points(group=GROUP), key=lambda e: e.name):
            if ep.name in self.plugins:
                continue  # the same distribution seen twice on sys.path
            dist = getattr(ep, "dist", None)
            info = PluginInfo(
                name=ep.name, source="entry point", module=ep.value,
                distribution=dist.name if dist else "", version=dist.version if dist else "",
            )
            self.plugins[ep.name] = info
            try:
                self.pm.register(ep.load(), name=ep.name)
            except PLUGIN_ERRORS as exc:  # any import failure is reported, not raised
                self._fail(info, exc)

    def load_directory(self, directory: str | Path) -> None:
        path = Path(directory)
        if not path.is_dir():
            raise HarnessError(f"--plugins-dir {path}: not a directory; give a folder of plug-in .py files")
        for file in sorted(path.glob("*.py")):
            if file.name.startswith("_"):
                continue
            info = PluginInfo(name=file.stem, source="plugins dir", module=str(file))
            self.plugins[file.stem] = info
            try:
                spec = importlib.util.spec_from_file_location(f"harness_local_plugin_{file.stem}", file)
                module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
                sys.modules[spec.name] = module  # type: ignore[union-attr]
                spec.loader.exec_module(module)  # type: ignore[union-attr]
                self.pm.register(module, name=file.stem)
            except PLUGIN_ERRORS as exc:
                self._fail(info, exc)

    def collect(self) -> None:
        """Call every plug-in's hooks one by one, so a raising hook is blamed by name."""
        for impl in self.pm.hook.register_benchmarks.get_hookimpls():
            info = self.plugins[impl.plugin_name]

            def register(benchmark: Any, _info: PluginInfo = info) -> None:
                name = getattr(benchmark, "name", "")
                if not name:
                    raise ValueError(f"benchmark {benchmark!r} has no name")
                if name in self.benchmarks:
                    other = self.benchmark_plugin[name]
                    raise ValueError(f"benchmark {name!r} is already registered by plug-in {other!r}")
                self.benchmarks[name] = benchmark
                self.benchmark_plugin[name] = _info.name
                _info.benchmarks.append(name)

            try:
                impl.function(register=register)
            except PLUGIN_ERRORS as exc:
                self._fail(info, exc)
        for impl in self.pm.hook.register_models.get_hookimpls():
            info = self.plugins[impl.plugin_name]

            def register_backend(name: str, loader: Callable, detect: Callable | None = None,
                                 description: str = "", _info: PluginInfo = info) -> None:
                if name in self.backends:
                    other = self.backends[name].plugin
                    raise ValueError(f"model backend {name!r} is already registered by plug-in {other!r}")
                self.backends[name] = Backend(name, loader, detect, _info.name, description)
                _info.backends.append(name)

            try:
                impl.function(register=register_backend)
            except PLUGIN_ERRORS as exc:
                self._fail(info, exc)

    def _fail(self, info: PluginInfo, exc: BaseException) -> None:
        info.error = f"{type(exc).__name__}: {exc}"
        if os.environ.get("HARNESS_STRICT_PLUGINS") == "1":
            raise HarnessError(f"plug-in {info.name!r} ({info.module}) failed to load: {info.error}"
                               " (HARNESS_STRICT_PLUGINS=1)")
        if os.environ.get("HARNESS_DEBUG"):
            traceback.print_exception(exc)

    @property
    def failures(self) -> list[PluginInfo]:
        return [p for p in self.plugins.values() if p.error]


def _version() -> str:
    from . import __version__

    return __version__


# What a plug-in call may raise and harness survives (the engine uses it for every benchmark call):
# SystemExit too (a plug-in calling sys.exit() must not end harness); not KeyboardInterrupt.
PLUGIN_ERRORS = (Exception, SystemExit)
_DEFAULT: Registry | None = None


def load_registry(plugins_dir: str | Path | None = None, extra: dict[str, Any] | None = None) -> Registry:
    """A fresh registry: the built-in backends, entry points, ``plugins_dir``, then ``extra``
    (``{name: object with hookimpls}``, e.g. a plug-in under test)."""
    registry = Registry()
    registry.load_defaults()
    registry.load_entry_points()
    for name, plugin in (extra or {}).items():
        info = registry.plugins[name] = PluginInfo(name=name, source="in process", module=type(plugin).__name__)
        try:
            registry.pm.register(plugin, name=name)
        except PLUGIN_ERRORS as exc:
            registry._fail(info, exc)
    if plugins_dir:
        registry.load_directory(plugins_dir)
    registry.collect()
    return registry


def get_registry(plugins_dir: str | Path | None = None) -> Registry:
    """The process's registry, loaded once (the CLI, ``load_model`` and ``evaluate`` share it)."""
    global _DEFAULT
    if _DEFAULT is None or (plugins_dir and _DEFAULT.plugins_dir != str(plugins_dir)):
        _DEFAULT = load_registry(plugins_dir)
        _DEFAULT.plugins_dir = str(plugins_dir) if plugins_dir else None
    return _DEFAULT
