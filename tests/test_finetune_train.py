"""Fine-tuning end to end on tiny random models (harness.testing): loss goes down, early
stopping keeps the best evaluation, a SIGKILLed run resumes to the same losses, LoRA
merges exactly, and bad input fails in one line. A few seconds per test."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from harness.cli.common import HarnessGroup
from harness.cli.finetune import finetune as finetune_cmd
from harness.cli.finetune import merge as merge_cmd
from harness.cli.generate import generate as generate_cmd
from harness.errors import HarnessError
from harness.finetune import state
from harness.finetune.lora import LoRAConfig, apply_lora, lora_modules, merge_lora, select_layers
from harness.finetune.runner import finetune
from harness.finetune.train import TrainConfig
from harness.models import load_model
from harness.testing import make_tiny_gpt2, make_tiny_llama, tiny_gpt2_module, tiny_llama_module

# small everything: 40 records, 48-token texts, batches of 4
QUICK = dict(limit=40, val_frac=0.2, test_frac=0.1, batch_size=4, max_length=48, test_max_tokens=4, lr=3e-3)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("tiny")
    return {"gpt2": str(make_tiny_gpt2(d / "gpt2")), "llama": str(make_tiny_llama(d / "llama"))}


def cli() -> HarnessGroup:
    group = HarnessGroup("harness")
    for cmd in (finetune_cmd, generate_cmd, merge_cmd):
        group.add_command(cmd)
    return group


def metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_validation_loss_goes_down_and_outputs_are_complete(tiny, tmp_path):
    out = tmp_path / "ft"
    finetune(TrainConfig(model=tiny["gpt2"], epochs=1, eval_every=3, **QUICK), out, progress=False)
    m = metrics(out)
    assert m[0]["step"] == 0 and m[-1]["step"] == 7  # 28 train records in batches of 4
    assert m[-1]["val_loss"] < m[0]["val_loss"] - 1.0
    assert all(set(r) == {"step", "epoch", "tokens", "train_loss", "val_loss", "lr"} for r in m)
    responses = json.loads((out / "test-responses.json").read_text())
    assert len(responses) == 4 and set(responses[0]) == {"instruction", "input", "output", "model_response",
                                                         "base_response"}
    # the base's answers are taken before training: after a large drop in loss they differ
    assert all(isinstance(r["base_response"], str) for r in responses)
    assert any(r["base_response"] != r["model_response"] for r in responses)
    assert ET.parse(out / "loss-curve.svg").getroot().tag.endswith("svg")
    assert "best (step" in (out / "loss-curve.svg").read_text()
    assert json.loads((out / "train_config.json").read_text())["lr"] == 3e-3
    assert set(json.loads((out / "split.json").read_text())) >= {"train", "val", "test", "seed"}
    assert "keeping the best evaluation" in (out / "train.log").read_text()
    assert not (out / state.STATE_DIR).exists()
    model = load_model(str(out))  # OUT is a plain harness checkpoint
    assert model.info.prompt_format == "alpaca" and model.info.extra["finetune"]["best_step"] == 7


def test_early_stopping_keeps_the_best_evaluation(tiny, tmp_path):
    out = tmp_path / "es"
    cfg = TrainConfig(model=tiny["gpt2"], limit=20, val_frac=0.25, test_frac=0.0, epochs=40, batch_size=6,
                      max_length=32, eval_every=3, patience=2, lr=3e-2, warmup_frac=0.0)
    summary = finetune(cfg, out, progress=False)
    m = metrics(out)
    assert summary["stopped_early"] and summary["steps"] < 40 * 3
    vals = [r["val_loss"] for r in m[1:]]
    best = min(vals)
    assert summary["best_val_loss"] == best and summary["best_step"] == m[1 + vals.index(best)]["step"]
    assert vals[-1] > best and vals[-2] > best  # two evaluations without improvement
    # the saved checkpoint holds the best weights: its validation loss is the best one
    from harness.finetune.collate import encode_examples
    from harness.finetune.data import load_examples
    from harness.finetune.split import load_split
    from harness.finetune.train import Trainer
    from harness.prompts import get_format

    lm = load_model(str(out))
    examples, _ = load_examples(None, 20)
    val = encode_examples(lm.tokenizer, get_format("alpaca"), [examples[i] for i in load_split(out / "split.json").val])
    trainer = Trainer(cfg, lm.module, lm.module.requires_grad_(True), 50256, val, val, 32)
    assert trainer.mean_loss(val) == pytest.approx(best, abs=1e-5)


RUN = """
import json, sys
from pathlib import Path
from harness.finetune.runner import finetune
from harness.finetune.train import TrainConfig
finetune(TrainConfig(**json.loads(sys.argv[1])), Path(sys.argv[2]), resume=sys.argv[3] == "1", progress=False)
"""


def test_sigkill_then_resume_ends_with_the_same_losses(tiny, tmp_path):
    cfg = dict(model=tiny["gpt2"], epochs=2, eval_every=2, grad_accum=2, patience=0, lora_rank=4, lora_targets="attn",
               **QUICK)
    ref = tmp_path / "ref"
    finetune(TrainConfig(**cfg), ref, progress=False)
    out = tmp_path / "killed"
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    proc = subprocess.Popen([sys.executable, "-c", RUN, json.dumps(cfg), str(out), "0"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    progress = None
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            progress = state.state_summary(out)
        except Exception:  # caught mid-swap: try again
            progress = None
        if progress and progress["step"] >= 2:
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.01)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
    assert state.state_dir(out) is not None and not (out / "config.json").exists()
    killed_at = state.state_summary(out)["step"]
    assert 2 <= killed_at < 8  # 2 epochs x ceil(7 batches / 2) steps
    res = CliRunner().invoke(cli(), ["finetune", "--out", str(out), "--resume", "--lr", "0.5", "--quiet"])
    assert res.exit_code == 2 and "--lr 0.5 differs from the interrupted run's 0.003" in res.stderr
    res = CliRunner().invoke(cli(), ["finetune", "--out", str(out), "--resume", "--quiet"])  # options from the run
    assert res.exit_code == 0, res.output
    assert metrics(out) == metrics(ref)
    assert "resuming at" in (out / "train.log").read_text()
    a, b = load_model(str(ref)).module.state_dict(), load_model(str(out)).module.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_lora_merge_gives_the_same_logits(arch):
    module = tiny_gpt2_module(1) if arch == "gpt2" else tiny_llama_module(1)
    idx = torch.randint(0, 50257, (2, 12), generator=torch.Generator().manual_seed(0))
    base_logits = module(idx)
    cfg = apply_lora(module, LoRAConfig(rank=4, alpha=8, targets="all"))
    assert len(cfg.layers) == (4 * 2 if arch == "gpt2" else 7 * 2) and "lm_head" not in cfg.layers
    assert torch.equal(module(idx), base_logits)  # B starts at zero: training starts at the base model
    with torch.no_grad():
        for m in lora_modules(module).values():
            m.lora_B.normal_(0, 0.05)
        adapted = module(idx)
        merge_lora(module)
    assert not lora_modules(module)
    assert not torch.allclose(adapted, base_logits, atol=1e-3)
    torch.testing.assert_close(module(idx), adapted, atol=1e-5, rtol=1e-5)


def test_lora_targets():
    gpt2 = tiny_gpt2_module()
    assert select_layers(gpt2, "attn") == [f"transformer.h.{i}.attn.{n}" for i in range(2) for n in ("c_attn", "c_proj")]
    assert select_layers(gpt2, "c_fc") == ["transformer.h.0.mlp.c_fc", "transformer.h.1.mlp.c_fc"]
    llama = tiny_llama_module()
    assert select_layers(llama, "q_proj,v_proj") == [f"model.layers.{i}.self_attn.{n}_proj" for i in range(2) for n in "qv"]
    assert len(select_layers(llama, "mlp")) == 6
    with pytest.raises(HarnessError, match=r"--lora-targets 'qproj' matches no linear layer; this model has .*q_proj"):
        select_layers(llama, "qproj")


def test_lora_finetune_llama_then_merge_cli(tiny, tmp_path):
    out, merged = tmp_path / "lora", tmp_path / "merged"
    res = CliRunner().invoke(cli(), ["finetune", "--model", tiny["llama"], "--out", str(out), "--limit", "40",
                                     "--val-frac", "0.2", "--batch-size", "4", "--max-length", "40", "--lora-rank",
                                     "4", "--lora-targets", "q_proj,v_proj", "--eval-every", "4", "--lr", "1e-2",
                                     "--format", "chatml", "--test-max-tokens", "3", "--quiet"])
    assert res.exit_code == 0, res.output
    assert "outputs in" in res.output and (out / "adapter" / "adapter.json").is_file()
    res = CliRunner().invoke(cli(), ["merge", "--model", str(out), "--out", str(merged)])
    assert res.exit_code == 0, res.output
    a, b, base = load_model(str(out)), load_model(str(merged)), load_model(tiny["llama"])
    assert b.info.prompt_format == "chatml"
    idx = torch.randint(0, 50257, (1, 10), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(a.module(idx), b.module(idx), atol=1e-5, rtol=1e-5)
        assert not torch.allclose(a.module(idx), base.module(idx), atol=1e-4)
    # the unmerged adapter model gives the same logits too
    from harness.finetune.runner import load_adapter_into

    load_adapter_into(base.module, out / "adapter")
    with torch.no_grad():
        torch.testing.assert_close(base.module(idx), a.module(idx), atol=1e-5, rtol=1e-5)


def greedy_without_cache(lm, prompt: str, n: int) -> str:
    ids = lm.tok_encode(prompt)
    new: list[int] = []
    with torch.no_grad():
        for _ in range(n):
            tok = int(lm.module(torch.tensor([ids + new]))[0, -1].argmax())
            if tok in lm.stop_ids:
                break
            new.append(tok)
    return lm.tok_decode(new)


def test_generate_streams_the_greedy_answer(tiny, tmp_path):
    lm = load_model(tiny["gpt2"])
    from harness.api import GenerateRequest
    from harness.prompts import format_prompt

    prompt = format_prompt("alpaca", "Name a colour.")
    expected = lm.generate([GenerateRequest(prompt, max_tokens=6)], progress=False)[0]
    assert expected == greedy_without_cache(lm, prompt, 6)
    res = CliRunner().invoke(cli(), ["generate", "--model", tiny["gpt2"], "--format", "alpaca", "--max-tokens", "6",
                                     "Name a colour."])
    assert res.exit_code == 0, res.output
    assert res.stdout == expected + "\n"
    pieces = list(lm.stream(GenerateRequest(prompt, (), 6, 0.8, 3)))
    assert "".join(pieces) == lm.generate([GenerateRequest(prompt, (), 6, 0.8, 3)], progress=False)[0]


@pytest.mark.parametrize("args, match", [
    (["--epochs", "0"], "--epochs must be a positive integer"),
    (["--resume", "--out", "{tmp}/none"], "--resume: no interrupted fine-tuning run in"),
    (["--format", "chatmll"], "unknown --format 'chatmll' \\(did you mean 'chatml'\\?\\)"),
    (["--data", "{tmp}/no-output.json"], "no-output.json: record 1, field 'output': missing"),
    (["--template", "{tmp}/bad.jinja"], "template custom:bad.jinja: cannot render record 0"),
    (["--lora-rank", "2", "--lora-targets", "nope"], "--lora-targets 'nope' matches no linear layer"),
])
def test_bad_input_gives_one_line_errors(tiny, tmp_path, args, match):
    (tmp_path / "no-output.json").write_text(json.dumps([{"instruction": "a", "output": "b"}, {"instruction": "c"}]))
    (tmp_path / "bad.jinja").write_text("{{ instruction }}{% if input %}{{ input.upper(1) }}{% endif %}\n"
                                        "{% if output is not none %}{{ output }}{% endif %}")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    res = CliRunner().invoke(cli(), ["finetune", "--model", tiny["gpt2"], "--out", str(tmp_path / "o"), "--quiet",
                                     *args])
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    import re

    assert re.search(match, lines[0]), lines[0]


def test_transformers_backend_full_finetune(tmp_path):
    pytest.importorskip("transformers")
    base = make_tiny_gpt2(tmp_path / "hf", fmt="hf")
    out = tmp_path / "ft-hf"
    finetune(TrainConfig(model=f"hf:{base}", epochs=1, eval_every=4, **QUICK), out, progress=False)
    m = metrics(out)
    assert m[-1]["val_loss"] < m[0]["val_loss"]
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["model_type"] == "gpt2" and cfg["prompt_format"] == "alpaca" and cfg["finetune"]["steps"] == 7
    lm = load_model(f"hf:{out}")
    assert lm.info.backend == "hf"
