"""Checkpoint I/O for the native backend: what a path holds, and turning it into a module.

Formats read: harness's own dirs (``config.json`` with ``"format": "harness"`` +
``model.safetensors``), Hugging Face GPT-2 dirs (Conv1D weights, transposed vs
``nn.Linear``), LLMs-from-scratch ch05/ch07 ``.pth`` state dicts, and GGUF files
(via :mod:`harness.models.gguf`). :func:`save_checkpoint` writes harness dirs atomically
so a crash mid-save never leaves a half-written checkpoint behind.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import HarnessError
from ..files import publish
from .formats import detect_format, read_json
from .gpt2 import GPT2, GPT2Config
from .llama import Llama, LlamaConfig
from .pth import pth_to_gpt2
from .tokenizer import Tokenizer, gpt2_tokenizer, tokenizer_from_config

ARCHS: dict[str, tuple[type, type]] = {"gpt2": (GPT2, GPT2Config), "llama": (Llama, LlamaConfig)}
CONV1D = re.compile(r"\.(attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj)\.weight$")


@dataclass
class Loaded:
    """A module ready to wrap in :class:`harness.models.native.NativeLM`."""

    module: torch.nn.Module
    tokenizer: Tokenizer
    files: list[Path]  # weight files, for the fingerprint
    fmt: str
    prompt_format: str | None = None
    chat_template: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def load_checkpoint(path: str | Path) -> Loaded:
    """Load any native format (see module docstring) onto the CPU in float32."""
    p = Path(path)
    if not p.exists():
        raise HarnessError(f"{p}: no such file or directory; check the --model path")
    fmt = detect_format(p)
    if fmt == "harness":
        return _load_harness(p)
    if fmt == "hf-gpt2":
        return _load_hf_gpt2(p)
    if fmt == "pth":
        return _load_pth(p)
    if fmt == "gguf":
        return _load_gguf(p)
    if fmt == "hf":
        raise HarnessError(f"{p}: a Hugging Face {read_json(p / 'config.json')['model_type']!r} model; "
                           "the native backend reads GPT-2 only, use --model hf:PATH")
    raise HarnessError(f"{p}: unknown model format (want a harness or Hugging Face checkpoint dir "
                       "with config.json, a .pth state dict or a .gguf file)")


@contextmanager
def no_init() -> Iterator[None]:
    """Build modules without random init (the weights are overwritten at once).

    Cheaper than the "meta" device here: the first ``normal_`` on meta tensors imports
    torch's decomposition machinery, which costs seconds of CLI start-up.
    """
    names = ("normal_", "uniform_", "kaiming_uniform_", "zeros_", "ones_", "trunc_normal_")
    saved = {n: getattr(torch.nn.init, n) for n in names}
    for n in names:
        setattr(torch.nn.init, n, lambda t, *a, **k: t)
    try:
        yield
    finally:
        for n, f in saved.items():
            setattr(torch.nn.init, n, f)


def build_module(arch: str, cfg: Any, state_dict: dict[str, torch.Tensor], path: Path) -> torch.nn.Module:
    """Instantiate ``arch`` without random init and load ``state_dict`` into it."""
    with no_init():
        module = ARCHS[arch][0](cfg)
    sd = {k: v.to(torch.float32).contiguous() for k, v in state_dict.items()}
    if cfg.tie_word_embeddings:
        sd.pop("lm_head.weight", None)
    expected = set(module.state_dict())
    if cfg.tie_word_embeddings:
        expected.discard("lm_head.weight")
    missing, unexpected = sorted(expected - set(sd)), sorted(set(sd) - expected)
    if missing or unexpected:
        raise HarnessError(f"{path}: weights do not fit a {arch} model (missing {missing[:3]}, "
                           f"unexpected {unexpected[:3]}); re-save the checkpoint")
    try:
        module.load_state_dict(sd, strict=False, assign=True)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[-1].strip()
        raise HarnessError(f"{path}: weight shapes do not match the config ({first}); "
                           "re-save the checkpoint") from None
    if cfg.tie_word_embeddings:
        emb = module.transformer.wte if isinstance(module, GPT2) else module.model.embed_tokens
        module.lm_head.weight = emb.weight
    return module


def read_safetensors(files: list[Path]) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    sd: dict[str, torch.Tensor] = {}
    for f in files:
        try:
            sd.update(load_file(str(f)))
        except FileNotFoundError:
            raise HarnessError(f"{f}: weight file missing; re-save or re-download the checkpoint") from None
        except Exception as e:  # safetensors raises its own error type for cut/corrupt files
            raise HarnessError(f"{f}: truncated or corrupt safetensors file ({str(e).splitlines()[0]}); "
                               "re-save or re-download the checkpoint") from None
    return sd


def read_torch(path: Path) -> Any:
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise HarnessError(f"{path}: weight file missing; re-save or re-download the checkpoint") from None
    except Exception as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise HarnessError(f"{path}: truncated, corrupt or not a torch state dict ({msg[:120]}); "
                           "re-save or re-download it") from None


def _load_harness(path: Path) -> Loaded:
    cfg = read_json(path / "config.json")
    arch = cfg.get("arch")
    if arch not in ARCHS:
        raise HarnessError(f"{path / 'config.json'}: unknown arch {arch!r} (want one of {sorted(ARCHS)}); "
                           "re-save the checkpoint")
    mcfg = ARCHS[arch][1].from_dict(cfg)
    files = [path / "model.safetensors"]
    module = build_module(arch, mcfg, read_safetensors(files), path)
    tok = tokenizer_from_config(cfg.get("tokenizer"), path)
    skip = set(mcfg.to_dict()) | {"format", "tokenizer", "prompt_format", "chat_template", "rope_parameters"}
    extra = {k: v for k, v in cfg.items() if k not in skip}
    return Loaded(module, tok, files, "harness", cfg.get("prompt_format"), cfg.get("chat_template"), extra)


def hf_weight_files(path: Path) -> list[Path]:
    for name in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        if (path / name).is_file():
            weight_map = read_json(path / name).get("weight_map", {})
            return [path / f for f in sorted(set(weight_map.values()))]
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (path / name).is_file():
            return [path / name]
    raise HarnessError(f"{path}: no model.safetensors or pytorch_model.bin; copy the weights into the dir")


def _load_hf_gpt2(path: Path) -> Loaded:
    hf = read_json(path / "config.json")
    if hf.get("activation_function", "gelu_new") not in ("gelu_new", "gelu_pytorch_tanh") or \
            hf.get("scale_attn_by_inverse_layer_idx") or hf.get("reorder_and_upcast_attn"):
        raise HarnessError(f"{path / 'config.json'}: GPT-2 variant the native backend does not "
                           "implement; use --model hf:PATH")
    cfg = GPT2Config(vocab_size=hf["vocab_size"], context_length=hf.get("n_positions", 1024),
                     n_embd=hf["n_embd"], n_layer=hf["n_layer"], n_head=hf["n_head"],
                     layer_norm_eps=hf.get("layer_norm_epsilon", 1e-5),
                     tie_word_embeddings=hf.get("tie_word_embeddings", True))
    files = hf_weight_files(path)
    raw: dict[str, torch.Tensor] = {}
    for f in files:
        raw.update(read_safetensors([f]) if f.suffix == ".safetensors" else read_torch(f))
    sd = {}
    for k, v in raw.items():
        if k.endswith((".attn.bias", ".attn.masked_bias")) and v.dim() != 1:
            continue  # old HF checkpoints store the causal mask as a buffer
        if not k.startswith(("transformer.", "lm_head.")):
            k = "transformer." + k
        sd[k] = v.t() if CONV1D.search(k) else v
    _check_gpt2_vocab(cfg, path)
    recorded = {k: hf[k] for k in ("prompt_template", "base_model", "finetune") if k in hf}  # `harness export`
    return Loaded(build_module("gpt2", cfg, sd, path), gpt2_tokenizer(), files, "hf-gpt2", hf.get("prompt_format"),
                  hf.get("chat_template"), recorded)


def _check_gpt2_vocab(cfg: GPT2Config, path: Path) -> None:
    if cfg.vocab_size < 50257:
        raise HarnessError(f"{path}: vocab_size {cfg.vocab_size} < 50257, so not GPT-2's tokenizer; "
                           "use --model hf:PATH")


def _strip_prefixes(sd: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in sd.items():
        for pre in ("_orig_mod.", "module."):  # torch.compile / DDP wrappers
            if k.startswith(pre):
                k = k[len(pre):]
        out[k] = v
    return out


def _load_pth(path: Path) -> Loaded:
    obj = read_torch(path)
    if isinstance(obj, dict):
        for key in ("model_state_dict", "state_dict", "model"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict):
        raise HarnessError(f"{path}: holds a {type(obj).__name__}, not a state dict; "
                           "save it with torch.save(model.state_dict(), path)")
    cfg, sd = pth_to_gpt2(_strip_prefixes(obj), path)
    _check_gpt2_vocab(cfg, path)
    return Loaded(build_module("gpt2", cfg, sd, path), gpt2_tokenizer(), [path], "pth")


def _load_gguf(path: Path) -> Loaded:
    try:
        from .gguf import load_gguf
    except ImportError as e:
        raise HarnessError(f"{path}: GGUF support is unavailable ({e}); reinstall harness") from None
    data = load_gguf(path)
    cfg = LlamaConfig.from_dict(data.config)
    module = build_module("llama", cfg, data.state_dict, path)
    return Loaded(module, data.tokenizer, [path], "gguf", None, data.chat_template)


def save_checkpoint(module: torch.nn.Module, config: Any, out_dir: str | Path, tokenizer: Tokenizer,
                    extra: dict[str, Any] | None = None) -> Path:
    """Write a harness checkpoint dir atomically (temp dir + rename); return its path.

    ``config`` is the module's GPT2Config/LlamaConfig (None: ``module.config``); ``extra``
    keys (``prompt_format``, ``base_model``, training facts...) go into ``config.json``.
    """
    from safetensors.torch import save_file

    config = config if config is not None else module.config
    out = Path(out_dir)
    with no_init():
        expected = set(ARCHS[config.arch][0](config).state_dict())
    sd = module.state_dict()
    if set(sd) != expected:
        raise HarnessError(f"{out}: module parameters {sorted(set(sd) ^ expected)[:3]} do not match a plain "
                           f"{config.arch} model; merge adapters (e.g. LoRA) before saving")
    if config.tie_word_embeddings:
        sd.pop("lm_head.weight")  # safetensors refuses shared tensors; reloading re-ties
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    publish(tmp)
    try:
        save_file({k: v.detach().to("cpu").contiguous() for k, v in sd.items()},
                  str(tmp / "model.safetensors"), metadata={"format": "pt"})
        extra = dict(extra or {})
        cfg = {"format": "harness", **config.to_dict(), "tokenizer": tokenizer.save(tmp),
               "prompt_format": extra.pop("prompt_format", None), **extra}
        (tmp / "config.json").write_text(json.dumps(cfg, indent=2) + "\n", encoding="utf-8")
        os.chmod(tmp, 0o755)
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        if out.exists():
            out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
