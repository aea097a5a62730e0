"""MMLU 5-shot scoring speed: harness vs lm-eval's own hf backend, same model, same documents.

    python bench/bench_mmlu.py                                   # 4 subjects x 25 questions
    python bench/bench_mmlu.py --subjects marketing,anatomy --limit 3

Both sides score the embedded default model (SmolLM2-135M-Instruct, the Q4_1 GGUF dequantised to
float32): harness through its native backend, lm-eval through ``transformers`` (``gguf_file=``)
and ``lm_eval.simple_evaluate`` on local task YAMLs that reproduce lm-eval's ``mmlu`` task
(description, ``doc_to_text``, ``first_n`` 5-shot from dev) over JSONL written from the bundled
CSVs (the whole bundled test split). Model loading is left out of both timings. transformers' GGUF tokenizer lacks SmolLM2's
digit split (tests/test_default_model.py), so the reference gets the real pre-tokenizer back.
harness runs twice: with the prefix cache (default) and with ``prefix_cache`` off.
"""
from __future__ import annotations

import argparse
import copy
import json
import tempfile
import time
from pathlib import Path

import torch

DEFAULT_SUBJECTS = "abstract_algebra,anatomy,marketing,world_religions"
TASKS = Path(__file__).resolve().parents[1] / "tasks" / "mmlu"


def write_tasks(subjects: list[str], root: Path) -> list[str]:
    """One lm-eval task per subject (few-shot examples are the subject's own first 5 dev rows)."""
    from harness.api.data import read_text
    from harness_plugins.mmlu import parse_csv

    names = []
    for s in subjects:
        files = {}
        for split in ("test", "dev"):
            src = TASKS / "full" / f"{s}_test.csv.gz" if split == "test" else TASKS / "dev" / f"{s}_dev.csv"
            docs = parse_csv(read_text(src), str(src), s)
            files[split] = str(root / f"{s}_{split}.jsonl")
            Path(files[split]).write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
        cfg = {  # lm-eval's mmlu/default/_default_template_yaml + the subject yaml, as JSON (valid YAML)
            "task": f"bench_mmlu_{s}", "dataset_path": "json", "dataset_kwargs": {"data_files": files},
            "test_split": "test", "fewshot_split": "dev", "fewshot_config": {"sampler": "first_n"},
            "num_fewshot": 5, "output_type": "multiple_choice",
            "doc_to_text": "{{question.strip()}}\nA. {{choices[0]}}\nB. {{choices[1]}}\nC. {{choices[2]}}"
                           "\nD. {{choices[3]}}\nAnswer:",
            "doc_to_choice": ["A", "B", "C", "D"], "doc_to_target": "answer",
            "description": f"The following are multiple choice questions (with answers) about "
                           f"{s.replace('_', ' ')}.\n\n",
            "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}],
        }
        (root / f"bench_mmlu_{s}.yaml").write_text(json.dumps(cfg, indent=1), encoding="utf-8")
        names.append(cfg["task"])
    return names


def reference_lm(path: Path, batch_size: int):
    """lm-eval's HFLM over transformers' GGUF loader (float32), with SmolLM2's digit pre-tokenizer."""
    from lm_eval.models.huggingface import HFLM
    from tokenizers import pre_tokenizers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    backend = copy.deepcopy(tok.backend_tokenizer)
    backend.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                     pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    tok._tokenizer = backend
    try:
        model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
    except ValueError as e:  # some transformers versions insist on accelerate for GGUF
        if "accelerate" not in str(e):
            raise
        from transformers import LlamaConfig, LlamaForCausalLM
        from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

        cfg = load_gguf_checkpoint(str(path))["config"]
        model = LlamaForCausalLM(LlamaConfig(**{k: v for k, v in cfg.items() if k != "model_type"})).float()
        tensors = load_gguf_checkpoint(str(path), return_tensors=True, model_to_load=model)["tensors"]
        model.load_state_dict(tensors, strict=False)
        model.tie_weights()
    return HFLM(pretrained=model.eval(), tokenizer=tok, batch_size=batch_size, device="cpu")


