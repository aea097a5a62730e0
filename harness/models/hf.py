"""The Hugging Face transformers backend (``--model hf:PATH_OR_HUB_ID``, extra ``harness[hf]``).

For architectures the native backend lacks. It reuses :class:`TokenLM`, so batching,
tokenisation rules and stop handling are exactly those of the native models and
scores are comparable across backends. transformers is imported only here.
"""
from __future__ import annotations

import inspect
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ..api import ModelInfo
from ..errors import HarnessError
from .tokenlm import TokenLM


def _looks_local(path: str) -> bool:
    return Path(path).exists() or path.startswith(("/", "./", "../", "~", ".\\")) or path.endswith(".gguf")


class _TrainTokenizer:
    """The tokenizer interface collate needs, over a transformers-backed TokenLM."""

    def __init__(self, lm: Any) -> None:
        self.lm = lm
        self.eot_id = lm.eot_id
        self.bos_id = lm.prefix_id
        self.add_bos = lm.tok_encode("a") != lm.tok_encode("a", add_special=False)

    def encode(self, text: str) -> list[int]:
        return self.lm.tok_encode(text, add_special=False)


class HFLM(TokenLM):
    """``AutoModelForCausalLM`` + ``AutoTokenizer`` in float32 behind the TokenLM layer."""

    def __init__(self, path: str, *, spec: str | None = None, device: str = "cpu", batch_size: int = 8,
                 trust_remote_code: bool = False, dtype: str = "float32", revision: str | None = None,
                 adapter: str | None = None) -> None:
        super().__init__(batch_size=batch_size, device=device)
        try:
            import transformers
        except ImportError:
            raise HarnessError(f"--model hf:{path}: the hf backend needs transformers; "
                               "install it with pip install 'harness[hf]'") from None
        if _looks_local(path) and not Path(path).expanduser().exists():
            raise HarnessError(f"--model hf:{path}: no such file or directory; check the path")
        path = str(Path(path).expanduser()) if Path(path).expanduser().exists() else path
        major = int(transformers.__version__.split(".")[0])
        dtype_kw = {"dtype" if major >= 5 else "torch_dtype": _torch_dtype(dtype)}
        kw: dict[str, Any] = {"trust_remote_code": bool(trust_remote_code)}
        if revision is not None:
            kw["revision"] = str(revision)
        try:
            self.hf_tokenizer = transformers.AutoTokenizer.from_pretrained(path, **kw)
            self.hf_model = transformers.AutoModelForCausalLM.from_pretrained(path, **kw, **dtype_kw)
        except (OSError, ValueError, KeyError) as e:
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise HarnessError(f"--model hf:{path}: transformers cannot load it ({msg[:160]}); "
                               "check the dir has config.json, weights and tokenizer files") from None
        if adapter is not None:
            self.hf_model = _apply_peft(self.hf_model, adapter)
        self.hf_model.to(self.device).eval()
        params = inspect.signature(self.hf_model.forward).parameters
        self._keep_kw = "logits_to_keep" in params
        self._cache_kw = "cache" if "cache" in params else "past_key_values"  # renamed in transformers 5.x
        self.chat_template = getattr(self.hf_tokenizer, "chat_template", None)
        cfg = self.hf_model.config
        recorded = _recorded_format(path)  # what `harness finetune` wrote into config.json
        self.info = ModelInfo(
            spec=spec or f"hf:{path}", backend="hf", arch=getattr(cfg, "model_type", ""), path=path,
            fingerprint=_fingerprint(path), n_params=sum(p.numel() for p in self.hf_model.parameters()),
            context_length=self.max_length, prompt_format=recorded.get("prompt_format"),
            extra={"format": "hf", **{k: v for k, v in recorded.items() if k == "prompt_template"}},
        )

    def tok_encode(self, text: str, add_special: bool = True) -> list[int]:
        return self.hf_tokenizer.encode(text, add_special_tokens=add_special)

    def tok_decode(self, ids: Sequence[int]) -> str:
        return self.hf_tokenizer.decode(list(ids))

    @property
    def eot_id(self) -> int:
        eos = self.hf_tokenizer.eos_token_id
        return eos if eos is not None else self.hf_model.config.eos_token_id

    @property
    def prefix_id(self) -> int:
        bos = self.hf_tokenizer.bos_token_id
        return self.eot_id if bos is None else bos

    @property
    def stop_ids(self) -> frozenset[int]:
        gen = getattr(self.hf_model, "generation_config", None)
        eos = getattr(gen, "eos_token_id", None) if gen is not None else None
        ids = eos if isinstance(eos, (list, tuple)) else [eos] if eos is not None else []
        return frozenset(ids) | {self.eot_id}

    @property
    def max_length(self) -> int:
        """lm-eval's rule: the model config's position limit, else the tokenizer's, else 2048."""
        cfg = self.hf_model.config
        for attr in ("n_positions", "max_position_embeddings", "n_ctx"):
            if isinstance(getattr(cfg, attr, None), int):
                return getattr(cfg, attr)
        n = getattr(self.hf_tokenizer, "model_max_length", None)
        return n if isinstance(n, int) and n < 10**7 else 2048

    def forward(self, idx, *, position_ids=None, attention_mask=None, cache=None, logits_to_keep=0):
        kw: dict[str, Any] = dict(input_ids=idx, use_cache=cache is not None)
        if position_ids is not None:
            kw["position_ids"] = position_ids
        if attention_mask is not None:
            kw["attention_mask"] = attention_mask
        if cache is not None:
            kw[self._cache_kw] = cache
        if self._keep_kw and logits_to_keep:
            kw["logits_to_keep"] = logits_to_keep
        logits = self.hf_model(**kw).logits
        return logits[:, -logits_to_keep:] if logits_to_keep else logits

    def new_cache(self) -> Any:
        from transformers import DynamicCache

        return DynamicCache()

    def fork_cache(self, cache: Any) -> Any:
        """Share the tensors when every layer is a plain ``DynamicLayer`` (it grows by
        concatenation, never in place); any other cache is deep-copied."""
        import copy

        from transformers.cache_utils import DynamicLayer

        layers = getattr(cache, "layers", None)
        if layers is None or any(type(layer) is not DynamicLayer for layer in layers):
            return copy.deepcopy(cache)
        other = copy.copy(cache)
        other.layers = [copy.copy(layer) for layer in layers]
        return other

    def trainable(self) -> tuple[torch.nn.Module, Any, int]:
        return self.hf_model, _TrainTokenizer(self), int(self.max_length)

    def save(self, module: torch.nn.Module, out: Path, extra: dict[str, Any]) -> None:
        """``save_pretrained`` with harness's keys (prompt format, base model) added to config.json."""
        module.save_pretrained(str(out))
        self.hf_tokenizer.save_pretrained(str(out))
        cfg = json.loads((out / "config.json").read_text())
        (out / "config.json").write_text(json.dumps({**cfg, **extra}, indent=2) + "\n")

    def close(self) -> None:
        self.hf_model = None


