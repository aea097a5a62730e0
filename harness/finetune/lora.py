"""LoRA (Hu et al., 2021) for the native GPT-2 and Llama modules (and any nn.Linear model).

A frozen ``nn.Linear`` W is wrapped as ``y = W x + (alpha / r) * B (A x)`` with A
[r, in] (Kaiming-uniform, as the paper's reference code) and B [out, r] (zeros, so
training starts exactly at the base model). Only A and B train, which is what makes
CPU fine-tuning of a 135M model fit in minutes.

Adapters are saved on their own (a few MB) in two layouts side by side: PEFT's
(``adapter_config.json`` + ``adapter_model.safetensors``, tensors named
``base_model.model.<layer>.lora_A.weight``), so ``peft.PeftModel.from_pretrained(hf_base, dir)``
loads them, and harness's (``adapter.json`` with the prompt format and base fingerprint +
``adapter.safetensors``). Either is read back (older checkpoints have only harness's). They are merged into a plain module with :func:`merge_lora` (``W' = W + (alpha / r) B A``)
so a fine-tuned checkpoint loads with no LoRA code at all.
"""
from __future__ import annotations

import fnmatch
import json
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import HarnessError

ADAPTER_WEIGHTS = "adapter.safetensors"
ADAPTER_CONFIG = "adapter.json"
PEFT_WEIGHTS = "adapter_model.safetensors"
PEFT_CONFIG = "adapter_config.json"
PEFT_KEY = re.compile(r"^base_model\.model\.(.+)\.lora_([AB])(?:\.default)?\.weight$")
HEAD_NAMES = ("lm_head", "out_head", "head")
GROUPS = {"attn": ("attn",), "mlp": ("mlp", "feed_forward", "ff")}


@dataclass
class LoRAConfig:
    rank: int = 8
    alpha: float = 16.0
    targets: str = "all"  # all | attn | mlp | comma-separated layer names / globs
    layers: list[str] = field(default_factory=list)  # the module paths wrapped (filled by apply_lora)

    @property
    def scaling(self) -> float:
        return self.alpha / self.rank


