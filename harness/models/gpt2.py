"""GPT-2 on a page (nanoGPT style, names from the paper / OpenAI's release), with a KV cache.

Parameter names match Hugging Face's ``GPT2LMHeadModel`` (``transformer.h.0.attn.c_attn``)
except that HF's Conv1D stores weights transposed; :mod:`harness.models.checkpoint`
converts. The attention helpers here are shared with :mod:`harness.models.llama`.

``forward(idx)`` returns logits ``[B, T, V]``; the keyword arguments serve batched
decoding (left padding needs a padding mask and per-row positions, the cache
saves recomputing the prompt at every step).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


class KVCache:
    """Keys and values of every layer for the positions seen so far (grows by concatenation)."""

    def __init__(self, n_layers: int) -> None:
        self.k: list[torch.Tensor | None] = [None] * n_layers
        self.v: list[torch.Tensor | None] = [None] * n_layers

    @property
    def length(self) -> int:
        return 0 if self.k[0] is None else self.k[0].shape[2]

    def fork(self) -> KVCache:
        """A copy that shares the tensors: ``update`` concatenates into new ones, never in place."""
        other = KVCache(len(self.k))
        other.k, other.v = list(self.k), list(self.v)
        return other

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.k[layer] is not None:
            k = torch.cat([self.k[layer], k], dim=2)
            v = torch.cat([self.v[layer], v], dim=2)
        self.k[layer], self.v[layer] = k, v
        return k, v


@dataclass(frozen=True)
class Packed:
    """One row holding several inputs after ``past`` cached tokens they all share: input i is
    the next ``lengths[i]`` tokens and sees the shared tokens and its own (:mod:`.prefix`).
    Attention runs per input, so no work goes to the pairs a dense mask would hide."""

    past: int
    lengths: tuple[int, ...]


def _attend_packed(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, p: Packed) -> torch.Tensor:
    out, a = [], p.past
    for n in p.lengths:
        ks = torch.cat([k[:, :, :p.past], k[:, :, a:a + n]], dim=2)
        vs = torch.cat([v[:, :, :p.past], v[:, :, a:a + n]], dim=2)
        qs = q[:, :, a - p.past:a - p.past + n]
        if p.past:
            mask = torch.ones(n, p.past + n, dtype=torch.bool, device=q.device).tril(diagonal=p.past)
            out.append(F.scaled_dot_product_attention(qs, ks, vs, attn_mask=mask))
        else:
            out.append(F.scaled_dot_product_attention(qs, ks, vs, is_causal=True))
        a += n
    return torch.cat(out, dim=2)


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, attention_mask: Any) -> torch.Tensor:
    """Causal attention of ``q`` [B,H,T,D] over ``k, v`` [B,H,S,D] (S = past + T).

    The number of cached positions comes from the shapes, never from the shared
    cache object: earlier layers have already grown it by the time a later one runs.
    ``attention_mask`` [B, S] marks real tokens with 1 and padding with 0. A padding
    query may attend to itself so no softmax row is empty (its output is ignored).
    A :class:`Packed` mask says the row holds several inputs after a shared prefix.
    """
    T, S = q.shape[2], k.shape[2]
    past = S - T
    if attention_mask is None and past == 0:
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    if isinstance(attention_mask, Packed):
        return _attend_packed(q, k, v, attention_mask)
    qpos = torch.arange(past, past + T, device=q.device)[:, None]
    kpos = torch.arange(S, device=q.device)[None, :]
    allowed = kpos <= qpos
    if attention_mask is not None:
        valid = attention_mask[:, None, None, :S].to(torch.bool)
        allowed = allowed & (valid | (kpos == qpos))
    return F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)


def head_rows(x: torch.Tensor, logits_to_keep: int, logits_at: torch.Tensor | None) -> torch.Tensor:
    """The hidden states the LM head needs: the last ``logits_to_keep`` positions, or the
    ``logits_at`` ones (flattened), or all. The head is most of a small model's compute."""
    if logits_at is not None:
        return x[logits_at]
    return x[:, -logits_to_keep:] if logits_to_keep else x


