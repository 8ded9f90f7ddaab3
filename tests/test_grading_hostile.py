"""Whole-run properties of the grader (issue 14): the weaker (fallback) sandbox, refusing to
grade without permission, resuming an interrupted run, inputs independent of the path typed,
references hidden under a regular install, IPC and keyrings not shared between runs, size
limits. The per-submission cases (full mode where the machine allows it) are in test_grading.py.
"""

from __future__ import annotations

import copy
import csv
import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from grading_cases import (FULL, NOTEBOOK, ROOT, SETSID_HOG, SYSV_LEAK, add_cell, set_code, solution,  # noqa: E402
                           write)

from rnncourse.grading import Limits, SandboxUnavailable, grade  # noqa: E402
from rnncourse.grading import sandbox as sandbox_module  # noqa: E402
from rnncourse.grading.runner import InvalidNotebook, read_cells  # noqa: E402
from rnncourse.grading.sandbox import Sandbox  # noqa: E402

LIMITS = Limits(timeout=20, cell_timeout=10, call_timeout=5, memory_mb=512, nproc=32, disk_mb=64)
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
           MPLBACKEND="Agg", PYTHONHASHSEED="0")
EVERYTHING = "userns,mountns,netns,pidns,ipcns,setuid,cgroup"
LOOP_SOFTMAX = "def temperature_softmax(logits, temperature):\n    while True:\n        pass\n"


def full_sandbox_here() -> tuple[bool, str]:
    with Sandbox(LIMITS) as box:
        p = box.probe()
        return p.full, ", ".join(f"{k}: {p.notes.get(k, '')}" for k in p.missing)


def daemon_cell(marker: Path) -> str:
    """A left-behind process: double fork, new session, writes `marker` after 1.5 s."""
    return ("import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
            f"        time.sleep(1.5)\n        open({str(marker)!r}, 'w').write('left behind')\n"
            "    os._exit(0)\n")


