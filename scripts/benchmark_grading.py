"""Time the grader on a class of generated submissions (the issue asks: 100 in at most 3 minutes
on 2 cores).

    python scripts/benchmark_grading.py [--n 100] [--jobs 2]

Builds N submissions from the ex03 solution notebook (half correct, half with one or two
typical mistakes; see tests/grading_cases.py), grades them with the default limits and prints
the wall-clock time, the time per submission and the statuses. It checks the grades too: a
correct notebook must get full marks and every other one must lose exactly its mistakes.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from grading_cases import FULL, benchmark_class  # noqa: E402

from rnncourse.grading import grade  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--budget", type=float, default=180.0, help="seconds allowed (exit 1 if slower)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        subs = Path(tmp) / "submissions"
        subs.mkdir()
        benchmark_class(subs, args.n)
        start = time.monotonic()
        run = grade("ex03", subs, Path(tmp) / "out", seed=1, jobs=args.jobs)
        seconds = time.monotonic() - start
    statuses = collections.Counter(r.status for r in run.results)
    right = sum((r.total == FULL) == (int(r.submission.student[-3:]) % 2 == 0) for r in run.results)
    load = os.getloadavg()[0]
    print(f"graded {len(run.results)} submissions with {args.jobs} jobs in {seconds:.1f} s "
          f"({seconds / len(run.results):.2f} s each; sandbox probe included)")
    print(f"statuses: {dict(statuses)}; grades as expected: {right}/{len(run.results)}")
    print(f"load average at the end: {load:.1f} on {os.cpu_count()} CPUs")
    return 0 if seconds <= args.budget and right == len(run.results) else 1


if __name__ == "__main__":
    sys.exit(main())
