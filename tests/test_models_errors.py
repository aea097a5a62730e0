"""Bad model inputs give one-line HarnessErrors that name the path and say what to do."""
from __future__ import annotations

import json
import sys

import pytest
import torch

from harness.errors import HarnessError
from harness.models import load_model
from harness.testing import gpt2_to_pth_state_dict, make_tiny_gpt2, tiny_gpt2_module, torch_threads


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    with torch_threads(1):
        yield


def raises(spec, match, **kw):
    with pytest.raises(HarnessError, match=match) as e:
        load_model(str(spec), **kw)
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_missing_path(tmp_path):
    msg = raises(tmp_path / "nope", "no such file")
    assert str(tmp_path / "nope") in msg
    raises(f"native:{tmp_path / 'nope'}", "no such file")


def test_truncated_safetensors(tmp_path):
    path = make_tiny_gpt2(tmp_path / "ck")
    weights = path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    assert str(weights) in raises(path, "truncated or corrupt")
    weights.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{garbage")
    raises(path, "truncated or corrupt")


def test_truncated_or_foreign_pth(tmp_path):
    path = make_tiny_gpt2(tmp_path / "p", fmt="pth")
    path.write_bytes(path.read_bytes()[:5000])
    assert str(path) in raises(path, "truncated, corrupt")
    torch.save({"encoder.weight": torch.zeros(3, 3)}, path)
    raises(path, "not an LLMs-from-scratch GPT state dict")
    torch.save([1, 2, 3], path)
    raises(path, "not a state dict")


def test_pth_shapes_matching_no_gpt2_config(tmp_path):
    path = tmp_path / "odd.pth"
    torch.save(gpt2_to_pth_state_dict(tiny_gpt2_module()), path)  # emb 32, no sidecar json
    msg = raises(path, "matches no GPT-2 config")
    assert "odd.json" in msg and str(path) in msg


def test_unknown_format(tmp_path):
    (tmp_path / "weights.bin").write_bytes(b"\0" * 10)
    raises(tmp_path / "weights.bin", "unknown model format")
    (tmp_path / "d").mkdir()
    raises(tmp_path / "d", "unknown model format")
    (tmp_path / "d" / "config.json").write_text(json.dumps({"something": 1}))
    raises(tmp_path / "d", "unknown model format")
    (tmp_path / "d" / "config.json").write_text("{not json")
    raises(tmp_path / "d", "not valid JSON")


def test_harness_config_that_does_not_fit_the_weights(tmp_path):
    path = make_tiny_gpt2(tmp_path / "ck")
    cfg = json.loads((path / "config.json").read_text())
    (path / "config.json").write_text(json.dumps({**cfg, "n_layer": 3}))
    raises(path, "weights do not fit")
    (path / "config.json").write_text(json.dumps({**cfg, "n_embd": 48}))
    raises(path, "shapes do not match")
    (path / "config.json").write_text(json.dumps({**cfg, "arch": "mamba"}))
    raises(path, "unknown arch 'mamba'")


def test_native_refuses_other_hf_architectures(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "qwen2"}))
    raises(f"native:{tmp_path}", "use --model hf:PATH")


def test_hf_backend_without_transformers(tmp_path, monkeypatch):
    path = make_tiny_gpt2(tmp_path / "hf", fmt="hf")
    monkeypatch.setitem(sys.modules, "transformers", None)  # import fails as if not installed
    raises(f"hf:{path}", r"harness\[hf\]")


def test_hf_backend_missing_local_dir(tmp_path):
    raises(f"hf:{tmp_path / 'nope'}", "no such file")
