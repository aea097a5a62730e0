"""Fine-tuning fails in one line, and keeps nothing broken, when the run or the machine goes
wrong: non-finite losses, records longer than memory allows, a full disk, an unusable
--out, --resume with nothing to resume, and templates that raise (issue 13)."""
from __future__ import annotations

import json
import math
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from harness.cli.common import HarnessGroup
from harness.cli.finetune import finetune as finetune_cmd
from harness.cli.generate import generate as generate_cmd
from harness.errors import HarnessError
from harness.finetune import resources, state
from harness.finetune.runner import finetune
from harness.finetune.train import TrainConfig
from harness.testing import make_tiny_gpt2

QUICK = dict(limit=40, val_frac=0.2, test_frac=0.1, batch_size=4, max_length=48, test_max_tokens=2, lr=3e-3)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> str:
    return str(make_tiny_gpt2(tmp_path_factory.mktemp("tiny") / "gpt2"))


def cli() -> HarnessGroup:
    group = HarnessGroup("harness")
    for cmd in (finetune_cmd, generate_cmd):
        group.add_command(cmd)
    return group


def strict_json_lines(path: Path) -> list[dict]:
    def reject(name: str) -> None:
        raise ValueError(f"bare {name} in {path}")
    return [json.loads(line, parse_constant=reject) for line in path.read_text().splitlines()]


# ---- non-finite losses ---------------------------------------------------------------

def test_exploding_lr_stops_at_the_step_with_exit_2_and_keeps_no_nan(tiny, tmp_path):
    out = tmp_path / "nan"
    res = CliRunner().invoke(cli(), ["finetune", "--model", tiny, "--out", str(out), "--limit", "40",
                                     "--lr", "1e30", "--eval-every", "2", "--quiet"])
    assert res.exit_code == 2, res.output
    msg = res.output.strip().splitlines()[-1]
    assert msg.startswith("error: step 2: the training loss is nan") and "--lr" in msg
    assert "Traceback" not in res.output
    assert not (out / "model.safetensors").exists() and not (out / "config.json").exists()
    rows = strict_json_lines(out / "metrics.jsonl")
    assert all(math.isfinite(r["val_loss"]) for r in rows)
    assert "best so far" not in (out / "train.log").read_text()
    from safetensors.torch import load_file
    d = state.state_dir(out)  # the last state kept is the finite one of step 0
    assert d is not None and all(torch.isfinite(t).all() for t in load_file(str(d / state.WEIGHTS_FILE)).values())


def test_lr_inf_is_refused_before_the_model_loads(tiny, tmp_path):
    res = CliRunner().invoke(cli(), ["finetune", "--model", str(tmp_path / "missing"), "--out",
                                     str(tmp_path / "o"), "--lr", "inf", "--quiet"])
    assert res.exit_code == 2 and "--lr must be a positive finite number" in res.output


def test_a_nan_validation_loss_is_never_called_best(tiny, tmp_path, monkeypatch):
    from harness.finetune import train

    real = train.Trainer.mean_loss
    calls = {"n": 0}

    def poisoned(self, data, max_batches=None):
        value = real(self, data, max_batches)
        if data is self.val_data:
            calls["n"] += 1
            if calls["n"] == 3:  # the second evaluation after step 0
                return math.inf
        return value

    monkeypatch.setattr(train.Trainer, "mean_loss", poisoned)
    out = tmp_path / "val"
    with pytest.raises(HarnessError, match=r"^step 4: the validation loss is inf"):
        finetune(TrainConfig(model=tiny, eval_every=2, **QUICK), out, progress=False)
    rows = strict_json_lines(out / "metrics.jsonl")
    assert [r["step"] for r in rows] == [0, 2]
    assert "error: step 4" in (out / "train.log").read_text()


# ---- long records and memory ---------------------------------------------------------

def long_data(tmp_path: Path) -> Path:
    recs = [{"instruction": f"Say {i}.", "input": "", "output": f"{i} " * 10} for i in range(19)]
    recs.insert(3, {"instruction": "Repeat.", "input": "", "output": "word " * 20_000})  # 100,000 characters
    path = tmp_path / "long.json"
    path.write_text(json.dumps(recs))
    return path


@pytest.fixture(scope="module")
def long_ctx(tmp_path_factory) -> str:
    return str(make_tiny_gpt2(tmp_path_factory.mktemp("ctx") / "gpt2", context_length=8192))


def test_default_max_length_is_what_fits_and_long_records_are_cut(long_ctx, tmp_path, monkeypatch):
    monkeypatch.setattr(resources, "available_memory", lambda: 800_000_000)  # fits ~120 tokens x 4
    out = tmp_path / "long"
    cfg = TrainConfig(model=long_ctx, data=str(long_data(tmp_path)), val_frac=0.0, test_frac=0.0, batch_size=4,
                      test_max_tokens=0, eval_every=100)
    finetune(cfg, out, progress=False)
    resolved = json.loads((out / "train_config.json").read_text())["resolved_max_length"]
    assert 64 <= resolved < 8192  # not the model's context
    log = (out / "train.log").read_text()
    assert f"max length {resolved} tokens (1 train/val records longer, truncated)" in log


def test_a_run_that_cannot_fit_fails_in_one_line_before_training(long_ctx, tmp_path, monkeypatch):
    monkeypatch.setattr(resources, "available_memory", lambda: 2_000_000_000)
    out = tmp_path / "big"
    res = CliRunner().invoke(cli(), ["finetune", "--model", long_ctx, "--data", str(long_data(tmp_path)),
                                     "--out", str(out), "--max-length", "8192", "--quiet"])
    assert res.exit_code == 2, res.output
    assert "not enough memory: batch 8 x 8192 tokens needs about" in res.output
    assert "lower --max-length or --batch-size" in res.output
    assert not (out / "metrics.jsonl").exists()


