"""``openai``: any OpenAI-compatible server (vLLM, Ollama, llama.cpp, ``harness serve``)."""
from __future__ import annotations

from typing import Any

from ...api import hookimpl

DESCRIPTION = ("an OpenAI-compatible endpoint: openai:URL; options model=NAME, api=completions|chat, "
               "api_key_env=VAR (key never written), timeout=S, max_retries=N")


CLIENT_OPTIONS = {"timeout": float, "max_retries": int, "backoff": float, "top_logprobs": int, "seed": int}


def load_openai(path: str, *, model: str | None = None, api: str = "completions",
                api_key_env: str = "OPENAI_API_KEY", batch_size: int = 8, **options: Any) -> Any:
    """``openai:URL``; without ``model`` the server's first model (``/v1/models``) is used.
    ``timeout``, ``max_retries``, ``backoff``, ``top_logprobs`` and ``seed`` go to the client."""
    from ..openai_client import OpenAIModel

    extra = {k: CLIENT_OPTIONS[k](v) for k, v in options.items() if k in CLIENT_OPTIONS and v is not None}
    return OpenAIModel(path, model=model or None, api=api, api_key_env=api_key_env,
                       batch_size=int(batch_size or 8), **extra)


@hookimpl
def register_models(register) -> None:
    register("openai", load_openai, description=DESCRIPTION)
