"""OpenAI Evals' basic evals (Match, Includes, FuzzyMatch) from their registry YAML and samples.

A registry YAML maps ``<eval>: {id, metrics}`` and ``<eval>.<split>.<version>: {class, args:
{samples_jsonl}}``; ``samples_jsonl`` is read, as evals does, from ``<registry>/data/`` (the
directory above the YAML's ``evals/``) unless it names an existing file. Each sample is
``{"input": chat messages or text, "ideal": str | [str]}``. harness ships one small registry
(``tasks/openai_evals/``); ``--option openai_evals.registry=DIR_OR_YAML`` adds yours.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from harness.api import (
    Benchmark,
    BenchmarkConfig,
    GenerateRequest,
    HarnessError,
    Instance,
    Metric,
    did_you_mean,
    hookimpl,
)
from harness.api.data import bundled, read_jsonl, read_text, take

from .metrics import chat_to_text, f1_score, fuzzy_match, includes, match

CLASSES = {"evals.elsuite.basic.match:Match": "match", "evals.elsuite.basic.includes:Includes": "includes",
           "evals.elsuite.basic.fuzzy_match:FuzzyMatch": "fuzzy_match"}


def _registry_files(options: dict[str, Any]) -> list[Path]:
    root = Path(str(bundled("openai_evals", "registry", "evals")))
    files = sorted(root.glob("*.yaml"))
    for item in filter(None, str(options.get("registry") or "").split(os.pathsep)):
        p = Path(item).expanduser()
        if p.is_dir():
            files += sorted((p / "evals" if (p / "evals").is_dir() else p).glob("*.yaml"))
        elif p.is_file():
            files.append(p)
        else:
            raise HarnessError(f"--option openai_evals.registry={item}: no such file or directory")
    return files


def load_registry(options: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{eval name: {"kind", "samples", "args", "file"}}`` for every basic eval in the registries."""
    import yaml

    out: dict[str, dict[str, Any]] = {}
    for f in _registry_files(options):
        try:
            data = yaml.safe_load(read_text(f, "OpenAI Evals registry")) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            raise HarnessError(f"{f}{f':{mark.line + 1}' if mark else ''}: YAML syntax error; fix the file") from None
        for name, spec in data.items():
            if not isinstance(spec, dict) or "id" not in spec:
                continue
            impl = data.get(spec["id"])
            if not isinstance(impl, dict) or "class" not in impl:
                raise HarnessError(f"{f}: eval {name!r} has id {spec['id']!r}, but no `{spec['id']}: {{class: ...}}`")
            kind = CLASSES.get(impl["class"])
            if kind is None:
                continue  # model-graded and custom classes need evals' own code
            args = dict(impl.get("args") or {})
            if "samples_jsonl" not in args:
                raise HarnessError(f"{f}: {spec['id']}.args has no samples_jsonl")
            samples = Path(args["samples_jsonl"])
            if not samples.is_file():
                samples = f.resolve().parent.parent / "data" / args["samples_jsonl"]
            out[name] = {"kind": kind, "samples": samples, "args": args, "file": str(f), "id": spec["id"]}
    return out


class OpenAIEvals(Benchmark):
    name = "openai_evals"
    description = "OpenAI Evals basic evals (Match, Includes, FuzzyMatch) from a registry YAML + samples JSONL"
    metrics = (Metric("accuracy"), Metric("f1_score", "continuous"))
    instruction_following = True  # samples are chat prompts: each model gets its own format
    options = {"registry": "an OpenAI Evals registry dir (with evals/ and data/) or YAML file"}

    @property
    def subsets(self) -> list[str]:  # type: ignore[override]
        return sorted(load_registry({}))

    def resolve_subsets(self, names: list[str], options: dict[str, Any]) -> list[str]:
        known = load_registry(options)
        for n in names:
            if n not in known:
                raise HarnessError(f"--suite: no basic OpenAI eval {n!r}{did_you_mean(n, known)}; "
                                   "--option openai_evals.registry=DIR adds a registry")
        return names

    def instances(self, config: BenchmarkConfig):
        known = load_registry(config.options)
        for name in config.subsets or sorted(known):
            ev = known[name]
            rows = read_jsonl(ev["samples"], "OpenAI Evals samples", hint="each line: {\"input\": ..., \"ideal\": ...}")
            for line, sample in take(rows, config.limit):
                if not isinstance(sample, dict) or "input" not in sample or "ideal" not in sample:
                    raise HarnessError(f"{ev['samples']}:{line}: a sample needs 'input' and 'ideal'")
                ideal = sample["ideal"] if isinstance(sample["ideal"], list) else [sample["ideal"]]
                prompt = sample["input"] if isinstance(sample["input"], str) else chat_to_text(sample["input"])
                max_tokens = int(ev["args"].get("max_tokens", 100 if ev["kind"] == "fuzzy_match" else 256))
                yield Instance(f"{name}/{line}", name, {"kind": ev["kind"], "ideal": ideal,
                                                         "ignore_case": bool(ev["args"].get("ignore_case"))},
                               prompt, ideal, [GenerateRequest(prompt, max_tokens=max_tokens)])

    def process(self, instance: Instance, responses: list) -> dict[str, Any]:
        doc, sampled = instance.doc, responses[0]
        ideal = doc["ideal"]
        if doc["kind"] == "match":  # a chat API's message has no leading whitespace
            scores = {"accuracy": float(match(sampled.lstrip(), ideal))}
        elif doc["kind"] == "includes":
            scores = {"accuracy": float(includes(sampled, ideal, doc["ignore_case"]))}
        else:
            scores = {"accuracy": float(any(fuzzy_match(sampled, i) for i in ideal)),
                      "f1_score": f1_score(sampled, ideal)}
        return {"answer": sampled, "scores": scores}


@hookimpl
def register_benchmarks(register):
    register(OpenAIEvals())
