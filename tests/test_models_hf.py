"""The transformers backend agrees with the native one on the same weights."""
from __future__ import annotations

import pytest

from harness.api import GenerateRequest as G
from harness.api import LoglikelihoodRequest as L
from harness.models import load_model
from harness.testing import make_tiny_gpt2, torch_threads


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    with torch_threads(1):
        yield


REQS = [L("The capital of France is", " Paris"), L("a b ", "c"), L("Question: 2+2=", " 4 or five"),
        L("", "hello world")] + [L("Which? Answer:", f" {c}") for c in "ABCD"]


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
    return make_tiny_gpt2(tmp_path_factory.mktemp("hf") / "m", fmt="hf", seed=21)


@pytest.fixture(scope="module")
def both(hf_dir):
    return load_model(f"hf:{hf_dir}", batch_size=4), load_model(str(hf_dir), batch_size=4)


def test_hf_and_native_backends_agree(both):
    hf, native = both
    assert hf.info.backend == "hf" and native.info.backend == "native"
    assert hf.info.fingerprint == native.info.fingerprint  # same weight file
    assert hf.max_length == native.max_length == 64
    for a, b in zip(hf.loglikelihood(REQS, progress=False), native.loglikelihood(REQS, progress=False)):
        assert a.logprob == pytest.approx(b.logprob, abs=1e-4) and a.is_greedy == b.is_greedy
    gens = [G("Hello, my name is", max_tokens=6), G("Once upon a time, in a land far away,", max_tokens=6),
            G("Hi", max_tokens=6, temperature=0.8, seed=5)]
    assert hf.generate(gens, progress=False) == native.generate(gens, progress=False)


def test_hf_llama_backend_agrees_with_native_llama(tmp_path):
    """Left padding, per-row positions, GQA and the KV cache against transformers' Llama."""
    from harness.testing import make_tiny_llama

    native = load_model(str(make_tiny_llama(tmp_path / "n", seed=8)), batch_size=4)
    hf = load_model(str(make_tiny_llama(tmp_path / "h", seed=8, fmt="hf")), batch_size=4)
    assert hf.info.backend == "hf" and hf.info.arch == "llama" and hf.max_length == 128
    for a, b in zip(hf.loglikelihood(REQS, progress=False), native.loglikelihood(REQS, progress=False)):
        assert a.logprob == pytest.approx(b.logprob, abs=1e-4) and a.is_greedy == b.is_greedy
    gens = [G("Hello, my name is", max_tokens=8), G("Once upon a time, in a land far away, there", max_tokens=8),
            G("Hi", max_tokens=8, temperature=0.8, seed=5), G("Hi", max_tokens=8, stop=(" ",))]
    assert hf.generate(gens, progress=False) == native.generate(gens, progress=False)


def test_hf_backend_reads_the_recorded_prompt_format(tmp_path):
    import json

    from harness.models import load_model
    from harness.prompts import format_for_model
    from harness.testing import make_tiny_gpt2

    make_tiny_gpt2(tmp_path / "ft", fmt="hf")
    cfg_file = tmp_path / "ft" / "config.json"
    cfg = json.loads(cfg_file.read_text())
    cfg["prompt_format"] = "phi3"
    cfg_file.write_text(json.dumps(cfg))
    model = load_model(f"hf:{tmp_path / 'ft'}")
    assert model.info.prompt_format == "phi3"
    assert format_for_model(model).name == "phi3"
