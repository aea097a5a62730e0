"""Shared fixtures. Model-free fakes live here so engine tests need no torch model."""
from __future__ import annotations

import hashlib

import pytest

from harness.api import LoglikelihoodResult, Model, ModelInfo


class FakeModel(Model):
    """Deterministic stand-in: scores are a hash of the text, so two fakes disagree."""

    def __init__(self, spec: str = "fake", salt: str = "") -> None:
        self.info = ModelInfo(spec=spec, backend="fake", arch="fake", fingerprint=salt or "0", n_params=1)
        self.salt = salt
        self.calls: list[int] = []

    def _h(self, text: str) -> float:
        return int(hashlib.sha256((self.salt + text).encode()).hexdigest()[:8], 16) / 0xFFFFFFFF

    def loglikelihood(self, requests, progress=True):
        self.calls.append(len(requests))
        return [LoglikelihoodResult(-self._h(r.context + "|" + r.continuation) * 5, False) for r in requests]

    def generate(self, requests, progress=True):
        self.calls.append(len(requests))
        return [f"answer{int(self._h(r.prompt) * 3)}" for r in requests]


@pytest.fixture
def fake_models():
    return {"m": FakeModel("m", "model-salt"), "b": FakeModel("b", "base-salt")}
