"""``python -m harness.lmeval --model harness --model_args model=SPEC --tasks ...``: lm-eval's own
command line, with the ``harness`` model registered first."""
from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    from . import HarnessLM  # noqa: F401 - registers model="harness"

    try:
        from lm_eval.__main__ import cli_evaluate
    except ImportError:  # pragma: no cover - older lm-eval
        from lm_eval.__main__ import main as cli_evaluate
    if argv is not None:
        sys.argv = [sys.argv[0], *argv]
    cli_evaluate()


if __name__ == "__main__":
    main()
