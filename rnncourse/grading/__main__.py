"""Command line: python -m rnncourse.grading SET SUBMISSIONS_DIR --out OUT_DIR [options]."""

from __future__ import annotations

import argparse
import shlex
import sys

from ..exercises import SETS
from . import grade
from .report import STATUS_MEANING
from .sandbox import Limits


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rnncourse.grading",
        description="Grade exercise notebooks in a sandbox: a CSV gradebook, feedback per student, a report.",
        epilog="statuses: " + "; ".join(f"{k}: {v}" for k, v in STATUS_MEANING.items()))
    parser.add_argument("set", help=f"exercise set id, one of {sorted(SETS)}")
    parser.add_argument("submissions", help="folder of <student>_<notebook>.ipynb files, "
                                            "or nbgrader's submitted/<student>/<set>/<notebook>.ipynb")
    parser.add_argument("--out", required=True, help="output folder (gradebook.csv, feedback/, report.md)")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed of the grader's inputs (default: a fresh one, printed in the report); "
                             "the same seed regrades identically")
    parser.add_argument("--timeout", type=float, default=30.0, help="wall-clock seconds per run (default 30)")
    parser.add_argument("--memory", type=int, default=2048, help="address-space limit in MB (default 2048)")
    parser.add_argument("--jobs", type=int, default=None, help="submissions graded in parallel (default: CPUs)")
    parser.add_argument("--nproc", type=int, default=64, help="process limit per submission (default 64)")
    parser.add_argument("--quiet", action="store_true", help="print only the report")
    args = parser.parse_args(argv)
    if args.set not in SETS:
        parser.error(f"unknown set {args.set!r}; known: {', '.join(sorted(SETS))}")
    log = (lambda msg: None) if args.quiet else (lambda msg: print(msg, flush=True))
    limits = Limits(timeout=args.timeout, memory_mb=args.memory, nproc=args.nproc)
    command = shlex.join(["python", "-m", "rnncourse.grading", *(argv if argv is not None else sys.argv[1:])])
    try:
        run = grade(args.set, args.submissions, args.out, seed=args.seed, limits=limits, jobs=args.jobs,
                    log=log, command=command)
    except (FileNotFoundError, KeyError) as exc:
        parser.error(str(exc))
    print((run.out_dir / "report.md").read_text(encoding="utf-8"))
    print(f"wrote {run.out_dir / 'gradebook.csv'} and {len(run.results)} feedback files")
    return 1 if any(r.status == "grader-error" for r in run.results) else 0


if __name__ == "__main__":
    sys.exit(main())
