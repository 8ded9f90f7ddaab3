"""The instructor's grader against honest, mistaken and hostile submissions.

One grading run (two parallel jobs, short limits) grades every case of `grading_cases`; the
tests then read its gradebook. It runs in whatever sandbox this machine gives (the full one
when the tests run as root with namespaces and cgroups); a case that relies on a protection
this machine cannot provide (see the report's sandbox header) is skipped with that reason; all
the others must pass. The weaker (fallback) sandbox, resuming, path independence and the
other whole-run properties are tested in test_grading_hostile.py.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from grading_cases import FULL, MARKUP_NAME, NOTEBOOK, POINTS, ROOT, adversarial, solution, write  # noqa: E402

from rnncourse.exercises import SETS, questions  # noqa: E402
from rnncourse.grading import Limits, grade  # noqa: E402
from rnncourse.grading.runner import draw_inputs, read_cells  # noqa: E402

# Short, for the bomb cases; roomy enough for a loaded CI machine (an honest run takes < 1 s of CPU).
LIMITS = Limits(timeout=20, cell_timeout=10, call_timeout=5, memory_mb=512, nproc=32, disk_mb=64)
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
           MPLBACKEND="Agg", PYTHONHASHSEED="0")


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def reset_peak_memory() -> int | None:
    """Reset this process's peak resident memory (Linux: VmHWM) to its current resident memory
    and return that (kB), so that what grading adds can be read afterwards, whatever the test
    session loaded before (Keras, Numba: several hundred MB, more or less depending on which
    tests this worker ran first). None where the kernel does not allow it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return _status_kb("VmRSS")
    except (OSError, KeyError):
        return None


def peak_growth_kb(baseline_kb: int | None) -> int:
    """How far this process's resident memory peaked above `baseline_kb` since
    `reset_peak_memory`; where that failed, the whole session's peak (getrusage), which can
    only overstate the grader's."""
    if baseline_kb is not None:
        return _status_kb("VmHWM") - baseline_kb
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    base = tmp_path_factory.mktemp("grading")
    subs, out = base / "submissions", base / "out"
    subs.mkdir()
    (out / "feedback").mkdir(parents=True)
    (out / "gradebook.csv").write_text("a previous gradebook\n")
    world = Path(tempfile.mkdtemp(prefix="grading-world-"))
    os.chmod(world, 0o777)
    ctx = {"out_dir": out, "other_submission": subs / f"correct_{NOTEBOOK}.ipynb", "world_writable": world}
    expected = adversarial(subs, ctx)
    before = sha(ctx["other_submission"])
    baseline_kb = reset_peak_memory()
    run = grade("ex03", subs, out, seed=20240611, limits=LIMITS, jobs=2, allow_weaker=True)
    yield {"run": run, "expected": expected, "ctx": ctx, "other_before": before, "out": out, "subs": subs,
           "peak_growth_kb": peak_growth_kb(baseline_kb), "baseline_kb": baseline_kb}
    shutil.rmtree(world, ignore_errors=True)
    (ROOT / "PWNED.txt").unlink(missing_ok=True)  # only there if the sandbox failed


def provided(run, what) -> bool:
    return all(any(run.protections.active.get(k) for k in key.split("|")) for key in what)


def needs(run, what):
    """Skip, naming the protection, when this machine cannot provide what a case relies on."""
    for key in what:
        if not provided(run, [key]):
            notes = "; ".join(run.protections.notes.get(k, "") for k in key.split("|"))
            pytest.skip(f"this machine cannot provide the '{key}' protection: {notes}")


