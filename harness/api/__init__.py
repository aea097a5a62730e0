"""The public API: everything a plug-in imports from harness, and nothing else.

A benchmark plug-in subclasses :class:`Benchmark` and registers it through
:func:`hookimpl`-decorated ``register_benchmarks``; a model plug-in implements
:class:`Model` and registers a loader through ``register_models``. Data readers
(:mod:`harness.api.data`) and the ChatML codec (:mod:`harness.api.chat`) are here so a
plug-in never reaches into harness internals. ``harness.testing`` has a fake model
and ``check_benchmark`` for plug-in tests.
"""
from ..errors import HarnessError, did_you_mean
from ..hookspecs import hookimpl
from .benchmark import Benchmark, BenchmarkConfig, Metric
from .chat import chatml_to_messages, cut_at_stop, messages_to_chatml
from .context import CodeSandbox, RunContext, SandboxResult
from .data import iter_jsonl, read_json, read_jsonl, read_text
from .model import Model, ModelInfo
from .requests import GenerateRequest, Instance, LoglikelihoodRequest, LoglikelihoodResult, Request

__all__ = [
    "Benchmark", "BenchmarkConfig", "CodeSandbox", "GenerateRequest", "HarnessError", "Instance",
    "LoglikelihoodRequest", "LoglikelihoodResult", "Metric", "Model", "ModelInfo", "Request", "RunContext",
    "SandboxResult", "chatml_to_messages", "cut_at_stop", "did_you_mean", "hookimpl", "iter_jsonl",
    "messages_to_chatml", "read_json", "read_jsonl", "read_text",
]
