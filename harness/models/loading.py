"""``load_model``: the one way to get a model from what the user typed after ``--model``.

Spec grammar: ``None`` or ``smollm2-135m-instruct`` (the embedded default model),
``NAME:PATH`` for a registered backend (``native:``, ``hf:``, ``openai:`` or a plug-in's),
or a bare ``PATH`` whose contents pick the backend: each backend's ``detect`` is asked in
registration order (the built-ins first). Import-light: the backend imports torch.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..api import Model, ModelInfo
from ..errors import HarnessError, did_you_mean

if TYPE_CHECKING:  # pragma: no cover
    from ..plugins import Backend, Registry

DEFAULT_MODEL_NAME = "smollm2-135m-instruct"


def _registry(registry: Registry | None) -> Registry:
    if registry is not None:
        return registry
    from ..plugins import get_registry

    return get_registry()


def split_spec(spec: str, registry: Registry | None = None) -> tuple[str | None, str]:
    """``"hf:./dir"`` -> ``("hf", "./dir")``; a bare path -> ``(None, path)``."""
    names = set(_registry(registry).backends)
    m = re.match(r"^([A-Za-z][\w.-]*):(.*)$", spec)
    if not m or len(m.group(1)) == 1:  # no prefix, or a Windows drive letter
        return None, spec
    name, rest = m.groups()
    if name in names:
        return name, rest
    if Path(spec).exists():
        return None, spec
    raise HarnessError(f"--model {spec}: unknown backend {name!r}{did_you_mean(name, names)}; "
                       f"known: {', '.join(sorted(names))}")


def detect_backend(path: str, registry: Registry | None = None) -> str:
    """Pick a backend from what ``path`` holds (backends in registration order)."""
    for name, backend in _registry(registry).backends.items():
        try:
            if backend.detect is not None and backend.detect(path):
                return name
        except HarnessError:
            raise
        except Exception:  # noqa: BLE001 - a broken plug-in's detect must not stop the others
            continue
    if not Path(path).exists():
        raise HarnessError(f"--model {path}: no such file or directory; give a checkpoint dir, "
                           f".pth, .gguf, or {DEFAULT_MODEL_NAME!r}")
    raise HarnessError(f"--model {path}: unknown model format (want a dir with config.json, a .pth or "
                       "a .gguf); or name a backend, e.g. hf:PATH")


def resolve(spec: str | None, registry: Registry | None = None) -> tuple[Backend, str, str]:
    """``(backend, path, spec)`` for a spec, checked without loading anything."""
    reg = _registry(registry)
    if spec is None or spec == DEFAULT_MODEL_NAME:
        from .default import default_model_path

        return reg.backends["native"], str(default_model_path()), DEFAULT_MODEL_NAME
    name, path = split_spec(spec, reg)
    return reg.backends[name or detect_backend(path, reg)], path, spec


def load_model(spec: str | None = None, *, registry: Registry | None = None, device: str = "cpu",
               batch_size: int = 8, **options: Any) -> Model:
    """Load the model ``spec`` names (see the module docstring); ``options`` go to the backend."""
    backend, path, spec = resolve(spec, registry)
    model = backend.loader(path, spec=spec, device=device, batch_size=batch_size, **options)
    if not isinstance(model, Model):
        raise HarnessError(f"--model {spec}: backend {backend.name!r} returned {type(model).__name__}, not a "
                           "harness.api.Model; report this to the plug-in's authors")
    if getattr(model, "info", None) is None:
        model.info = ModelInfo(spec=spec, backend=backend.name, path=path)
    return model
