"""LoRA (Hu et al., 2021) for the native GPT-2 and Llama modules (and any nn.Linear model).

A frozen ``nn.Linear`` W is wrapped as ``y = W x + (alpha / r) * B (A x)`` with A
[r, in] (Kaiming-uniform, as the paper's reference code) and B [out, r] (zeros, so
training starts exactly at the base model). Only A and B train, which is what makes
CPU fine-tuning of a 135M model fit in minutes.

Adapters are saved on their own (``adapter.safetensors`` + ``adapter.json``, a few MB)
and merged into a plain module with :func:`merge_lora` (``W' = W + (alpha / r) B A``)
so a fine-tuned checkpoint loads with no LoRA code at all.
"""
from __future__ import annotations

import fnmatch
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import HarnessError

ADAPTER_WEIGHTS = "adapter.safetensors"
ADAPTER_CONFIG = "adapter.json"
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
    """Write ``adapter.safetensors`` and ``adapter.json`` (LoRA config + base model + format)."""
    from safetensors.torch import save_file

    out_dir.mkdir(parents=True, exist_ok=True)
    save_file(lora_state_dict(module), str(out_dir / ADAPTER_WEIGHTS))
    (out_dir / ADAPTER_WEIGHTS).chmod(0o644)  # safetensors writes 0600
    (out_dir / ADAPTER_CONFIG).write_text(json.dumps({"lora": asdict(cfg), **meta}, indent=2) + "\n")


def find_adapter(path: str | Path) -> Path | None:
    """The adapter dir for ``path``: itself, or its ``adapter/`` subdir (a finetune output)."""
    p = Path(path)
    for cand in (p, p / "adapter"):
        if (cand / ADAPTER_CONFIG).is_file() and (cand / ADAPTER_WEIGHTS).is_file():
            return cand
    return None


def read_adapter(adapter_dir: Path) -> tuple[LoRAConfig, dict[str, Any], dict[str, torch.Tensor]]:
    from safetensors.torch import load_file

    try:
        meta = json.loads((adapter_dir / ADAPTER_CONFIG).read_text())
        cfg = LoRAConfig(**meta.pop("lora"))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise HarnessError(f"{adapter_dir / ADAPTER_CONFIG}: not a harness adapter config ({e}); "
                           "re-run harness finetune with --lora-rank") from None
    return cfg, meta, load_file(str(adapter_dir / ADAPTER_WEIGHTS))
