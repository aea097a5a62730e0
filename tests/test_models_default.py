"""The real default model through load_model (slow: a 135M-parameter model on CPU)."""
from __future__ import annotations

import pytest

from harness.api import GenerateRequest as G
from harness.api import LoglikelihoodRequest as L
from harness.models import DEFAULT_MODEL_NAME, load_model
from harness.models.default import default_model_available

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not default_model_available(), reason="default model not installed")]

CHAT = "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
MC = "Question: What is 2 + 2?\nA. 3\nB. 4\nC. 5\nD. 22\nAnswer:"


@pytest.fixture(scope="module")
def model():
    return load_model(None, batch_size=4)


def test_default_model_info(model):
    info = model.info
    assert info.spec == DEFAULT_MODEL_NAME and info.backend == "native" and info.arch == "llama"
    assert len(info.fingerprint) == 16 and 130e6 < info.n_params < 140e6 and info.context_length == 8192
    assert model.chat_template and "<|im_start|>" in model.chat_template
    assert load_model(DEFAULT_MODEL_NAME).info.fingerprint == info.fingerprint


def test_default_model_knows_things_and_is_batch_invariant(model):
    reqs = [L("The capital of France is", " Paris"), L("The capital of France is", " London")] + \
           [L(MC, f" {c}") for c in "ABCD"]
    big = model.loglikelihood(reqs, progress=False)
    assert big[0].logprob > big[1].logprob and big[0].is_greedy
    model.batch_size = 1
    try:
        one = model.loglikelihood(reqs, progress=False)
    finally:
        model.batch_size = 4
    assert [r.logprob for r in one] == pytest.approx([r.logprob for r in big], abs=1e-4)


def test_default_model_chat_generation_stops_at_end_of_turn(model):
    text, cut = model.generate([G(CHAT, max_tokens=40), G(CHAT, max_tokens=40, stop=("France",))], progress=False)
    assert "France" in text and "<|im_end|>" not in text
    assert len(model.tok_encode(text)) < 40  # ended by <|im_end|>, not by max_tokens
    assert cut == text[:text.index("France")]


def test_default_model_saves_and_reloads_offline_as_a_harness_checkpoint(model, tmp_path):
    import torch

    from harness.models.checkpoint import save_checkpoint

    out = save_checkpoint(model.module, model.config, tmp_path / "ck", model.tokenizer,
                          {"prompt_format": "chatml", "chat_template": model.chat_template})
    again = load_model(str(out))
    texts = [CHAT, MC, "naïve 東京 12345 <|endoftext|> x", "  spaces\n\n\ttabs"]
    assert [again.tok_encode(t) for t in texts] == [model.tok_encode(t) for t in texts]
    assert again.stop_ids == model.stop_ids and again.prefix_id == model.prefix_id
    assert again.info.prompt_format == "chatml" and again.chat_template == model.chat_template
    x = torch.tensor([model.tok_encode(CHAT)])
    with torch.no_grad():
        torch.testing.assert_close(again.module(x), model.module(x), atol=0, rtol=0)
