"""Time the grader on a class of generated submissions (the issue asks: 100 in at most 3 minutes
on 2 cores).

    python scripts/benchmark_grading.py [--n 100] [--jobs 2]
    python scripts/benchmark_grading.py --set ex06 --n 10      # a TensorFlow set: throughput

ex03 (the default): builds N submissions from the ex03 solution notebook (half correct, half
with one or two typical mistakes; see tests/grading_cases.py), grades them with the default
limits and prints the wall-clock time, the time per submission and the statuses. It checks the
grades too: a correct notebook must get full marks and every other one must lose exactly its
mistakes. Any other set: N copies of its solution notebook (all must get full marks), which for
ex05 and ex06 means importing TensorFlow in every run: the throughput of a TensorFlow set.
The sandbox is the full one where the machine allows it; the report says which.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from grading_cases import FULL, benchmark_class  # noqa: E402

from rnncourse.exercises import SETS, questions  # noqa: E402
from rnncourse.grading import grade  # noqa: E402


TF_CELL = ("from rnncourse.repro import setup_tensorflow\nkeras = setup_tensorflow(seed=0)\nimport numpy as np\n"
           "model = keras.Sequential([keras.Input((5, 3)), keras.layers.SimpleRNN(4), keras.layers.Dense(1)])\n"
           "model.compile(loss='mse')\nmodel.fit(np.zeros((8, 5, 3)), np.zeros((8, 1)), epochs=1, verbose=0)\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", default="ex03")
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--budget", type=float, default=180.0, help="seconds allowed (exit 1 if slower)")
    parser.add_argument("--allow-weaker-sandbox", action="store_true")
    parser.add_argument("--import-tensorflow", action="store_true",
                        help="add a cell that imports TensorFlow/Keras and runs a tiny model (as a TensorFlow "
                             "exercise does): the throughput of a TensorFlow set")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        subs = Path(tmp) / "submissions"
        subs.mkdir()
        if args.set == "ex03":
            benchmark_class(subs, args.n)
            full = FULL
        else:
            src = ROOT / "solutions" / SETS[args.set] / f"{SETS[args.set]}.ipynb"
            for k in range(args.n):
                shutil.copy(src, subs / f"student{k:03d}_{SETS[args.set]}.ipynb")
        if args.import_tensorflow:
            for path in subs.glob("*.ipynb"):
                nb = json.loads(path.read_text(encoding="utf-8"))
                nb["cells"].insert(1, {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
                                       "source": TF_CELL})
                path.write_text(json.dumps(nb), encoding="utf-8")
            full = sum(q.points for q in questions(args.set).values())
        start = time.monotonic()
        run = grade(args.set, subs, Path(tmp) / "out", seed=1, jobs=args.jobs,
                    allow_weaker=args.allow_weaker_sandbox)
        seconds = time.monotonic() - start
    statuses = collections.Counter(r.status for r in run.results)
    if args.set == "ex03":
        right = sum((r.total == full) == (int(r.submission.student[-3:]) % 2 == 0) for r in run.results)
    else:
        right = sum(r.total == full for r in run.results)
    load = os.getloadavg()[0]
    print(f"set {args.set}{' + a TensorFlow cell' if args.import_tensorflow else ''}: graded {len(run.results)} submissions with {args.jobs} jobs in {seconds:.1f} s "
          f"({seconds / len(run.results):.2f} s each, {3600 * len(run.results) / seconds:.0f} per hour; "
          f"sandbox probe included)")
    print(f"sandbox: {'full' if run.protections.full else 'WEAKER, missing ' + ', '.join(run.protections.missing)}")
    print(f"statuses: {dict(statuses)}; grades as expected: {right}/{len(run.results)}")
    print(f"load average at the end: {load:.1f} on {os.cpu_count()} CPUs")
    budget_ok = seconds <= args.budget * args.n / 100 if args.set == "ex03" else True
    return 0 if budget_ok and right == len(run.results) else 1


if __name__ == "__main__":
    sys.exit(main())