def default_positions(idx: torch.Tensor, past: int) -> torch.Tensor:
    return torch.arange(past, past + idx.shape[1], device=idx.device).expand(idx.shape[0], -1)


@dataclass
class GPT2Config:
    vocab_size: int = 50257
    context_length: int = 1024  # HF n_positions
    n_embd: int = 768
    n_layer: int = 12
    n_head: int = 12
    qkv_bias: bool = True  # LLMs-from-scratch models may train without it
    layer_norm_eps: float = 1e-5
    tie_word_embeddings: bool = True

    arch = "gpt2"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GPT2Config:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def to_dict(self) -> dict[str, Any]:
        return {"arch": self.arch, **asdict(self)}


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GPT2Config) -> None:
        super().__init__()
        self.n_head = cfg.n_head
        self.c_attn = nn.Linear(cfg.n_embd, 3 * cfg.n_embd, bias=cfg.qkv_bias)
        self.c_proj = nn.Linear(cfg.n_embd, cfg.n_embd)

    def forward(self, x: torch.Tensor, layer: int, attention_mask: torch.Tensor | None,
                cache: KVCache | None) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
                   for t in self.c_attn(x).split(C, dim=2))
        if cache is not None:
            k, v = cache.update(layer, k, v)
        y = attend(q, k, v, attention_mask)
        return self.c_proj(y.transpose(1, 2).reshape(B, T, C))


class MLP(nn.Module):
    def __init__(self, cfg: GPT2Config) -> None:
        super().__init__()
        self.c_fc = nn.Linear(cfg.n_embd, 4 * cfg.n_embd)
        self.c_proj = nn.Linear(4 * cfg.n_embd, cfg.n_embd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(F.gelu(self.c_fc(x), approximate="tanh"))  # GPT-2's "gelu_new"


class Block(nn.Module):
    def __init__(self, cfg: GPT2Config) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_eps)
        self.attn = CausalSelfAttention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_eps)
        self.mlp = MLP(cfg)

    def forward(self, x, layer, attention_mask, cache):
        x = x + self.attn(self.ln_1(x), layer, attention_mask, cache)
        return x + self.mlp(self.ln_2(x))


class GPT2(nn.Module):
    """Pre-LayerNorm decoder: token + learned position embeddings, blocks, final norm, head."""

    def __init__(self, cfg: GPT2Config) -> None:
        super().__init__()
        self.config = cfg
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(cfg.vocab_size, cfg.n_embd),
            wpe=nn.Embedding(cfg.context_length, cfg.n_embd),
            h=nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer)),
            ln_f=nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_eps),
        ))
        self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        self.apply(self._init_weights)
        for name, p in self.named_parameters():  # GPT-2's scaled init of residual projections
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layer))
        if cfg.tie_word_embeddings:
            self.lm_head.weight = self.transformer.wte.weight

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def new_cache(self) -> KVCache:
        return KVCache(self.config.n_layer)

    def forward(self, idx: torch.Tensor, position_ids: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None, cache: KVCache | None = None,
                logits_to_keep: int = 0, logits_at: torch.Tensor | None = None) -> torch.Tensor:
        """Logits [B, T, V]; ``logits_to_keep=N`` computes only the last N positions (saves memory),
        ``logits_at`` (bool [B, T]) only those positions, as [N, V] (training: where a target is)."""
        past = cache.length if cache is not None else 0
        if position_ids is None:
            position_ids = default_positions(idx, past)
        x = self.transformer.wte(idx) + self.transformer.wpe(position_ids)
        for i, block in enumerate(self.transformer.h):
            x = block(x, i, attention_mask, cache)
        return self.lm_head(self.transformer.ln_f(head_rows(x, logits_to_keep, logits_at)))
