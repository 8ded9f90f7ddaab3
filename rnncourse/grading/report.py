"""What the grader writes: the gradebook CSV, one feedback file per submission, a report.

Feedback says, for each question, the verdict and the diagnosis (the likely mistake), and for
the notebook what raised, which limit was hit, or what died. It never contains the reference
solution, and about the grader's inputs it gives only their shapes. Text that comes from a
submission (its name, exception messages, the first line of a cell) is made valid UTF-8,
inert in Markdown and HTML, and cut to a few hundred characters; in the CSV it cannot be read
as a formula.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import secrets
from pathlib import Path

from .runner import STATUSES, SubmissionResult, clean_text
from .sandbox import Limits

STATUS_MEANING = {
    "ok": "everything ran and every answer is right",
    "wrong": "everything ran, but some answers are wrong",
    "error": "a cell raised an error, or a graded function raised or is missing",
    "timeout": "a time limit was reached (per cell, per graded call, per run, or CPU time)",
    "kernel-died": "the process running the notebook died (os._exit, a crash, the memory or output limit)",
    "invalid-notebook": "the file could not be read as a notebook with code, so nothing ran",
    "grader-error": "the grader failed on this submission (not the student's doing): regrade it",
}
MAX_NAME = 80  # characters of a feedback file's name taken from the student id


def fmt_points(x: float) -> str:
    return f"{x:g}"


def _cell(text: str) -> str:
    """A CSV cell that a spreadsheet will not read as a formula."""
    text = clean_text(text).replace("\r", " ").replace("\n", " ")
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "|", "%") else text


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", clean_text(text)).strip("._-") or "student"


def feedback_name(sub, duplicate: bool) -> str:
    """`<student>.md`, or, when the id had to be changed to be a safe file name (or cut, or is
    shared by two submissions), `<safe id>-<hash of its path>.md`: stable across runs and
    never the same for two submissions."""
    base = safe_name(sub.student)
    if base != sub.student or len(base) > MAX_NAME or duplicate:
        digest = hashlib.sha256(sub.key.encode("utf-8", "surrogateescape")).hexdigest()[:10]
        base = f"{base[:MAX_NAME]}-{digest}"
    return base + ".md"


def feedback_names(results_or_subs) -> list[str]:
    subs = [getattr(r, "submission", r) for r in results_or_subs]
    counts: dict[str, int] = {}
    for s in subs:
        counts[safe_name(s.student).lower()] = counts.get(safe_name(s.student).lower(), 0) + 1
    names = [feedback_name(s, counts[safe_name(s.student).lower()] > 1) for s in subs]
    assert len(set(n.lower() for n in names)) == len(names), "feedback names collide"
    return names


def gradebook_csv(results: list[SubmissionResult], question_ids: list[str]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["student", "submission", "status", *question_ids, "total", "max", "detail"])
    for r in results:
        points = {q.id: fmt_points(q.points) for q in r.questions}
        w.writerow([_cell(r.submission.student), _cell(r.submission.label), r.status,
                    *(points.get(q, "0") for q in question_ids), fmt_points(r.total), fmt_points(r.max_total),
                    _cell(r.detail[:200])])
    return buf.getvalue()


_MD_SPECIAL = re.compile(r"([\\`*\[\]|~])|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")


def _md(text: str) -> str:
    """Text that may come from the learner, made inert in Markdown and HTML: one line, valid
    UTF-8, no tags or entities, every Markdown punctuation mark escaped."""
    text = clean_text(text).replace("\r", " ").replace("\n", " ")
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(lambda m: "\\" + m.group(0), text)


def feedback_markdown(r: SubmissionResult, set_id: str, limits: Limits | None = None, mode_line: str = "") -> str:
    limits = limits or Limits()
    lines = [f"# Feedback: exercise set {set_id}", "",
             f"- student: {_md(r.submission.student)}",
             f"- submission: {_md(r.submission.label)}",
             f"- status: **{r.status}** ({STATUS_MEANING[r.status]})",
             f"- points: **{fmt_points(r.total)} / {fmt_points(r.max_total)}**", ""]
    if r.status == "invalid-notebook" or r.status == "grader-error":
        lines += [f"Reason: {_md(r.detail)}", ""]
    lines += ["## Questions", "", "| question | points | verdict |", "|---|---|---|"]
    for q in r.questions:
        lines.append(f"| `{q.name}` | {fmt_points(q.points)} / {fmt_points(q.max_points)} | {_md(q.message)} |")
    lines.append("")
    notes = [(q, d) for q in r.questions for d in q.details]
    if notes:
        lines += ["Details:", ""] + [f"- `{q.name}`: {_md(d)}" for q, d in notes] + [""]
    if r.incidents or r.cell_errors:
        lines += ["## While running the notebook", ""]
        lines += [f"- {_md(x)}" for x in r.incidents + r.cell_errors] + [""]
    cell = f"{limits.cell_timeout:g} s per cell, " if limits.cell_timeout else ""
    call = f"{limits.call_timeout:g} s per graded call, " if limits.call_timeout else ""
    lines += ["Each function was called on fresh random inputs drawn by the grader, outside your notebook; "
              "the inputs' shapes are listed where an answer was wrong.", "",
              f"Limits of this grading: {cell}{call}{limits.timeout:g} s per run of the notebook; "
              f"{limits.memory_mb} MB of memory per process, {limits.run_memory_mb} MB per run; {limits.disk_mb} MB "
              f"of files; notebooks up to "
              f"{limits.max_notebook_mb} MB.", ""]
    return "\n".join(lines)


def report_markdown(set_id: str, results: list[SubmissionResult], protections_lines: list[str], seed: int,
                    ignored: list[str], seconds: float, jobs: int, command: str, mode_line: str = "",
                    resumed: int = 0) -> str:
    counts = {s: sum(r.status == s for r in results) for s in STATUSES}
    lines = [f"# Grading report: exercise set {set_id}", "", "## Sandbox", "", *protections_lines, "",
             *([mode_line, ""] if mode_line else []),
             "## Run", "",
             f"- command: `{command}`",
             f"- seed: {seed} (regrade identically with `--seed {seed}`)",
             f"- submissions: {len(results)}, graded in {seconds:.1f} s with {jobs} parallel job(s)"
             + (f"; {resumed} result(s) taken over from an interrupted run" if resumed else ""),
             "- statuses: " + ", ".join(f"{s} {n}" for s, n in counts.items() if n), ""]
    look = [r for r in results if r.status in ("grader-error", "timeout")]
    if look:
        lines += ["## Needs a look", "",
                  "grader-error rows are the grader's failures: regrade them (`--only STUDENT`, same seed). A "
                  "timeout can be an honest notebook on a busy machine: the detail names the limit.", ""]
        lines += [f"- {_md(r.submission.student)}: {r.status}: {_md(r.detail[:200])}" for r in look] + [""]
    if ignored:
        lines += ["Ignored entries (not submissions):", ""] + [f"- {_md(x)}" for x in ignored] + [""]
    return "\n".join(lines)


def write_atomic(path: Path, text: str) -> None:
    """Write a file whole or not at all (a short temporary name, whatever the final name)."""
    tmp = path.with_name(f".tmp-{secrets.token_hex(6)}")
    try:
        with open(tmp, "w", encoding="utf-8", errors="replace") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)
