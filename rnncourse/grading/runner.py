"""Grading one submission: read the notebook, run it in the sandbox, judge in this process.

Statuses (one per submission; the first that applies, in this order):

    invalid-notebook  the file is not JSON, not a notebook (no list of cells), or has no code;
                      or no notebook was found for the student. Nothing ran; 0 points.
    kernel-died       the process running the submission ended before finishing: os._exit,
                      sys.exit from C code, a signal (segfault, kill), or the memory limit
                      (a MemoryError is treated as fatal, as an out-of-memory kill would be).
    timeout           a run exceeded the wall-clock limit (a cell, or one function call).
    error             a top-level cell raised (NameError, NotImplementedError, SyntaxError, ...)
                      or a graded function raised on the grader's inputs, or is missing.
    wrong             everything ran, but some answer is wrong.
    ok                everything ran and every answer is right (full marks).
    grader-error      the grader itself failed on this submission (a bug or a broken machine,
                      never the student's doing): regrade it.

When a cell or a function call kills the run or times out, the grader notes it, runs the
notebook again without that cell (or without calling that function again) and carries on, so
one bad cell costs that cell, not the whole notebook. At most `max_runs` runs per submission.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import shutil
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..exercises import SETS, questions
from ..exercises.core import Question, Verdict, compare_function, compare_value
from .sandbox import LAUNCHER_FAILED, MEMORY_EXIT, Sandbox

STATUSES = ("ok", "wrong", "error", "timeout", "kernel-died", "invalid-notebook", "grader-error")
SEVERITY = {"ok": 0, "wrong": 1, "error": 2, "timeout": 3, "kernel-died": 4, "invalid-notebook": 5, "grader-error": 6}
MAX_NOTEBOOK_BYTES = 20 * 2**20
MAX_ANSWER_BYTES = 32 * 2**20
TRIALS = 3


# --------------------------------------------------------------------------- submissions
@dataclass
class Submission:
    student: str
    path: Path | None          # None: the student's folder holds no notebook for this set
    label: str                 # the path shown in the gradebook, relative to the submissions folder


def notebook_name(set_id: str) -> str:
    return SETS[set_id]


def discover(set_id: str, folder: Path) -> tuple[list[Submission], list[str]]:
    """Submissions in `folder`, flat (`<student>_<notebook>.ipynb`) or nbgrader's layout
    (`[submitted/]<student>/<set or notebook>/<notebook>.ipynb`). Returns them and the names
    of entries that were ignored."""
    folder = Path(folder)
    nb = notebook_name(set_id)
    subs, ignored = [], []
    root = folder / "submitted" if (folder / "submitted").is_dir() else folder
    for entry in sorted(root.iterdir()):
        if entry.is_file() and entry.name.endswith(".ipynb"):
            stem = entry.name[: -len(".ipynb")]
            student = stem[: -len(nb) - 1] if stem.endswith("_" + nb) and len(stem) > len(nb) + 1 else stem
            subs.append(Submission(student, entry, str(entry.relative_to(folder))))
        elif entry.is_dir() and not entry.name.startswith("."):
            set_dir = next((entry / name for name in (set_id, nb) if (entry / name).is_dir()), None)
            if set_dir is None:
                ignored.append(str(entry.relative_to(folder)) + "/ (no folder " + f"{set_id}/ or {nb}/)")
                continue
            found = sorted(p for p in set_dir.glob("*.ipynb") if p.is_file())
            preferred = [p for p in found if p.name == nb + ".ipynb"]
            path = preferred[0] if preferred else (found[0] if len(found) == 1 else None)
            label = str(path.relative_to(folder)) if path else str(set_dir.relative_to(folder)) + "/"
            subs.append(Submission(entry.name, path, label))
        else:
            ignored.append(str(entry.relative_to(folder)))
    return subs, ignored


# --------------------------------------------------------------------------- notebooks
class InvalidNotebook(Exception):
    pass


def _magics_transformer():
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        return TransformerManager().transform_cell
    except Exception:  # no IPython: comment out magics and shell escapes by hand
        def transform(src: str) -> str:
            if src.lstrip().startswith("%%"):
                return ""
            return re.sub(r"(?m)^(\s*)([%!])", r"\1# \2", src)

        return transform


_TRANSFORM = None


def read_cells(path: Path | None) -> list[dict]:
    """The code cells of a notebook, magics turned into calls of a stub get_ipython()."""
    global _TRANSFORM
    if path is None:
        raise InvalidNotebook("no notebook was submitted")
    size = path.stat().st_size
    if size == 0:
        raise InvalidNotebook("the file is empty")
    if size > MAX_NOTEBOOK_BYTES:
        raise InvalidNotebook(f"the file is {size / 2**20:.0f} MB, more than {MAX_NOTEBOOK_BYTES // 2**20} MB")
    try:
        nb = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InvalidNotebook(f"not valid JSON ({type(exc).__name__})") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise InvalidNotebook("JSON, but not a Jupyter notebook (no list of cells)")
    if _TRANSFORM is None:
        _TRANSFORM = _magics_transformer()
    cells = []
    for index, cell in enumerate(nb["cells"]):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        src = cell.get("source", "")
        if isinstance(src, list):
            src = "".join(s for s in src if isinstance(s, str))
        if not isinstance(src, str) or not src.strip():
            continue
        try:
            code = _TRANSFORM(src)
        except Exception:
            code = src
        head = next((line.strip() for line in src.splitlines() if line.strip()), "")
        cells.append({"index": index, "code": code, "head": head[:50] + ("..." if len(head) > 50 else "")})
    if not cells:
        raise InvalidNotebook("the notebook has no code")
    return cells


# --------------------------------------------------------------------------- inputs
def draw_inputs(qs: list[Question], seed: int, key: str, trials: int = TRIALS) -> dict[tuple[str, int], dict]:
    """Fresh inputs per question and trial, from `seed` and the submission's key: the same
    seed regrades identically, and one student's inputs do not depend on who else is graded."""
    digest = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little")
    inputs = {}
    for k, q in enumerate(qs):
        if q.kind != "function":
            continue
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(digest, k)))
        for t in range(trials):
            inputs[(q.id, t)] = q.make_inputs(rng)
    return inputs


