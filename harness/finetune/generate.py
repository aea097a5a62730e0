"""``harness generate``: prompt a model in its trained format and stream the answer.

``TokenLM.generate`` returns whole strings (it batches many requests), so streaming
is a separate single-sequence loop over the same pieces every token-level backend
has (``tok_encode``, ``forward(..., cache=, logits_to_keep=1)``, ``new_cache``,
``stop_ids``), with the same sampling rule (softmax at ``temperature``, one seeded
``torch.Generator``). Models without those pieces (plug-in backends) fall back to
``Model.generate`` and print the answer at once.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import torch

from ..api import GenerateRequest
from ..errors import HarnessError
from .data import example_from_alpaca
from .formats import PromptFormat, get_format
from .runner import model_format


def render_chat_template(template: str, instruction: str) -> str:
    """A Hugging Face chat template (as GGUF files carry) for one user turn, generation prompt on."""
    from jinja2 import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    try:
        return ImmutableSandboxedEnvironment().from_string(template).render(
            messages=[{"role": "user", "content": instruction}], add_generation_prompt=True,
            bos_token="", eos_token="")
    except TemplateError as e:
        raise HarnessError(f"the model's chat template cannot render ({e}); use --format NAME or --raw") from None


def build_prompt(model: Any, instruction: str, input: str = "", fmt_name: str | None = None,
                 template_file: str | None = None, raw: bool = False) -> tuple[str, tuple[str, ...], str]:
    """``(prompt text, stop strings, how it was formatted)`` for one instruction.

    Order: --raw; --format/--template; the checkpoint's recorded format; the model's
    own chat template; else the text as is.
    """
    if raw:
        if fmt_name or template_file:
            raise HarnessError("--raw and --format/--template exclude each other; pick one")
        return instruction + (f"\n\n{input}" if input else ""), (), "raw"
    fmt: PromptFormat | None
    if fmt_name or template_file:
        fmt = get_format(fmt_name, template_file)
    else:
        fmt = model_format(model)
    if fmt is not None:
        return fmt.prompt(example_from_alpaca(instruction, input, "")), fmt.stop, fmt.name
    template = getattr(model, "chat_template", None)
    content = instruction + (f"\n\n{input}" if input else "")
    if template:
        return render_chat_template(template, content), (), "the model's chat template"
    return content, (), "raw (the model records no prompt format)"


def _held_back(text: str, stops: Sequence[str]) -> int:
    """How many trailing chars might start a stop string or a split UTF-8 sequence."""
    hold = 1 if text.endswith("\ufffd") else 0
    for s in stops:
        for k in range(min(len(s) - 1, len(text)), 0, -1):
            if text.endswith(s[:k]):
                hold = max(hold, k)
                break
    return hold


def stream_generate(model: Any, prompt: str, *, max_tokens: int = 256, temperature: float = 0.0,
                    seed: int = 1234, stop: Sequence[str] = (), write: Callable[[str], None] = print) -> str:
    """Generate from ``prompt`` calling ``write`` with each new piece of text; returns the text."""
    stops = tuple(s for s in stop if s)
    if not all(hasattr(model, a) for a in ("tok_encode", "forward", "new_cache", "stop_ids")):
        text = model.generate([GenerateRequest(prompt, stops, max_tokens, temperature, seed)], progress=False)[0]
        write(text)
        return text
    L = int(model.max_length)
    budget = max(0, min(max_tokens, L - 1))
    ids = (model.tok_encode(prompt) or [model.prefix_id])[-(L - budget):]
    gen = torch.Generator().manual_seed(seed)
    cache = model.new_cache()
    x = torch.tensor([ids], dtype=torch.long)
    new: list[int] = []
    emitted = 0
    text = ""
    with torch.inference_mode():
        for _ in range(budget):
            logits = model.forward(x.to(model.device), cache=cache, logits_to_keep=1)[0, -1].float().cpu()
            if temperature > 0:
                tok = int(torch.multinomial(torch.softmax(logits / temperature, dim=-1), 1, generator=gen))
            else:
                tok = int(logits.argmax())
            if tok in model.stop_ids:
                break
            new.append(tok)
            text = model.tok_decode(new)
            cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=-1)
            if cut >= 0:
                text = text[:cut]
                break
            safe = len(text) - _held_back(text, stops)
            if safe > emitted:
                write(text[emitted:safe])
                emitted = safe
            x = torch.tensor([[tok]], dtype=torch.long)
    if len(text) > emitted:
        write(text[emitted:])
    return text
