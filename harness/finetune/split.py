"""Seeded, deterministic train/validation/test split of example indices.

Sizes follow LLMs-from-scratch ch07 (``int(0.85 n)`` train, ``int(0.10 n)`` test,
validation the rest: 935/55/110 for the bundled 1,100 records), but the order is
a seeded shuffle so a file sorted by topic does not put one topic in the test set.
``random.Random(seed).shuffle`` is stable across Python versions and platforms,
and the indices are saved with the checkpoint (``split.json``) so the held-out
test records can always be recovered.
"""
from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import HarnessError

EPS = 1e-9  # int(0.85 * 100) must be 85, not 84


@dataclass
class Split:
    train: list[int]
    val: list[int]
    test: list[int]
    seed: int
    val_frac: float
    test_frac: float

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":")) + "\n"


def split_indices(n: int, val_frac: float = 0.05, test_frac: float = 0.10, seed: int = 123) -> Split:
    """Shuffle ``range(n)`` with ``seed`` and cut it into train / val / test.

    ``val_frac == 0`` means no validation (no early stopping); ``test_frac == 0``
    means no test responses. Raises HarnessError when a requested part would be empty.
    """
    for flag, frac in (("--val-frac", val_frac), ("--test-frac", test_frac)):
        if not 0.0 <= frac < 1.0:
            raise HarnessError(f"{flag} must be in [0, 1) (got {frac})")
    if val_frac + test_frac >= 1.0:
        raise HarnessError(f"--val-frac + --test-frac must be below 1 (got {val_frac + test_frac:g}); "
                           "leave records for training")
    n_train = int(n * (1.0 - val_frac - test_frac) + EPS)
    n_test = int(n * test_frac + EPS)
    n_val = n - n_train - n_test
    if n_train < 1 or (val_frac > 0 and n_val < 1):
        raise HarnessError(f"--data: {n} records are too few for a {1 - val_frac - test_frac:.0%}/"
                           f"{val_frac:.0%}/{test_frac:.0%} split; add records or raise --limit")
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return Split(train=order[:n_train], test=order[n_train:n_train + n_test], val=order[n_train + n_test:],
                 seed=seed, val_frac=val_frac, test_frac=test_frac)


def save_split(split: Split, path: Path) -> None:
    path.write_text(split.to_json(), encoding="utf-8")


def load_split(path: Path) -> Split:
    return Split(**json.loads(path.read_text(encoding="utf-8")))