STUDENTS = ["correct", "wrong", "off_by_one", "raises", "loop_top", "loop_function", "sleep_one_function",
            "memory_bomb", "memory_bomb_function", "fork_bomb", "os_exit", "os_exit_function", "segfault",
            "invalid_json", "empty_file", "empty_notebook", "not_a_notebook", "renamed", "monkeypatch_numpy",
            "fake_equality", "nan_output", "read_solutions", "write_outside", "network", "print_megabytes",
            "float32", "returns_list", "forged_results", "kill_everything", "sys_exit", "syntax_error",
            "magics_and_points_hack", "markup_in_error", "transposed",
            # issue 14
            "surrogate_error", "caf\ufffd", "x" * 229, MARKUP_NAME, "a b", "a_b", "deep_directory",
            "sysv_leaker_1", "sysv_leaker_2", "shared_memory_bomb", "disk_filler", "setsid_cpu_hog", "output_flood",
            "inputs_unreadable", "notebook_features", "complex_answer", "longdouble_answer", "unstable_softmax",
            "mutates_input", "u_not_transposed", "index_error_in_loop", "zero_d_answer", "nbformat3",
            "slow_cells_fast_calls", "bptt_wraps_to_last_state",
            # notebooks edited by hand: cells deleted, copied, their ids repeated
            "check_cells_deleted", "answer_cell_deleted", "answer_cell_duplicated", "answer_redefined_wrong_below",
            "duplicate_cell_ids"]


def test_every_case_is_listed(graded):
    assert sorted(graded["expected"]) == sorted(STUDENTS)


@pytest.mark.parametrize("student", STUDENTS)
def test_status_and_points(graded, student):
    run, expect = graded["run"], graded["expected"][student]
    needs(run, expect.needs)
    row = run.row(student)
    points = {q.id: q.points for q in row.questions}
    messages = {q.id: q.message for q in row.questions}
    assert row.status == expect.status, (row.detail, row.incidents, row.cell_errors, messages)
    for qid, full in POINTS.items():
        assert points[qid] == (0 if qid in expect.zero else full), (qid, messages[qid])
    assert row.total == expect.total
    assert row.max_total == FULL
    for qid, text in expect.message.items():
        assert text in messages[qid], messages[qid]


def test_gradebook_has_one_row_per_submission(graded):
    rows = list(csv.DictReader((graded["out"] / "gradebook.csv").open(encoding="utf-8")))
    assert sorted(r["student"] for r in rows) == sorted(STUDENTS)
    assert list(rows[0]) == ["student", "submission", "status", *POINTS, "total", "max", "detail"]
    by_student = {r["student"]: r for r in rows}
    assert by_student["correct"]["status"] == "ok" and by_student["correct"]["total"] == str(FULL)
    for student, expect in graded["expected"].items():
        if provided(graded["run"], expect.needs):
            assert by_student[student]["status"] == expect.status
            assert float(by_student[student]["total"]) == expect.total


def test_limits_are_named_in_the_feedback(graded):
    run = graded["run"]
    assert "per-cell time limit (10 s)" in run.row("loop_top").detail
    assert "per-call time limit (5 s)" in run.row("loop_function").questions[0].message
    assert "endless loop" not in " ".join(q.message for q in run.row("loop_function").questions)
    flood = run.row("output_flood")
    assert "output limit" in flood.detail, flood.detail
    # the flood (400 x 700 kB per pipe, 280 MB) must not have grown the grader's own memory: it
    # reads and discards. The bound is on the growth while grading, not on the process's total,
    # which depends on what this test worker had loaded before (the total once passed 1 GB).
    growth = graded["peak_growth_kb"]
    print(f"grader's resident memory: {graded['baseline_kb']} kB before grading, peak growth {growth} kB")
    assert growth < 200_000, f"the grader's process grew by {growth} kB while grading, over 200 MB"
    if provided(run, ("memory",)):
        bomb = run.row("shared_memory_bomb")
        assert "memory limit (640 MB for all its processes, shared memory and files together)" in bomb.detail, bomb.detail
    assert "memory limit (512 MB per process)" in run.row("memory_bomb").detail
    if provided(run, ("disk",)):
        assert "No space left on device" in " ".join(run.row("disk_filler").cell_errors)


def test_self_check_diagnoses_reach_the_gradebook(graded):
    run = graded["run"]
    msg = {s: " ".join(q.message for q in run.row(s).questions) for s in
           ("unstable_softmax", "mutates_input", "u_not_transposed", "index_error_in_loop", "complex_answer")}
    assert "subtract each row's maximum" in msg["unstable_softmax"]
    assert "changed its input `dh_next` in place" in msg["mutates_input"]
    assert "Backpropagation through time, derived" in msg["u_not_transposed"]
    assert "likely mistake: an index ran past the end" in msg["index_error_in_loop"]
    assert "complex numbers (dtype complex128)" in msg["complex_answer"]


