"""Public API for plug-in authors: models, benchmarks and requests."""
from .benchmark import Benchmark, BenchmarkConfig, Metric
from .context import RunContext
from .model import Model, ModelInfo
from .requests import GenerateRequest, Instance, LoglikelihoodRequest, LoglikelihoodResult, Request

__all__ = [
    "Benchmark", "BenchmarkConfig", "Metric", "RunContext", "Model", "ModelInfo", "GenerateRequest",
    "Instance", "LoglikelihoodRequest", "LoglikelihoodResult", "Request",
]
