"""``harness export``: a native checkpoint as a Hugging Face dir that transformers opens as is.

A harness checkpoint (``config.json`` with ``"format": "harness"``), a ``.pth``, a ``.gguf`` or the
embedded default model becomes ``config.json`` (``model_type`` gpt2/llama, HF field names),
``model.safetensors`` (HF tensor names; GPT-2's Conv1D weights transposed), ``generation_config.json``
and a fast tokenizer (``tokenizer.json`` built with the ``tokenizers`` library, plus
``tokenizer_config.json``), so ``AutoModelForCausalLM`` / ``AutoTokenizer.from_pretrained(OUT)``
load it with logits equal to harness's. A LoRA fine-tune's output is already merged, so it exports
merged. harness's own keys (``prompt_format``, ``base_model``, ...) stay in ``config.json``, where
transformers ignores them and harness's hf backend reads the prompt format back.

Tokenizer: GPT-2's is the byte-level BPE of the shipped ``vocab.json``/``merges.txt``. Any other
(GGUF-derived) tokenizer is stored by harness as tiktoken ranks; the vocabulary is those ranks in
GPT-2's byte-to-unicode spelling and the merges are recovered from them as transformers'
``TikTokenConverter`` does (a token's merge ranks with its id), with the checkpoint's own
pre-tokenizer regex (``Split`` + ``ByteLevel``) so ids equal harness's (SmolLM2's digit splitting
included, which transformers' GGUF converter drops).
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from .errors import HarnessError
from .files import publish

HARNESS_KEYS = ("prompt_format", "prompt_template", "chat_template", "base_model", "finetune")


def export_hf(ckpt: str | None, out: str | Path) -> Path:
    """Write ``ckpt`` (a native checkpoint path, or None / the default model's name) to ``out``."""
    from .models.checkpoint import load_checkpoint
    from .models.formats import detect_format
    from .models.loading import DEFAULT_MODEL_NAME

    if ckpt is None or ckpt == DEFAULT_MODEL_NAME:
        from .models.default import default_model_path

        ckpt = str(default_model_path())
    ckpt = ckpt.removeprefix("native:")
    if Path(ckpt).is_dir() and detect_format(ckpt) == "hf":
        raise HarnessError(f"{ckpt}: already a Hugging Face model dir; transformers loads it as it is")
    loaded = load_checkpoint(ckpt)
    module, cfg = loaded.module, loaded.module.config
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise HarnessError(f"{out}: exists and is not empty; choose a new output directory")
    tok = loaded.tokenizer
    recorded = _recorded(Path(ckpt))
    if loaded.chat_template and not recorded.get("chat_template"):
        recorded["chat_template"] = loaded.chat_template
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    publish(tmp)
    try:
        hf_cfg, sd = (_gpt2(module) if cfg.arch == "gpt2" else _llama(module))
        eos = tok.eot_id
        bos = tok.bos_id if tok.bos_id is not None else eos
        hf_cfg.update(bos_token_id=bos, eos_token_id=eos, torch_dtype="float32",
                      **{k: v for k, v in recorded.items() if k != "chat_template"})
        _save_weights(sd, tmp / "model.safetensors")
        (tmp / "config.json").write_text(json.dumps(hf_cfg, indent=2) + "\n", encoding="utf-8")
        stops = [eos, *sorted(tok.stop_ids - {eos})]
        gen = {"bos_token_id": bos, "eos_token_id": stops if len(stops) > 1 else eos}
        (tmp / "generation_config.json").write_text(json.dumps(gen, indent=2) + "\n", encoding="utf-8")
        write_tokenizer(tok, tmp, cfg.context_length, recorded.get("chat_template"))
        for f in tmp.iterdir():
            f.chmod(0o644)
        if out.exists():
            out.rmdir()
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _recorded(path: Path) -> dict[str, Any]:
    """harness's keys from a checkpoint's config.json (none for .pth/.gguf)."""
    file = path / "config.json"
    if not file.is_file():
        return {}
    cfg = json.loads(file.read_text(encoding="utf-8"))
    return {k: cfg[k] for k in HARNESS_KEYS if cfg.get(k) is not None}


def _gpt2(module: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    from .models.checkpoint import CONV1D

    cfg = module.config
    if not cfg.qkv_bias:
        raise HarnessError("this GPT-2 has no qkv bias, which Hugging Face's GPT-2 always has; "
                           "it cannot be exported as model_type gpt2")
    sd = {k: v.detach() for k, v in module.state_dict().items()}
    if cfg.tie_word_embeddings:
        sd.pop("lm_head.weight")
    sd = {k: (v.t() if CONV1D.search(k) else v) for k, v in sd.items()}
    hf = {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "vocab_size": cfg.vocab_size,
          "n_positions": cfg.context_length, "n_ctx": cfg.context_length, "n_embd": cfg.n_embd,
          "n_layer": cfg.n_layer, "n_head": cfg.n_head, "n_inner": None,
          "layer_norm_epsilon": cfg.layer_norm_eps, "activation_function": "gelu_new",
          "tie_word_embeddings": cfg.tie_word_embeddings, "resid_pdrop": 0.0, "embd_pdrop": 0.0,
          "attn_pdrop": 0.0, "scale_attn_weights": True}
    return hf, sd


def _llama(module: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    cfg = module.config
    sd = {k: v.detach() for k, v in module.state_dict().items()}
    if cfg.tie_word_embeddings:
        sd.pop("lm_head.weight")
    hf = {k: v for k, v in cfg.to_dict().items() if k != "arch" and v is not None}
    hf.update(model_type="llama", architectures=["LlamaForCausalLM"], hidden_act="silu",
              attention_dropout=0.0, pretraining_tp=1)
    return hf, sd


def _save_weights(sd: dict[str, Any], path: Path) -> None:
    from safetensors.torch import save_file

    save_file({k: v.to("cpu").contiguous() for k, v in sd.items()}, str(path), metadata={"format": "pt"})


def _bytes_to_unicode() -> dict[int, str]:
    printable = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    others = [b for b in range(256) if b not in printable]
    return {b: chr(b) for b in printable} | {b: chr(256 + i) for i, b in enumerate(others)}


def vocab_and_merges(ranks: dict[bytes, int]) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """tiktoken ranks -> byte-level BPE vocab and merges (transformers' ``TikTokenConverter`` rule)."""
    alphabet = _bytes_to_unicode()

    def spell(b: bytes) -> str:
        return "".join(alphabet[c] for c in b)

    vocab = {spell(t): r for t, r in ranks.items()}
    merges: list[tuple[bytes, bytes, int]] = []
    for token, rank in ranks.items():
        local = [(token[:i], token[i:], rank) for i in range(1, len(token))
                 if token[:i] in ranks and token[i:] in ranks]
        merges += sorted(local, key=lambda m: (ranks[m[0]], ranks[m[1]]))
    merges.sort(key=lambda m: m[2])
    return vocab, [(spell(a), spell(b)) for a, b, _ in merges]


def build_tokenizer(tok: Any) -> Any:
    """A ``tokenizers.Tokenizer`` that encodes and decodes as harness's tiktoken ``tok`` does."""
    from tokenizers import AddedToken, Regex, decoders, models, pre_tokenizers, processors
    from tokenizers import Tokenizer as FastTokenizer

    from .models.tokenizer import ASSETS

    enc = tok.encoding
    if tok.is_gpt2():
        bpe = models.BPE.from_file(str(ASSETS / "encoder.json"), str(ASSETS / "vocab.bpe"))
        pre = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    else:
        vocab, merges = vocab_and_merges(enc._mergeable_ranks)
        vocab.update(tok.special_tokens)
        bpe = models.BPE(vocab=vocab, merges=merges, fuse_unk=False, byte_fallback=False)
        pre = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(enc._pat_str), behavior="isolated"),
                                       pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    fast = FastTokenizer(bpe)
    fast.pre_tokenizer = pre
    fast.decoder = decoders.ByteLevel()
    fast.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in tok.special_tokens])
    if tok.add_bos and tok.bos_id is not None:
        bos = tok.decode([tok.bos_id])
        fast.post_processor = processors.TemplateProcessing(single=f"{bos} $A", pair=f"{bos} $A {bos} $B",
                                                            special_tokens=[(bos, tok.bos_id)])
    else:
        fast.post_processor = processors.ByteLevel(trim_offsets=False)
    return fast


def write_tokenizer(tok: Any, out: Path, max_length: int, chat_template: str | None = None) -> None:
    """``tokenizer.json`` + ``tokenizer_config.json`` (+ GPT-2's ``vocab.json``/``merges.txt``)."""
    from .models.tokenizer import ASSETS

    build_tokenizer(tok).save(str(out / "tokenizer.json"))
    eos = tok.decode([tok.eot_id])
    bos = tok.decode([tok.bos_id]) if tok.bos_id is not None else eos
    cfg: dict[str, Any] = {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": max_length,
                           "bos_token": bos, "eos_token": eos, "clean_up_tokenization_spaces": False,
                           "add_bos_token": bool(tok.add_bos), "add_prefix_space": False}
    if tok.is_gpt2():
        cfg.update(tokenizer_class="GPT2Tokenizer", unk_token=eos)
        shutil.copyfile(ASSETS / "encoder.json", out / "vocab.json")
        shutil.copyfile(ASSETS / "vocab.bpe", out / "merges.txt")
    if chat_template:
        cfg["chat_template"] = chat_template
    (out / "tokenizer_config.json").write_text(json.dumps(cfg, indent=2) + "\n", encoding="utf-8")
    os.chmod(out / "tokenizer.json", 0o644)
