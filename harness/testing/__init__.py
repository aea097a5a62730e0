"""Test helpers for harness's own tests and for plug-in authors'.

- :class:`FakeModel`: a model-free :class:`harness.api.Model` whose answers are a hash of the
  request text. Deterministic, instant, no torch: test a benchmark's ``instances`` ->
  ``process`` -> ``aggregate`` round trip, or the engine, without a real model.
- :func:`check_benchmark`: runs a plug-in's benchmark through the contract the engine relies on
  (instances, requests, processing, aggregation) with fake models, failing with one clear message.
- Tiny randomly initialised models in every format the loaders read (``make_tiny_gpt2``,
  ``make_tiny_llama``, ...), so format handling is tested without downloading a real model.
  Each builder is deterministic in ``seed`` and takes well under a second. The tiny models use
  GPT-2's real tokenizer (vocab 50257), so any text round-trips.

Import-light: importing this module imports ``harness.api`` only; torch and the model code are
imported inside the functions that need them.
"""
from .fake import BenchmarkContractError, FakeModel, check_benchmark
from .tiny import (
    TINY_GPT2,
    TINY_LLAMA,
    gpt2_to_hf_state_dict,
    gpt2_to_pth_state_dict,
    make_tiny_gpt2,
    make_tiny_llama,
    tiny_gpt2_module,
    tiny_llama_module,
    torch_threads,
    write_hf_gpt2,
    write_hf_llama,
    write_pth,
)

__all__ = ['BenchmarkContractError', 'FakeModel', 'TINY_GPT2', 'TINY_LLAMA', 'check_benchmark', 'gpt2_to_hf_state_dict', 'gpt2_to_pth_state_dict', 'make_tiny_gpt2', 'make_tiny_llama', 'tiny_gpt2_module', 'tiny_llama_module', 'torch_threads', 'write_hf_gpt2', 'write_hf_llama', 'write_pth']
