"""``python -m models.checklist``: score the behavioural suite with a model directory.

Prints accuracy per event type, per capability and overall (worst first) and
writes the full JSON report (with every wrong row). Exit codes: 0 done, 2 bad
input (model directory or suite file).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from models.checklist.report import evaluate_suite, format_report
from models.checklist.suite import SUITE_FILE, load_suite
from models.exceptions import ModelError

__all__ = ["main"]

logger = logging.getLogger(__name__)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m models.checklist", description=__doc__)
    parser.add_argument(
        "--model", type=Path, default=None, help="Model directory (default: models/default)."
    )
    parser.add_argument(
        "--split",
        choices=("test", "train", "all"),
        default="test",
        help="Which rows to score: the held-out third (default), the training part, or all.",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="Where the JSON report goes (default: runs/checklist/<model version>_<split>.json).",
    )
    parser.add_argument("--suite", type=Path, default=SUITE_FILE, help="Suite file (JSON Lines).")
    parser.add_argument("--variant", default=None, help="ONNX variant (default: int8).")
    parser.add_argument(
        "--failures", action="store_true", help="Also print every row the model got wrong."
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    try:
        report = evaluate_suite(
            args.model, split=args.split, suite=load_suite(args.suite), variant=args.variant
        )
    except (ModelError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = args.out or Path("runs/checklist") / f"{report['model_version']}_{args.split}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(format_report(report, failures=args.failures))
    print(f"\nreport written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
