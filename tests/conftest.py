"""Shared fixtures. The model-free fake lives in harness.testing (plug-in authors use it too);
it is re-exported here for the tests that do ``from conftest import FakeModel``."""
from __future__ import annotations

import pytest

from harness.testing import FakeModel

__all__ = ["FakeModel"]


@pytest.fixture
def fake_models():
    return {"m": FakeModel("m", "model-salt"), "b": FakeModel("b", "base-salt")}
