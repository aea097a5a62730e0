"""The installed wheel must work, not only the checkout: data and templates ship as package data."""
from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_contains_package_data_and_entry_points(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp_path), str(ROOT)], check=True, capture_output=True)
    wheel = next(tmp_path.glob("harness-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    must = [
        "harness/assets/gpt2/r50k_base.tiktoken",
        "harness_tasks/mmlu/LICENSE-hendrycks-test.txt",
        "harness_tasks/mmlu/full/professional_law_test.csv.gz",
        "harness_plugins/mmlu/__init__.py",
        "harness_plugins/squad/__init__.py",
        "harness_plugins/squad/metric.py",
        "harness_plugins/triviaqa/__init__.py",
        "harness_plugins/triviaqa/metric.py",
        "harness_plugins/humaneval/__init__.py",
        "harness_plugins/alpaca_eval/__init__.py",
        "harness_plugins/alpaca_eval/pairwise.py",
        "harness_tasks/alpaca_eval/judge_prompt.weighted_alpaca_eval_gpt4_turbo.json",
        "harness/prompts/templates/alpaca.jinja",
        "harness/prompts/templates/chatml.jinja",
        "harness_tasks/instructions/instruction-data.json",
        "harness_tasks/humaneval/HumanEval.jsonl.gz",
        "harness_tasks/squad/LICENSE.md",
    ]
    for name in must:
        assert name in names, f"{name} missing from the wheel"
    assert any(n.startswith("harness_reports/") and n.endswith((".html", ".jinja", ".j2")) for n in names)
    assert not any("tests/" in n for n in names)
    eps = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(eps).decode()
    assert "[harness]" in text and "mmlu = harness_plugins.mmlu" in text
    assert "harness = harness.cli:cli" in text


def test_cli_import_does_not_pull_heavy_libraries():
    code = ("import sys, harness.cli, harness.engine, harness.plugins; harness.plugins.load_registry(); "
            "heavy = [m for m in ('torch', 'datasets', 'lm_eval', 'transformers') if m in sys.modules]; "
            "print(heavy); sys.exit(1 if heavy else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
