"""harness.finetune.loss.cross_entropy against torch's F.cross_entropy (values and gradients)."""
import math

import pytest
import torch
import torch.nn.functional as F

from harness.finetune.loss import cross_entropy


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_matches_torch_with_ignored_rows(reduction):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(37, 1000, generator=g, dtype=torch.float64) * 3
    target = torch.randint(0, 1000, (37,), generator=g)
    target[[0, 5, 36]] = -100
    a = logits.clone().requires_grad_()
    b = logits.clone().requires_grad_()
    ours = cross_entropy(a, target, reduction)
    ref = F.cross_entropy(b, target, reduction=reduction, ignore_index=-100)
    (ours * 1.7).backward()
    (ref * 1.7).backward()
    assert ours.item() == pytest.approx(ref.item(), rel=1e-12)
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-10, atol=1e-12)
    assert a.grad[[0, 5, 36]].abs().max() == 0


def test_all_ignored_mean_is_nan_as_torch():
    logits = torch.randn(3, 10)
    target = torch.full((3,), -100)
    assert math.isnan(float(cross_entropy(logits, target)))
    assert math.isnan(float(F.cross_entropy(logits, target)))


def test_bad_reduction():
    with pytest.raises(ValueError, match="reduction"):
        cross_entropy(torch.randn(2, 3), torch.tensor([0, 1]), "none")


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_logits_at_selects_the_same_rows(arch):
    """Training computes the LM head only where a target is: the rows must be those of the full head."""
    from harness.testing import tiny_gpt2_module, tiny_llama_module

    torch.manual_seed(0)
    module = (tiny_gpt2_module if arch == "gpt2" else tiny_llama_module)(0).eval()
    x = torch.randint(0, 200, (3, 11))
    at = torch.rand(3, 11) > 0.4
    with torch.no_grad():
        full, picked = module(x), module(x, logits_at=at)
    assert picked.shape == (int(at.sum()), full.shape[-1])
    torch.testing.assert_close(picked, full[at], rtol=1e-5, atol=1e-6)
