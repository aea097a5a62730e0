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
from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .api import (
    Benchmark,
    BenchmarkConfig,
    GenerateRequest,
    Instance,
    LoglikelihoodRequest,
    LoglikelihoodResult,
    Metric,
    Model,
    ModelInfo,
    RunContext,
)


class FakeModel(Model):
    """Deterministic stand-in for a model: scores are a hash of the text, so two fakes disagree.

    ``loglikelihood`` returns ``LoglikelihoodResult(logprob, False)`` with ``logprob`` in
    ``[-5, 0]`` from a hash of ``salt + context + "|" + continuation``; ``generate`` returns a
    short ``"answerN"`` string from a hash of ``salt + prompt``. ``calls`` records the size of
    every batch the model was asked (the engine asks each unique request once). ``info.fingerprint``
    is ``salt`` (``"0"`` without one). Subclass it to script answers::

        class AlwaysB(FakeModel):
            def generate(self, requests, progress=True):
                self.calls.append(len(requests))
                return ["B" for _ in requests]
    """

    def __init__(self, spec: str = "fake", salt: str = "") -> None:
        self.info = ModelInfo(spec=spec, backend="fake", arch="fake", fingerprint=salt or "0", n_params=1)
        self.salt = salt
        self.calls: list[int] = []

    def _h(self, text: str) -> float:
        return int(hashlib.sha256((self.salt + text).encode()).hexdigest()[:8], 16) / 0xFFFFFFFF

    def loglikelihood(self, requests: list[LoglikelihoodRequest], progress: bool = True) -> list[LoglikelihoodResult]:
        self.calls.append(len(requests))
        return [LoglikelihoodResult(-self._h(r.context + "|" + r.continuation) * 5, False) for r in requests]

    def generate(self, requests: list[GenerateRequest], progress: bool = True) -> list[str]:
        self.calls.append(len(requests))
        return [f"answer{int(self._h(r.prompt) * 3)}" for r in requests]



class BenchmarkContractError(AssertionError):
    """A benchmark breaks the plug-in contract (:func:`check_benchmark`); the message says how."""


def _fail(bench: Any, msg: str) -> None:
    raise BenchmarkContractError(f"{type(bench).__name__} ({getattr(bench, 'name', '') or '?'}): {msg}")