DTYPES = ("float32", "bfloat16", "float16", "auto")


def _torch_dtype(dtype: Any) -> Any:
    """``--model-args dtype=...``: float32 (default), bfloat16, float16, or auto (the config's)."""
    if dtype == "auto":
        return "auto"
    if dtype not in DTYPES:
        raise HarnessError(f"--model-args dtype={dtype}: expected one of {', '.join(DTYPES)}")
    return getattr(torch, dtype)


def _apply_peft(model: Any, adapter: str) -> Any:
    """A PEFT adapter dir applied to ``model`` with peft, merged so the forward pass is transformers' own."""
    try:
        from peft import PeftModel
    except ImportError:
        raise HarnessError(f"{adapter}: applying a PEFT adapter to a transformers model needs peft; "
                           "pip install peft") from None
    try:
        return PeftModel.from_pretrained(model, adapter).merge_and_unload()
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise HarnessError(f"{adapter}: peft cannot apply this adapter to its base ({msg[:160]}); "
                           "check base_model_name_or_path or pass --model-args base=PATH") from None


def _fingerprint(path: str) -> str:
    """Fingerprint of the weight files (local dir, or the hub cache snapshot); '' if not found."""
    from .checkpoint import hf_weight_files
    from .fingerprint import fingerprint_files

    local = Path(path)
    if not local.is_dir():
        try:
            from huggingface_hub import snapshot_download

            local = Path(snapshot_download(path, local_files_only=True))
        except Exception:
            return ""
    try:
        return fingerprint_files(hf_weight_files(local))
    except (HarnessError, OSError):
        return ""


def _recorded_format(path: str) -> dict:
    """The prompt format a fine-tuned local checkpoint records (``prompt_format``/``prompt_template``)."""
    import json

    file = Path(path) / "config.json"
    try:
        cfg = json.loads(file.read_text(encoding="utf-8")) if file.is_file() else {}
    except (OSError, ValueError):
        return {}
    return {k: cfg[k] for k in ("prompt_format", "prompt_template") if cfg.get(k)}
