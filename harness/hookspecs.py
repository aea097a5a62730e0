"""The plug-in contract. A plug-in is a module with functions named like these,
decorated with ``@hookimpl`` (``from harness.api import hookimpl``), listed under the
entry-point group ``harness``. The built-in benchmarks and model backends register
through these same hooks.

Example (a whole plug-in)::

    from harness.api import hookimpl

    @hookimpl
    def register_benchmarks(register):
        register(MyBenchmark())
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import pluggy

if TYPE_CHECKING:  # pragma: no cover
    from .api import Benchmark, Model

hookspec = pluggy.HookspecMarker("harness")
hookimpl = pluggy.HookimplMarker("harness")


class RegisterBenchmark(Protocol):
    def __call__(self, benchmark: Benchmark) -> None: ...


class RegisterModel(Protocol):
    def __call__(self, name: str, loader: Callable[..., Model],
                 detect: Callable[[str], bool] | None = None, description: str = "") -> None: ...


@hookspec
def register_benchmarks(register: RegisterBenchmark) -> None:
    """Register benchmarks by calling ``register(benchmark)``.

    ``benchmark`` is an instance of :class:`harness.api.Benchmark`; its ``name``
    must be unique across installed plug-ins (a clash is reported, first wins).
    """


@hookspec
def register_models(register: RegisterModel) -> None:
    """Register model backends by calling ``register(name, loader, detect=None, description="")``.

    ``loader(path: str, **options) -> harness.api.Model`` builds the model for
    ``--model name:path``; ``options`` hold ``spec`` (what the user typed), ``device``,
    ``batch_size`` and the user's ``--model-args`` (accept ``**options``; use what you understand). ``detect(path) -> bool``, if
    given, lets ``--model path`` (no prefix) pick this backend from what the path holds;
    built-in backends are asked first.
    """