def run_harness(lm, subjects: list[str], limit: int, cache: bool) -> tuple[float, list[bool], list[float]]:
    from harness.api import BenchmarkConfig
    from harness_plugins.mmlu import MMLU

    insts = list(MMLU().instances(BenchmarkConfig(subsets=subjects, limit=limit, num_fewshot=5)))
    reqs = [r for i in insts for r in i.requests]
    lm.prefix_cache = cache
    lm._last_root = None  # no few-shot block left over from the previous run
    start = time.perf_counter()
    res = lm.loglikelihood(reqs, progress=False)
    secs = time.perf_counter() - start
    lps = [r.logprob for r in res]
    right = [max(range(4), key=lambda k: lps[4 * n + k]) == i.doc["answer"] for n, i in enumerate(insts)]
    return secs, right, lps


def run_lm_eval(ref, tasks: list[str], root: Path, limit: int) -> tuple[float, list[bool], list[float]]:
    import lm_eval
    from lm_eval.tasks import TaskManager

    tm = TaskManager(include_path=str(root), include_defaults=False)
    start = time.perf_counter()
    out = lm_eval.simple_evaluate(model=ref, tasks=tasks, task_manager=tm, num_fewshot=5, limit=limit,
                                  log_samples=True, bootstrap_iters=0)
    secs = time.perf_counter() - start
    right, lps = [], []
    for t in tasks:  # subjects in the given order, documents in file order (as harness)
        for s in sorted(out["samples"][t], key=lambda s: s["doc_id"]):
            right.append(bool(s["acc"]))
            lps += [float(r[0][0]) for r in s["resps"]]
    return secs, right, lps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subjects", default=DEFAULT_SUBJECTS)
    ap.add_argument("--limit", type=int, default=25, help="questions per subject (the issue's setup: 4 x 25)")
    ap.add_argument("--batch-size", type=int, default=1, help="lm-eval's batch size (harness: one sequence/forward)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from harness.models import load_model
    from harness.models.default import default_model_path

    subjects = sorted(args.subjects.split(","))  # the order MMLU yields them in, so both lists pair up
    lm = load_model(None)
    ref = reference_lm(default_model_path(), args.batch_size)
    with tempfile.TemporaryDirectory() as tmp:
        tasks = write_tasks(subjects, Path(tmp))
        t_ref, r_ref, lp_ref = run_lm_eval(ref, tasks, Path(tmp), args.limit)
    t_on, r_on, lp_on = run_harness(lm, subjects, args.limit, cache=True)
    t_off, r_off, lp_off = run_harness(lm, subjects, args.limit, cache=False)
    n = len(r_on)
    acc = {k: sum(v) / len(v) for k, v in (("lm-eval", r_ref), ("harness", r_on), ("harness-nocache", r_off))}
    print(f"{n} questions ({len(subjects)} subjects x {args.limit}), 5-shot, torch threads {torch.get_num_threads()}")
    print(f"lm-eval hf backend (batch {args.batch_size}): {t_ref:8.1f} s   acc {acc['lm-eval']:.4f}")
    print(f"harness, prefix cache:         {t_on:8.1f} s   acc {acc['harness']:.4f}   speed-up {t_ref / t_on:.2f}x")
    print(f"harness, no prefix cache:      {t_off:8.1f} s   acc {acc['harness-nocache']:.4f}   "
          f"speed-up {t_ref / t_off:.2f}x")
    print(f"same predictions as lm-eval: {r_on == r_ref}; cache on/off bit-identical: {lp_on == lp_off}; "
          f"max |loglik - lm-eval's| {max(abs(a - b) for a, b in zip(lp_on, lp_ref)):.2e}")


if __name__ == "__main__":
    main()