def write_job(run_dir: Path, cells: list[dict], qs: list[Question], inputs: dict, trials: int,
              skip_cells: set[int], skip_questions: set[str]) -> None:
    arrays, specs = {}, []
    for q in qs:
        spec = {"id": q.id, "name": q.name, "kind": q.kind, "trials": trials, "args": [], "scalars": {}}
        if q.kind == "function":
            first = inputs[(q.id, 0)]
            spec["args"] = list(first)
            for name, value in first.items():
                if isinstance(value, (bool, np.bool_)):
                    spec["scalars"][name] = "bool"
                elif isinstance(value, (int, np.integer)):
                    spec["scalars"][name] = "int"
                elif isinstance(value, (float, np.floating)):
                    spec["scalars"][name] = "float"
            for t in range(trials):
                for name, value in inputs[(q.id, t)].items():
                    arrays[f"{q.id}/{t}/{name}"] = np.asarray(value)
        specs.append(spec)
    np.savez(run_dir / "inputs.npz", **arrays)
    job = {"cells": cells, "questions": specs, "skip_cells": sorted(skip_cells),
           "skip_questions": sorted(skip_questions)}
    (run_dir / "job.json").write_text(json.dumps(job), encoding="utf-8")


# --------------------------------------------------------------------------- answers
_DUMMY_TYPES: dict[str, type] = {}


