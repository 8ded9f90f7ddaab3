"""Command line: python -m rnncourse.grading SET SUBMISSIONS_DIR --out OUT_DIR [options]."""

from __future__ import annotations

import argparse
import shlex
import sys

from ..exercises import SETS
from . import SandboxUnavailable, grade
from .report import STATUS_MEANING
from .sandbox import Limits

EXIT_GRADER_ERROR, EXIT_NO_SANDBOX = 1, 3


def main(argv: list[str] | None = None) -> int:
    d = Limits()
    parser = argparse.ArgumentParser(
        prog="python -m rnncourse.grading",
        description="Grade exercise notebooks in a sandbox: a CSV gradebook, feedback per student, a report.",
        epilog="statuses: " + "; ".join(f"{k}: {v}" for k, v in STATUS_MEANING.items()))
    parser.add_argument("set", help=f"exercise set id, one of {sorted(SETS)}")
    parser.add_argument("submissions", help="folder of <student>_<notebook>.ipynb files, "
                                            "or nbgrader's submitted/<student>/<set>/<notebook>.ipynb")
    parser.add_argument("--out", required=True, help="output folder (gradebook.csv, feedback/, report.md, "
                                                     "progress.jsonl)")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed of the grader's inputs (default: a fresh one, printed in the report, or the "
                             "seed of the interrupted run being resumed); the same seed regrades identically")
    parser.add_argument("--timeout", type=float, default=d.timeout,
                        help=f"wall-clock seconds for one run of a notebook, cells and graded calls together "
                             f"(default {d.timeout:g})")
    parser.add_argument("--cell-timeout", type=float, default=d.cell_timeout,
                        help=f"wall-clock seconds per code cell (default {d.cell_timeout:g})")
    parser.add_argument("--call-timeout", type=float, default=d.call_timeout,
                        help=f"wall-clock seconds per graded function call (default {d.call_timeout:g})")
    parser.add_argument("--memory", type=int, default=d.memory_mb,
                        help=f"memory limit in MB for a run, all its processes together (default {d.memory_mb})")
    parser.add_argument("--disk", type=int, default=d.disk_mb,
                        help=f"MB a run may write in all: its folder, /tmp, /dev/shm (default {d.disk_mb})")
    parser.add_argument("--max-notebook", type=int, default=d.max_notebook_mb,
                        help=f"largest notebook file graded, in MB (default {d.max_notebook_mb})")
    parser.add_argument("--jobs", type=int, default=None, help="submissions graded in parallel (default: CPUs)")
    parser.add_argument("--nproc", type=int, default=d.nproc,
                        help=f"processes and threads a run may have (default {d.nproc})")
    parser.add_argument("--allow-weaker-sandbox", action="store_true",
                        help="grade even where the machine cannot give every protection (the report says which "
                             "are missing); without it the grader refuses")
    parser.add_argument("--restart", action="store_true",
                        help="do not take over an interrupted run found in the output folder")
    parser.add_argument("--only", action="append", metavar="STUDENT",
                        help="grade only this student id (repeat for several): a regrade with the same --seed "
                             "gives them the inputs of the class run")
    parser.add_argument("--quiet", action="store_true", help="print only the report")
    args = parser.parse_args(argv)
    if args.set not in SETS:
        parser.error(f"unknown set {args.set!r}; known: {', '.join(sorted(SETS))}")
    log = (lambda msg: None) if args.quiet else (lambda msg: print(msg, flush=True))
    limits = Limits(timeout=args.timeout, memory_mb=args.memory, nproc=args.nproc, cell_timeout=args.cell_timeout,
                    call_timeout=args.call_timeout, disk_mb=args.disk, max_notebook_mb=args.max_notebook)
    command = shlex.join(["python", "-m", "rnncourse.grading", *(argv if argv is not None else sys.argv[1:])])
    try:
        run = grade(args.set, args.submissions, args.out, seed=args.seed, limits=limits, jobs=args.jobs,
                    log=log, command=command, allow_weaker=args.allow_weaker_sandbox, resume=not args.restart,
                    only=args.only)
    except (FileNotFoundError, KeyError) as exc:
        parser.error(str(exc))
    except SandboxUnavailable as exc:
        print(f"refusing to grade: {exc}", file=sys.stderr)
        return EXIT_NO_SANDBOX
    print((run.out_dir / "report.md").read_text(encoding="utf-8"))
    print(f"wrote {run.out_dir / 'gradebook.csv'} and {len(run.results)} feedback files")
    return EXIT_GRADER_ERROR if any(r.status == "grader-error" for r in run.results) else 0


if __name__ == "__main__":
    sys.exit(main())
