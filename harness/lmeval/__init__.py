"""harness models inside lm-eval: ``lm_eval.simple_evaluate(model="harness", model_args="model=SPEC")``.

Importing this module registers the ``harness`` model with lm-eval; ``python -m harness.lmeval
...`` runs lm-eval's own command line with it registered. Requests go through
:func:`harness.models.load_model`, so every harness backend (the embedded default, checkpoints,
GGUF, ``hf:``, ``openai:``, plug-ins) answers lm-eval's tasks with the same numbers it gives
inside ``harness run``.
"""
from __future__ import annotations

from typing import Any

import lm_eval.models  # noqa: F401 - lm-eval's own models (hf, vllm, ...) stay registered beside ours
from lm_eval.api.model import LM
from lm_eval.api.registry import register_model

from ..api import GenerateRequest, LoglikelihoodRequest, Model


def _generate_request(context: str, kwargs: dict[str, Any], seed: int | None = None) -> GenerateRequest:
    """lm-eval's ``generate_until`` arguments as a harness request (greedy unless do_sample)."""
    kwargs = dict(kwargs or {})
    until = kwargs.get("until") or []
    until = [until] if isinstance(until, str) else list(until)
    temperature = float(kwargs.get("temperature", 0.0) or 0.0) if kwargs.get("do_sample") else 0.0
    return GenerateRequest(context, stop=tuple(until), max_tokens=int(kwargs.get("max_gen_toks", 256)),
                           temperature=temperature, seed=seed if temperature > 0 else None)


@register_model("harness")
class HarnessLM(LM):
    """An lm-eval ``LM`` over any harness model (``model=SPEC``; other args go to the backend)."""

    def __init__(self, model: str | None = None, batch_size: int | str = 8, device: str | None = "cpu",
                 instance: Model | None = None, **model_args: Any) -> None:
        super().__init__()
        if instance is None:
            from ..models import load_model

            size = int(batch_size) if str(batch_size).isdigit() else 8  # lm-eval's "auto" -> harness default
            device = device or "cpu"
            if device.startswith("cuda"):  # lm-eval's CLI defaults to cuda; like its hf backend, fall back
                import torch

                device = device if torch.cuda.is_available() else "cpu"
            model_args.pop("max_batch_size", None)
            instance = load_model(model or None, device=device, batch_size=size, **model_args)
        self.model = instance

    def loglikelihood(self, requests: list[Any], disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        reqs = [LoglikelihoodRequest(r.args[0], r.args[1]) for r in requests]
        return [(res.logprob, res.is_greedy) for res in self.model.loglikelihood(reqs, progress=not disable_tqdm)]

    def loglikelihood_rolling(self, requests: list[Any], disable_tqdm: bool = False) -> list[float]:
        """The whole text conditioned on the prefix token (one window: the text fits the context)."""
        reqs = [LoglikelihoodRequest("", r.args[0]) for r in requests]
        return [res.logprob for res in self.model.loglikelihood(reqs, progress=not disable_tqdm)]

    def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
        reqs = [_generate_request(r.args[0], r.args[1], seed=i) for i, r in enumerate(requests)]
        return self.model.generate(reqs, progress=not disable_tqdm)

    def apply_chat_template(self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        return self.model.apply_chat_template(chat_history, add_generation_prompt=add_generation_prompt)

    @property
    def tokenizer_name(self) -> str:
        return self.model.info.spec.replace("/", "__")


__all__ = ["HarnessLM"]