def _stand_in(type_name) -> object:
    """An inert object whose class has the reported name, so that the package's comparison
    gives the same message it would in the notebook ("... got list")."""
    name = re.sub(r"[^\w .()-]", "?", str(type_name))[:60] or "object"
    if name not in _DUMMY_TYPES:
        _DUMMY_TYPES[name] = type(name, (), {"__repr__": lambda self: f"<{name}>"})
    return _DUMMY_TYPES[name]()


def decode_item(item) -> object:
    if not isinstance(item, dict):
        raise ValueError("malformed answer")
    if item.get("k") == "array":
        dtype = np.dtype(str(item["dtype"]))
        if dtype.kind not in "biuf" or dtype.fields is not None or dtype.subdtype is not None or dtype.itemsize > 8:
            raise ValueError("unsupported dtype")
        shape = item["shape"]
        if not isinstance(shape, list) or len(shape) > 32 or not all(type(n) is int and 0 <= n for n in shape):
            raise ValueError("malformed shape")
        data = item["data"]
        if not isinstance(data, str) or len(data) > MAX_ANSWER_BYTES * 4 // 3 + 8:
            raise ValueError("answer too large")
        raw = base64.b64decode(data, validate=True)
        if math.prod(shape) * dtype.itemsize != len(raw):
            raise ValueError("shape and data disagree")
        return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()
    if item.get("k") == "other":
        return _stand_in(item.get("type", "object"))
    raise ValueError("malformed answer")


def decode_output(out) -> object:
    if not isinstance(out, dict) or not isinstance(out.get("items"), list) or len(out["items"]) > 64:
        raise ValueError("malformed answer")
    items = [decode_item(x) for x in out["items"]]
    if out.get("tuple") is True:
        return tuple(items)
    if len(items) != 1:
        raise ValueError("malformed answer")
    return items[0]


def decode_value(value):
    if not isinstance(value, dict):
        raise ValueError("malformed answer")
    k, v = value.get("k"), value.get("v")
    if k == "none":
        return None
    if k == "bool" and isinstance(v, bool):
        return v
    if k == "str" and isinstance(v, str):
        return v[:1000]
    if k == "int" and type(v) is int and abs(v) < 2**63:
        return v
    if k == "float" and isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    if k == "other":
        return _stand_in(value.get("type", "object"))
    raise ValueError("malformed answer")


# --------------------------------------------------------------------------- results
@dataclass
class QuestionResult:
    id: str
    name: str
    points: float
    max_points: float
    category: str          # ok, wrong, error, timeout, kernel-died, not-run
    message: str
    details: list[str] = field(default_factory=list)


@dataclass
class SubmissionResult:
    submission: Submission
    status: str
    questions: list[QuestionResult]
    cell_errors: list[str] = field(default_factory=list)
    incidents: list[str] = field(default_factory=list)
    detail: str = ""
    runs: int = 0
    seconds: float = 0.0

    @property
    def total(self) -> float:
        return sum(q.points for q in self.questions)

    @property
    def max_total(self) -> float:
        return sum(q.max_points for q in self.questions)


def _shapes(inputs: dict) -> str:
    return ", ".join(f"{k} {v.shape}" for k, v in inputs.items() if isinstance(v, np.ndarray))


