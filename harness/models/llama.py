"""The Llama decoder (RMSNorm, RoPE, grouped-query attention, SwiGLU), with a KV cache.

Module names are Hugging Face's (``model.layers.0.self_attn.q_proj``), so an HF
``LlamaForCausalLM`` state dict, a GGUF file converted by :mod:`harness.models.gguf`
and our own checkpoints all load with a plain ``load_state_dict``. RoPE follows HF's
"rotate_half" convention (pairs are ``(i, i + d/2)``), which is why GGUF's Q/K
weights must be un-permuted before they reach this module.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import HarnessError
from .gpt2 import KVCache, attend, default_positions, head_rows


@dataclass
class LlamaConfig:
    """Hyper-parameters under Hugging Face's ``LlamaConfig`` names."""

    vocab_size: int = 49152
    hidden_size: int = 576
    intermediate_size: int = 1536
    num_hidden_layers: int = 30
    num_attention_heads: int = 9
    num_key_value_heads: int = 3
    head_dim: int | None = None  # None: hidden_size // num_attention_heads
    rms_norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    rope_scaling: dict | None = None  # None or {"rope_type": "llama3", ...}
    max_position_embeddings: int = 2048
    tie_word_embeddings: bool = True
    attention_bias: bool = False
    mlp_bias: bool = False

    arch = "llama"

    @property
    def context_length(self) -> int:
        return self.max_position_embeddings

    @property
    def dim_per_head(self) -> int:
        return self.head_dim or self.hidden_size // self.num_attention_heads

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LlamaConfig:
        """From an HF ``config.json``, a GGUF-derived dict or our own config (extra keys ignored)."""
        names = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in names and v is not None}
        rp = d.get("rope_parameters")  # transformers >= 5 nests theta and scaling here
        if isinstance(rp, dict):
            kw.setdefault("rope_theta", rp.get("rope_theta", cls.rope_theta))
            if rp.get("rope_type", "default") != "default":
                kw.setdefault("rope_scaling", rp)
        kw.setdefault("num_key_value_heads", kw.get("num_attention_heads", cls.num_attention_heads))
        cfg = cls(**kw)
        scaling = cfg.rope_scaling
        kind = (scaling or {}).get("rope_type", (scaling or {}).get("type", "default"))
        if kind not in ("default", "llama3"):
            raise HarnessError(f"rope scaling {kind!r} is not supported by the native Llama; "
                               "use the hf: backend for this model")
        if kind == "default":
            cfg.rope_scaling = None
        return cfg

    def to_dict(self) -> dict[str, Any]:
        return {"arch": self.arch, **asdict(self)}


def rope_inv_freq(cfg: LlamaConfig) -> torch.Tensor:
    """RoPE inverse frequencies, with Llama 3.1's long-context rescaling when configured."""
    d = cfg.dim_per_head
    inv = 1.0 / (cfg.rope_theta ** (torch.arange(0, d, 2, dtype=torch.int64, device="cpu").float() / d))
    s = cfg.rope_scaling
    if not s:
        return inv
    factor, lo, hi = s["factor"], s["low_freq_factor"], s["high_freq_factor"]
    old = s["original_max_position_embeddings"]
    wavelen = 2 * math.pi / inv
    scaled = torch.where(wavelen > old / lo, inv / factor, inv)
    smooth = (old / wavelen - lo) / (hi - lo)
    smoothed = (1 - smooth) * scaled / factor + smooth * scaled
    medium = ~(wavelen < old / hi) & ~(wavelen > old / lo)
    return torch.where(medium, smoothed, scaled)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * h.to(x.dtype)


class Attention(nn.Module):
    def __init__(self, cfg: LlamaConfig) -> None:
        super().__init__()
        self.n_head, self.n_kv, self.d = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.dim_per_head
        b = cfg.attention_bias
        self.q_proj = nn.Linear(cfg.hidden_size, self.n_head * self.d, bias=b)
        self.k_proj = nn.Linear(cfg.hidden_size, self.n_kv * self.d, bias=b)
        self.v_proj = nn.Linear(cfg.hidden_size, self.n_kv * self.d, bias=b)
        self.o_proj = nn.Linear(self.n_head * self.d, cfg.hidden_size, bias=b)

    def forward(self, x, layer, cos, sin, attention_mask, cache):
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.n_head, self.d).transpose(1, 2)
        k = self.k_proj(x).view(B, T, self.n_kv, self.d).transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.n_kv, self.d).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if cache is not None:
            k, v = cache.update(layer, k, v)
        if self.n_kv != self.n_head:  # GQA: each kv head serves n_head // n_kv query heads
            k = k.repeat_interleave(self.n_head // self.n_kv, dim=1)
            v = v.repeat_interleave(self.n_head // self.n_kv, dim=1)
        y = attend(q, k, v, attention_mask)
        return self.o_proj(y.transpose(1, 2).reshape(B, T, self.n_head * self.d))


class MLP(nn.Module):
    def __init__(self, cfg: LlamaConfig) -> None:
        super().__init__()
        b = cfg.mlp_bias
        self.gate_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=b)
        self.up_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=b)
        self.down_proj = nn.Linear(cfg.intermediate_size, cfg.hidden_size, bias=b)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))  # SwiGLU


class DecoderLayer(nn.Module):
    def __init__(self, cfg: LlamaConfig) -> None:
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.self_attn = Attention(cfg)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.mlp = MLP(cfg)

    def forward(self, x, layer, cos, sin, attention_mask, cache):
        x = x + self.self_attn(self.input_layernorm(x), layer, cos, sin, attention_mask, cache)
        return x + self.mlp(self.post_attention_layernorm(x))


class Llama(nn.Module):
    """Llama-family causal LM; ``forward(idx)`` returns logits ``[B, T, V]``."""

    def __init__(self, cfg: LlamaConfig) -> None:
        super().__init__()
        self.config = cfg
        self.model = nn.Module()
        self.model.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.model.layers = nn.ModuleList(DecoderLayer(cfg) for _ in range(cfg.num_hidden_layers))
        self.model.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.lm_head = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
        self._inv_freq = rope_inv_freq(cfg)  # kept float32 even if the module is cast
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, mean=0.0, std=0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
        if cfg.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight

    def new_cache(self) -> KVCache:
        return KVCache(self.config.num_hidden_layers)

    def forward(self, idx: torch.Tensor, position_ids: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None, cache: KVCache | None = None,
                logits_to_keep: int = 0, logits_at: torch.Tensor | None = None) -> torch.Tensor:
        """Logits [B, T, V]; ``logits_to_keep=N`` computes only the last N positions (saves memory),
        ``logits_at`` (bool [B, T]) only those positions, as [N, V] (training: where a target is)."""
        past = cache.length if cache is not None else 0
        if position_ids is None:
            position_ids = default_positions(idx, past)
        x = self.model.embed_tokens(idx)
        freqs = position_ids[..., None].float() * self._inv_freq.to(idx.device)
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos()[:, None].to(x.dtype), emb.sin()[:, None].to(x.dtype)  # [B,1,T,D]
        for i, layer in enumerate(self.model.layers):
            x = layer(x, i, cos, sin, attention_mask, cache)
        return self.lm_head(self.model.norm(head_rows(x, logits_to_keep, logits_at)))
