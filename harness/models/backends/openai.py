"""``openai``: any OpenAI-compatible server (vLLM, Ollama, llama.cpp, ``harness serve``)."""
from __future__ import annotations

from typing import Any

from ...api import hookimpl

DESCRIPTION = ("an OpenAI-compatible endpoint: openai:URL; options model=NAME, api=completions|chat, "
               "api_key_env=VAR (key never written)")


def load_openai(path: str, *, model: str | None = None, api: str = "completions",
                api_key_env: str = "OPENAI_API_KEY", batch_size: int = 8, **_: Any) -> Any:
    """``openai:URL``; without ``model`` the server's first model (``/v1/models``) is used."""
    from ..openai_client import OpenAIModel

    return OpenAIModel(path, model=model or None, api=api, api_key_env=api_key_env,
                       batch_size=int(batch_size or 8))


@hookimpl
def register_models(register) -> None:
    register("openai", load_openai, description=DESCRIPTION)