def judge_function(q: Question, trials: int, answers: dict, inputs: dict) -> tuple[str, Verdict]:
    """The verdict for a function question from the answers the child sent, computed here."""
    for t in range(trials):
        ans = answers.get((q.id, t))
        if ans is None:
            return "error", Verdict(False, f"{q.name}: no answer was received (the notebook stopped before it was called)")
        if ans.get("missing"):
            return "error", Verdict(False, f"{q.name} is not defined: the grader calls a function named exactly "
                                           f"`{q.name}` (was it renamed, or did its cell fail?)")
        if "notcallable" in ans:
            return "error", Verdict(False, f"{q.name} must be a function; it is a {str(ans['notcallable'])[:60]}")
        if "raised" in ans:
            if ans.get("notimpl"):
                return "error", Verdict(False, f"{q.name} is not implemented yet (it raises NotImplementedError)")
            return "error", Verdict(False, f"{q.name} raised {str(ans['raised'])[:400]}",
                                    [f"inputs were: {_shapes(inputs[(q.id, t)])}"])
        try:
            got = decode_output(ans.get("out"))
        except Exception as exc:
            return "wrong", Verdict(False, f"{q.name}: the answer could not be read ({exc})")
        try:
            verdict = compare_function(q, inputs[(q.id, t)], got)
        except Exception as exc:
            return "wrong", Verdict(False, f"{q.name}: the answer could not be compared ({type(exc).__name__})")
        if not verdict:
            verdict.details.append(f"inputs were: {_shapes(inputs[(q.id, t)])}")
            return "wrong", verdict
    return "ok", Verdict(True, f"{q.name}: correct on {trials} random inputs")


def judge_value(q: Question, answers: dict) -> tuple[str, Verdict]:
    ans = answers.get((q.id, 0))
    if ans is None:
        return "error", Verdict(False, f"{q.name}: no answer was received (the notebook stopped before it was read)")
    try:
        value = ans.get("value")
        if isinstance(value, dict) and value.get("k") == "missing":
            return "error", Verdict(False, f"{q.name} is not defined: assign the variable `{q.name}`")
        verdict = compare_value(q, decode_value(value))
    except Exception as exc:
        return "wrong", Verdict(False, f"{q.name}: the answer could not be read ({type(exc).__name__})")
    return ("ok" if verdict else "wrong"), verdict


def _answered(q: Question, answers: dict, trials: int) -> bool:
    """Whether the answers received settle the question (a raise settles it early)."""
    for t in range(trials if q.kind == "function" else 1):
        ans = answers.get((q.id, t))
        if ans is None:
            return False
        if "out" not in ans and "value" not in ans:
            return True
    return True


def _died_reason(res, memory_mb: int) -> str:
    if any(e.get("e") == "memory" for e in res.events) and res.returncode == MEMORY_EXIT:
        return f"the memory limit ({memory_mb} MB) was exceeded"
    rc = res.returncode
    if rc is not None and rc > 128:
        import signal as _signal

        try:
            name = _signal.Signals(rc - 128).name
        except ValueError:
            name = f"signal {rc - 128}"
        return f"the process was killed by {name}"
    return f"the process exited (code {rc}) before the grader was done, e.g. by os._exit or sys.exit"


