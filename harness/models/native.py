"""NativeLM: harness's own torch modules (:mod:`.gpt2`, :mod:`.llama`) behind the TokenLM batching."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ..api import ModelInfo
from .tokenlm import TokenLM


class NativeLM(TokenLM):
    """A torch ``nn.Module`` from :mod:`.gpt2` / :mod:`.llama` plus a :class:`Tokenizer`.

    ``module`` is what fine-tuning trains (``module(idx) -> logits``); ``config`` has
    ``arch`` and ``context_length``; ``chat_template`` is set for GGUF models that carry one.
    """

    def __init__(self, module: torch.nn.Module, tokenizer: Any, info: ModelInfo, *,
                 batch_size: int = 8, device: str = "cpu", chat_template: str | None = None) -> None:
        super().__init__(batch_size=batch_size, device=device)
        self.module = module.to(self.device).eval()
        self.tokenizer = tokenizer
        self.config = module.config
        self.info = info
        self.chat_template = chat_template

    packs_inputs = True  # forward takes a Packed attention mask and logits_at (harness.models.prefix)

    def tok_encode(self, text: str, add_special: bool = True) -> list[int]:
        ids = self.tokenizer.encode(text)
        tk = self.tokenizer
        if add_special and tk.add_bos and tk.bos_id is not None and ids[:1] != [tk.bos_id]:
            ids = [tk.bos_id] + ids
        return ids

    def tok_decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(ids)

    @property
    def eot_id(self) -> int:
        return self.tokenizer.eot_id

    @property
    def prefix_id(self) -> int:
        bos = self.tokenizer.bos_id
        return self.tokenizer.eot_id if bos is None else bos

    @property
    def stop_ids(self) -> frozenset[int]:
        return self.tokenizer.all_stop_ids

    @property
    def max_length(self) -> int:
        return self.config.context_length

    def forward(self, idx, *, position_ids=None, attention_mask=None, cache=None, logits_to_keep=0,
                logits_at=None):
        return self.module(idx, position_ids=position_ids, attention_mask=attention_mask,
                           cache=cache, logits_to_keep=logits_to_keep, logits_at=logits_at)

    def new_cache(self) -> Any:
        return self.module.new_cache()

    def fork_cache(self, cache: Any) -> Any:
        return cache.fork()

    def trainable(self) -> tuple[torch.nn.Module, Any, int]:
        return self.module, self.tokenizer, int(self.config.context_length)

    def save(self, module: torch.nn.Module, out: Path, extra: dict[str, Any]) -> None:
        from .checkpoint import save_checkpoint

        save_checkpoint(module, None, out, self.tokenizer, extra)

    def close(self) -> None:
        self.module = None  # type: ignore[assignment]
