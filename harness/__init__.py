"""harness: instruction-tune GPT-style models and evaluate them against their base.

Kept import-light on purpose: ``harness --help`` must not import torch.
"""
from .hookspecs import hookimpl

__version__ = "0.1.0"
__all__ = ["hookimpl", "__version__"]
