"""The smallest difference each comparison could have detected at its n.

Why: "no significant difference" on 30 samples says little; a reader needs to know
whether the run could have seen a difference of the size they care about. Every
comparison therefore carries its minimum detectable effect (MDE) at a two-sided
alpha of 0.05 and a power of 0.8, computed from the paired per-sample scores:

* binary (McNemar): ``MDE = (z_{1-α/2} + z_{1-β}) · sqrt(p_d / n)``, where ``p_d`` is the
  observed discordance rate (share of samples where model and base disagree). This is
  the normal approximation to McNemar's test with the variance of the per-sample
  difference under the null (Connor 1987, first-order term). With no discordant pair
  ``p_d`` is taken as ``1 / n`` (one pair), because an estimate of 0 would claim that
  any difference were detectable.
* continuous (paired mean difference): ``MDE = (z_{1-α/2} + z_{1-β}) · sd(d) / sqrt(n)``
  with ``sd(d)`` the sample standard deviation (ddof=1) of the paired differences.
* a judged win rate tested against 50 % (sign test): ``MDE = (z_{1-α/2} + z_{1-β}) · 0.5 / sqrt(n)``,
  the binomial standard deviation at the null.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

from .run import Row, Run, num

Z_ALPHA = 1.959963984540054  # two-sided alpha 0.05
Z_POWER = 0.8416212335729143  # power 0.8
Z_SUM = Z_ALPHA + Z_POWER


def mde(model: Sequence[float], base: Sequence[float], kind: str) -> float | None:
    """Minimum detectable effect of the paired comparison (formulas in the module docstring)."""
    n = len(model)
    if n == 0 or n != len(base):
        return None
    diffs = [float(m) - float(b) for m, b in zip(model, base)]
    if kind == "binary":
        discordant = sum(1 for d in diffs if d != 0)
        return Z_SUM * math.sqrt(max(discordant, 1) / n / n)
    if n < 2:
        return None
    mean = sum(diffs) / n
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1))
    return Z_SUM * sd / math.sqrt(n)


def mde_win_rate(n: int) -> float | None:
    """MDE of a win rate against 50 % with n judged pairs."""
    return Z_SUM * 0.5 / math.sqrt(n) if n > 0 else None


def attach_mde(run: Run, rows: list[Row]) -> None:
    """Set ``row.mde`` for every row whose per-sample scores (or judged n) allow it."""
    for row in rows:
        if row.delta is None:
            continue
        if row.metric.startswith("win rate vs ") and row.base is None:
            row.mde = mde_win_rate(row.n or 0)
            continue
        pairs = []
        for rec in run.samples.get(row.bench, []):
            m, b = rec.get("model"), rec.get("base")
            if row.scope == "subset" and str(rec.get("subset", "")) != row.name:
                continue
            if isinstance(m, dict) and isinstance(b, dict):
                ms = num((m.get("scores") or {}).get(row.metric))
                bs = num((b.get("scores") or {}).get(row.metric))
                if ms is not None and bs is not None:
                    pairs.append((ms, bs))
        if pairs and row.scope in ("overall", "subset"):
            row.mde = mde([p[0] for p in pairs], [p[1] for p in pairs], row.kind)
