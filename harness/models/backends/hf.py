"""``hf``: Hugging Face transformers ``AutoModelForCausalLM`` from a local dir or hub id."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ...api import hookimpl
from ..formats import detect_format

DESCRIPTION = "Hugging Face transformers AutoModelForCausalLM from a local dir or hub id (needs harness[hf])"


def detect(path: str) -> bool:
    return Path(path).exists() and detect_format(path) == "hf"


def load_hf(path: str, *, spec: str | None = None, device: str = "cpu", batch_size: int = 8,
            dtype: str = "float32", revision: str | None = None, trust_remote_code: bool = False,
            **_: Any) -> Any:
    """``--model-args dtype=bfloat16,revision=main,trust_remote_code=true`` reach transformers."""
    from ..hf import HFLM

    return HFLM(path, spec=spec, device=device, batch_size=batch_size, dtype=dtype, revision=revision,
                trust_remote_code=trust_remote_code)


@hookimpl
def register_models(register) -> None:
    register("hf", load_hf, detect=detect, description=DESCRIPTION)