def test_memory_estimate_tracks_model_batch_and_length(long_ctx):
    from harness.testing import tiny_gpt2_module

    m = tiny_gpt2_module(0, n_embd=64, n_layer=2, n_head=2)
    vocab, hidden, layers = resources.model_shape(m)
    assert (vocab, hidden) == (50257, 64) and layers >= 1
    n = sum(p.numel() for p in m.parameters())
    one = resources.training_bytes(m, n, 1, 100)
    assert resources.training_bytes(m, n, 2, 100) - one == resources.training_bytes(m, n, 1, 200) - one > 0
    budget = 2 * one
    fit = resources.fit_length(m, n, 4, 4096, budget)
    assert resources.training_bytes(m, n, 4, fit) <= 0.8 * budget < resources.training_bytes(m, n, 4, fit + 1)
    with pytest.raises(HarnessError, match="lower --batch-size"):
        resources.fit_length(m, n, 4, 4096, 10_000_000)


# ---- disk ----------------------------------------------------------------------------

def test_full_disk_before_a_checkpoint_fails_naming_path_and_size(tiny, tmp_path, monkeypatch):
    real = resources.shutil.disk_usage
    calls = {"n": 0}

    def usage(path):
        calls["n"] += 1
        u = real(path)
        return u._replace(free=1000) if calls["n"] >= 2 else u  # the first state write fits

    monkeypatch.setattr(resources.shutil, "disk_usage", usage)
    out = tmp_path / "disk"
    with pytest.raises(HarnessError, match=r"\.train-state: not enough disk space to write [0-9.]+ GB"):
        finetune(TrainConfig(model=tiny, eval_every=2, **QUICK), out, progress=False)
    monkeypatch.setattr(resources.shutil, "disk_usage", real)
    assert state.state_summary(out)["step"] == 0  # the state of step 0 is intact
    summary = finetune(TrainConfig(model=tiny, eval_every=2, **QUICK), out, resume=True, progress=False)
    assert summary["steps"] == 7


def test_a_file_size_limit_fails_in_one_line_and_resume_finishes(tiny, tmp_path):
    out = tmp_path / "fsize"
    args = [sys.executable, "-m", "harness", "finetune", "--model", tiny, "--out", str(out), "--limit", "40",
            "--lora-rank", "2", "--max-length", "48", "--batch-size", "4", "--eval-every", "3", "--quiet",
            "--test-max-tokens", "2"]
    limit = 4 << 20  # LoRA state files fit, the merged 13 MB model.safetensors does not

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    env = {**os.environ, "HARNESS_DEBUG": ""}
    res = subprocess.run(args, capture_output=True, text=True, preexec_fn=small_files, env=env, timeout=600)
    assert res.returncode == 2, res.stderr
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {out / 'model.safetensors'}: write failed (") and "File too large" in last
    assert "Traceback" not in res.stderr
    assert state.state_dir(out) is not None and not (out / "model.safetensors").exists()
    res = subprocess.run(args + ["--resume"], capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stderr
    assert (out / "model.safetensors").is_file() and state.state_dir(out) is None


# ---- --out, --resume, templates ------------------------------------------------------

@pytest.mark.parametrize("where", ["/proc/harness-test-out", "FILE/sub"])
def test_unusable_out_fails_before_the_model_loads(tmp_path, where):
    (tmp_path / "FILE").write_text("x")
    out = where.replace("FILE", str(tmp_path / "FILE"))
    res = CliRunner().invoke(cli(), ["finetune", "--model", str(tmp_path / "no-model"), "--out", out, "--quiet"])
    assert res.exit_code == 2, res.output
    assert res.output.startswith(f"error: --out {out}: cannot write there") and res.output.count("\n") == 1


def test_resume_with_nothing_to_resume(tiny, tmp_path):
    fresh = tmp_path / "fresh"
    res = CliRunner().invoke(cli(), ["finetune", "--model", tiny, "--out", str(fresh), "--resume", "--quiet"])
    assert res.exit_code == 2 and "--resume: no interrupted fine-tuning run" in res.output
    with pytest.raises(HarnessError, match="no interrupted fine-tuning run"):  # the Python API too, at once
        finetune(TrainConfig(model=str(tmp_path / "no-model"), **QUICK), fresh, resume=True, progress=False)
    (fresh / state.STATE_DIR).mkdir(parents=True)  # a state with a damaged config
    (fresh / state.STATE_DIR / state.STATE_FILE).write_text("x")
    (fresh / state.STATE_DIR / state.WEIGHTS_FILE).write_text("x")
    (fresh / "train_config.json").write_text("[1, 2")
    res = CliRunner().invoke(cli(), ["finetune", "--out", str(fresh), "--resume", "--quiet"])
    assert res.exit_code == 2 and "train_config.json is unreadable" in res.output, res.output


def test_a_template_that_raises_names_the_template(tiny, tmp_path):
    bad = tmp_path / "div.jinja"
    bad.write_text("{{ instruction }} {{ 1 // 0 }}\n### Response:\n{{ output or '' }}")
    for cmd in (["finetune", "--model", tiny, "--out", str(tmp_path / "o"), "--template", str(bad), "--quiet"],
                ["generate", "--model", tiny, "--template", str(bad), "hi"]):
        res = CliRunner().invoke(cli(), cmd)
        assert res.exit_code == 2, res.output
        assert res.output.startswith("error: template custom:div.jinja: cannot render") and \
            "ZeroDivisionError" in res.output and res.output.count("\n") == 1
