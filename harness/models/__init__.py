"""Model backends and ``load_model``: turn what the user typed after ``--model`` into a Model.

Import-light on purpose (the CLI must start fast): torch, transformers and the
backends are imported inside the functions that need them.

Spec grammar: ``None`` or ``smollm2-135m-instruct`` (the embedded default model),
``native:PATH``, ``hf:PATH_OR_HUB_ID``, ``NAME:PATH`` for a plug-in backend, or a bare
``PATH`` whose contents pick the backend (see :func:`detect_backend`).
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable

from ..api import Model, ModelInfo
from ..errors import HarnessError, did_you_mean

DEFAULT_MODEL_NAME = "smollm2-135m-instruct"  # same as harness.models.default.DEFAULT_MODEL_NAME

BUILTIN_BACKENDS: dict[str, str] = {
    "native": "torch GPT-2/Llama: harness checkpoint dirs, Hugging Face GPT-2 dirs, "
              "LLMs-from-scratch .pth state dicts, .gguf files (Llama)",
    "hf": "Hugging Face transformers AutoModelForCausalLM from a local dir or hub id "
          "(needs the extra harness[hf])",
}

Backends = dict[str, tuple[Callable[..., Model], Callable[[str], bool] | None]]


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``, or a HarnessError naming the file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise HarnessError(f"{path}: cannot read ({e.strerror}); check the path") from None
    except ValueError as e:
        raise HarnessError(f"{path}: not valid JSON ({e}); fix or re-save the checkpoint") from None
    if not isinstance(data, dict):
        raise HarnessError(f"{path}: expected a JSON object; fix or re-save the checkpoint")
    return data


def detect_format(path: str | Path) -> str | None:
    """What a path holds: ``"harness"``, ``"hf-gpt2"``, ``"hf"``, ``"pth"``, ``"gguf"`` or None."""
    p = Path(path)
    if p.is_dir():
        if not (p / "config.json").is_file():
            return None
        cfg = read_json(p / "config.json")
        if cfg.get("format") == "harness":
            return "harness"
        if "model_type" in cfg:
            return "hf-gpt2" if cfg["model_type"] == "gpt2" else "hf"
        return None
    if p.suffix in (".pth", ".pt"):
        return "pth"
    if p.suffix == ".gguf":
        return "gguf"
    return None


def split_spec(spec: str, backends: Backends | None = None) -> tuple[str | None, str]:
    """``"hf:./dir"`` -> ``("hf", "./dir")``; a bare path -> ``(None, path)``."""
    names = set(BUILTIN_BACKENDS) | set(backends or {})
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


def detect_backend(path: str, backends: Backends | None = None) -> str:
    """Pick a backend from what ``path`` holds; plug-in ``detect`` functions come last."""
    fmt = detect_format(path) if Path(path).exists() else None
    if fmt in ("harness", "hf-gpt2", "pth", "gguf"):
        return "native"
    if fmt == "hf":
        return "hf"
    for name, (_, detect) in (backends or {}).items():
        try:
            if detect is not None and detect(path):
                return name
        except Exception:  # a broken plug-in must not stop other backends
            continue
    if not Path(path).exists():
        raise HarnessError(f"--model {path}: no such file or directory; give a checkpoint dir, "
                           f".pth, .gguf, or {DEFAULT_MODEL_NAME!r}")
    raise HarnessError(f"--model {path}: unknown model format (want a dir with config.json, a .pth or "
                       "a .gguf); or name a backend, e.g. hf:PATH")


def load_model(spec: str | None, *, device: str = "cpu", batch_size: int = 8,
               backends: Backends | None = None) -> Model:
    """Load the model ``spec`` names (see module docstring) for evaluation."""
    backends = backends or {}
    if spec is None or spec == DEFAULT_MODEL_NAME:
        from .default import default_model_path

        return load_native(default_model_path(), spec=DEFAULT_MODEL_NAME, device=device,
                           batch_size=batch_size)
    name, path = split_spec(spec, backends)
    if name is None:
        name = detect_backend(path, backends)
    if name == "native":
        return load_native(path, spec=spec, device=device, batch_size=batch_size)
    if name == "hf":
        from .hf import HFLM

        return HFLM(path, spec=spec, device=device, batch_size=batch_size)
    loader = backends[name][0]
    model = loader(path, device=device, batch_size=batch_size)
    if not isinstance(model, Model):
        raise HarnessError(f"--model {spec}: backend {name!r} returned {type(model).__name__}, not a "
                           "harness.api.Model; report this to the plug-in's authors")
    if getattr(model, "info", None) is None:
        model.info = ModelInfo(spec=spec, backend=name, path=path)
    return model


def load_native(path: str | Path, *, spec: str | None = None, device: str = "cpu",
                batch_size: int = 8) -> Any:
    """Load a native checkpoint as a :class:`harness.models.base.NativeLM`."""
    from .base import NativeLM
    from .checkpoint import load_checkpoint
    from .fingerprint import fingerprint_files

    loaded = load_checkpoint(path)
    module = loaded.module
    info = ModelInfo(
        spec=spec or str(path), backend="native", arch=module.config.arch, path=str(path),
        fingerprint=fingerprint_files(loaded.files), n_params=sum(p.numel() for p in module.parameters()),
        context_length=module.config.context_length, prompt_format=loaded.prompt_format,
        extra={"format": loaded.fmt, **loaded.extra},
    )
    return NativeLM(module, loaded.tokenizer, info, batch_size=batch_size, device=device,
                    chat_template=loaded.chat_template)


__all__ = ["BUILTIN_BACKENDS", "DEFAULT_MODEL_NAME", "detect_backend", "detect_format", "load_model",
           "load_native", "split_spec"]
