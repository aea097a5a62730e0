"""Full 5-shot MMLU (14,042 questions) wall time, projected from a fixed sample, prefix cache on vs off.

    python bench/bench_mmlu_full.py                 # 4 subjects x 5 questions measured
    python bench/bench_mmlu_full.py --subjects professional_law,marketing --limit 3

The sample is scored twice on the embedded default model, with and without the prefix cache
(same scores). Each run's seconds per forwarded token are then applied to the tokens the
full run would forward: per subject, its few-shot block once (cache on) or per question (off)
plus its real number of test questions (``MMLU_TEST_SIZES``) times the mean length of the
bundled questions of that subject (all 57 subjects are tokenised, only the sample is scored).
Attention makes cost slightly super-linear in context length, so this is an estimate.
"""
from __future__ import annotations

import argparse
import time

import torch

# test rows per subject in the full MMLU (Hendrycks et al.; cais/mmlu "test"), 14,042 in all
MMLU_TEST_SIZES = {
    "abstract_algebra": 100, "anatomy": 135, "astronomy": 152, "business_ethics": 100,
    "clinical_knowledge": 265, "college_biology": 144, "college_chemistry": 100,
    "college_computer_science": 100, "college_mathematics": 100, "college_medicine": 173,
    "college_physics": 102, "computer_security": 100, "conceptual_physics": 235, "econometrics": 114,
    "electrical_engineering": 145, "elementary_mathematics": 378, "formal_logic": 126, "global_facts": 100,
    "high_school_biology": 310, "high_school_chemistry": 203, "high_school_computer_science": 100,
    "high_school_european_history": 165, "high_school_geography": 198,
    "high_school_government_and_politics": 193, "high_school_macroeconomics": 390,
    "high_school_mathematics": 270, "high_school_microeconomics": 238, "high_school_physics": 151,
    "high_school_psychology": 545, "high_school_statistics": 216, "high_school_us_history": 204,
    "high_school_world_history": 237, "human_aging": 223, "human_sexuality": 131, "international_law": 121,
    "jurisprudence": 108, "logical_fallacies": 163, "machine_learning": 112, "management": 103,
    "marketing": 234, "medical_genetics": 100, "miscellaneous": 783, "moral_disputes": 346,
    "moral_scenarios": 895, "nutrition": 306, "philosophy": 311, "prehistory": 324,
    "professional_accounting": 282, "professional_law": 1534, "professional_medicine": 272,
    "professional_psychology": 612, "public_relations": 110, "security_studies": 245, "sociology": 201,
    "us_foreign_policy": 100, "virology": 166, "world_religions": 171,
}
assert sum(MMLU_TEST_SIZES.values()) == 14042


def requests(subjects: list[str], limit: int) -> list:
    from harness.api import BenchmarkConfig
    from harness_plugins.mmlu import MMLU

    cfg = BenchmarkConfig(subsets=subjects, limit=limit, num_fewshot=5)
    return [r for inst in MMLU().instances(cfg) for r in inst.requests]


def forwarded_tokens(lm, reqs: list, cache: bool) -> tuple[int, int]:
    """(tokens the loglikelihood call forwards, distinct inputs), from the same plan it runs."""
    from harness.models.prefix import plan

    pairs = [lm.encode_pair(r.context, r.continuation) for r in reqs]
    inputs = sorted({tuple((ctx + cont)[-(lm.max_length + 1):][:-1]) for ctx, cont in pairs})
    if not cache:
        return sum(len(i) for i in inputs), len(inputs)
    edges, total = plan(inputs, [len(i) - 1 for i in inputs]), 0
    while edges:
        total += sum(e.end - e.start for e in edges)
        edges = [c for e in edges for c in e.children]
    return total, len(inputs)


def main() -> None:
    from harness.models import load_model

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subjects", default="abstract_algebra,high_school_european_history,marketing,moral_scenarios")
    ap.add_argument("--limit", type=int, default=5, help="questions per sampled subject (bundled: 5)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    lm = load_model(None)
    sample = requests(args.subjects.split(","), args.limit)
    every = {s: requests([s], 5) for s in MMLU_TEST_SIZES}  # tokenised only
    out = {}
    for cache in (True, False):
        lm.prefix_cache = cache
        start = time.perf_counter()
        res = lm.loglikelihood(sample, progress=False)
        secs = time.perf_counter() - start
        per_token = secs / forwarded_tokens(lm, sample, cache)[0]
        full = 0.0
        for s, n in MMLU_TEST_SIZES.items():
            with_5, q = forwarded_tokens(lm, every[s], cache)
            if cache:  # the few-shot block once, then each question's own tokens
                shared, _ = forwarded_tokens(lm, every[s][:4], cache)  # one question: its whole prompt
                per_q = (with_5 - shared) / (q - 1)
                full += shared - per_q + n * per_q
            else:
                full += n * with_5 / q
        out[cache] = (secs, full * per_token, [r.logprob for r in res])
    n_q = len(sample) // 4
    print(f"sample: {n_q} questions ({args.subjects}), torch threads {torch.get_num_threads()}")
    for cache, (secs, proj, _) in out.items():
        print(f"prefix cache {'on ' if cache else 'off'}: sample {secs:7.1f} s; full MMLU projected "
              f"{proj / 60:7.1f} min (target < 40 min: {'met' if proj < 2400 else 'MISSED'})")
    print(f"speed-up from the prefix cache {out[False][1] / out[True][1]:.2f}x; "
          f"same scores: {out[True][2] == out[False][2]}")


if __name__ == "__main__":
    main()
