"""Read Llama-family GGUF files (llama.cpp's format) into Hugging Face-named float32 weights
plus a tiktoken tokenizer, so the native Llama runs them with no llama.cpp and no transformers.

Three things differ from a Hugging Face checkpoint and are undone here:

* Tensor shapes are stored fastest-dimension first (``[in, out]``); numpy's view of
  the data is already ``[out, in]``, i.e. ``nn.Linear`` layout.
* llama.cpp's converter permutes the rows of Q and K so RoPE rotates adjacent pairs
  ``(2i, 2i+1)``; HF's ``rotate_half`` pairs ``(i, i + d/2)``. :func:`unpermute_qk` inverts it
  (the same reshape as transformers' ``_reverse_permute_weights``).
* The tokenizer is metadata: a byte-level BPE vocabulary (tokens spelled in GPT-2's
  byte-to-unicode alphabet, ids ordered by merge), its merges and ``tokenizer.ggml.pre``
  naming the pre-tokenizer. In these vocabularies a merged token's id grows with its
  merge's index (checked at load), so ids are valid tiktoken ranks as they stand.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import HarnessError
from .tokenizer import Tokenizer

# Pre-tokenizer regexes (tiktoken / fancy-regex syntax) by ``tokenizer.ggml.pre``. {X} is a
# character class of characters the vocabulary cannot spell (see _unspellable): excluding them
# from every branch makes tiktoken skip them, as HF's BPE (unk_token null) and llama.cpp drop them.
# "smollm" (also StarCoder's): HF runs Digits(individual_digits) then ByteLevel's GPT-2 regex;
# llama.cpp runs "\p{N}" then the GPT-2 regex. One regex does both when whitespace before a digit
# may end a run (the digit starts a new chunk). {D} is Rust's char::is_numeric, which HF's Digits
# uses: \p{N} plus 13 code points of Unicode 16 that fancy-regex's tables do not have yet.
_DIGIT = r"\p{N}\x{11DE0}-\x{11DE9}\x{16FF4}-\x{16FF6}"
_SPLIT_DIGITS = r"[{D}]|'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?[^\s\p{L}{D}{X}]+|\s+(?![^\s{D}])|\s+"
_GPT2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}{X}]+|\s+(?!\S)|\s+"
_LLAMA3 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}{X}]?\p{L}+|\p{N}{1,3}"
           r"| ?[^\s\p{L}\p{N}{X}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
PRE_TOKENIZERS: dict[str, str] = {
    **dict.fromkeys(("smollm", "starcoder", "refact", "codeshell", "command-r"), _SPLIT_DIGITS),
    **dict.fromkeys(("gpt-2", "gpt2", "default", "mpt", "olmo"), _GPT2),
    **dict.fromkeys(("llama-bpe", "llama3", "llama-v3", "smaug-bpe", "dbrx", "falcon3"), _LLAMA3),
}
VERIFIED_PRE_TOKENIZERS = ("smollm",)  # checked id-for-id against HF; the others are HF's regexes

_LAYER = {
    "attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
    "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}
_GLOBAL = {"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight",
           "output.weight": "lm_head.weight"}
_STOP_TOKENS = ("<|endoftext|>", "<|im_end|>", "<|eot_id|>", "<|eom_id|>", "<|end_of_text|>")
# llama.cpp token types CONTROL (<|im_start|>) and USER_DEFINED (<think>): HF matches both whole
# in text before BPE, as tiktoken does with special tokens.
_SPECIAL_TYPES = (3, 4)


@dataclass
class GGUFModelData:
    """A GGUF file's model: HF LlamaConfig-style ``config``, HF-named float32 ``state_dict``."""

    path: Path
    config: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    tokenizer: Tokenizer
    chat_template: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)  # general.* facts (name, license, ...)