def processes_with_marker(under: Path) -> list[int]:
    """Processes of a grading run (marker in their environment) whose folder is under `under`
    (so that runs of other graders on the same machine are not counted)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/environ", "rb") as f:
                    marked = b"RNNGRADE_RUN=" in f.read()
                if marked and os.readlink(f"/proc/{entry}/cwd").startswith(str(under)):
                    found.append(int(entry))
            except OSError:
                pass
    return found


def descendants(pid: int) -> set[int]:
    parent = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_bytes()
                parent[int(entry)] = int(stat[stat.rindex(b")") + 2:].split()[1])
            except (OSError, ValueError, IndexError):
                pass
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, pp in parent.items() if pp in frontier and p not in found}
        found |= frontier
    return found


# ------------------------------------------------------------------ the weaker (fallback) mode
def test_weaker_sandbox_is_refused_unless_allowed(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNCOURSE_GRADER_DISABLE", "cgroup")
    subs = tmp_path / "subs"
    subs.mkdir()
    write(solution(), subs / f"ann_{NOTEBOOK}.ipynb")
    with pytest.raises(SandboxUnavailable, match="missing: .*memory"):
        grade("ex03", subs, tmp_path / "out", seed=1, limits=LIMITS, jobs=1)
    proc = subprocess.run([sys.executable, "-m", "rnncourse.grading", "ex03", str(subs), "--out",
                           str(tmp_path / "cli"), "--quiet"], capture_output=True, text=True, timeout=300,
                          env=dict(ENV, RNNCOURSE_GRADER_DISABLE="cgroup"))
    assert proc.returncode == 3, proc.stderr
    assert "refusing to grade" in proc.stderr and "--allow-weaker-sandbox" in proc.stderr


def test_without_cgroups_the_report_names_the_per_process_limits(monkeypatch):
    monkeypatch.setenv("RNNCOURSE_GRADER_DISABLE", "cgroup")
    with Sandbox(LIMITS) as box:
        p = box.probe()
        lines = "\n".join(p.describe(LIMITS))
    assert not p.full and {"memory", "processes", "cpu"} <= set(p.missing)
    assert "memory limit 512 MB (RLIMIT_AS, per process): NOT ACTIVE" in lines
    assert "shared memory, memfd and several processes together can exceed the limit" in lines
    assert "WEAKER" in p.mode_line()


def test_fallback_mode_grades_right_and_leaves_nothing_behind(tmp_path, monkeypatch):
    """No namespace, no cgroup, no separate user: the weakest mode. Grades are still right, time
    limits still hold, leftover processes (setsid, double fork) are still killed, a 1,500-level
    folder is still removed, and the report and every feedback file say the sandbox was weaker."""
    monkeypatch.setenv("RNNCOURSE_GRADER_DISABLE", EVERYTHING)
    work = tmp_path / "tmp"
    work.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(work))
    marker = tmp_path / "left_behind.txt"
    sol = solution()
    subs = tmp_path / "subs"
    subs.mkdir()
    write(sol, subs / f"ann_{NOTEBOOK}.ipynb")
    write(set_code(copy.deepcopy(sol), "temperature_softmax_code", LOOP_SOFTMAX), subs / f"ben_{NOTEBOOK}.ipynb")
    nb = add_cell(copy.deepcopy(sol), daemon_cell(marker), position=2)
    add_cell(nb, SETSID_HOG, position=3)
    add_cell(nb, "import os\nbase = os.getcwd()\nfor _ in range(1500):\n    os.mkdir('d')\n    os.chdir('d')\n"
                 "os.chdir(base)\n")
    write(nb, subs / f"cy_{NOTEBOOK}.ipynb")
    run = grade("ex03", subs, tmp_path / "out", seed=5, limits=LIMITS, jobs=2, allow_weaker=True)
    assert [(r.submission.student, r.status, r.total) for r in run.results] == [
        ("ann", "ok", FULL), ("ben", "timeout", FULL - 2), ("cy", "ok", FULL)], [r.detail for r in run.results]
    assert "per-call time limit (5 s)" in run.row("ben").detail
    time.sleep(2.5)
    assert not marker.exists(), "a left-behind process survived the run"
    assert not processes_with_marker(work)
    assert os.listdir(work) == [], "the sandbox's work folder was left behind"
    report = (tmp_path / "out" / "report.md").read_text()
    header = report.split("## Run")[0]
    for text in ("separate unprivileged user: NOT ACTIVE", "no network (empty network namespace): NOT ACTIVE",
                 "PID namespace (the submission sees only its own processes): NOT ACTIVE",
                 "memory limit 512 MB (RLIMIT_AS, per process): NOT ACTIVE", "disk quota 64 MB", "WEAKER"):
        assert text in header, header
    assert "Sandbox mode: WEAKER" in (tmp_path / "out" / "feedback" / "ann.md").read_text()


# ------------------------------------------------------------------ resuming
def test_an_interrupted_run_resumes(tmp_path):
    """The grader is killed half-way: the next run with the same output folder keeps what was
    written (same seed), grades only the rest, and every submission has a row."""
    sol = add_cell(solution(), "import time\ntime.sleep(1.0)\n", position=2)
    subs, out = tmp_path / "subs", tmp_path / "out"
    subs.mkdir()
    for k in range(6):
        write(sol, subs / f"s{k}_{NOTEBOOK}.ipynb")
    cmd = [sys.executable, "-m", "rnncourse.grading", "ex03", str(subs), "--out", str(out), "--jobs", "1",
           "--quiet", "--allow-weaker-sandbox", "--timeout", "30"]
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    journal = out / "progress.jsonl"
    deadline = time.monotonic() + 240
    running: set[int] = set()
    while time.monotonic() < deadline and proc.poll() is None:
        if journal.exists() and len(journal.read_text().splitlines()) >= 3:
            running = descendants(proc.pid)  # kill it in the middle of a run
            if running:
                break
        time.sleep(0.05)
    assert running, "the grader had started no run"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(1.0)
    alive = [p for p in running if os.path.exists(f"/proc/{p}") and b"zombie" not in
             Path(f"/proc/{p}/status").read_bytes().lower()] if running else []
    assert not alive, f"runs outlived the killed grader: {alive}"
    lines = journal.read_text().splitlines()
    done_before = len(lines) - 1
    assert 2 <= done_before < 6
    seed = json.loads(lines[0])["seed"]
    rows = list(csv.DictReader((out / "gradebook.csv").open()))
    assert len(rows) >= done_before - 1 and all(r["status"] == "ok" for r in rows)  # written as each finished
    time.sleep(0.5)
    proc = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert f"seed: {seed}" in proc.stdout
    assert f"{done_before} result(s) taken over from an interrupted run" in proc.stdout
    rows = list(csv.DictReader((out / "gradebook.csv").open()))
    assert [r["student"] for r in rows] == [f"s{k}" for k in range(6)]
    assert all(r["status"] == "ok" and r["total"] == str(FULL) for r in rows)
    assert json.loads(journal.read_text().splitlines()[-1]) == {"finished": True}


# ------------------------------------------------------------------ inputs and references
def test_inputs_do_not_depend_on_the_path_typed(tmp_path):
    sol = solution()
    nb = set_code(copy.deepcopy(sol), "rnn_step_backward_code",
                  "def rnn_step_backward(dh_next, x_t, h_prev, h_next, kernel, recurrent_kernel):\n"
                  "    dz = dh_next\n"
                  "    return dz @ kernel.T, dz @ recurrent_kernel.T, x_t.T @ dz, h_prev.T @ dz, dz.sum(axis=0)\n")
    course = tmp_path / "course"
    for student, notebook in (("amy", sol), ("bo", nb)):
        d = course / "submitted" / student / "ex03"
        d.mkdir(parents=True)
        write(notebook, d / f"{NOTEBOOK}.ipynb")
    outs = []
    for k, folder in enumerate((course, course / "submitted")):
        grade("ex03", folder, tmp_path / f"out{k}", seed=9, limits=LIMITS, jobs=2, allow_weaker=True)
        outs.append([(tmp_path / f"out{k}" / n).read_bytes() for n in ("gradebook.csv", "feedback/bo.md")])
    assert outs[0] == outs[1]
    assert b"inputs were:" in outs[0][1]


def test_references_are_hidden_under_a_regular_install(tmp_path, monkeypatch):
    """pip install (not editable) puts rnncourse, references included, in site-packages: inside
    the sandbox that copy is covered by the stub, so neither import nor reading the file works."""
    site_dir = tmp_path / "site-packages"
    shutil.copytree(ROOT / "rnncourse", site_dir / "rnncourse", ignore=shutil.ignore_patterns("__pycache__"))
    os.chmod(tmp_path, 0o755)
    real = sandbox_module._child_sys_path
    monkeypatch.setattr(sandbox_module, "_child_sys_path", lambda: [str(site_dir), *real()])
    spy = ("import os, sys, importlib\nleaks = []\n"
           "for p in sys.path:\n"
           "    f = os.path.join(p, 'rnncourse', 'exercises', 'ex03_numpy_rnn.py')\n"
           "    if os.path.exists(f):\n        leaks.append(f)\n"
           "try:\n    importlib.import_module('rnncourse.exercises.ex03_numpy_rnn')\n"
           "    leaks.append('import')\nexcept ImportError:\n    pass\n"
           "if leaks:\n    raise RuntimeError(f'references reachable: {leaks}')\n")
    subs = tmp_path / "subs"
    subs.mkdir()
    write(add_cell(solution(), spy), subs / f"spy_{NOTEBOOK}.ipynb")
    run = grade("ex03", subs, tmp_path / "out", seed=2, limits=LIMITS, jobs=1, allow_weaker=True)
    if not run.protections.active.get("files"):
        pytest.skip("no private file system here: " + run.protections.notes.get("files", ""))
    row = run.row("spy")
    assert row.status == "ok", (row.detail, row.cell_errors)


def test_ipc_objects_and_keys_do_not_reach_the_next_run(tmp_path):
    """Two submissions in turn on the same sandbox uid: the second finds nothing the first left
    (System V segment and queue, a key in the uid's keyring), and the host keeps nothing."""
    subs = tmp_path / "subs"
    subs.mkdir()
    for student in ("first", "second"):
        write(add_cell(solution(), SYSV_LEAK), subs / f"{student}_{NOTEBOOK}.ipynb")
    run = grade("ex03", subs, tmp_path / "out", seed=3, limits=LIMITS, jobs=1, allow_weaker=True)
    if not run.protections.active.get("ipc"):
        pytest.skip("no IPC isolation here: " + run.protections.notes.get("ipc", ""))
    assert [r.status for r in run.results] == ["ok", "ok"], [r.cell_errors for r in run.results]
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.shmget(0x5EED14, 0, 0) < 0 and libc.msgget(0x5EED14, 0) < 0


# ------------------------------------------------------------------ sizes
def test_size_limit_is_stated_and_a_25_mb_notebook_is_graded(tmp_path):
    nb = solution()
    nb["cells"][0].setdefault("outputs", []).append(
        {"output_type": "display_data", "metadata": {}, "data": {"image/png": "A" * (25 * 2**20)}})
    path = write(nb, tmp_path / f"big_{NOTEBOOK}.ipynb")
    assert path.stat().st_size > 25 * 2**20
    assert len(read_cells(path)) > 5  # the default limit (100 MB) reads it
    with pytest.raises(InvalidNotebook, match=r"more than the limit of 20 MB \(clear large outputs"):
        read_cells(path, max_bytes=20 * 2**20)
    subs = tmp_path / "subs"
    subs.mkdir()
    shutil.move(str(path), subs / path.name)
    run = grade("ex03", subs, tmp_path / "out", seed=4, limits=Limits(timeout=30, max_notebook_mb=20), jobs=1,
                allow_weaker=True)
    row = run.row("big")
    assert row.status == "invalid-notebook" and "limit of 20 MB" in row.detail
    feedback = (tmp_path / "out" / "feedback" / "big.md").read_text()
    assert "limit of 20 MB" in feedback and "notebooks up to 20 MB" in feedback


def test_full_sandbox_when_run_as_root():
    """Where the tests run as root on a machine with namespaces and cgroups (this project's CI),
    the full sandbox must be available: otherwise the adversarial cases above ran weaker."""
    if os.geteuid() != 0:
        pytest.skip("not root: the full sandbox needs root")
    full, missing = full_sandbox_here()
    writable = [p for p in ("/sys/fs/cgroup/memory", "/sys/fs/cgroup/cgroup.controllers")
                if os.path.exists(p) and os.access(p, os.W_OK)]
    if not full and not writable:
        pytest.skip(f"no writable cgroup file system (a container?): {missing}")
    assert full, missing


def test_names_that_differ_only_in_undecodable_bytes_keep_two_rows(tmp_path):
    subs = tmp_path / "subs"
    subs.mkdir()
    for raw in (b"caf\xe9", b"caf\xe8"):
        (Path(os.fsdecode(os.fsencode(str(subs)) + b"/" + raw + f"_{NOTEBOOK}.ipynb".encode()))).write_text("{")
    run = grade("ex03", subs, tmp_path / "out", seed=1, limits=LIMITS, jobs=1, allow_weaker=True)
    assert [r.status for r in run.results] == ["invalid-notebook", "invalid-notebook"]
    assert len({r.submission.key for r in run.results}) == 2
    assert len(list((tmp_path / "out" / "feedback").glob("*.md"))) == 2
    rows = list(csv.DictReader((tmp_path / "out" / "gradebook.csv").open(encoding="utf-8")))
    assert [r["student"] for r in rows] == ["caf\ufffd", "caf\ufffd"]


def test_a_killed_graders_leftovers_are_cleaned_up(tmp_path, monkeypatch):
    """Work folders (and cgroups) named after a grader whose process is gone are removed by the
    next grader; those of a live grader are not."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = 4_194_305  # above the largest pid_max (2**22): no such process
    stale = tmp_path / f"rnngrade-{dead}-abc123"
    (stale / "lib").mkdir(parents=True)
    live = tmp_path / f"rnngrade-{os.getpid()}-def456"
    live.mkdir()
    with Sandbox(LIMITS) as box:
        assert box.work.parent == tmp_path
    assert not stale.exists() and live.exists()


def test_cpu_time_budget_of_a_run(tmp_path):
    """All processes of a run together get `cpu_seconds` of CPU; the feedback says so."""
    subs = tmp_path / "subs"
    subs.mkdir()
    spin = "import time\nstart = time.process_time()\nwhile time.process_time() - start < 60:\n    pass\n"
    write(add_cell(solution(), spin, position=2), subs / f"spin_{NOTEBOOK}.ipynb")
    limits = Limits(timeout=60, cell_timeout=None, call_timeout=None, cpu_seconds=2, memory_mb=512, disk_mb=64)
    run = grade("ex03", subs, tmp_path / "out", seed=1, limits=limits, jobs=1, allow_weaker=True)
    if not run.protections.cgroup:
        pytest.skip("no cgroups here: the CPU budget is per process (RLIMIT_CPU)")
    row = run.row("spin")
    assert row.status == "timeout" and row.total == FULL, row.detail
    assert "used up its CPU time (2 s for all its processes together)" in row.detail, row.detail


def test_regrade_one_student_with_the_class_seed(tmp_path):
    """--only regrades a few students; with the class's seed their rows are the class run's."""
    sol = solution()
    subs = tmp_path / "subs"
    subs.mkdir()
    write(sol, subs / f"ann_{NOTEBOOK}.ipynb")
    write(set_code(copy.deepcopy(sol), "temperature_softmax_code", LOOP_SOFTMAX.replace("while True", "while 1")),
          subs / f"ben_{NOTEBOOK}.ipynb")
    limits = Limits(timeout=12, cell_timeout=6, call_timeout=2, memory_mb=512, nproc=32, disk_mb=64)
    whole = grade("ex03", subs, tmp_path / "all", seed=8, limits=limits, jobs=2, allow_weaker=True)
    one = grade("ex03", subs, tmp_path / "one", seed=8, limits=limits, jobs=1, allow_weaker=True, only=["ben"])
    assert [r.submission.student for r in one.results] == ["ben"]
    assert (tmp_path / "one" / "feedback" / "ben.md").read_bytes() == (tmp_path / "all" / "feedback" / "ben.md").read_bytes()
    report = (tmp_path / "all" / "report.md").read_text()
    assert "## Needs a look" in report and "- ben: timeout: the call of temperature_softmax" in report
    with pytest.raises(KeyError, match="no submission of zed"):
        grade("ex03", subs, tmp_path / "x", seed=8, limits=limits, only=["zed"], allow_weaker=True)
