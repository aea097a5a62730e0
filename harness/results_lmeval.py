"""A run in lm-eval's output layout, beside harness's own: ``OUT/lm-eval/results.json`` and
``OUT/lm-eval/samples_<task>.jsonl`` (the base model's in ``OUT/lm-eval/base/``).

Dashboards and scripts written for lm-eval (``results[task]["acc,none"]``,
``"acc_stderr,none"``, ``configs``, ``n-shot``, ``versions``, the samples' ``doc`` /
``arguments`` / ``resps`` / ``filtered_resps``) then read every harness run, harness's own
benchmarks included: their metrics are named ``<metric>,none`` and each subset of a benchmark
is a task ``<benchmark>_<subset>`` in the group ``<benchmark>``. lm-eval tasks run through
harness keep their own names, configs, filters and versions.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from .files import atomic_write_json, atomic_write_text

LMEVAL_BENCH = "lm-eval"


def _key(metric: str) -> tuple[str, str]:
    name, _, flt = metric.partition(",")
    return name, flt or "none"


def _metrics(block: dict[str, Any], role: str, alias: str) -> dict[str, Any]:
    out: dict[str, Any] = {"alias": alias}
    for metric, entry in (block or {}).items():
        summary = entry.get(role) or {}
        if summary.get("value") is None:
            continue
        name, flt = _key(metric)
        out[f"{name},{flt}"] = summary["value"]
        se = summary.get("stderr")
        out[f"{name}_stderr,{flt}"] = se if se is not None else "N/A"
    return out


def _hash(x: Any) -> str:
    return hashlib.sha256(str(x).encode("utf-8")).hexdigest()


def _sample(rec: dict[str, Any], role: str, doc_id: int) -> list[dict[str, Any]]:
    """One record as lm-eval's sample line(s): one per filter for lm-eval tasks."""
    out = rec.get(role) or {}
    lm = out.get("lm_eval")
    if lm:
        lines = []
        for flt, filtered in (lm.get("filtered_resps") or {"none": []}).items():
            scores = {_key(k)[0]: v for k, v in out.get("scores", {}).items() if _key(k)[1] == flt}
            scores.update({_key(k)[0]: v for k, v in out.get("items", {}).items() if _key(k)[1] == flt})
            args = {f"gen_args_{i}": {f"arg_{j}": a for j, a in enumerate(arg if isinstance(arg, list) else [arg])}
                    for i, arg in enumerate(lm.get("arguments", []))}
            first = (lm.get("arguments") or [[""]])[0]
            lines.append({"doc_id": lm["doc_id"], "doc": lm["doc"], "target": rec.get("target"), "arguments": args,
                          "resps": lm.get("resps"), "filtered_resps": filtered, "filter": flt,
                          "metrics": sorted(scores), "doc_hash": _hash(json.dumps(lm["doc"], sort_keys=True)),
                          "prompt_hash": _hash(first[0] if isinstance(first, list) and first else first),
                          "target_hash": _hash(rec.get("target")), **scores})
        return lines
    scores = dict(out.get("scores", {}))
    answer = out.get("answer", "")
    return [{"doc_id": doc_id, "doc": {"harness_doc_id": rec.get("doc_id"), "prompt": rec.get("prompt"),
                                       "target": rec.get("target")},
             "target": rec.get("target"), "arguments": {"gen_args_0": {"arg_0": rec.get("prompt")}},
             "resps": [[answer]], "filtered_resps": [answer], "filter": "none", "metrics": sorted(scores),
             "doc_hash": _hash(rec.get("doc_id")), "prompt_hash": _hash(rec.get("prompt")),
             "target_hash": _hash(rec.get("target")), **scores}]


