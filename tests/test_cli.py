"""CLI bad input: one line, non-zero exit, no traceback; nothing needs a model."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from harness.cli import cli


def _run(*args):
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


@pytest.mark.parametrize("args, needle", [
    (["run", "--limit", "0"], "--limit must be a positive integer (got 0)"),
    (["run", "--limit", "-3"], "--limit must be a positive integer (got -3)"),
    (["run", "--limit", "squad=0"], "--limit squad must be a positive integer (got 0)"),
    (["run", "--limit", "triviaqa=5"], "'triviaqa' is not in --suite mmlu,squad"),
    (["run", "--limit", "lots"], "expected a number or BENCHMARK=N"),
    (["run", "--suite", "mmluu"], "unknown benchmark 'mmluu' (did you mean 'mmlu'?)"),
    (["run", "--suite", "mmlu:abstract_algebr"], "did you mean 'abstract_algebra'?"),
    (["run", "--data-dir", "mmlu"], "expected BENCHMARK=DIR"),
    (["run", "--option", "nodot=1"], "expected BENCHMARK.NAME=VALUE"),
    (["score", "squadd"], "did you mean 'squad'?"),
    (["score", "squad", "--bogus", "x"], "unknown option --bogus"),
    (["tasks", "mmlx"], "did you mean 'mmlu'?"),
])
def test_bad_input_is_one_line(args, needle):
    code, out = _run(*args)
    assert code == 2, out
    assert out.startswith("error: ") and needle in out, out
    assert out.strip().count("\n") == 0 and "Traceback" not in out


def test_unwritable_output_directory(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, out = _run("run", "--suite", "mmlu", "--out", str(blocker / "sub"))
    assert code == 2 and out.startswith(f"error: --out {blocker / 'sub'}: cannot write there"), out


def test_tasks_lists_subsets_and_options():
    code, out = _run("tasks", "mmlu")
    assert code == 0
    assert "abstract_algebra" in out and "world_religions" in out and "subsets (57)" in out