def grade_submission(sub: Submission, set_id: str, sandbox: Sandbox, slot: int, seed: int,
                     trials: int = TRIALS, max_runs: int = 4) -> SubmissionResult:
    qs = list(questions(set_id).values())
    qres = {q.id: QuestionResult(q.id, q.name, 0.0, float(q.points), "not-run", "not graded") for q in qs}
    try:
        cells = read_cells(sub.path)
    except InvalidNotebook as exc:
        for r in qres.values():
            r.message = "not graded: the notebook could not be read"
        return SubmissionResult(sub, "invalid-notebook", list(qres.values()), detail=str(exc))
    inputs = draw_inputs(qs, seed, sub.label, trials)
    heads = {c["index"]: c["head"] for c in cells}

    def cell_name(i: int) -> str:  # as a reader finds it: counted from 1 among all cells
        return f"cell {i + 1} ({heads.get(i, '')})"

    answers: dict[tuple[str, int], dict] = {}
    cell_errors: dict[int, str] = {}
    incidents: list[str] = []
    stopped: dict[str, tuple[str, str]] = {}  # question id -> (category, message)
    skip_cells: set[int] = set()
    worst = "ok"
    runs, seconds = 0, 0.0
    limits = sandbox.limits
    while runs < max_runs:
        done_q = {q.id for q in qs if q.id in stopped or _answered(q, answers, trials)}
        todo = [q for q in qs if q.id not in done_q]
        if runs and not todo:
            break
        run_dir = sandbox.new_run_dir(slot)
        try:
            write_job(run_dir, cells, qs, inputs, trials, skip_cells, done_q)
            res = sandbox.run(run_dir, slot)
        finally:
            shutil.rmtree(run_dir, ignore_errors=True)
        runs += 1
        seconds += res.wall
        if res.launcher_error or not any(e.get("e") == "ready" for e in res.events) and not res.timed_out \
                and res.returncode == LAUNCHER_FAILED:
            raise RuntimeError(f"the sandbox could not start: {res.launcher_error or 'no reason given'}")
        current = None  # what was running when the run ended: ("cell", i) or ("q", qid)
        finished = False
        for e in res.events:
            kind = e.get("e")
            if kind == "cell" and isinstance(e.get("i"), int):
                current = ("cell", e["i"])
            elif kind == "cell_error" and isinstance(e.get("i"), int):
                cell_errors.setdefault(e["i"], str(e.get("error", ""))[:400])
            elif kind == "cell_end":
                current = None
            elif kind == "q" and isinstance(e.get("id"), str):
                current = ("q", e["id"])
            elif kind == "ans" and isinstance(e.get("id"), str) and isinstance(e.get("t"), int):
                answers[(e["id"], e["t"])] = e
                current = None
            elif kind == "done":
                finished = True
        if finished and res.returncode == 0 and not res.timed_out:
            break
        if res.timed_out:
            what, cat = f"did not finish within {limits.timeout:g} s", "timeout"
        else:
            what, cat = f"stopped the run: {_died_reason(res, limits.memory_mb)}", "kernel-died"
        worst = max(worst, cat, key=SEVERITY.get)
        if current is None:
            incidents.append(f"the run {what} outside any cell or graded call")
            break
        if current[0] == "cell":
            incidents.append(f"{cell_name(current[1])} {what}; the notebook was run again without it")
            skip_cells.add(current[1])
        else:
            qname = next((q.name for q in qs if q.id == current[1]), current[1])
            incidents.append(f"the call of {qname} {what}")
            if current[1] in qres:
                stopped[current[1]] = (cat, f"{qname}: the call {what}" + (
                    " (an endless loop?)" if cat == "timeout" else ""))
    else:
        incidents.append(f"grading stopped after {max_runs} runs")

    status = worst
    for q in qs:
        r = qres[q.id]
        if q.id in stopped:
            r.category, r.message = stopped[q.id]
            continue
        cat, verdict = (judge_function(q, trials, answers, inputs) if q.kind == "function"
                        else judge_value(q, answers))
        r.category, r.message, r.details = cat, verdict.message, list(verdict.details)
        r.points = r.max_points if cat == "ok" else 0.0
    for r in qres.values():
        if r.category in SEVERITY:
            status = max(status, r.category, key=SEVERITY.get)
    errors = [f"{cell_name(i)} raised {msg}" for i, msg in sorted(cell_errors.items())]
    if errors:
        status = max(status, "error", key=SEVERITY.get)
    detail = (incidents + errors + [r.message for r in qres.values() if r.category != "ok"] + [""])[0]
    return SubmissionResult(sub, status, list(qres.values()), errors, incidents, detail, runs, seconds)


def grade_safely(sub: Submission, set_id: str, sandbox: Sandbox, slot: int, seed: int, **kwargs) -> SubmissionResult:
    """Every submission gets a result, whatever happens in the grader."""
    try:
        return grade_submission(sub, set_id, sandbox, slot, seed, **kwargs)
    except Exception as exc:
        qs = list(questions(set_id).values())
        tb = traceback.format_exception_only(type(exc), exc)[-1].strip()
        return SubmissionResult(sub, "grader-error",
                                [QuestionResult(q.id, q.name, 0.0, float(q.points), "not-run", "not graded") for q in qs],
                                detail=f"the grader failed: {tb[:300]}")