def check_benchmark(bench: Any, config: BenchmarkConfig | None = None, limit: int = 3,
                    model: Model | None = None, base: Model | None = None) -> dict[str, Any]:
    """Run ``bench`` through the contract the engine relies on, with fake models; return a summary.

    Checks the class attributes (``name``, ``metrics``, ``subsets``), that ``instances`` yields
    :class:`Instance` objects (unique ``doc_id``, a declared subset, at most ``limit`` per subset,
    requests that are ``LoglikelihoodRequest`` / ``GenerateRequest``), that ``process_batch`` (hence
    ``process``) returns one JSON-serialisable ``{"answer": str, "scores": {metric: float}}`` per
    instance with only declared metrics, and that ``aggregate`` returns floats for every declared
    metric; ``postprocess`` gets a model and a base. Raises :class:`BenchmarkContractError` (an
    ``AssertionError``, so pytest shows it) naming the benchmark and what to fix.
    """
    import math

    if not isinstance(bench, Benchmark):
        _fail(bench, "is not an instance of a harness.api.Benchmark subclass; register Benchmark instances")
    if not isinstance(bench.name, str) or not bench.name.strip():
        _fail(bench, "has no name; set the class attribute name = 'my_bench' (what --suite uses)")
    if any(c in bench.name for c in ",: "):
        _fail(bench, f"name {bench.name!r} contains ',', ':' or a space, which --suite cannot address")
    metrics = tuple(bench.metrics or ())
    if not metrics:
        _fail(bench, "declares no metrics; set metrics = (Metric('acc'),)")
    for m in metrics:
        if not isinstance(m, Metric):
            _fail(bench, f"metrics holds {m!r}, not a harness.api.Metric")
        if m.kind not in ("binary", "continuous"):
            _fail(bench, f"metric {m.name!r} has kind {m.kind!r}; use 'binary' or 'continuous'")
    declared = [m.name for m in metrics]
    if len(set(declared)) != len(declared):
        _fail(bench, f"metrics declares a name twice: {declared}")
    subsets = tuple(bench.subsets or ())
    if isinstance(bench.subsets, str) or not all(isinstance(s, str) for s in subsets):
        _fail(bench, f"subsets must be a tuple of strings, not {bench.subsets!r}")
    config = config or BenchmarkConfig(limit=limit)
    try:
        produced = bench.instances(config)
        instances = list(produced)
    except TypeError as e:
        _fail(bench, f"instances(config) did not return an iterable of Instance ({e})")
    if not instances:
        _fail(bench, f"instances(BenchmarkConfig(limit={config.limit})) yielded nothing")
    seen: dict[str, int] = {}
    per_subset: dict[str, int] = {}
    for inst in instances:
        if not isinstance(inst, Instance):
            _fail(bench, f"instances yielded a {type(inst).__name__}, not a harness.api.Instance")
        if not isinstance(inst.doc_id, str):
            _fail(bench, f"doc_id {inst.doc_id!r} is a {type(inst.doc_id).__name__}; use str(...)")
        seen[inst.doc_id] = seen.get(inst.doc_id, 0) + 1
        if seen[inst.doc_id] > 1:
            _fail(bench, f"doc_id {inst.doc_id!r} appears twice; doc ids must be unique")
        if subsets and inst.subset not in subsets:
            _fail(bench, f"instance {inst.doc_id!r} has subset {inst.subset!r}, not one of subsets {subsets}")
        per_subset[inst.subset] = per_subset.get(inst.subset, 0) + 1
        if config.limit is not None and per_subset[inst.subset] > config.limit:
            _fail(bench, f"yielded more than limit={config.limit} instances of subset {inst.subset!r}; "
                         "honour config.limit")
        if not isinstance(inst.requests, list) or not inst.requests:
            _fail(bench, f"instance {inst.doc_id!r} has no requests (want a non-empty list)")
        for r in inst.requests:
            if not isinstance(r, (LoglikelihoodRequest, GenerateRequest)):
                _fail(bench, f"instance {inst.doc_id!r} has a request of type {type(r).__name__}; "
                             "use LoglikelihoodRequest or GenerateRequest")
    records: list[dict[str, Any]] = [
        {"doc_id": i.doc_id, "subset": i.subset, "prompt": i.prompt, "target": i.target} for i in instances]
    for role, m in (("model", model or FakeModel()), ("base", base or FakeModel("fake-base", salt="base"))):
        outputs = _process(bench, instances, m)
        for rec, out in zip(records, outputs):
            rec[role] = out
        agg = bench.aggregate(outputs)
        if not isinstance(agg, dict):
            _fail(bench, f"aggregate returned a {type(agg).__name__}, not a dict of metric -> float")
        for name in declared:
            if name not in agg:
                _fail(bench, f"aggregate has no value for declared metric {name!r}")
        for name, v in agg.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                _fail(bench, f"aggregate value {name!r} is {v!r}; want a finite float")
        if role == "model":
            summary = {"n": len(instances), "requests": sum(len(i.requests) for i in instances), "aggregate": agg}
    pair = bench.postprocess(records, RunContext(judge_factory=lambda: FakeModel("fake-judge", salt="judge")))
    if pair is not None and not isinstance(pair, dict):
        _fail(bench, f"postprocess returned a {type(pair).__name__}; want None or a dict")
    summary["pairwise"] = pair
    return summary


def _process(bench: Any, instances: list[Instance], model: Model) -> list[dict[str, Any]]:
    """Answer every request as the engine does (one call per request kind), then ``process_batch``."""
    lls = [r for i in instances for r in i.requests if isinstance(r, LoglikelihoodRequest)]
    gens = [r for i in instances for r in i.requests if isinstance(r, GenerateRequest)]
    answers: dict[Any, Any] = dict(zip(lls, model.loglikelihood(lls, progress=False)))
    answers.update(zip(gens, model.generate(gens, progress=False)))
    responses = [[answers[r] for r in i.requests] for i in instances]
    outputs = bench.process_batch(instances, responses, RunContext())
    if not isinstance(outputs, list) or len(outputs) != len(instances):
        _fail(bench, f"process_batch returned {type(outputs).__name__} of length "
                     f"{len(outputs) if hasattr(outputs, '__len__') else '?'} for {len(instances)} instances; "
                     "want one dict per instance")
    declared = {m.name for m in bench.metrics}
    for inst, out in zip(instances, outputs):
        where = f"process({inst.doc_id!r})"
        if not isinstance(out, dict):
            _fail(bench, f"{where} returned a {type(out).__name__}; want {{'answer': str, 'scores': {{...}}}}")
        if "answer" not in out or "scores" not in out:
            _fail(bench, f"{where} returned keys {sorted(out)}; want at least 'answer' and 'scores'")
        if not isinstance(out["answer"], str):
            _fail(bench, f"{where}'s answer is a {type(out['answer']).__name__}; want str")
        if not isinstance(out["scores"], dict):
            _fail(bench, f"{where}'s scores is a {type(out['scores']).__name__}; want a dict metric -> float")
        for name, v in out["scores"].items():
            if name not in declared:
                _fail(bench, f"{where} scores metric {name!r}, which is not declared in metrics {sorted(declared)}")
            if not isinstance(v, float):
                _fail(bench, f"{where} score {name!r} is {v!r} ({type(v).__name__}); want a float, e.g. float(ok)")
        try:
            json.dumps(out)
        except (TypeError, ValueError) as e:
            _fail(bench, f"{where} returned something JSON cannot store in the samples file ({e})")
    return outputs

