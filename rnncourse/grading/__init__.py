"""The instructor's grader: `python -m rnncourse.grading SET SUBMISSIONS_DIR --out OUT_DIR`.

Each submission's code runs in a sandboxed child process (see `sandbox`); the learner's
functions are called there on inputs the grader drew, their results come back as plain data
(JSON with raw array bytes, never a pickle), and the verdict is computed here, in the grader's
process, with the same `compare_function` / `compare_value` as the learners' self-checks. The
output folder gets `gradebook.csv` (one row per submission), `feedback/<student>.md` and
`report.md` (which protections were active, the seed, the statuses), and `progress.jsonl`,
the journal: every result is written to it, and the gradebook and the submission's feedback
are rewritten, as soon as the submission is graded, so an interrupted run loses nothing and
the next run with the same output folder takes over where it stopped. See
book/instructor_guide.md.
"""

from __future__ import annotations

import hashlib
import json
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
from .sandbox import Limits, Protections, Sandbox, SandboxUnavailable

__all__ = ["grade", "GradingRun", "Limits", "STATUSES", "SandboxUnavailable"]
JOURNAL = "progress.jsonl"
JOURNAL_VERSION = 2


@dataclass
class GradingRun:
    set_id: str
    results: list[SubmissionResult]
    protections: Protections
    features: dict
    seed: int
    seconds: float
    out_dir: Path
    resumed: int = 0

    def row(self, student: str) -> SubmissionResult:
        found = [r for r in self.results if r.submission.student == student]
        if len(found) != 1:
            raise KeyError(f"{len(found)} results for {student!r}")
        return found[0]


def _file_digest(path: Path | None) -> str:
    if path is None:
        return "none"
    h = hashlib.sha256()
    try:
        st = os.lstat(path)
        h.update(f"{st.st_size}:{st.st_mtime_ns}:{st.st_mode}".encode())
        if os.path.isfile(path) and not os.path.islink(path):
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
    except OSError as exc:
        h.update(str(exc).encode())
    return h.hexdigest()