class LoRALinear(nn.Module):
    """A frozen linear layer plus a trainable low-rank update."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float) -> None:
        super().__init__()
        self.base = base
        self.scaling = alpha / rank
        dev, dtype = base.weight.device, torch.float32
        self.lora_A = nn.Parameter(torch.empty(rank, base.in_features, device=dev, dtype=dtype))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, rank, device=dev, dtype=dtype))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        base.weight.requires_grad_(False)
        if base.bias is not None:
            base.bias.requires_grad_(False)

    @property
    def weight(self) -> torch.Tensor:  # code that reads ``.weight`` keeps working
        return self.base.weight

    @property
    def bias(self) -> torch.Tensor | None:
        return self.base.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        update = F.linear(F.linear(x.to(self.lora_A.dtype), self.lora_A), self.lora_B) * self.scaling
        return self.base(x) + update.to(x.dtype)

    def delta(self) -> torch.Tensor:
        return (self.lora_B @ self.lora_A) * self.scaling

    def merged(self) -> nn.Linear:
        out = nn.Linear(self.base.in_features, self.base.out_features, bias=self.base.bias is not None,
                        device=self.base.weight.device, dtype=self.base.weight.dtype)
        with torch.no_grad():
            out.weight.copy_((self.base.weight.float() + self.delta()).to(out.weight.dtype))
            if self.base.bias is not None:
                out.bias.copy_(self.base.bias)
        return out


def _tied_to_embedding(module: nn.Module, lin: nn.Linear) -> bool:
    return any(isinstance(m, nn.Embedding) and m.weight is lin.weight for m in module.modules())


def linear_layers(module: nn.Module) -> dict[str, nn.Linear]:
    """Every adaptable nn.Linear by path: the output head and embedding-tied layers excluded."""
    return {name: m for name, m in module.named_modules()
            if isinstance(m, nn.Linear) and name.split(".")[-1] not in HEAD_NAMES
            and not _tied_to_embedding(module, m)}


def select_layers(module: nn.Module, targets: str) -> list[str]:
    """Resolve ``--lora-targets`` to module paths; unknown names fail with the choices."""
    layers = linear_layers(module)
    chosen: list[str] = []
    for pat in [p.strip() for p in targets.split(",") if p.strip()] or ["all"]:
        if pat == "all":
            hits = list(layers)
        elif pat in GROUPS:
            hits = [n for n in layers if any(g in part for part in n.split(".")[:-1] for g in GROUPS[pat])]
        else:
            hits = [n for n in layers if fnmatch.fnmatch(n, pat) or n.split(".")[-1] == pat
                    or fnmatch.fnmatch(n.split(".")[-1], pat)]
        if not hits:
            names = sorted({n.split(".")[-1] for n in layers})
            raise HarnessError(f"--lora-targets {pat!r} matches no linear layer; this model has "
                               f"{', '.join(names)} (or use all, attn, mlp)")
        chosen += [h for h in hits if h not in chosen]
    return [n for n in layers if n in chosen]  # module order, whatever the pattern order


def _set_child(module: nn.Module, path: str, new: nn.Module) -> None:
    parent_path, _, child = path.rpartition(".")
    parent = module.get_submodule(parent_path) if parent_path else module
    setattr(parent, child, new)


def apply_lora(module: nn.Module, cfg: LoRAConfig) -> LoRAConfig:
    """Freeze ``module`` and wrap the selected layers; returns cfg with ``layers`` filled."""
    if cfg.rank < 1:
        raise HarnessError(f"--lora-rank must be a positive integer (got {cfg.rank})")
    layers = cfg.layers or select_layers(module, cfg.targets)
    for p in module.parameters():
        p.requires_grad_(False)
    for path in layers:
        lin = module.get_submodule(path)
        if not isinstance(lin, nn.Linear):
            raise HarnessError(f"adapter layer {path!r} is not a linear layer of this model; "
                               "was the adapter trained on a different architecture?")
        _set_child(module, path, LoRALinear(lin, cfg.rank, cfg.alpha))
    return LoRAConfig(rank=cfg.rank, alpha=cfg.alpha, targets=cfg.targets, layers=list(layers))


def lora_modules(module: nn.Module) -> dict[str, LoRALinear]:
    return {n: m for n, m in module.named_modules() if isinstance(m, LoRALinear)}


def lora_state_dict(module: nn.Module) -> dict[str, torch.Tensor]:
    """Adapter tensors keyed ``<layer path>.lora_A`` / ``.lora_B``."""
    out: dict[str, torch.Tensor] = {}
    for name, m in lora_modules(module).items():
        out[f"{name}.lora_A"] = m.lora_A.detach().clone().contiguous()
        out[f"{name}.lora_B"] = m.lora_B.detach().clone().contiguous()
    return out


def load_lora_state_dict(module: nn.Module, state: dict[str, torch.Tensor]) -> None:
    mods = lora_modules(module)
    want = {f"{n}.lora_{k}" for n in mods for k in "AB"}
    if set(state) != want:
        missing = sorted(want - set(state))[:3]
        extra = sorted(set(state) - want)[:3]
        raise HarnessError(f"adapter does not fit this model (missing {missing}, unexpected {extra}); "
                           "use the base model the adapter was trained on")
    with torch.no_grad():
        for n, m in mods.items():
            m.lora_A.copy_(state[f"{n}.lora_A"])
            m.lora_B.copy_(state[f"{n}.lora_B"])


def merge_lora(module: nn.Module) -> nn.Module:
    """Replace every LoRALinear by a plain nn.Linear holding ``W + scaling * B A`` (in place)."""
    for name, m in list(lora_modules(module).items()):
        _set_child(module, name, m.merged())
    return module


def save_adapter(module: nn.Module, cfg: LoRAConfig, out_dir: Path, meta: dict[str, Any]) -> None:
    """Write the adapter in PEFT's layout and harness's (see the module docstring)."""
    from safetensors.torch import save_file

    out_dir.mkdir(parents=True, exist_ok=True)
    state = lora_state_dict(module)
    save_file(state, str(out_dir / ADAPTER_WEIGHTS))
    save_file({f"base_model.model.{k}.weight": v for k, v in state.items()}, str(out_dir / PEFT_WEIGHTS),
              metadata={"format": "pt"})
    for name in (ADAPTER_WEIGHTS, PEFT_WEIGHTS):
        (out_dir / name).chmod(0o644)  # safetensors writes 0600
    (out_dir / ADAPTER_CONFIG).write_text(json.dumps({"lora": asdict(cfg), **meta}, indent=2) + "\n")
    base = (meta.get("base_model") or {}).get("spec") or ""
    mcfg = getattr(module, "config", None)
    arch = getattr(mcfg, "arch", None) or getattr(mcfg, "model_type", "")
    peft = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": cfg.rank, "lora_alpha": cfg.alpha,
            "target_modules": list(cfg.layers), "lora_dropout": 0.0, "bias": "none",
            "fan_in_fan_out": arch == "gpt2",  # transformers' GPT-2 stores these layers as Conv1D
            "base_model_name_or_path": base.split(":", 1)[1] if base.startswith(("native:", "hf:")) else base,
            "inference_mode": True, "init_lora_weights": True, "use_rslora": False, "use_dora": False,
            "modules_to_save": None, "layers_to_transform": None, "rank_pattern": {}, "alpha_pattern": {},
            "revision": None}
    (out_dir / PEFT_CONFIG).write_text(json.dumps(peft, indent=2) + "\n")


def find_adapter(path: str | Path) -> Path | None:
    """The adapter dir for ``path``: itself, or its ``adapter/`` subdir (a finetune output);
    harness's layout or PEFT's."""
    p = Path(path)
    for cand in (p, p / "adapter"):
        for conf, weights in ((ADAPTER_CONFIG, ADAPTER_WEIGHTS), (PEFT_CONFIG, PEFT_WEIGHTS)):
            if (cand / conf).is_file() and (cand / weights).is_file():
                return cand
    return None


def read_adapter(adapter_dir: Path) -> tuple[LoRAConfig, dict[str, Any], dict[str, torch.Tensor]]:
    """``(config, metadata, {"<layer>.lora_A": tensor, ...})`` from harness's layout, else PEFT's."""
    from safetensors.torch import load_file

    if not (adapter_dir / ADAPTER_CONFIG).is_file() and (adapter_dir / PEFT_CONFIG).is_file():
        return read_peft_adapter(adapter_dir)
    try:
        meta = json.loads((adapter_dir / ADAPTER_CONFIG).read_text())
        cfg = LoRAConfig(**meta.pop("lora"))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise HarnessError(f"{adapter_dir / ADAPTER_CONFIG}: not a harness adapter config ({e}); "
                           "re-run harness finetune with --lora-rank") from None
    return cfg, meta, load_file(str(adapter_dir / ADAPTER_WEIGHTS))


def read_peft_adapter(adapter_dir: Path) -> tuple[LoRAConfig, dict[str, Any], dict[str, torch.Tensor]]:
    """A PEFT LoRA adapter as harness's: plain LoRA on linear layers only (no DoRA, per-layer ranks,
    bias or extra trained modules); rsLoRA's ``alpha / sqrt(r)`` becomes an equivalent alpha."""
    from safetensors.torch import load_file

    file = adapter_dir / PEFT_CONFIG
    try:
        pc = json.loads(file.read_text())
        rank, alpha = int(pc["r"]), float(pc["lora_alpha"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise HarnessError(f"{file}: not a PEFT adapter config ({e}); save it with PeftModel.save_pretrained") from None
    if pc.get("peft_type", "LORA") != "LORA":
        raise HarnessError(f"{file}: peft_type {pc.get('peft_type')!r}; harness applies LORA adapters only")
    for key, ok in (("use_dora", False), ("bias", "none"), ("modules_to_save", None), ("rank_pattern", {}),
                    ("alpha_pattern", {})):
        if pc.get(key, ok) not in (ok, None, [], {}):
            raise HarnessError(f"{file}: {key}={pc[key]!r} is not supported by harness's LoRA; "
                               "load the model with the hf backend (peft) instead")
    if pc.get("use_rslora"):
        alpha = alpha * math.sqrt(rank)  # scaling alpha / sqrt(r) == (alpha * sqrt(r)) / r
    raw = load_file(str(adapter_dir / PEFT_WEIGHTS))
    tensors: dict[str, torch.Tensor] = {}
    for key, value in raw.items():
        m = PEFT_KEY.match(key)
        if not m:
            raise HarnessError(f"{adapter_dir / PEFT_WEIGHTS}: tensor {key!r} is not a LoRA A/B weight of a "
                               "linear layer; harness's LoRA cannot apply it")
        tensors[f"{m.group(1)}.lora_{m.group(2)}"] = value
    layers = sorted({k.rsplit(".", 1)[0] for k in tensors})
    meta = {"base_model": {"spec": pc.get("base_model_name_or_path") or ""}, "peft": True}
    return LoRAConfig(rank=rank, alpha=alpha, targets=",".join(layers), layers=layers), meta, tensors