def test_feedback_per_submission_without_the_reference(graded):
    files = sorted((graded["out"] / "feedback").glob("*.md"))
    assert len(files) == len(STUDENTS)
    assert all(len(f.name.encode()) <= 100 and f.name.isascii() for f in files)
    reference_bits = ["BEGIN SOLUTION", "def rnn_step_backward", "h_prev.T @ dz", "np.log(65)", "math.log",
                      "4.174", "lengths - 1]", "dz.sum(axis=0)"]
    for f in files:
        text = f.read_text(encoding="utf-8")
        for bit in reference_bits:
            assert bit not in text, (f.name, bit)
    markup = (graded["out"] / "feedback" / "markup_in_error.md").read_text(encoding="utf-8")
    assert "<script>" not in markup and "&lt;script&gt;" in markup and len(markup) < 6000
    wrong = (graded["out"] / "feedback" / "wrong.md").read_text(encoding="utf-8")
    assert "likely mistake: the tanh derivative is missing" in wrong
    assert "inputs were: dh_next (" in wrong  # shapes, not values
    named = [f.read_text(encoding="utf-8") for f in files if f.name.startswith("bold")]
    assert len(named) == 1 and "\\*\\*bold\\*\\* \\[x\\](javascript:alert(1)) &lt;b&gt;" in named[0]
    assert len([f for f in files if f.name.startswith("a_b")]) == 2  # "a b" and "a_b" do not collide
    surrogate = [f.read_text(encoding="utf-8") for f in files if f.name.startswith("surrogate_error")][0]
    assert "bad \ufffd text" in surrogate  # the lone surrogate, made valid UTF-8


def test_attacks_changed_nothing_outside_the_sandbox(graded):
    needs(graded["run"], ("files",))
    ctx = graded["ctx"]
    assert sha(ctx["other_submission"]) == graded["other_before"]
    assert not (ROOT / "PWNED.txt").exists()
    assert not (ctx["world_writable"] / "escaped.txt").exists()
    assert "pwned" not in (graded["out"] / "gradebook.csv").read_text()
    assert "pwned" not in (graded["out"] / "feedback" / "correct.md").read_text()


def test_no_sandbox_process_survives(graded):
    run = graded["run"]
    needs(run, ("user",))
    left = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid in run.protections.uids:
                    left.append(entry)
            except OSError:
                pass
    assert not left


def test_report_lists_the_protections_first(graded):
    report = (graded["out"] / "report.md").read_text(encoding="utf-8")
    lines = report.splitlines()
    assert lines[0] == "# Grading report: exercise set ex03"
    assert lines[2] == "## Sandbox"
    for word in ("unprivileged user", "private file system", "no network", "PID namespace (", "private IPC",
                 "memory limit", "process limit", "CPU limit", "disk quota", "output limit", "time limits",
                 "nothing left behind"):
        assert sum(word in line for line in lines[3:16]) == 1, word
    assert lines[17].startswith("Sandbox mode: **")
    assert "seed: 20240611" in report


def test_report_says_what_is_not_active():
    from rnncourse.grading.sandbox import Protections

    p = Protections(active={"user": False, "files": True}, notes={"user": "the grader is not root"})
    lines = p.describe(Limits())
    assert any("separate unprivileged user: NOT ACTIVE (the grader is not root)" in line for line in lines)
    assert any("private file system" in line and ": active" in line for line in lines)
    assert "WEAKER" in p.mode_line() and "user" in p.mode_line()


def test_regrade_with_the_same_seed_is_identical(tmp_path):
    sol = solution()
    subs = tmp_path / "subs"
    subs.mkdir()
    write(sol, subs / f"ann_{NOTEBOOK}.ipynb")
    nb = json.loads(json.dumps(sol))
    for cell in nb["cells"]:
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "last_hidden_state_code":
            cell["source"] = "def last_hidden_state(h, lengths):\n    return h[:, -1]\n"
    write(nb, subs / f"ben_{NOTEBOOK}.ipynb")
    outs = []
    for k in range(2):
        grade("ex03", subs, tmp_path / f"out{k}", seed=7, limits=LIMITS, jobs=2, allow_weaker=True)
        outs.append([(tmp_path / f"out{k}" / name).read_text() for name in
                     ("gradebook.csv", "feedback/ann.md", "feedback/ben.md")])
    assert outs[0] == outs[1]
    assert "after the padding" in outs[0][2]


