"""What the grader writes: the gradebook CSV, one feedback file per submission, a report.

Feedback says, for each question, the verdict and the diagnosis (the likely mistake), and for
the notebook what raised, timed out or died. It never contains the reference solution, and
about the grader's inputs it gives only their shapes. Messages that come from the learner's own
code (exception messages) are cut to a few hundred characters.
"""

from __future__ import annotations

import csv
import io
import os
import re
from pathlib import Path

from .runner import STATUSES, SubmissionResult

STATUS_MEANING = {
    "ok": "everything ran and every answer is right",
    "wrong": "everything ran, but some answers are wrong",
    "error": "a cell raised an error, or a graded function raised or is missing",
    "timeout": "something ran longer than the time limit",
    "kernel-died": "the process running the notebook died (os._exit, a crash, or the memory limit)",
    "invalid-notebook": "the file could not be read as a notebook with code, so nothing ran",
    "grader-error": "the grader failed on this submission (not the student's doing): regrade it",
}


def fmt_points(x: float) -> str:
    return f"{x:g}"


def _cell(text: str) -> str:
    """A CSV cell that a spreadsheet will not read as a formula."""
    text = str(text).replace("\r", " ").replace("\n", " ")
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t") else text


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", text).strip("._") or "student"


def feedback_names(results: list[SubmissionResult]) -> list[str]:
    names, used = [], set()
    for r in results:
        base = safe_name(r.submission.student)
        name, k = base, 2
        while name in used:
            name, k = f"{base}-{k}", k + 1
        used.add(name)
        names.append(name + ".md")
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


def _md(text: str) -> str:
    """Text that may come from the learner's code, made inert in Markdown and HTML: no tags,
    no code spans, no table breaks, one line."""
    text = str(text).replace("\r", " ").replace("\n", " ")
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("|", "\\|").replace("`", "\\`")


def feedback_markdown(r: SubmissionResult, set_id: str) -> str:
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
    lines += ["Each function was called on fresh random inputs drawn by the grader, outside your notebook; "
              "the inputs' shapes are listed where an answer was wrong.", ""]
    return "\n".join(lines)


def report_markdown(set_id: str, results: list[SubmissionResult], protections_lines: list[str], seed: int,
                    ignored: list[str], seconds: float, jobs: int, command: str) -> str:
    counts = {s: sum(r.status == s for r in results) for s in STATUSES}
    lines = [f"# Grading report: exercise set {set_id}", "", "## Sandbox", "", *protections_lines, "",
             "## Run", "",
             f"- command: `{command}`",
             f"- seed: {seed} (regrade identically with `--seed {seed}`)",
             f"- submissions: {len(results)}, graded in {seconds:.1f} s with {jobs} parallel job(s)",
             "- statuses: " + ", ".join(f"{s} {n}" for s, n in counts.items() if n), ""]
    if ignored:
        lines += ["Ignored entries (not submissions):", ""] + [f"- {_md(x)}" for x in ignored] + [""]
    return "\n".join(lines)


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
