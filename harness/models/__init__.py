"""Model backends: one architecture a page (gpt2, llama), checkpoints, GGUF, tokenizers, the
token-level batching every local backend shares (:mod:`.tokenlm`), and :func:`load_model`, the
one way to get a model (:mod:`.loading`). Import-light: torch is imported by the backends."""
from .loading import DEFAULT_MODEL_NAME, detect_backend, load_model, split_spec

__all__ = ["DEFAULT_MODEL_NAME", "detect_backend", "load_model", "split_spec"]