def _layout(results: dict[str, Any], records: dict[str, list[dict]], benchmarks: dict[str, Any],
            role: str) -> tuple[dict[str, Any], dict[str, list[dict]]]:
    """(lm-eval's results dict, {task: sample lines}) for one model."""
    doc: dict[str, Any] = {"results": {}, "groups": {}, "group_subtasks": {}, "configs": {}, "versions": {},
                           "n-shot": {}, "higher_is_better": {}, "n-samples": {}}
    samples: dict[str, list[dict]] = {}
    for name, entry in results.get("benchmarks", {}).items():
        recs = records.get(name) or []
        if entry.get("error") or not recs or not all(role in r for r in recs):
            continue
        bench = benchmarks.get(name)
        subsets = entry.get("subsets") or {}
        is_lmeval = name == LMEVAL_BENCH
        info = bench.task_info() if is_lmeval and hasattr(bench, "task_info") else {}
        if is_lmeval or not subsets:
            tasks = {(s if is_lmeval else name): (s, blk) for s, blk in
                     (subsets.items() if subsets else [(name, {"n": entry.get("n"), "metrics": entry.get("metrics")})])}
        else:
            tasks = {f"{name}_{s}": (s, blk) for s, blk in subsets.items()}
            doc["groups"][name] = _metrics(entry.get("metrics", {}), role, name)
            doc["group_subtasks"][name] = list(tasks)
            doc["results"][name] = doc["groups"][name]
        for task, (subset, blk) in tasks.items():
            doc["results"][task] = _metrics(blk.get("metrics", {}), role, task if is_lmeval or task == name
                                            else f" - {subset}")
            doc["group_subtasks"].setdefault(task, [])
            doc["configs"][task] = info.get("configs", {}).get(task) or {
                "task": task, "harness_benchmark": name, "harness_subset": subset,
                "harness_config": entry.get("config", {}), "description": entry.get("description", "")}
            doc["versions"][task] = info.get("versions", {}).get(task, entry.get("version"))
            nshot = (entry.get("config") or {}).get("num_fewshot")
            doc["n-shot"][task] = info.get("n-shot", {}).get(task, nshot or getattr(bench, "default_num_fewshot", 0))
            doc["higher_is_better"][task] = info.get("higher_is_better", {}).get(task) or {
                _key(m)[0]: e.get("higher_is_better", True) for m, e in (blk.get("metrics") or {}).items()}
            sub = [r for r in recs if is_lmeval and r.get("subset") == subset or not is_lmeval and
                   (not subsets or r.get("subset") == subset)]
            doc["n-samples"][task] = {"original": len(sub), "effective": len(sub)}
            samples[task] = [line for i, r in enumerate(sub) for line in _sample(r, role, i)]
    if not doc["groups"]:
        del doc["groups"]
    model = (results.get("models") or {}).get(role) or {}
    cfg = results.get("config", {})
    doc["config"] = {"model": "harness", "model_args": f"model={model.get('spec') or ''}",
                     "batch_size": cfg.get("batch_size"), "device": cfg.get("device"), "limit": cfg.get("limit"),
                     "random_seed": cfg.get("seed"), "bootstrap_iters": 0}
    doc.update({"model_name": model.get("spec") or "", "model_name_sanitized": str(model.get("spec") or "")
                .replace("/", "__"), "date": results.get("created"), "harness_version": results.get("harness_version"),
                "lm_eval_version": (results.get("versions") or {}).get("lm_eval", ""),
                "total_evaluation_time_seconds": str((results.get("timing") or {}).get("total_s", ""))})
    return doc, samples


def write_lmeval_layout(out: Path, results: dict[str, Any], records: dict[str, list[dict]],
                        benchmarks: dict[str, Any]) -> Path:
    """Write ``out/lm-eval/`` (and ``out/lm-eval/base/`` with a base model); returns the directory."""
    root = Path(out) / "lm-eval"
    for role, where in (("model", root), ("base", root / "base")):
        if role == "base" and not (results.get("models") or {}).get("base"):
            continue
        doc, samples = _layout(results, records, benchmarks, role)
        for task, lines in samples.items():
            atomic_write_text(where / f"samples_{task}.jsonl",
                              "".join(json.dumps(x, ensure_ascii=False, default=str) + "\n" for x in lines))
        atomic_write_json(where / "results.json", doc)
    return root