def _value(f: Any) -> Any:
    """A metadata field's value (GGUFReader keeps raw parts; ``contents()`` is newer than gguf 0.10)."""
    from gguf import GGUFValueType

    def one(part: np.ndarray, kind: Any) -> Any:
        return bytes(part).decode("utf-8") if kind == GGUFValueType.STRING else part.tolist()[0]

    if f.types and f.types[0] == GGUFValueType.ARRAY:
        return [one(f.parts[i], f.types[-1]) for i in f.data]
    return one(f.parts[f.data[0]], f.types[0]) if f.types else None


def _open(path: Path) -> tuple[Any, dict[str, Any]]:
    """GGUFReader plus all scalar metadata; every failure becomes a HarnessError naming the file."""
    from gguf import GGUFReader, GGUFValueType

    if not path.is_file():
        raise HarnessError(f"{path}: no such GGUF file")
    try:
        reader = GGUFReader(str(path))
        meta = {k: _value(f) for k, f in reader.fields.items()
                if not (f.types and f.types[0] == GGUFValueType.ARRAY)}
        for t in reader.tensors:  # a truncated file leaves the last tensors short
            if t.data.nbytes != int(t.n_bytes):
                raise ValueError(f"tensor {t.name} has {t.data.nbytes} of {int(t.n_bytes)} bytes")
    except Exception as e:  # GGUFReader raises ValueError, struct/numpy errors, IndexError...
        raise HarnessError(f"{path}: not a readable GGUF file ({type(e).__name__}: {e}); "
                           "the file is truncated or corrupt, download it again") from None
    arch = meta.get("general.architecture")
    if arch != "llama":
        raise HarnessError(f"{path}: GGUF architecture {arch!r} is not supported (only 'llama'); "
                           "use the hf: backend with a transformers checkpoint instead")
    return reader, meta


def _array(reader: Any, key: str) -> list[Any] | None:
    f = reader.fields.get(key)
    return _value(f) if f is not None else None


