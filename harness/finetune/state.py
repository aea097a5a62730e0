"""Resumable training state in ``OUT/.train-state/``, written atomically.

A checkpoint is written to a fresh temp dir, then swapped in by renames, so a
SIGKILL at any instant leaves either the previous complete state or the new one
(``.train-state.old`` is picked up if the kill fell between the two renames).
Only trainable tensors are stored (LoRA: the adapters; full fine-tuning: every
weight); frozen weights come from ``--model`` again on resume.
"""
from __future__ import annotations

import dataclasses
import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from ..errors import HarnessError
from .resources import check_disk, tensor_bytes, write_error
from .train import Progress, Trainer

STATE_DIR = ".train-state"
STATE_FILE = "state.pt"
WEIGHTS_FILE = "weights.safetensors"
BEST_FILE = "best.safetensors"


def state_dir(out: Path) -> Path | None:
    """The complete state dir under ``out``, if any (falls back to an interrupted swap)."""
    for name in (STATE_DIR, STATE_DIR + ".old"):
        d = out / name
        if (d / STATE_FILE).is_file() and (d / WEIGHTS_FILE).is_file():
            return d
    return None


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _save_tensors(tensors: dict[str, torch.Tensor], path: Path) -> None:
    from safetensors.torch import save_file

    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(path))
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def save_state(trainer: Trainer, out: Path) -> Path:
    """Write the trainer's full state to ``out/.train-state`` atomically."""
    out.mkdir(parents=True, exist_ok=True)
    final, old = out / STATE_DIR, out / (STATE_DIR + ".old")
    previous = state_dir(out)
    trainable, optim_state = trainer.trainable_state(), trainer.optimizer.state_dict()
    need = tensor_bytes(trainable) + tensor_bytes(optim_state["state"])
    if trainer.best_state is not None and trainer.best_changed:
        need += tensor_bytes(trainer.best_state)
    check_disk(final, need)
    tmp = Path(tempfile.mkdtemp(prefix=STATE_DIR + ".tmp-", dir=out))
    try:
        _save_tensors(trainable, tmp / WEIGHTS_FILE)
        if trainer.best_state is not None:
            prev_best = previous / BEST_FILE if previous else None
            if not trainer.best_changed and prev_best is not None and prev_best.is_file():
                os.link(prev_best, tmp / BEST_FILE)  # unchanged: no need to write it again
            else:
                _save_tensors(trainer.best_state, tmp / BEST_FILE)
        blob = {
            "progress": dataclasses.asdict(trainer.p),
            "optimizer": optim_state,
            "scheduler": trainer.scheduler.state_dict(),
            "last_lr": trainer.last_lr,
            "rng": {"torch": torch.get_rng_state(), "python": random.getstate()},
        }
        with open(tmp / STATE_FILE, "wb") as f:  # Python's file: a full disk raises OSError
            torch.save(blob, f)
            f.flush()
            os.fsync(f.fileno())
        _fsync_dir(tmp)
        if final.exists():
            shutil.rmtree(old, ignore_errors=True)
            final.rename(old)
        tmp.rename(final)
        _fsync_dir(out)
        shutil.rmtree(old, ignore_errors=True)
    except Exception as e:  # OSError, or safetensors' error around one
        shutil.rmtree(tmp, ignore_errors=True)
        raise write_error(final, e) from e
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def load_state(trainer: Trainer, out: Path) -> Progress:
    """Restore a trainer saved by :func:`save_state` (same model, data and config)."""
    from safetensors.torch import load_file

    d = state_dir(out)
    if d is None:
        raise HarnessError(f"--resume: no training checkpoint in {out} (looked for {out / STATE_DIR}); "
                           "start without --resume")
    try:
        blob = torch.load(d / STATE_FILE, map_location="cpu", weights_only=True)
        weights = load_file(str(d / WEIGHTS_FILE))
    except Exception as e:
        raise HarnessError(f"--resume: {d} is damaged ({str(e).splitlines()[0][:120]}); "
                           "delete it and start again") from None
    params = trainer.trainable_state()
    if set(weights) != set(params):
        raise HarnessError(f"--resume: the checkpoint in {d} trains other parameters than this run "
                           "(LoRA settings or model differ); rerun with the original options")
    with torch.no_grad():
        for name, t in params.items():
            t.copy_(weights[name])
    trainer.optimizer.load_state_dict(blob["optimizer"])
    trainer.scheduler.load_state_dict(blob["scheduler"])
    trainer.last_lr = blob["last_lr"]
    trainer.p = Progress(**blob["progress"])
    if (d / BEST_FILE).is_file():
        trainer.best_state = load_file(str(d / BEST_FILE))
    torch.set_rng_state(blob["rng"]["torch"])
    random.setstate(blob["rng"]["python"])
    return trainer.p


def clear_state(out: Path) -> None:
    for name in (STATE_DIR, STATE_DIR + ".old"):
        shutil.rmtree(out / name, ignore_errors=True)
    for tmp in out.glob(STATE_DIR + ".tmp-*"):
        shutil.rmtree(tmp, ignore_errors=True)


def state_summary(out: Path) -> dict[str, Any] | None:
    d = state_dir(out)
    if d is None:
        return None
    blob = torch.load(d / STATE_FILE, map_location="cpu", weights_only=True)
    return blob["progress"]
