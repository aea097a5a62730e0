"""The KV cache must not change a single logit: prompt pass and every decode step."""
from __future__ import annotations

import pytest
import torch

from harness.testing import tiny_gpt2_module, tiny_llama_module


@pytest.mark.parametrize("build", [tiny_gpt2_module, tiny_llama_module], ids=["gpt2", "llama"])
def test_cached_prompt_and_decode_steps_equal_full_recompute(build):
    module = build(seed=3).eval()
    layers = module.transformer.h if hasattr(module, "transformer") else module.model.layers
    assert len(layers) >= 2  # a cache bug that only later layers see needs two or more
    idx = torch.randint(0, 1000, (2, 9), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        full = module(idx)
        cache = module.new_cache()
        prompt = module(idx[:, :6], cache=cache)
        steps = [module(idx[:, t:t + 1], cache=cache) for t in range(6, 9)]
    torch.testing.assert_close(prompt, full[:, :6], atol=1e-5, rtol=1e-5)
    for t, step in zip(range(6, 9), steps):
        torch.testing.assert_close(step[:, 0], full[:, t], atol=1e-5, rtol=1e-5)