def _config(path: Path, meta: dict[str, Any], n_vocab: int, tied: bool) -> dict[str, Any]:
    """HF ``LlamaConfig`` keys from ``llama.*`` metadata."""
    def get(key: str) -> Any:
        v = meta.get(f"llama.{key}")
        if v is None:
            raise HarnessError(f"{path}: GGUF metadata lacks llama.{key}; the file is incomplete")
        return v

    hidden, heads = int(get("embedding_length")), int(get("attention.head_count"))
    head_dim = int(meta.get("llama.attention.key_length", hidden // heads))
    if int(meta.get("llama.rope.dimension_count", head_dim)) != head_dim:
        raise HarnessError(f"{path}: partial rotary embeddings (llama.rope.dimension_count != head dim) "
                           "are not supported")
    scaling = meta.get("llama.rope.scaling.type", "none")
    if scaling not in ("none", None):
        raise HarnessError(f"{path}: rope scaling {scaling!r} is not supported by the native Llama")
    tok = lambda k: meta.get(f"tokenizer.ggml.{k}")  # noqa: E731
    return {
        "model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_act": "silu",
        "vocab_size": int(meta.get("llama.vocab_size", n_vocab)), "hidden_size": hidden,
        "intermediate_size": int(get("feed_forward_length")), "num_hidden_layers": int(get("block_count")),
        "num_attention_heads": heads, "num_key_value_heads": int(meta.get("llama.attention.head_count_kv", heads)),
        "head_dim": head_dim, "rms_norm_eps": float(get("attention.layer_norm_rms_epsilon")),
        "rope_theta": float(meta.get("llama.rope.freq_base", 10000.0)),
        "max_position_embeddings": int(get("context_length")), "tie_word_embeddings": tied,
        "attention_bias": False, "mlp_bias": False,
        "bos_token_id": tok("bos_token_id"), "eos_token_id": tok("eos_token_id"),
        "pad_token_id": tok("padding_token_id"),
    }


def unpermute_qk(w: torch.Tensor, n_head: int) -> torch.Tensor:
    """Undo llama.cpp's Q/K row permutation (rows per head: interleaved pairs -> halves)."""
    out = w.shape[0]
    return w.reshape(n_head, out // n_head // 2, 2, *w.shape[1:]).transpose(1, 2).reshape(w.shape)


def _tensor(path: Path, t: Any) -> torch.Tensor:
    from gguf.quants import dequantize

    try:
        a = dequantize(t.data, t.tensor_type)
    except NotImplementedError:
        raise HarnessError(f"{path}: tensor {t.name} uses quantization {t.tensor_type.name}, which the gguf "
                           "package cannot dequantize; use a Q4_0/Q4_1/Q5/Q8_0/K-quant/F16/F32 file") from None
    shape = tuple(int(d) for d in reversed(t.shape.tolist()))  # GGUF lists the fastest dim first
    if np.shares_memory(a, t.data) or a.dtype != np.float32:  # F32 is a read-only view of the file
        a = np.array(a, dtype=np.float32)
    return torch.from_numpy(a.reshape(shape))


def _state_dict(path: Path, reader: Any, cfg: dict[str, Any]) -> dict[str, torch.Tensor]:
    sd: dict[str, torch.Tensor] = {}
    for t in reader.tensors:
        name = _GLOBAL.get(t.name)
        if name is None:
            parts = t.name.split(".")  # blk.{i}.{kind}.weight
            kind = _LAYER.get(parts[2]) if len(parts) == 4 and parts[0] == "blk" and parts[3] == "weight" else None
            if kind is None:
                hint = " (Llama 3.1 rope frequency factors)" if t.name.startswith("rope_freqs") else ""
                raise HarnessError(f"{path}: tensor {t.name!r}{hint} is not supported by the native Llama")
            name = f"model.layers.{parts[1]}.{kind}.weight"
        w = _tensor(path, t)
        if t.name.endswith(".attn_q.weight"):
            w = unpermute_qk(w, cfg["num_attention_heads"])
        elif t.name.endswith(".attn_k.weight"):
            w = unpermute_qk(w, cfg["num_key_value_heads"])
        sd[name] = w
    return sd


def _byte_decoder() -> dict[str, int]:
    """GPT-2's byte-to-unicode alphabet, inverted: printable bytes are themselves, the rest 256+."""
    printable = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    others = [b for b in range(256) if b not in printable]
    return {chr(b): b for b in printable} | {chr(256 + i): b for i, b in enumerate(others)}


def _unspellable(path: Path, ranks: dict[bytes, int]) -> str:
    """A regex class body of the characters whose UTF-8 the vocabulary cannot spell.

    SmolLM2's vocabulary lacks 21 bytes: 6 ASCII controls and lead bytes of code points
    that never occur (U+40000..U+BFFFF, 0xC0/0xC1/0xF5+). Left in, tiktoken would panic.
    """
    ranges = []
    for b in (b for b in range(256) if bytes([b]) not in ranks):
        if b < 0x80:
            lo, hi = b, b
        elif 0xC2 <= b <= 0xDF:
            lo, hi = (b & 0x1F) << 6, ((b & 0x1F) << 6) | 0x3F
        elif 0xE0 <= b <= 0xEF:
            lo, hi = max((b & 0x0F) << 12, 0x800), ((b & 0x0F) << 12) | 0xFFF
        elif 0xF0 <= b <= 0xF4:
            lo, hi = max((b & 0x07) << 18, 0x10000), min(((b & 0x07) << 18) | 0x3FFFF, 0x10FFFF)
        elif b in (0xC0, 0xC1) or b >= 0xF5:
            continue  # never in UTF-8
        else:
            raise HarnessError(f"{path}: the vocabulary lacks the UTF-8 continuation byte {b:#04x}; "
                               "this tokenizer is not supported")
        ranges.append(rf"\x{{{lo:X}}}" + (rf"-\x{{{hi:X}}}" if hi != lo else ""))
    return "".join(ranges)


def _tokenizer(path: Path, reader: Any, meta: dict[str, Any]) -> Tokenizer:
    import tiktoken

    model, pre = meta.get("tokenizer.ggml.model"), meta.get("tokenizer.ggml.pre", "default")
    if model != "gpt2":
        raise HarnessError(f"{path}: tokenizer {model!r} is not supported (only byte-level BPE, 'gpt2'); "
                           "use the hf: backend for SentencePiece models")
    if pre not in PRE_TOKENIZERS:
        raise HarnessError(f"{path}: pre-tokenizer {pre!r} is not supported; "
                           f"known: {', '.join(sorted(PRE_TOKENIZERS))}")
    tokens, merges = _array(reader, "tokenizer.ggml.tokens") or [], _array(reader, "tokenizer.ggml.merges") or []
    types = _array(reader, "tokenizer.ggml.token_type") or [1] * len(tokens)
    alphabet = _byte_decoder()
    ranks: dict[bytes, int] = {}
    special: dict[str, int] = {}
    try:
        for i, (tok, kind) in enumerate(zip(tokens, types)):
            if kind in _SPECIAL_TYPES:
                special[tok] = i
            else:
                ranks[bytes(alphabet[c] for c in tok)] = i
        merged = [ranks[b"".join(bytes(alphabet[c] for c in p) for p in m.split(" "))] for m in merges]
    except KeyError as e:
        raise HarnessError(f"{path}: vocabulary token or merge {e} is not byte-level BPE") from None
    if not ranks or any(a >= b for a, b in zip(merged, merged[1:])):
        raise HarnessError(f"{path}: token ids do not follow the merge order; this vocabulary cannot "
                           "be used as tiktoken ranks")
    pat = PRE_TOKENIZERS[pre].replace("{D}", _DIGIT).replace("{X}", _unspellable(path, ranks))
    enc = tiktoken.Encoding(name=f"gguf-{pre}", pat_str=pat, mergeable_ranks=ranks, special_tokens=special)
    bos, eos = meta.get("tokenizer.ggml.bos_token_id"), meta.get("tokenizer.ggml.eos_token_id")
    eot = int(eos if eos is not None else special.get("<|endoftext|>", 0))
    stops = {special[t] for t in _STOP_TOKENS if t in special}
    stops |= {int(meta[k]) for k in ("tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id") if k in meta}
    return Tokenizer(encoding=enc, eot_id=eot, bos_id=None if bos is None else int(bos),
                     add_bos=bool(meta.get("tokenizer.ggml.add_bos_token", False)),
                     stop_ids=frozenset(stops - {eot}), name=f"gguf-{meta.get('general.basename') or pre}")


_CACHE: dict[tuple[str, int, int], Tokenizer] = {}


def _cached_tokenizer(path: Path, reader: Any = None, meta: dict[str, Any] | None = None) -> Tokenizer:
    """Building the ranks is cheap; opening the file (~2 s) is not: cache per file version."""
    try:
        st = path.stat()
    except OSError:
        raise HarnessError(f"{path}: no such GGUF file") from None
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _CACHE:
        if reader is None or meta is None:
            reader, meta = _open(path)
        _CACHE[key] = _tokenizer(path, reader, meta)
    return _CACHE[key]


def load_gguf(path: str | Path) -> GGUFModelData:
    """Config, float32 HF-named state dict, tokenizer and chat template of a Llama GGUF file."""
    p = Path(path)
    reader, meta = _open(p)
    emb = next((t for t in reader.tensors if t.name == "token_embd.weight"), None)
    if emb is None:
        raise HarnessError(f"{p}: GGUF file has no token_embd.weight; not a Llama model")
    tied = all(t.name != "output.weight" for t in reader.tensors)
    cfg = _config(p, meta, int(emb.shape[-1]), tied=tied)
    tok = _cached_tokenizer(p, reader, meta)
    sd = _state_dict(p, reader, cfg)
    facts = {k: v for k, v in meta.items() if k.startswith("general.")}
    return GGUFModelData(p, cfg, sd, tok, meta.get("tokenizer.chat_template"), facts)


def load_gguf_tokenizer(path: str | Path) -> Tokenizer:
    """Only the tokenizer of a GGUF file (no weights are dequantized); cached per file."""
    return _cached_tokenizer(Path(path))


__all__ = ["GGUFModelData", "PRE_TOKENIZERS", "VERIFIED_PRE_TOKENIZERS", "load_gguf",
           "load_gguf_tokenizer", "unpermute_qk"]
