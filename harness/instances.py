"""A benchmark's instances on their way to one model: prompted in that model's format, the
context's cap on new tokens noted, and what a plug-in returned checked before it is trusted.

``--apply-chat-template`` / ``--system-instruction`` (lm-eval's flags): every prompt a model sees
(a generation prompt or a log-likelihood context) rendered by that model's own
``apply_chat_template`` as ``[{system}, {user: prompt}]``, the continuation left as it is (lm-eval's
behaviour); a prompt already written as ChatML turns (lm-eval's few-shot chats) keeps its turns."""
from __future__ import annotations

from typing import Any

from .api import GenerateRequest, Instance, LoglikelihoodRequest, Model, chatml_to_messages
from .runconfig import log


def format_requests(bench: Any, model: Model, instances: list[Instance], forced: str | None) -> list[Instance]:
    """Instruction benchmarks prompt each model as it expects: a fine-tuned checkpoint in the
    format it was trained on, a chat model (GGUF) through its own chat template; or every
    model in one ``prompt_format`` when the benchmark's options force it."""
    if not bench.instruction_following:
        return instances
    from .prompts import build_prompt

    out = []
    for inst in instances:
        reqs = []
        for r in inst.requests:
            if isinstance(r, GenerateRequest):
                prompt, stops, _ = build_prompt(model, r.prompt, fmt_name=forced)
                r = GenerateRequest(prompt, tuple(dict.fromkeys(r.stop + stops)), r.max_tokens, r.temperature, r.seed)
            reqs.append(r)
        out.append(Instance(inst.doc_id, inst.subset, inst.doc, inst.prompt, inst.target, reqs))
    return out


def checked_instances(items: Any) -> list[Instance]:
    insts = list(items)
    for inst in insts:
        if not isinstance(inst, Instance):
            raise TypeError(f"instances() yielded a {type(inst).__name__}, not an Instance")
    return insts


def checked_outputs(outputs: Any, n: int) -> list[dict]:
    outputs = list(outputs)
    if len(outputs) != n or not all(isinstance(o, dict) for o in outputs):
        raise TypeError(f"process() must return one dict per instance ({n}); got "
                        f"{len(outputs)} item(s) of type(s) {sorted({type(o).__name__ for o in outputs})}")
    return outputs


def capped(model: Model, instances: list[Instance], name: str) -> list[int | None]:
    """Per instance, the new-token budget the model's context left (``Model.max_new_tokens``)
    where it is below what a request asked; None where nothing was capped."""
    out: list[int | None] = []
    for inst in instances:
        caps = [n for r in inst.requests if isinstance(r, GenerateRequest)
                for n in [model.max_new_tokens(r)] if n < r.max_tokens]
        out.append(min(caps) if caps else None)
    n = sum(c is not None for c in out)
    if n:
        log(f"note: {name}: {n} prompt(s) leave room for fewer than max_tokens new tokens in "
            f"{model.info.spec}'s context; each record says so in \"max_tokens_capped\"")
    return out


def chat_prompt(model: Model, prompt: str, system: str | None) -> str:
    """``prompt`` as a chat (one user turn unless it holds ChatML turns) in ``model``'s template."""
    messages = chatml_to_messages(prompt)
    if system and not any(m["role"] == "system" for m in messages):
        messages = [{"role": "system", "content": system}, *messages]
    return model.apply_chat_template(messages, add_generation_prompt=True)


def chat_requests(model: Model, instances: list[Instance], system: str | None) -> list[Instance]:
    """The instances with every request's prompt/context through ``model``'s chat template."""
    cache: dict[str, str] = {}

    def render(text: str) -> str:
        if text not in cache:
            cache[text] = chat_prompt(model, text, system)
        return cache[text]

    out = []
    for inst in instances:
        reqs: list = []
        for r in inst.requests:
            if isinstance(r, GenerateRequest):
                r = GenerateRequest(render(r.prompt), r.stop, r.max_tokens, r.temperature, r.seed)
            elif isinstance(r, LoglikelihoodRequest) and r.context:  # rolling (empty context) stays raw
                r = LoglikelihoodRequest(render(r.context), r.continuation)
            reqs.append(r)
        out.append(Instance(inst.doc_id, inst.subset, inst.doc, inst.prompt, inst.target, reqs))
    return out
