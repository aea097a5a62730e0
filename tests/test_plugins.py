"""The plug-in system: entry points, a plug-ins dir, failures reported by name."""
from __future__ import annotations

import json
import textwrap
from importlib import metadata

import pytest
from click.testing import CliRunner

from harness.cli import cli
from harness.errors import HarnessError
from harness.plugins import load_registry

BUILTINS = {"mmlu", "squad"}


def _installed(dist: str) -> bool:
    try:
        metadata.distribution(dist)
        return True
    except metadata.PackageNotFoundError:
        return False


def test_builtins_are_registered_through_entry_points():
    eps = {ep.name: ep for ep in metadata.entry_points(group="harness")}
    assert BUILTINS <= set(eps), "the built-in benchmarks must be entry points like a third party's"
    registry = load_registry()
    for name in BUILTINS:
        assert registry.plugins[name].error is None, registry.plugins[name].error
        assert registry.plugins[name].distribution == "harness"
    assert {"mmlu", "squad", "squad_v2"} <= set(registry.benchmarks)


def test_third_party_packages_installed_for_the_tests():
    # ./install.sh test installs these two packages from tests/plugin_pkgs.
    assert _installed("harness-example-plugin") and _installed("harness-broken-plugin"), \
        "run ./install.sh test: it installs the example plug-in packages"


@pytest.mark.skipif(not _installed("harness-example-plugin"), reason="example plug-in not installed")
def test_third_party_plugin_listed_and_broken_one_reported():
    result = CliRunner().invoke(cli, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    listing = {p["name"]: p for p in json.loads(result.stdout)}
    assert listing["example"]["benchmarks"] == ["example_mc"]
    assert listing["example"]["version"] == "0.3.1"
    assert listing["example"]["error"] is None
    assert "harness_dependency_that_does_not_exist" in listing["broken"]["error"]
    text = CliRunner().invoke(cli, ["plugins"]).output
    assert "FAILED: ModuleNotFoundError" in text and "example_mc" in text


@pytest.mark.skipif(not _installed("harness-broken-plugin"), reason="broken plug-in not installed")
def test_strict_mode_turns_a_failure_into_an_error(monkeypatch):
    monkeypatch.setenv("HARNESS_STRICT_PLUGINS", "1")
    with pytest.raises(HarnessError, match="broken"):
        load_registry()
    result = CliRunner().invoke(cli, ["plugins"])
    assert result.exit_code == 2 and result.output.startswith("error: plug-in 'broken'")


def test_plugins_dir_loads_modules_and_reports_a_raising_hook(tmp_path):
    (tmp_path / "good.py").write_text(textwrap.dedent("""
        import harness
        from harness.api import Benchmark, Metric

        class B(Benchmark):
            name = "local_bench"
            metrics = (Metric("acc"),)
            def instances(self, config):
                return []
            def process(self, instance, responses):
                return {}

        @harness.hookimpl
        def register_benchmarks(register):
            register(B())
    """))
    (tmp_path / "raises.py").write_text(textwrap.dedent("""
        import harness

        @harness.hookimpl
        def register_benchmarks(register):
            raise RuntimeError("boom in hook")
    """))
    registry = load_registry(tmp_path)
    assert "local_bench" in registry.benchmarks
    assert registry.benchmark_plugin["local_bench"] == "good"
    assert registry.plugins["raises"].error == "RuntimeError: boom in hook"
    assert "mmlu" in registry.benchmarks  # the others still load


def test_duplicate_benchmark_name_is_reported(tmp_path):
    (tmp_path / "dupe.py").write_text(textwrap.dedent("""
        import harness
        from harness_plugins.mmlu import MMLU

        @harness.hookimpl
        def register_benchmarks(register):
            register(MMLU())
    """))
    registry = load_registry(tmp_path)
    assert "already registered by plug-in 'mmlu'" in registry.plugins["dupe"].error


def test_missing_plugins_dir_is_a_one_line_error(tmp_path):
    result = CliRunner().invoke(cli, ["--plugins-dir", str(tmp_path / "nope"), "plugins"])
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0 and "not a directory" in result.output