def test_inputs_depend_on_seed_and_submission_only():
    qs = list(questions("ex03").values())
    a = draw_inputs(qs, 1, "alice.ipynb")
    assert all(np.array_equal(a[k][n], draw_inputs(qs, 1, "alice.ipynb")[k][n]) for k in a for n in a[k])
    b = draw_inputs(qs, 2, "alice.ipynb")
    c = draw_inputs(qs, 1, "bob.ipynb")
    key = ("rnn_step_backward", 0)
    assert not np.array_equal(a[key]["dh_next"].ravel()[:2], b[key]["dh_next"].ravel()[:2])
    assert not np.array_equal(a[key]["dh_next"].ravel()[:2], c[key]["dh_next"].ravel()[:2])


def test_magics_become_inert_calls(tmp_path):
    nb = {"cells": [{"cell_type": "code", "source": ["%matplotlib inline\n", "x = 1\n", "!rm -rf /\n"]},
                    {"cell_type": "markdown", "source": "text"}, {"cell_type": "code", "source": "  "}]}
    cells = read_cells(write(nb, tmp_path / "m.ipynb"))
    assert len(cells) == 1 and cells[0]["index"] == 0
    assert "get_ipython()" in cells[0]["code"] and "x = 1" in cells[0]["code"]


def test_cli_with_nbgrader_layout(tmp_path):
    sol = solution()
    root = tmp_path / "course"
    for student in ("amy", "bo"):
        d = root / "submitted" / student / "ex03_numpy_rnn"
        d.mkdir(parents=True)
        write(sol, d / f"{NOTEBOOK}.ipynb")
    (root / "submitted" / "cy" / "ex03").mkdir(parents=True)  # a student who handed in nothing
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "rnncourse.grading", "ex03", str(root), "--out", str(out),
                           "--seed", "3", "--timeout", "20", "--jobs", "2", "--quiet", "--allow-weaker-sandbox"],
                          capture_output=True, text=True, env=ENV, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("# Grading report: exercise set ex03\n\n## Sandbox")
    rows = list(csv.DictReader((out / "gradebook.csv").open()))
    assert [(r["student"], r["status"], r["total"]) for r in rows] == [
        ("amy", "ok", str(FULL)), ("bo", "ok", str(FULL)), ("cy", "invalid-notebook", "0")]
    assert rows[0]["submission"] == "amy/ex03_numpy_rnn/ex03_numpy_rnn.ipynb"
    assert (out / "feedback" / "cy.md").exists()


def test_cli_rejects_an_unknown_set(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "rnncourse.grading", "ex99", str(tmp_path), "--out",
                           str(tmp_path / "o")], capture_output=True, text=True, env=ENV, timeout=120)
    assert proc.returncode == 2 and "unknown set" in proc.stderr


@pytest.mark.parametrize("set_id", sorted(SETS))
def test_every_registered_set_grades_its_solution_as_full_marks(tmp_path, set_id):
    """The grader needs no change for a new set: its solution notebook gets every point."""
    src = ROOT / "solutions" / SETS[set_id] / f"{SETS[set_id]}.ipynb"
    if not src.exists():
        pytest.skip(f"no solution notebook {src.relative_to(ROOT)} yet")
    subs = tmp_path / "subs"
    subs.mkdir()
    shutil.copy(src, subs / f"teacher_{SETS[set_id]}.ipynb")
    run = grade(set_id, subs, tmp_path / "out", seed=11, limits=Limits(timeout=120), jobs=1, allow_weaker=True)
    row = run.row("teacher")
    assert row.status == "ok", (row.detail, [q.message for q in row.questions])
    assert row.total == sum(q.points for q in questions(set_id).values())
