"""The plug-in contract. A plug-in is a module with functions named like these,
decorated with ``@harness.hookimpl``, listed under the entry-point group ``harness``.

Example (a whole plug-in)::

    import harness

    @harness.hookimpl
    def register_benchmarks(register):
        register(MyBenchmark())
"""
from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("harness")
hookimpl = pluggy.HookimplMarker("harness")


@hookspec
def register_benchmarks(register):
    """Register benchmarks by calling ``register(benchmark)``.

    ``benchmark`` is an instance of :class:`harness.api.Benchmark`; its ``name``
    must be unique across installed plug-ins (a clash is reported, first wins).
    """


@hookspec
def register_models(register):
    """Register model backends by calling ``register(name, loader, detect=None)``.

    ``loader(path: str, **options) -> harness.api.Model`` builds the model for
    ``--model name:path``. ``detect(path) -> bool``, if given, lets
    ``--model path`` (no prefix) pick this backend from what the path holds.
    """
