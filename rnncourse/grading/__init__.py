"""The instructor's grader: `python -m rnncourse.grading SET SUBMISSIONS_DIR --out OUT_DIR`.

Each submission's code runs in a sandboxed child process (see `sandbox`); the learner's
functions are called there on inputs the grader drew, their results come back as plain data
(JSON with raw array bytes, never a pickle), and the verdict is computed here, in the grader's
process, with the same `compare_function` / `compare_value` as the learners' self-checks. The
output folder gets `gradebook.csv` (one row per submission), `feedback/<student>.md` and
`report.md` (which protections were active, the seed, the statuses). See
book/instructor_guide.md.
"""

from __future__ import annotations

import os
import secrets
import shlex
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from queue import Queue

from ..exercises import SETS, questions
from .report import feedback_markdown, feedback_names, gradebook_csv, report_markdown, write_atomic
from .runner import STATUSES, SubmissionResult, discover, grade_safely
from .sandbox import Limits, Protections, Sandbox

__all__ = ["grade", "GradingRun", "Limits", "STATUSES"]


@dataclass
class GradingRun:
    set_id: str
    results: list[SubmissionResult]
    protections: Protections
    features: dict
    seed: int
    seconds: float
    out_dir: Path

    def row(self, student: str) -> SubmissionResult:
        found = [r for r in self.results if r.submission.student == student]
        if len(found) != 1:
            raise KeyError(f"{len(found)} results for {student!r}")
        return found[0]


def grade(set_id: str, submissions_dir, out_dir, seed: int | None = None, limits: Limits | None = None,
          jobs: int | None = None, trials: int = 3, log=None, command: str | None = None) -> GradingRun:
    """Grade every submission in `submissions_dir`; write the gradebook, feedback and report."""
    if set_id not in SETS:
        raise KeyError(f"unknown exercise set {set_id!r}; known: {sorted(SETS)}")
    limits = limits or Limits()
    jobs = max(1, jobs or os.cpu_count() or 1)
    seed = secrets.randbits(63) if seed is None else int(seed)
    submissions_dir, out_dir = Path(submissions_dir).resolve(), Path(out_dir).resolve()
    if not submissions_dir.is_dir():
        raise FileNotFoundError(f"no folder {submissions_dir}")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "feedback").mkdir(exist_ok=True)
    log = log or (lambda msg: None)
    question_ids = list(questions(set_id))
    subs, ignored = discover(set_id, submissions_dir)
    repo = Path(__file__).resolve().parents[2]
    start = time.monotonic()
    with Sandbox(limits, jobs=jobs, hide=(str(repo), str(submissions_dir), str(out_dir))) as sandbox:
        protections = sandbox.probe()
        prot_lines = protections.describe(limits)
        log("sandbox:\n" + "\n".join(prot_lines))
        slots: Queue[int] = Queue()
        for k in range(jobs):
            slots.put(k)
        lock = threading.Lock()
        done = [0]

        def work(sub):
            slot = slots.get()
            try:
                result = grade_safely(sub, set_id, sandbox, slot, seed, trials=trials)
            finally:
                slots.put(slot)
            with lock:
                done[0] += 1
                log(f"[{done[0]}/{len(subs)}] {sub.label}: {result.status} {result.total:g}/{result.max_total:g}")
            return result

        with ThreadPoolExecutor(max_workers=jobs) as pool:
            results = list(pool.map(work, subs))
        features = dict(sandbox.features)
    seconds = time.monotonic() - start
    for r, name in zip(results, feedback_names(results)):
        write_atomic(out_dir / "feedback" / name, feedback_markdown(r, set_id))
    write_atomic(out_dir / "gradebook.csv", gradebook_csv(results, question_ids))
    command = command or shlex.join(["python", "-m", "rnncourse.grading", set_id, str(submissions_dir),
                                     "--out", str(out_dir), "--seed", str(seed)])
    write_atomic(out_dir / "report.md",
                 report_markdown(set_id, results, prot_lines, seed, ignored, seconds, jobs, command))
    return GradingRun(set_id, results, protections, features, seed, seconds, out_dir)
