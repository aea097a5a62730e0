"""Full 5-shot MMLU (14,042 questions) wall time on the embedded default model, projected
from every subject, with the prefix cache (the default).

    python bench/bench_mmlu_full.py                    # all 57 subjects, 1 + 16 questions each
    python bench/bench_mmlu_full.py --check anatomy    # also score that subject in full, to compare
    python bench/bench_mmlu_full.py --run-all          # score all 14,042 (about as long as projected)

Per subject it times two calls of ``loglikelihood`` (each computes the few-shot block ``P``
once): the first question alone, ``t1 = P + q``, and questions 2..1+k together, ``tk = P + k q``.
So a question costs ``q = (tk - t1) / (k - 1)`` and the subject's full run ``t1 + (n - 1) q``,
``n`` its real number of test questions (the whole test split ships in ``tasks/mmlu/full``). Subjects whose prompts exceed the 2,048-token context
are left-truncated (as lm-eval does), share no prefix, and cost ``n x`` their per-question
time. ``--check`` scores named subjects in full and prints projection against measurement.
"""
from __future__ import annotations

import argparse
import time

import torch


def subject_requests(subject: str, start: int, stop: int) -> list:
    from harness.api import BenchmarkConfig
    from harness_plugins.mmlu import MMLU

    insts = list(MMLU().instances(BenchmarkConfig(subsets=[subject], limit=stop, num_fewshot=5)))[start:]
    return [r for inst in insts for r in inst.requests], len(insts)


def timed(lm, reqs: list) -> float:
    lm._last_root = None  # each call computes its few-shot block (harness.models.prefix reuses the last one)
    start = time.perf_counter()
    lm.loglikelihood(reqs, progress=False)
    return time.perf_counter() - start


def main() -> None:
    from harness.api import BenchmarkConfig
    from harness.models import load_model
    from harness_plugins.mmlu import MMLU, SUBJECTS

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subjects", default=",".join(SUBJECTS))
    ap.add_argument("--k", type=int, default=16, help="questions timed together per subject after the first")
    ap.add_argument("--check", default="", help="subjects to also score in full (comma-separated)")
    ap.add_argument("--run-all", action="store_true", help="score all the subjects in full instead")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    lm = load_model(None)
    subjects = args.subjects.split(",")
    sizes = {s: len(list(MMLU().instances(BenchmarkConfig(subsets=[s], limit=10**6, num_fewshot=5))))
             for s in subjects}
    print(f"{sum(sizes.values())} questions in {len(subjects)} subjects; torch threads {torch.get_num_threads()}",
          flush=True)
    total, wall = 0.0, time.perf_counter()
    projected: dict[str, float] = {}
    for s in subjects:
        if args.run_all:
            projected[s] = timed(lm, subject_requests(s, 0, sizes[s])[0])
        else:
            t1 = timed(lm, subject_requests(s, 0, 1)[0])
            reqs, k = subject_requests(s, 1, 1 + args.k)
            q = (timed(lm, reqs) - t1) / max(1, k - 1) if k > 1 else t1  # tk = P + k q, t1 = P + q
            q = max(q, 0.0)
            projected[s] = t1 + (sizes[s] - 1) * q
        total += projected[s]
        print(f"  {s:40s} {sizes[s]:5d} questions  {'measured' if args.run_all else 'projected'} "
              f"{projected[s]:8.1f} s", flush=True)
    how = "measured" if args.run_all else "projected"
    print(f"full 5-shot MMLU, {sum(sizes.values())} questions: {how} {total / 60:.1f} min "
          f"(target < 40 min: {'met' if total < 2400 else 'MISSED'}); this script took "
          f"{(time.perf_counter() - wall) / 60:.1f} min")
    for s in filter(None, args.check.split(",")):
        real = timed(lm, subject_requests(s, 0, sizes[s])[0])
        print(f"check {s}: projected {projected.get(s, float('nan')):.1f} s, measured {real:.1f} s "
              f"({sizes[s]} questions)")


if __name__ == "__main__":
    main()