class Journal:
    """progress.jsonl: a header (set, seed, limits, trials), then one line per graded
    submission, fsync'ed; a last line {"finished": true} once the run completed."""

    def __init__(self, out_dir: Path, header: dict):
        self.path = out_dir / JOURNAL
        self.header = header
        self.done: dict[str, dict] = {}
        self.lock = threading.Lock()

    def previous(self) -> tuple[dict | None, dict[str, dict], bool]:
        """The header, the results by key and whether it finished, of the journal on disk."""
        try:
            lines = self.path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return None, {}, False
        header, results, finished = None, {}, False
        for k, line in enumerate(lines):
            try:
                obj = json.loads(line)
            except ValueError:
                continue  # a line cut by the interruption
            if k == 0:
                header = obj if isinstance(obj, dict) else None
            elif isinstance(obj, dict) and obj.get("finished"):
                finished = True
            elif isinstance(obj, dict) and "key" in obj:
                results[obj["key"]] = obj
        return header, results, finished

    def start(self, keep: dict[str, dict]) -> None:
        tmp = self.path.with_name(f".tmp-{secrets.token_hex(6)}")
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(json.dumps(self.header) + "\n")
            for obj in keep.values():
                f.write(json.dumps(obj) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def add(self, obj: dict) -> None:
        with self.lock, open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(obj) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def finish(self) -> None:
        self.add({"finished": True})


def grade(set_id: str, submissions_dir, out_dir, seed: int | None = None, limits: Limits | None = None,
          jobs: int | None = None, trials: int = 3, log=None, command: str | None = None,
          allow_weaker: bool = False, resume: bool = True, only: list[str] | None = None) -> GradingRun:
    """Grade every submission in `submissions_dir`; write the gradebook, feedback and report.

    Refuses (SandboxUnavailable) when the machine cannot give the full sandbox, unless
    `allow_weaker`; then the report and every feedback file say which protections are missing.
    With `resume`, an unfinished journal in `out_dir` for the same set (and seed, if given)
    is taken over: its results stand, only the other submissions are graded. `only`: grade
    just these student ids (a regrade of a few; their inputs are those of the whole class).
    """
    if set_id not in SETS:
        raise KeyError(f"unknown exercise set {set_id!r}; known: {sorted(SETS)}")
    limits = limits or Limits()
    jobs = max(1, jobs or os.cpu_count() or 1)
    submissions_dir, out_dir = Path(submissions_dir).resolve(), Path(out_dir).resolve()
    if not submissions_dir.is_dir():
        raise FileNotFoundError(f"no folder {submissions_dir}")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "feedback").mkdir(exist_ok=True)
    log = log or (lambda msg: None)
    question_ids = list(questions(set_id))
    subs, ignored = discover(set_id, submissions_dir)
    names_all = dict(zip((s.key for s in subs), feedback_names(subs)))
    if only:
        unknown = sorted(set(only) - {s.student for s in subs})
        if unknown:
            raise KeyError(f"no submission of {', '.join(unknown)} in {submissions_dir}")
        subs = [s for s in subs if s.student in set(only)]
    names = [names_all[s.key] for s in subs]

    # The journal of an interrupted run: same set, limits and trials (and seed, if one is given).
    header = {"version": JOURNAL_VERSION, "set": set_id, "limits": limits.as_dict(), "trials": trials,
              "only": sorted(only or [])}
    journal = Journal(out_dir, header)
    old_header, old_results, finished = journal.previous() if resume else (None, {}, True)
    same = (old_header is not None and not finished
            and all(old_header.get(k) == v for k, v in header.items())
            and (seed is None or old_header.get("seed") == int(seed)))
    if same:
        seed = int(old_header["seed"])
    elif old_header is not None and not finished and resume:
        log("the output folder holds an unfinished run with other settings (set, limits, trials, seed or "
            "--only): starting afresh")
    seed = secrets.randbits(63) if seed is None else int(seed)
    header["seed"] = seed
    digests = {s.key: _file_digest(s.path) for s in subs}
    keep = {k: v for k, v in old_results.items() if same and digests.get(k) == v.get("digest")}
    journal.start(keep)
    by_key = {s.key: s for s in subs}
    results: dict[str, SubmissionResult] = {}
    for key, obj in keep.items():
        try:
            results[key] = SubmissionResult.from_dict(obj["result"], by_key[key])
        except (KeyError, TypeError, ValueError):
            pass
    resumed = len(results)
    if resumed:
        log(f"taking over {resumed} result(s) from an interrupted run with seed {seed}")

    repo = Path(__file__).resolve().parents[2]
    start = time.monotonic()
    with Sandbox(limits, jobs=jobs, hide=(str(repo), str(submissions_dir), str(out_dir))) as sandbox:
        protections = sandbox.probe()
        prot_lines = protections.describe(limits)
        mode = protections.mode_line()
        log("sandbox:\n" + "\n".join(prot_lines) + "\n" + mode)
        if not protections.full and not allow_weaker:
            raise SandboxUnavailable(
                "this machine cannot give the full sandbox; missing: " + ", ".join(
                    f"{k} ({protections.notes.get(k, 'unavailable')})" for k in protections.missing) +
                ". Run the grader as root on a Linux with namespaces and cgroups, or accept the weaker sandbox "
                "with --allow-weaker-sandbox (allow_weaker=True) for code you trust.")
        slots: Queue[int] = Queue()
        for k in range(jobs):
            slots.put(k)
        lock = threading.Lock()
        done = [resumed]
        name_of = {s.key: n for s, n in zip(subs, names)}
        footer = "" if protections.full else mode

        def save(result: SubmissionResult) -> None:
            """Journal first, then this feedback file and the gradebook so far."""
            key = result.submission.key
            journal.add({"key": key, "digest": digests[key], "result": result.to_dict()})
            text = feedback_markdown(result, set_id, limits)
            if footer:
                text += "\n" + footer.replace("**", "") + "\n"
            write_atomic(out_dir / "feedback" / name_of[key], text)
            with lock:
                results[key] = result
                ordered = [results[s.key] for s in subs if s.key in results]
                write_atomic(out_dir / "gradebook.csv", gradebook_csv(ordered, question_ids))

        def work(sub):
            slot = slots.get()
            try:
                result = grade_safely(sub, set_id, sandbox, slot, seed, trials=trials)
            finally:
                slots.put(slot)
            try:
                save(result)
            except Exception as exc:  # e.g. the output disk is full: keep the result, say so
                with lock:
                    results[sub.key] = result
                log(f"could not write the result of {result.submission.label}: {exc}")
            with lock:
                done[0] += 1
                elapsed = time.monotonic() - start
                left = (len(subs) - done[0]) * elapsed / max(1, done[0] - resumed)
                log(f"[{done[0]}/{len(subs)}] {result.submission.label}: {result.status} "
                    f"{result.total:g}/{result.max_total:g} (about {left / 60:.0f} min left)")
            return result

        for key, result in list(results.items()):  # rewrite what was kept (feedback may be missing)
            text = feedback_markdown(result, set_id, limits) + ("\n" + footer.replace("**", "") + "\n" if footer else "")
            write_atomic(out_dir / "feedback" / name_of[key], text)
        todo = [s for s in subs if s.key not in results]
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            list(pool.map(work, todo))
        features = dict(sandbox.features)
    seconds = time.monotonic() - start
    ordered = [results[s.key] for s in subs]
    write_atomic(out_dir / "gradebook.csv", gradebook_csv(ordered, question_ids))
    command = command or shlex.join(["python", "-m", "rnncourse.grading", set_id, str(submissions_dir),
                                     "--out", str(out_dir), "--seed", str(seed)])
    write_atomic(out_dir / "report.md",
                 report_markdown(set_id, ordered, prot_lines, seed, ignored, seconds, jobs, command, mode, resumed))
    journal.finish()
    return GradingRun(set_id, ordered, protections, features, seed, seconds, out_dir, resumed)
