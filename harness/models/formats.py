"""What a model path holds, read without torch (the CLI checks specs before loading anything)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import HarnessError


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``, or a HarnessError naming the file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise HarnessError(f"{path}: cannot read ({e.strerror}); check the path") from None
    except ValueError as e:
        raise HarnessError(f"{path}: not valid JSON ({e}); fix or re-save the checkpoint") from None
    if not isinstance(data, dict):
        raise HarnessError(f"{path}: expected a JSON object; fix or re-save the checkpoint")
    return data


def detect_format(path: str | Path) -> str | None:
    """What a path holds: ``"harness"``, ``"hf-gpt2"``, ``"hf"``, ``"pth"``, ``"gguf"`` or None."""
    p = Path(path)
    if p.is_dir():
        if not (p / "config.json").is_file():
            return None
        cfg = read_json(p / "config.json")
        if cfg.get("format") == "harness":
            return "harness"
        if "model_type" in cfg:
            return "hf-gpt2" if cfg["model_type"] == "gpt2" else "hf"
        return None
    if p.suffix in (".pth", ".pt"):
        return "pth"
    if p.suffix == ".gguf":
        return "gguf"
    return None
