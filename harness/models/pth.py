"""LLMs-from-scratch ``.pth`` state dicts (the book's ``GPTModel``) as our GPT-2."""
from __future__ import annotations

import re
from pathlib import Path

import torch

from ..errors import HarnessError
from .formats import read_json
from .gpt2 import GPT2Config

GPT2_HEADS = {768: 12, 1024: 16, 1280: 20, 1600: 25}  # the released GPT-2 sizes (head dim 64)


def pth_to_gpt2(sd: dict[str, torch.Tensor], path: Path) -> tuple[GPT2Config, dict[str, torch.Tensor]]:
    """LLMs-from-scratch ``GPTModel`` state dict -> (config, our GPT-2 state dict).

    The book's model is GPT-2 with separate W_query/W_key/W_value and an untied
    ``out_head``; sizes come from tensor shapes, heads from the GPT-2 size table
    or a ``<stem>.json`` / ``config.json`` holding the book's ``n_heads``.
    """
    bad = f"{path}: not an LLMs-from-scratch GPT state dict"
    need = ("tok_emb.weight", "pos_emb.weight", "final_norm.scale", "final_norm.shift", "out_head.weight")
    if not all(k in sd and isinstance(sd[k], torch.Tensor) for k in need):
        raise HarnessError(f"{bad} (missing {[k for k in need if k not in sd][:3]}); "
                           "save it with torch.save(model.state_dict(), path)")
    vocab, C = sd["tok_emb.weight"].shape
    layers = sorted({int(m.group(1)) for k in sd if (m := re.match(r"trf_blocks\.(\d+)\.", k))})
    n_layer = len(layers)
    if layers != list(range(n_layer)) or n_layer == 0:
        raise HarnessError(f"{bad} (transformer blocks {layers[:5]}...); check the file")
    n_head = _pth_heads(path, C)
    qkv_bias = "trf_blocks.0.att.W_query.bias" in sd
    cfg = GPT2Config(vocab_size=vocab, context_length=sd["pos_emb.weight"].shape[0], n_embd=C,
                     n_layer=n_layer, n_head=n_head, qkv_bias=qkv_bias, tie_word_embeddings=False)
    out = {"transformer.wte.weight": sd["tok_emb.weight"], "transformer.wpe.weight": sd["pos_emb.weight"],
           "transformer.ln_f.weight": sd["final_norm.scale"], "transformer.ln_f.bias": sd["final_norm.shift"],
           "lm_head.weight": sd["out_head.weight"]}
    try:
        for i in layers:
            s, d = f"trf_blocks.{i}.", f"transformer.h.{i}."
            att = [sd[f"{s}att.W_{n}.weight"] for n in ("query", "key", "value")]
            out[d + "attn.c_attn.weight"] = torch.cat(att, dim=0)
            if qkv_bias:
                out[d + "attn.c_attn.bias"] = torch.cat([sd[f"{s}att.W_{n}.bias"] for n in ("query", "key", "value")])
            for src, dst in (("att.out_proj", "attn.c_proj"), ("ff.layers.0", "mlp.c_fc"),
                             ("ff.layers.2", "mlp.c_proj")):
                out[f"{d}{dst}.weight"], out[f"{d}{dst}.bias"] = sd[f"{s}{src}.weight"], sd[f"{s}{src}.bias"]
            for src, dst in (("norm1", "ln_1"), ("norm2", "ln_2")):
                out[f"{d}{dst}.weight"], out[f"{d}{dst}.bias"] = sd[f"{s}{src}.scale"], sd[f"{s}{src}.shift"]
    except KeyError as e:
        raise HarnessError(f"{bad} (missing {e.args[0]}); check the file") from None
    except RuntimeError:
        raise HarnessError(f"{bad} (attention weight shapes disagree); check the file") from None
    known = set(need) | {k for k in sd if re.match(r"trf_blocks\.\d+\.", k)}
    if set(sd) - known:
        raise HarnessError(f"{bad} (unexpected keys {sorted(set(sd) - known)[:3]}); check the file")
    return cfg, out


def _pth_heads(path: Path, emb_dim: int) -> int:
    for side in (path.with_suffix(".json"), path.parent / "config.json"):
        if side.is_file():
            n = read_json(side).get("n_heads")
            if isinstance(n, int) and n > 0 and emb_dim % n == 0:
                return n
    if emb_dim in GPT2_HEADS:
        return GPT2_HEADS[emb_dim]
    raise HarnessError(f"{path}: embedding size {emb_dim} matches no GPT-2 config (768, 1024, 1280, 1600); "
                       f"write the book's GPT_CONFIG (with \"n_heads\") to {path.with_suffix('.json').name}")