TINY_GPT2 = dict(vocab_size=50257, context_length=64, n_embd=32, n_layer=2, n_head=2, tie_word_embeddings=False)
TINY_LLAMA = dict(vocab_size=50257, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                  rope_theta=10000.0, rms_norm_eps=1e-5, tie_word_embeddings=False)


@contextmanager
def torch_threads(n: int = 1) -> Iterator[None]:
    """Run torch on ``n`` threads for a while. Tiny models gain nothing from intra-op threads,
    and on a busy machine OpenMP's spinning threads make each op many times slower."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def tiny_gpt2_module(seed: int = 0, **overrides: Any):
    """A random GPT-2 ``nn.Module`` (see ``TINY_GPT2``; ``overrides`` change fields)."""
    import torch

    from .models.gpt2 import GPT2, GPT2Config

    torch.manual_seed(seed)
    module = GPT2(GPT2Config(**{**TINY_GPT2, **overrides})).eval()
    _peaked(module)
    return module


def tiny_llama_module(seed: int = 0, **overrides: Any):
    """A random Llama ``nn.Module`` with GQA (see ``TINY_LLAMA``)."""
    import torch

    from .models.llama import Llama, LlamaConfig

    torch.manual_seed(seed)
    module = Llama(LlamaConfig(**{**TINY_LLAMA, **overrides})).eval()
    _peaked(module)
    return module


def _peaked(module) -> None:
    """An untied head with larger weights than GPT-2's 0.02 init: next-token distributions
    get peaked (entropy ~7 nats) so greedy ties are implausible and different sampling
    seeds give different text. (A tied head would just repeat the last token.)"""
    import torch

    if not module.config.tie_word_embeddings:
        with torch.no_grad():
            module.lm_head.weight.normal_(0.0, 0.5)


def make_tiny_gpt2(path: str | Path, fmt: str = "harness", seed: int = 0, **overrides: Any) -> Path:
    """Write a tiny random GPT-2 as a harness dir, a Hugging Face dir (``"hf"``, with GPT-2
    tokenizer files so ``AutoTokenizer`` loads it) or an LLMs-from-scratch ``"pth"``.

    For ``"pth"`` a ``.pth`` path is used as is, a dir gets ``model.pth``; a sidecar
    ``.json`` holds ``n_heads`` (tiny sizes are not in GPT-2's size table). Same
    ``seed`` and overrides -> same weights in every format. Returns the loadable path.
    """
    from .models.checkpoint import save_checkpoint
    from .models.tokenizer import gpt2_tokenizer

    module = tiny_gpt2_module(seed, **overrides)
    path = Path(path)
    if fmt == "harness":
        return save_checkpoint(module, module.config, path, gpt2_tokenizer(), {"prompt_format": None})
    if fmt == "hf":
        return write_hf_gpt2(module, path)
    if fmt == "pth":
        return write_pth(module, path if path.suffix == ".pth" else path / "model.pth")
    raise ValueError(f"fmt must be 'harness', 'hf' or 'pth', not {fmt!r}")


def make_tiny_llama(path: str | Path, seed: int = 0, fmt: str = "harness", **overrides: Any) -> Path:
    """Write a tiny random Llama (GQA, RoPE, SwiGLU; GPT-2 tokenizer) as a harness dir or,
    with ``fmt="hf"``, a Hugging Face ``LlamaForCausalLM`` dir (for the hf backend)."""
    from .models.checkpoint import save_checkpoint
    from .models.tokenizer import gpt2_tokenizer

    module = tiny_llama_module(seed, **overrides)
    if fmt == "hf":
        return write_hf_llama(module, Path(path))
    if fmt != "harness":
        raise ValueError(f"fmt must be 'harness' or 'hf', not {fmt!r}")
    return save_checkpoint(module, module.config, Path(path), gpt2_tokenizer(), {"prompt_format": None})


def write_hf_llama(module, out: Path) -> Path:
    from safetensors.torch import save_file

    cfg = module.config
    out.mkdir(parents=True, exist_ok=True)
    sd = {k: v.detach().clone().contiguous() for k, v in module.state_dict().items()}
    if cfg.tie_word_embeddings:
        sd.pop("lm_head.weight")
    save_file(sd, str(out / "model.safetensors"), metadata={"format": "pt"})
    hf = {k: v for k, v in cfg.to_dict().items() if k != "arch" and v is not None}
    hf.update(model_type="llama", architectures=["LlamaForCausalLM"], bos_token_id=50256, eos_token_id=50256)
    (out / "config.json").write_text(json.dumps(hf, indent=2))
    _write_gpt2_tokenizer_files(out, cfg.context_length)
    return out


def _write_gpt2_tokenizer_files(out: Path, max_length: int) -> None:
    """vocab.json + merges.txt + tokenizer_config.json: what ``AutoTokenizer`` reads for GPT-2."""
    from .models.tokenizer import ASSETS

    shutil.copyfile(ASSETS / "encoder.json", out / "vocab.json")
    shutil.copyfile(ASSETS / "vocab.bpe", out / "merges.txt")
    tok = {"tokenizer_class": "GPT2Tokenizer", "model_max_length": max_length,
           "bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>",
           "add_prefix_space": False}
    (out / "tokenizer_config.json").write_text(json.dumps(tok, indent=2))


def gpt2_to_hf_state_dict(module) -> dict:
    """Our GPT-2 names -> ``GPT2LMHeadModel`` names (Conv1D weights are transposed)."""
    from .models.checkpoint import CONV1D

    sd = {k: v.detach().clone() for k, v in module.state_dict().items()}
    if module.config.tie_word_embeddings:
        sd.pop("lm_head.weight")
    return {k: (v.t().contiguous() if CONV1D.search(k) else v) for k, v in sd.items()}


def write_hf_gpt2(module, out: Path) -> Path:
    from safetensors.torch import save_file

    cfg = module.config
    if not cfg.qkv_bias:
        raise ValueError("Hugging Face GPT-2 always has a qkv bias")
    out.mkdir(parents=True, exist_ok=True)
    save_file(gpt2_to_hf_state_dict(module), str(out / "model.safetensors"), metadata={"format": "pt"})
    hf = {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "vocab_size": cfg.vocab_size,
          "n_positions": cfg.context_length, "n_embd": cfg.n_embd, "n_layer": cfg.n_layer,
          "n_head": cfg.n_head, "layer_norm_epsilon": cfg.layer_norm_eps, "activation_function": "gelu_new",
          "tie_word_embeddings": cfg.tie_word_embeddings, "bos_token_id": 50256, "eos_token_id": 50256,
          "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0}
    (out / "config.json").write_text(json.dumps(hf, indent=2))
    _write_gpt2_tokenizer_files(out, cfg.context_length)
    return out


def gpt2_to_pth_state_dict(module) -> dict:
    """Our GPT-2 -> an LLMs-from-scratch ``GPTModel`` state dict (the book's key names)."""
    import torch

    cfg = module.config
    sd = module.state_dict()
    C = cfg.n_embd
    out = {"tok_emb.weight": sd["transformer.wte.weight"], "pos_emb.weight": sd["transformer.wpe.weight"]}
    for i in range(cfg.n_layer):
        s, d = f"transformer.h.{i}.", f"trf_blocks.{i}."
        for n, w in zip(("query", "key", "value"), sd[s + "attn.c_attn.weight"].split(C, dim=0)):
            out[f"{d}att.W_{n}.weight"] = w
        if cfg.qkv_bias:
            for n, b in zip(("query", "key", "value"), sd[s + "attn.c_attn.bias"].split(C)):
                out[f"{d}att.W_{n}.bias"] = b
        for src, dst in (("attn.c_proj", "att.out_proj"), ("mlp.c_fc", "ff.layers.0"), ("mlp.c_proj", "ff.layers.2")):
            out[f"{d}{dst}.weight"], out[f"{d}{dst}.bias"] = sd[f"{s}{src}.weight"], sd[f"{s}{src}.bias"]
        for src, dst in (("ln_1", "norm1"), ("ln_2", "norm2")):
            out[f"{d}{dst}.scale"], out[f"{d}{dst}.shift"] = sd[f"{s}{src}.weight"], sd[f"{s}{src}.bias"]
        T = cfg.context_length
        out[f"{d}att.mask"] = torch.triu(torch.ones(T, T), diagonal=1)  # the book's persistent buffer
    out["final_norm.scale"], out["final_norm.shift"] = sd["transformer.ln_f.weight"], sd["transformer.ln_f.bias"]
    out["out_head.weight"] = sd["lm_head.weight"]
    return {k: v.detach().clone().contiguous() for k, v in out.items()}


def write_pth(module, out: Path, sidecar: bool = True) -> Path:
    import torch

    cfg = module.config
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(gpt2_to_pth_state_dict(module), str(out))
    if sidecar:  # the book's GPT_CONFIG dict
        book = {"vocab_size": cfg.vocab_size, "context_length": cfg.context_length, "emb_dim": cfg.n_embd,
                "n_heads": cfg.n_head, "n_layers": cfg.n_layer, "drop_rate": 0.0, "qkv_bias": cfg.qkv_bias}
        out.with_suffix(".json").write_text(json.dumps(book, indent=2))
    return out
