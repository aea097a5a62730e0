"""Checkpoint formats: every loader gives the same function as the reference implementation."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from harness.errors import HarnessError
from harness.models import detect_backend, load_model, split_spec
from harness.models.checkpoint import save_checkpoint
from harness.testing import make_tiny_gpt2, make_tiny_llama, tiny_llama_module, torch_threads


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    with torch_threads(1):
        yield


X = torch.tensor([[15496, 995, 11, 616, 1438, 318, 1757, 290, 314, 588, 50256, 7, 0, 50255]])


def logits(model, x=X):
    with torch.no_grad():
        return model.module(x)


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    return {
        "harness": make_tiny_gpt2(root / "harness", fmt="harness", seed=3),
        "hf": make_tiny_gpt2(root / "hf", fmt="hf", seed=3),
        "pth": make_tiny_gpt2(root / "pth", fmt="pth", seed=3),
        "hf_tied": make_tiny_gpt2(root / "hf_tied", fmt="hf", seed=4, tie_word_embeddings=True),
        "llama": make_tiny_llama(root / "llama", seed=5),
        "root": root,
    }


def test_hf_dir_and_llms_from_scratch_pth_give_same_logits(tiny_dirs):
    hf, pth = load_model(str(tiny_dirs["hf"])), load_model(str(tiny_dirs["pth"]))
    assert hf.info.extra["format"] == "hf-gpt2" and pth.info.extra["format"] == "pth"
    assert pth.config.n_head == 2 and pth.config.qkv_bias and pth.config.n_layer == 2
    torch.testing.assert_close(logits(hf), logits(pth), atol=1e-5, rtol=0)
    assert hf.info.fingerprint != pth.info.fingerprint  # different files, same function


def test_pth_without_qkv_bias_and_with_training_wrapper(tmp_path):
    from harness.testing import gpt2_to_pth_state_dict, tiny_gpt2_module

    module = tiny_gpt2_module(7, qkv_bias=False)
    sd = {"_orig_mod." + k: v for k, v in gpt2_to_pth_state_dict(module).items()}  # torch.compile'd
    torch.save({"model_state_dict": sd, "optimizer_state_dict": {}}, tmp_path / "model_and_optimizer.pth")
    (tmp_path / "model_and_optimizer.json").write_text(json.dumps({"n_heads": 2}))
    model = load_model(str(tmp_path / "model_and_optimizer.pth"))
    assert not model.config.qkv_bias
    with torch.no_grad():
        torch.testing.assert_close(logits(model), module(X), atol=1e-5, rtol=0)


@pytest.mark.parametrize("which", ["hf", "hf_tied"])
def test_native_gpt2_matches_transformers(tiny_dirs, which):
    from transformers import GPT2LMHeadModel

    ref = GPT2LMHeadModel.from_pretrained(str(tiny_dirs[which]), dtype=torch.float32).eval()
    ours = load_model(str(tiny_dirs[which]))
    with torch.no_grad():
        torch.testing.assert_close(logits(ours), ref(X).logits, atol=1e-5, rtol=0)


def _hf_llama(module):
    from transformers import LlamaConfig, LlamaForCausalLM

    c = module.config
    hc = LlamaConfig(vocab_size=c.vocab_size, hidden_size=c.hidden_size, intermediate_size=c.intermediate_size,
                     num_hidden_layers=c.num_hidden_layers, num_attention_heads=c.num_attention_heads,
                     num_key_value_heads=c.num_key_value_heads, rms_norm_eps=c.rms_norm_eps,
                     max_position_embeddings=c.max_position_embeddings, rope_theta=c.rope_theta,
                     rope_scaling=c.rope_scaling, tie_word_embeddings=c.tie_word_embeddings)
    ref = LlamaForCausalLM(hc).eval()
    missing, unexpected = ref.load_state_dict(module.state_dict(), strict=False)
    assert not unexpected and set(missing) <= {"lm_head.weight"}
    return ref


LLAMA3_ROPE = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
               "original_max_position_embeddings": 8}


@pytest.mark.parametrize("overrides", [{}, {"tie_word_embeddings": True, "num_key_value_heads": 4},
                                       {"rope_scaling": LLAMA3_ROPE, "rope_theta": 500000.0}])
def test_native_llama_matches_transformers(tmp_path, overrides):
    path = make_tiny_llama(tmp_path / "llama", seed=1, **overrides)
    ours = load_model(str(path))
    assert ours.config.arch == "llama" and ours.info.arch == "llama"
    ref = _hf_llama(ours.module)
    with torch.no_grad():
        torch.testing.assert_close(logits(ours), ref(X).logits, atol=1e-5, rtol=0)


def test_harness_checkpoint_roundtrip_keeps_weights_and_metadata(tiny_dirs, tmp_path):
    m = load_model(str(tiny_dirs["llama"]))
    out = save_checkpoint(m.module, m.config, tmp_path / "ft", m.tokenizer,
                          {"prompt_format": "alpaca", "base_model": "tiny"})
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors"]
    m2 = load_model(str(out))
    torch.testing.assert_close(logits(m2), logits(m), atol=0, rtol=0)
    assert m2.info.prompt_format == "alpaca" and m2.info.extra["base_model"] == "tiny"
    assert m2.info.fingerprint == load_model(str(out)).info.fingerprint
    with torch.no_grad():
        m.module.lm_head.weight.mul_(2)
    save_checkpoint(m.module, None, out, m.tokenizer, {})  # overwrite in place
    assert load_model(str(out)).info.fingerprint != m2.info.fingerprint
    assert [p.name for p in tmp_path.iterdir()] == ["ft"]  # no temp dirs left behind


def test_save_checkpoint_refuses_unmerged_adapters(tmp_path):
    from harness.models.tokenizer import gpt2_tokenizer

    module = tiny_llama_module()
    module.model.layers[0].self_attn.q_proj.lora_A = torch.nn.Linear(32, 2)
    with pytest.raises(HarnessError, match="merge adapters"):
        save_checkpoint(module, module.config, tmp_path / "x", gpt2_tokenizer())
    assert not (tmp_path / "x").exists()


def test_llama_checkpoint_stores_a_non_gpt2_tokenizer(tmp_path):
    import tiktoken

    from harness.models.tokenizer import Tokenizer

    ranks = {bytes([i]): i for i in range(256)} | {b"ab": 256, b"abc": 257}
    enc = tiktoken.Encoding(name="toy", pat_str=r"\S+|\s+", mergeable_ranks=ranks,
                            special_tokens={"<|end|>": 258, "<|im_end|>": 259})
    tok = Tokenizer(enc, eot_id=258, bos_id=258, add_bos=True, stop_ids=frozenset({259}), name="toy")
    module = tiny_llama_module(vocab_size=260)
    out = save_checkpoint(module, module.config, tmp_path / "ck", tok, {})
    assert (out / "tokenizer.tiktoken").is_file()
    m = load_model(str(out))
    assert m.tokenizer.encode("abc ab<|im_end|>") == [257, 32, 256, 259]
    assert (m.eot_id, m.prefix_id, m.stop_ids) == (258, 258, frozenset({258, 259}))
    assert m.tok_encode("abc") == [258, 257]  # add_bos
    assert m.encode_pair("abc", " ab") == ([258, 257], [32, 256])


def test_backend_detection_and_spec_parsing(tiny_dirs, tmp_path):
    assert detect_backend(str(tiny_dirs["harness"])) == "native"
    assert detect_backend(str(tiny_dirs["hf"])) == "native"
    assert detect_backend(str(tiny_dirs["pth"])) == "native"
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    assert detect_backend(str(tmp_path / "m.gguf")) == "native"
    other = tmp_path / "qwen"
    other.mkdir()
    (other / "config.json").write_text('{"model_type": "qwen2"}')
    assert detect_backend(str(other)) == "hf"
    odd = tmp_path / "weights.bin"
    odd.write_bytes(b"x")
    backends = _registry_with("mine", lambda p, **kw: None, lambda p: p.endswith(".bin"))
    assert detect_backend(str(odd), backends) == "mine"
    assert split_spec("hf:org/model") == ("hf", "org/model")
    assert split_spec("native:./x") == ("native", "./x")
    assert split_spec("mine:/a", backends) == ("mine", "/a")
    assert split_spec("./dir") == (None, "./dir")
    with pytest.raises(HarnessError, match="unknown backend 'natve'.*did you mean 'native'"):
        split_spec("natve:/x")


def test_plugin_backend_is_called_with_options(tmp_path):
    from harness.api import Model, ModelInfo

    class Echo(Model):
        info = ModelInfo(spec="fake:somewhere", backend="fake")

        def loglikelihood(self, requests, progress=True):
            return []

        def generate(self, requests, progress=True):
            return [r.prompt for r in requests]

    seen = {}

    def loader(path, **options):
        seen.update(path=path, **options)
        return Echo()

    m = load_model("fake:somewhere", batch_size=3, registry=_registry_with("fake", loader))
    assert isinstance(m, Echo)
    assert seen == {"path": "somewhere", "spec": "fake:somewhere", "device": "cpu", "batch_size": 3}
    with pytest.raises(HarnessError, match="not a harness.api.Model"):
        load_model("bad:x", registry=_registry_with("bad", lambda p, **kw: object()))


def _registry_with(name, loader, detect=None):
    """A registry holding the installed plug-ins plus one backend registered through the hook."""
    from harness.api import hookimpl
    from harness.plugins import load_registry

    class Plugin:
        @hookimpl
        def register_models(self, register):
            register(name, loader, detect=detect)

    return load_registry(extra={name: Plugin()})


def test_importing_harness_models_does_not_import_torch():
    code = "import sys, harness.models; print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_loaded_module_is_trainable_with_tied_weights_kept_tied(tmp_path):
    m = load_model(str(make_tiny_gpt2(tmp_path / "t", tie_word_embeddings=True)))
    assert m.module.lm_head.weight is m.module.transformer.wte.weight
    assert all(p.requires_grad for p in m.module.parameters())
    m.module.train()
    m.module(X).logsumexp(-1).mean().backward()
    assert m.module.transformer.wte.weight.grad is not None


def test_hf_gpt2_original_layout_bin_without_prefix_and_with_mask_buffers(tiny_dirs, tmp_path):
    """openai-community/gpt2 stores keys without "transformer." plus causal-mask buffers."""
    import shutil

    from safetensors.torch import load_file

    sd = load_file(str(tiny_dirs["hf"] / "model.safetensors"))
    old = {k.removeprefix("transformer."): v for k, v in sd.items()}
    for i in range(2):
        old[f"h.{i}.attn.bias"] = torch.tril(torch.ones(64, 64)).view(1, 1, 64, 64)
        old[f"h.{i}.attn.masked_bias"] = torch.tensor(-1e4)
    shutil.copytree(tiny_dirs["hf"], tmp_path / "old", ignore=shutil.ignore_patterns("model.safetensors"))
    torch.save(old, tmp_path / "old" / "pytorch_model.bin")
    torch.testing.assert_close(logits(load_model(str(tmp_path / "old"))), logits(load_model(str(tiny_dirs["hf"]))),
                               atol=0, rtol=0)
