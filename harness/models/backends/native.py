"""``native``: harness's own torch GPT-2 and Llama (checkpoint dirs, HF GPT-2 dirs, .pth, .gguf)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ...api import ModelInfo, hookimpl
from ..formats import detect_format

DESCRIPTION = ("torch GPT-2/Llama: harness checkpoint dirs, Hugging Face GPT-2 dirs, "
               "LLMs-from-scratch .pth state dicts, .gguf files (Llama)")


def detect(path: str) -> bool:
    return Path(path).exists() and detect_format(path) in ("harness", "hf-gpt2", "pth", "gguf")


def load_native(path: str | Path, *, spec: str | None = None, device: str = "cpu", batch_size: int = 8,
                **_: Any) -> Any:
    """Load a native checkpoint as a :class:`harness.models.native.NativeLM`."""
    from ..checkpoint import load_checkpoint
    from ..fingerprint import fingerprint_files
    from ..native import NativeLM

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


@hookimpl
def register_models(register) -> None:
    register("native", load_native, detect=detect, description=DESCRIPTION)
