"""``peft``: a PEFT LoRA adapter dir (``adapter_config.json``) evaluated on its base model.

The base is ``--model-args base=SPEC`` or the adapter's ``base_model_name_or_path`` (a path is also
tried relative to the adapter dir). A transformers base (the ``hf`` backend) gets the adapter through
peft itself; a native base (a harness checkpoint, ``.gguf``, the default model) gets harness's LoRA
update ``W + (alpha / r) B A`` on the same layers, so no peft is needed there. ``harness finetune
--lora-rank`` writes this layout into ``OUT/adapter/``, so that dir is a model spec too.
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from ...api import hookimpl
from ...errors import HarnessError

DESCRIPTION = "a PEFT LoRA adapter dir (adapter_config.json) on its base: peft for hf bases, harness's LoRA for native"
CONFIG, WEIGHTS = "adapter_config.json", "adapter_model.safetensors"
KEY = re.compile(r"^base_model\.model\.(.+)\.lora_([AB])(?:\.default)?\.weight$")


def detect(path: str) -> bool:
    return (Path(path) / CONFIG).is_file()


def read_config(adapter: Path) -> dict[str, Any]:
    try:
        cfg = json.loads((adapter / CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise HarnessError(f"{adapter / CONFIG}: cannot read it ({e}); save the adapter with "
                           "PeftModel.save_pretrained") from None
    if not isinstance(cfg, dict) or cfg.get("peft_type", "LORA") != "LORA":
        raise HarnessError(f"{adapter / CONFIG}: not a LoRA adapter (peft_type "
                           f"{cfg.get('peft_type') if isinstance(cfg, dict) else '?'}); harness evaluates LORA adapters")
    if not (adapter / WEIGHTS).is_file():
        raise HarnessError(f"{adapter}: {WEIGHTS} is missing; copy the adapter's weights next to {CONFIG}")
    return cfg


def base_spec(adapter: Path, cfg: dict[str, Any], base: str | None) -> str:
    """The base model spec: the user's ``base=``, else the recorded one (absolute, or relative to the adapter)."""
    spec = base or cfg.get("base_model_name_or_path")
    if not spec:
        raise HarnessError(f"{adapter / CONFIG}: no base_model_name_or_path; pass --model-args base=PATH")
    if not Path(spec).exists() and (adapter / spec).exists():
        return str(adapter / spec)
    if not Path(spec).exists() and re.fullmatch(r"[\w.-]+/[\w.-]+", spec):
        return f"hf:{spec}"  # a hub id, as PEFT records it: transformers resolves it (from its cache offline)
    return str(spec)


def load_peft(path: str, *, spec: str | None = None, device: str = "cpu", batch_size: int = 8,
              base: str | None = None, **options: Any) -> Any:
    from ..loading import resolve

    adapter = Path(path)
    cfg = read_config(adapter)
    bspec = base_spec(adapter, cfg, base)
    backend, bpath, bspec = resolve(bspec)
    if backend.name == "hf":
        from ..hf import HFLM

        hf_opts = {k: options[k] for k in ("dtype", "revision", "trust_remote_code") if k in options}
        model = HFLM(bpath, spec=spec or str(path), device=device, batch_size=batch_size, adapter=str(adapter),
                     **hf_opts)
    elif backend.name == "native":
        from .native import load_native

        model = load_native(bpath, spec=spec or str(path), device=device, batch_size=batch_size)
        apply_lora_merged(model.module, adapter, cfg)
    else:
        raise HarnessError(f"--model {path}: its base {bspec} uses the {backend.name!r} backend; "
                           "a PEFT adapter needs a native or hf base")
    import hashlib

    from ..fingerprint import fingerprint_files

    base_fp = model.info.fingerprint
    model.info.backend = "peft"
    model.info.extra = {**model.info.extra, "adapter": str(adapter), "base": bspec, "base_backend": backend.name,
                        "base_fingerprint": base_fp}
    both = f"{base_fp}+{fingerprint_files([adapter / WEIGHTS])}"
    model.info.fingerprint = hashlib.sha256(both.encode()).hexdigest()[:16]
    return model


def apply_lora_merged(module: Any, adapter: Path, cfg: dict[str, Any]) -> None:
    """Add ``scaling * B @ A`` to each adapted linear layer of a native module (harness's LoRA merge)."""
    import torch
    from safetensors.torch import load_file

    for key, ok in (("use_dora", False), ("bias", "none"), ("modules_to_save", None), ("rank_pattern", {}),
                    ("alpha_pattern", {})):
        if cfg.get(key, ok) not in (ok, None, [], {}):
            raise HarnessError(f"{adapter / CONFIG}: {key}={cfg[key]!r} is not supported on a native base; "
                               "use a transformers base (hf:PATH) with peft")
    r = int(cfg["r"])
    scaling = float(cfg["lora_alpha"]) / (math.sqrt(r) if cfg.get("use_rslora") else r)
    pairs: dict[str, dict[str, Any]] = {}
    for key, t in load_file(str(adapter / WEIGHTS)).items():
        m = KEY.match(key)
        if not m:
            raise HarnessError(f"{adapter / WEIGHTS}: tensor {key!r} is not a LoRA A/B weight of a linear layer")
        pairs.setdefault(m.group(1), {})[m.group(2)] = t
    with torch.no_grad():
        for name, ab in pairs.items():
            try:
                lin = module.get_submodule(name)
            except AttributeError:
                raise HarnessError(f"{adapter}: the adapter targets {name!r}, which this base model lacks; "
                                   "was it trained on another architecture?") from None
            delta = (ab["B"].float() @ ab["A"].float()) * scaling
            if tuple(delta.shape) != tuple(lin.weight.shape):
                raise HarnessError(f"{adapter}: LoRA update for {name!r} has shape {tuple(delta.shape)}, the layer "
                                   f"{tuple(lin.weight.shape)}; use the base model the adapter was trained on")
            lin.weight += delta.to(lin.weight.device, lin.weight.dtype)


@hookimpl
def register_models(register) -> None:
    register("peft", load_peft, detect=detect, description=DESCRIPTION)
