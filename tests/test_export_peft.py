"""Checkpoints that travel: `harness export --format hf` opens in transformers with harness's logits,
LoRA adapters are written in PEFT's layout (peft loads them), and a PEFT adapter dir is a --model."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from harness.api import LoglikelihoodRequest as L
from harness.errors import HarnessError
from harness.export import export_hf
from harness.finetune.lora import (
    ADAPTER_CONFIG,
    ADAPTER_WEIGHTS,
    PEFT_CONFIG,
    PEFT_WEIGHTS,
    LoRAConfig,
    apply_lora,
    find_adapter,
    lora_modules,
    read_adapter,
    save_adapter,
)
from harness.models import load_model
from harness.models.checkpoint import load_checkpoint, save_checkpoint
from harness.testing import make_tiny_gpt2, make_tiny_llama, torch_threads

transformers = pytest.importorskip("transformers")
TEXTS = ["Hello world, 12345 caf\u00e9!", "<|endoftext|>The capital of France is", "  two  spaces\n\ttab 3.14",
         "don't you'll \u4e2d\u6587 \U0001F600"]
REQS = [L("The capital of France is", " Paris"), L("Question: 2+2=", " 4"), L("a b", " c d e")]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    with torch_threads(1):
        yield


def hf_model(path):
    return transformers.AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32).eval()


def logits(module, ids):
    with torch.no_grad():
        out = module(torch.tensor([ids]))
    return getattr(out, "logits", out)


@pytest.mark.parametrize("make", [make_tiny_gpt2, make_tiny_llama], ids=["gpt2", "llama"])
def test_export_loads_in_transformers_with_harness_logits(make, tmp_path):
    src = make(tmp_path / "src", seed=5)
    cfg = json.loads((src / "config.json").read_text())
    (src / "config.json").write_text(json.dumps({**cfg, "prompt_format": "alpaca"}))
    proc = subprocess.run([Path(sys.executable).parent / "harness", "export", str(src), "--format", "hf",
                           str(tmp_path / "out")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "out"
    hf_cfg = json.loads((out / "config.json").read_text())
    assert hf_cfg["model_type"] == make.__name__.split("_")[-1] and "format" not in hf_cfg
    assert hf_cfg["prompt_format"] == "alpaca"
    hf, tok = hf_model(out), transformers.AutoTokenizer.from_pretrained(str(out))
    native = load_checkpoint(src)
    for text in TEXTS:
        ids = native.tokenizer.encode(text)
        assert tok.encode(text) == ids and tok.decode(ids) == text
    ids = native.tokenizer.encode(" ".join(TEXTS))
    torch.testing.assert_close(logits(hf, ids), logits(native.module, ids), atol=1e-4, rtol=0)
    # harness reads the export back (GPT-2 natively, Llama through hf:) with the recorded prompt format
    back = load_model(str(out))
    assert back.info.prompt_format == "alpaca"
    ref = load_model(str(src)).loglikelihood(REQS, progress=False)
    for a, b in zip(back.loglikelihood(REQS, progress=False), ref):
        assert a.logprob == pytest.approx(b.logprob, abs=1e-4)


def test_export_of_a_non_gpt2_tokenizer_matches_tiktoken(tmp_path):
    """A tiktoken tokenizer with its own regex (digits split), extra specials and a BOS, as GGUF ones are."""
    import tiktoken

    from harness.models.gguf import _DIGIT, _SPLIT_DIGITS
    from harness.models.tokenizer import Tokenizer, gpt2_tokenizer
    from harness.testing import tiny_llama_module

    ranks = gpt2_tokenizer().encoding._mergeable_ranks
    special = {"<|endoftext|>": 50256, "<|im_start|>": 50257, "<|im_end|>": 50258}
    enc = tiktoken.Encoding(name="custom", pat_str=_SPLIT_DIGITS.replace("{D}", _DIGIT).replace("{X}", ""),
                            mergeable_ranks=ranks, special_tokens=special)
    tok = Tokenizer(enc, eot_id=50258, bos_id=50257, add_bos=True, stop_ids=frozenset({50256}), name="custom")
    module = tiny_llama_module(seed=2, vocab_size=50260)
    src = save_checkpoint(module, module.config, tmp_path / "src", tok)
    out = export_hf(str(src), tmp_path / "out")
    hf_tok = transformers.AutoTokenizer.from_pretrained(str(out))
    native = load_checkpoint(src)
    for text in [*TEXTS, "<|im_start|>user\n2024 is 12+3<|im_end|>"]:
        ids = native.tokenizer.encode(text)
        assert ids != gpt2_tokenizer().encode(text) or not any(c.isdigit() for c in text)
        assert hf_tok.encode(text) == [50257, *ids]  # the BOS, as harness prepends for add_bos
        assert hf_tok.decode(ids) == text
    gen = json.loads((out / "generation_config.json").read_text())
    assert gen["eos_token_id"] == [50258, 50256] and gen["bos_token_id"] == 50257
    ids = native.tokenizer.encode(TEXTS[0])
    torch.testing.assert_close(logits(hf_model(out), ids), logits(native.module, ids), atol=1e-4, rtol=0)


def test_export_refuses_bad_targets(tmp_path):
    src = make_tiny_gpt2(tmp_path / "src")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    with pytest.raises(HarnessError, match="exists and is not empty"):
        export_hf(str(src), tmp_path / "full")
    hf_llama = make_tiny_llama(tmp_path / "hfl", fmt="hf")
    with pytest.raises(HarnessError, match="already a Hugging Face model dir"):
        export_hf(str(hf_llama), tmp_path / "o2")
    with pytest.raises(HarnessError, match="no such file"):
        export_hf(str(tmp_path / "missing"), tmp_path / "o3")


def lora_adapter(make, tmp_path, seed=0):
    """A harness LoRA (random B, so it changes the model) on a tiny harness base, saved by save_adapter."""
    base = make(tmp_path / "base", seed=seed)
    module = load_checkpoint(base).module
    lcfg = apply_lora(module, LoRAConfig(rank=4, alpha=8.0, targets="all"))
    torch.manual_seed(seed + 1)
    with torch.no_grad():
        for m in lora_modules(module).values():
            m.lora_B.normal_(0, 0.1)
    save_adapter(module, lcfg, tmp_path / "adapter", {"base_model": {"spec": str(base), "fingerprint": "x"}})
    return base, module.eval(), tmp_path / "adapter"


@pytest.mark.parametrize("make", [make_tiny_gpt2, make_tiny_llama], ids=["gpt2", "llama"])
def test_lora_adapter_is_written_in_peft_layout_and_peft_loads_it(make, tmp_path):
    peft = pytest.importorskip("peft")
    base, lora_module, adapter = lora_adapter(make, tmp_path)
    pc = json.loads((adapter / PEFT_CONFIG).read_text())
    assert pc["peft_type"] == "LORA" and pc["r"] == 4 and pc["lora_alpha"] == 8.0
    assert pc["base_model_name_or_path"] == str(base) and pc["target_modules"]
    from safetensors.torch import load_file

    names = set(load_file(str(adapter / PEFT_WEIGHTS)))
    first = pc["target_modules"][0]
    assert f"base_model.model.{first}.lora_A.weight" in names and f"base_model.model.{first}.lora_B.weight" in names
    exported = export_hf(str(base), tmp_path / "hf-base")
    model = peft.PeftModel.from_pretrained(hf_model(exported), str(adapter)).eval()
    ids = load_checkpoint(base).tokenizer.encode(" ".join(TEXTS))
    want = logits(lora_module, ids)
    torch.testing.assert_close(logits(model, ids), want, atol=1e-4, rtol=0)
    assert not torch.allclose(logits(hf_model(exported), ids), want, atol=1e-3)  # the adapter does something


def test_adapter_dirs_in_either_layout_are_read(tmp_path):
    base, lora_module, adapter = lora_adapter(make_tiny_llama, tmp_path)
    cfg_h, meta_h, t_h = read_adapter(adapter)  # harness's files win when both are there
    peft_only = tmp_path / "peft-only"
    shutil.copytree(adapter, peft_only)
    (peft_only / ADAPTER_CONFIG).unlink()
    (peft_only / ADAPTER_WEIGHTS).unlink()
    assert find_adapter(peft_only) == peft_only
    cfg_p, meta_p, t_p = read_adapter(peft_only)
    assert cfg_p.scaling == cfg_h.scaling and sorted(cfg_p.layers) == sorted(cfg_h.layers)
    assert meta_p["base_model"]["spec"] == str(base) and set(t_p) == set(t_h)
    assert all(torch.equal(t_p[k], t_h[k]) for k in t_h)


def test_peft_adapter_dir_is_a_model_on_native_and_hf_bases(tmp_path):
    pytest.importorskip("peft")
    base, lora_module, adapter = lora_adapter(make_tiny_llama, tmp_path, seed=3)
    (adapter / ADAPTER_CONFIG).unlink()  # a plain PEFT dir
    (adapter / ADAPTER_WEIGHTS).unlink()
    native = load_model(str(adapter))  # base from base_model_name_or_path: a harness checkpoint
    assert native.info.backend == "peft" and native.info.extra["base_backend"] == "native"
    ids = native.tok_encode("The capital of France is Paris", add_special=False)
    torch.testing.assert_close(logits(native.module, ids), logits(lora_module, ids), atol=1e-4, rtol=0)
    exported = export_hf(str(base), tmp_path / "hf-base")
    hf = load_model(str(adapter), base=str(exported))  # --model-args base=...: a transformers base, through peft
    assert hf.info.backend == "peft" and hf.info.extra["base_backend"] == "hf"
    plain = load_model(str(base))
    for a, b, c in zip(hf.loglikelihood(REQS, progress=False), native.loglikelihood(REQS, progress=False),
                       plain.loglikelihood(REQS, progress=False)):
        assert a.logprob == pytest.approx(b.logprob, abs=1e-4) and abs(a.logprob - c.logprob) > 1e-4
    assert native.info.fingerprint != plain.info.fingerprint


def test_peft_adapter_errors_are_one_line(tmp_path):
    d = tmp_path / "ad"
    d.mkdir()
    (d / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 2, "lora_alpha": 4}))
    with pytest.raises(HarnessError, match="adapter_model.safetensors is missing"):
        load_model(str(d))
    (d / "adapter_model.safetensors").write_bytes(b"")
    with pytest.raises(HarnessError, match="no base_model_name_or_path; pass --model-args base=PATH"):
        load_model(str(d))
    (d / "adapter_config.json").write_text(json.dumps({"peft_type": "IA3"}))
    with pytest.raises(HarnessError, match="not a LoRA adapter"):
        load_model(str(d))


def test_hf_model_args_dtype_and_run_shorthands(tmp_path):
    hf_dir = make_tiny_llama(tmp_path / "hf", fmt="hf")
    m = load_model(str(hf_dir), dtype="bfloat16", revision=None, trust_remote_code=False)
    assert m.hf_model.dtype == torch.bfloat16
    assert load_model(str(hf_dir)).hf_model.dtype == torch.float32
    with pytest.raises(HarnessError, match="dtype=float64: expected one of float32, bfloat16, float16, auto"):
        load_model(str(hf_dir), dtype="float64")
    env = {**os.environ, "HARNESS_DEBUG": ""}
    proc = subprocess.run([Path(sys.executable).parent / "harness", "run", "--model", str(hf_dir), "--dtype", "bfloat16",
                           "--device", "auto", "--suite", "mmlu", "--limit", "1", "--out", str(tmp_path / "run"),
                           "--no-report", "--quiet"], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["config"]["device"] == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.slow
def test_export_of_the_embedded_smollm2(tmp_path):
    from harness.models.default import default_model_path

    out = export_hf(None, tmp_path / "smol")
    native = load_checkpoint(default_model_path())
    tok = transformers.AutoTokenizer.from_pretrained(str(out))
    for text in [*TEXTS, "<|im_start|>user\nWhat is 2+2? 1234567<|im_end|>\n"]:
        ids = native.tokenizer.encode(text)
        assert tok.encode(text) == ids and tok.decode(ids) == text
    ids = native.tokenizer.encode("<|im_start|>user\nName a colour.<|im_end|>\n<|im_start|>assistant\n")
    torch.testing.assert_close(logits(hf_model(out), ids), logits(native.module, ids), atol=1e-4, rtol=0)
    assert "<|im_start|>" in tok.chat_template


def test_finetune_lora_on_an_hf_gpt2_base_is_a_peft_adapter_of_it(tmp_path):
    """`harness finetune --lora-rank` on a Hugging Face GPT-2 dir: peft loads OUT/adapter onto that dir and
    gives the fine-tuned (merged) checkpoint's logits; the export of OUT gives them too."""
    peft = pytest.importorskip("peft")
    from harness.finetune.runner import finetune
    from harness.finetune.train import TrainConfig

    base = make_tiny_gpt2(tmp_path / "hf-base", fmt="hf", seed=9)
    out = tmp_path / "ft"
    finetune(TrainConfig(model=str(base), epochs=1, eval_every=4, limit=24, val_frac=0.2, test_frac=0.1,
                         batch_size=4, max_length=40, test_max_tokens=0, lr=3e-2, lora_rank=4), out, progress=False)
    adapter = out / "adapter"
    assert {PEFT_CONFIG, PEFT_WEIGHTS, ADAPTER_CONFIG, ADAPTER_WEIGHTS} <= {p.name for p in adapter.iterdir()}
    pc = json.loads((adapter / PEFT_CONFIG).read_text())
    assert pc["base_model_name_or_path"] == str(base.resolve()) and pc["fan_in_fan_out"] is True
    tuned = load_checkpoint(out)
    ids = tuned.tokenizer.encode(" ".join(TEXTS))
    want = logits(tuned.module, ids)
    with_peft = peft.PeftModel.from_pretrained(hf_model(base), str(adapter)).eval()
    torch.testing.assert_close(logits(with_peft, ids), want, atol=1e-4, rtol=0)
    assert not torch.allclose(logits(hf_model(base), ids), want, atol=1e-3)
    exported = export_hf(str(out), tmp_path / "ft-hf")
    torch.testing.assert_close(logits(hf_model(exported), ids), want, atol=1e-4, rtol=0)
    assert json.loads((exported / "config.json").read_text())["prompt_format"] == "alpaca"
