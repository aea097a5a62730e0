"""Tiny randomly initialised models in every format the loaders read (``make_tiny_gpt2``,
``make_tiny_llama``, ...), deterministic in ``seed``, built in well under a second; they use GPT-2's
real tokenizer (vocab 50257), so any text round-trips. torch is imported inside the functions."""
from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

TINY_GPT2 = dict(vocab_size=50257, context_length=64, n_embd=32, n_layer=2, n_head=2, tie_word_embeddings=False)
TINY_LLAMA = dict(vocab_size=50257, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                  rope_theta=10000.0, rms_norm_eps=1e-5, tie_word_embeddings=False)


@contextmanager
def torch_threads(n: int = 1) -> Iterator[None]:
    """Run torch on ``n`` threads for a while. Tiny models gain nothing from intra-op threads,
    and on a busy machine OpenMP's spinning threads make each op many times slower."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def tiny_gpt2_module(seed: int = 0, **overrides: Any):
    """A random GPT-2 ``nn.Module`` (see ``TINY_GPT2``; ``overrides`` change fields)."""
    import torch

    from ..models.gpt2 import GPT2, GPT2Config

    torch.manual_seed(seed)
    module = GPT2(GPT2Config(**{**TINY_GPT2, **overrides})).eval()
    _peaked(module)
    return module


def tiny_llama_module(seed: int = 0, **overrides: Any):
    """A random Llama ``nn.Module`` with GQA (see ``TINY_LLAMA``)."""
    import torch

    from ..models.llama import Llama, LlamaConfig

    torch.manual_seed(seed)
    module = Llama(LlamaConfig(**{**TINY_LLAMA, **overrides})).eval()
    _peaked(module)
    return module


def _peaked(module) -> None:
    """An untied head with larger weights than GPT-2's 0.02 init: next-token distributions
    get peaked (entropy ~7 nats) so greedy ties are implausible and different sampling
    seeds give different text. (A tied head would just repeat the last token.)"""
    import torch

    if not module.config.tie_word_embeddings:
        with torch.no_grad():
            module.lm_head.weight.normal_(0.0, 0.5)


def make_tiny_gpt2(path: str | Path, fmt: str = "harness", seed: int = 0, **overrides: Any) -> Path:
    """Write a tiny random GPT-2 as a harness dir, a Hugging Face dir (``"hf"``, with GPT-2
    tokenizer files so ``AutoTokenizer`` loads it) or an LLMs-from-scratch ``"pth"``.

    For ``"pth"`` a ``.pth`` path is used as is, a dir gets ``model.pth``; a sidecar
    ``.json`` holds ``n_heads`` (tiny sizes are not in GPT-2's size table). Same
    ``seed`` and overrides -> same weights in every format. Returns the loadable path.
    """
    from ..models.checkpoint import save_checkpoint
    from ..models.tokenizer import gpt2_tokenizer

    module = tiny_gpt2_module(seed, **overrides)
    path = Path(path)
    if fmt == "harness":
        return save_checkpoint(module, module.config, path, gpt2_tokenizer(), {"prompt_format": None})
    if fmt == "hf":
        return write_hf_gpt2(module, path)
    if fmt == "pth":
        return write_pth(module, path if path.suffix == ".pth" else path / "model.pth")
    raise ValueError(f"fmt must be 'harness', 'hf' or 'pth', not {fmt!r}")


def make_tiny_llama(path: str | Path, seed: int = 0, fmt: str = "harness", **overrides: Any) -> Path:
    """Write a tiny random Llama (GQA, RoPE, SwiGLU; GPT-2 tokenizer) as a harness dir or,
    with ``fmt="hf"``, a Hugging Face ``LlamaForCausalLM`` dir (for the hf backend)."""
    from ..models.checkpoint import save_checkpoint
    from ..models.tokenizer import gpt2_tokenizer

    module = tiny_llama_module(seed, **overrides)
    if fmt == "hf":
        return write_hf_llama(module, Path(path))
    if fmt != "harness":
        raise ValueError(f"fmt must be 'harness' or 'hf', not {fmt!r}")
    return save_checkpoint(module, module.config, Path(path), gpt2_tokenizer(), {"prompt_format": None})


def write_hf_llama(module, out: Path) -> Path:
    from safetensors.torch import save_file

    cfg = module.config
    out.mkdir(parents=True, exist_ok=True)
    sd = {k: v.detach().clone().contiguous() for k, v in module.state_dict().items()}
    if cfg.tie_word_embeddings:
        sd.pop("lm_head.weight")
    save_file(sd, str(out / "model.safetensors"), metadata={"format": "pt"})
    hf = {k: v for k, v in cfg.to_dict().items() if k != "arch" and v is not None}
    hf.update(model_type="llama", architectures=["LlamaForCausalLM"], bos_token_id=50256, eos_token_id=50256)
    (out / "config.json").write_text(json.dumps(hf, indent=2))
    _write_gpt2_tokenizer_files(out, cfg.context_length)
    return out


def _write_gpt2_tokenizer_files(out: Path, max_length: int) -> None:
    """vocab.json + merges.txt + tokenizer_config.json: what ``AutoTokenizer`` reads for GPT-2."""
    from ..models.tokenizer import ASSETS

    shutil.copyfile(ASSETS / "encoder.json", out / "vocab.json")
    shutil.copyfile(ASSETS / "vocab.bpe", out / "merges.txt")
    tok = {"tokenizer_class": "GPT2Tokenizer", "model_max_length": max_length,
           "bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>",
           "add_prefix_space": False}
    (out / "tokenizer_config.json").write_text(json.dumps(tok, indent=2))


def gpt2_to_hf_state_dict(module) -> dict:
    """Our GPT-2 names -> ``GPT2LMHeadModel`` names (Conv1D weights are transposed)."""
    from ..models.checkpoint import CONV1D

    sd = {k: v.detach().clone() for k, v in module.state_dict().items()}
    if module.config.tie_word_embeddings:
        sd.pop("lm_head.weight")
    return {k: (v.t().contiguous() if CONV1D.search(k) else v) for k, v in sd.items()}


def write_hf_gpt2(module, out: Path) -> Path:
    from safetensors.torch import save_file

    cfg = module.config
    if not cfg.qkv_bias:
        raise ValueError("Hugging Face GPT-2 always has a qkv bias")
    out.mkdir(parents=True, exist_ok=True)
    save_file(gpt2_to_hf_state_dict(module), str(out / "model.safetensors"), metadata={"format": "pt"})
    hf = {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "vocab_size": cfg.vocab_size,
          "n_positions": cfg.context_length, "n_embd": cfg.n_embd, "n_layer": cfg.n_layer,
          "n_head": cfg.n_head, "layer_norm_epsilon": cfg.layer_norm_eps, "activation_function": "gelu_new",
          "tie_word_embeddings": cfg.tie_word_embeddings, "bos_token_id": 50256, "eos_token_id": 50256,
          "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0}
    (out / "config.json").write_text(json.dumps(hf, indent=2))
    _write_gpt2_tokenizer_files(out, cfg.context_length)
    return out


def gpt2_to_pth_state_dict(module) -> dict:
    """Our GPT-2 -> an LLMs-from-scratch ``GPTModel`` state dict (the book's key names)."""
    import torch

    cfg = module.config
    sd = module.state_dict()
    C = cfg.n_embd
    out = {"tok_emb.weight": sd["transformer.wte.weight"], "pos_emb.weight": sd["transformer.wpe.weight"]}
    for i in range(cfg.n_layer):
        s, d = f"transformer.h.{i}.", f"trf_blocks.{i}."
        for n, w in zip(("query", "key", "value"), sd[s + "attn.c_attn.weight"].split(C, dim=0)):
            out[f"{d}att.W_{n}.weight"] = w
        if cfg.qkv_bias:
            for n, b in zip(("query", "key", "value"), sd[s + "attn.c_attn.bias"].split(C)):
                out[f"{d}att.W_{n}.bias"] = b
        for src, dst in (("attn.c_proj", "att.out_proj"), ("mlp.c_fc", "ff.layers.0"), ("mlp.c_proj", "ff.layers.2")):
            out[f"{d}{dst}.weight"], out[f"{d}{dst}.bias"] = sd[f"{s}{src}.weight"], sd[f"{s}{src}.bias"]
        for src, dst in (("ln_1", "norm1"), ("ln_2", "norm2")):
            out[f"{d}{dst}.scale"], out[f"{d}{dst}.shift"] = sd[f"{s}{src}.weight"], sd[f"{s}{src}.bias"]
        T = cfg.context_length
        out[f"{d}att.mask"] = torch.triu(torch.ones(T, T), diagonal=1)  # the book's persistent buffer
    out["final_norm.scale"], out["final_norm.shift"] = sd["transformer.ln_f.weight"], sd["transformer.ln_f.bias"]
    out["out_head.weight"] = sd["lm_head.weight"]
    return {k: v.detach().clone().contiguous() for k, v in out.items()}


def write_pth(module, out: Path, sidecar: bool = True) -> Path:
    import torch

    cfg = module.config
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(gpt2_to_pth_state_dict(module), str(out))
    if sidecar:  # the book's GPT_CONFIG dict
        book = {"vocab_size": cfg.vocab_size, "context_length": cfg.context_length, "emb_dim": cfg.n_embd,
                "n_heads": cfg.n_head, "n_layers": cfg.n_layer, "drop_rate": 0.0, "qkv_bias": cfg.qkv_bias}
        out.with_suffix(".json").write_text(json.dumps(book, indent=2))
    return out
