"""``--apply-chat-template`` / ``--system-instruction`` (lm-eval's flags) for every benchmark.

With the flag, every prompt a model sees (a generation prompt or a log-likelihood context) is
rendered by that model's own ``apply_chat_template`` as ``[{system}, {user: prompt}]``, the
continuation left as it is (lm-eval's behaviour). A prompt already written as ChatML turns (the
lm-eval benchmark builds its few-shot chats so) keeps its turns.
"""
from __future__ import annotations

from .api import GenerateRequest, Instance, LoglikelihoodRequest, Model, chatml_to_messages


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
