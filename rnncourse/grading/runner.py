"""Grading one submission: read the notebook, run it in the sandbox, judge in this process.

Statuses (one per submission; the first that applies, in this order):

    invalid-notebook  the file is not JSON, not a notebook (no list of cells), has no code, is
                      larger than the stated size limit, is not a regular file; or no notebook
                      was found for the student. Nothing ran; 0 points.
    kernel-died       the process running the submission ended before finishing: os._exit,
                      sys.exit from C code, a signal (segfault, kill), the memory limit (a
                      MemoryError is treated as fatal, as an out-of-memory kill would be) or
                      the output limit.
    timeout           a time limit was hit: per cell, per graded call, per run, or CPU time.
    error             a top-level cell raised (NameError, NotImplementedError, SyntaxError, ...)
                      or a graded function raised on the grader's inputs, or is missing.
    wrong             everything ran, but some answer is wrong.
    ok                everything ran and every answer is right (full marks).
    grader-error      the grader itself failed on this submission (a bug or a broken machine,
                      never the student's doing): regrade it.

When a cell or a function call kills the run or hits a limit, the grader notes which limit,
runs the notebook again without that cell (or without calling that function again) and
carries on, so one bad cell costs that cell, not the whole notebook. At most `max_runs` runs
per submission.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import math
import os
import re
import stat
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..exercises import SETS, questions
from ..exercises.core import (Question, Verdict, compare_function, compare_value, not_implemented_message,
                              raised_message, stress_verdict)
from .sandbox import LAUNCHER_FAILED, MEMORY_EXIT, Limits, Sandbox

STATUSES = ("ok", "wrong", "error", "timeout", "kernel-died", "invalid-notebook", "grader-error")
SEVERITY = {"ok": 0, "wrong": 1, "error": 2, "timeout": 3, "kernel-died": 4, "invalid-notebook": 5, "grader-error": 6}
MAX_NOTEBOOK_BYTES = Limits().max_notebook_mb * 2**20
MAX_ANSWER_BYTES = 4 * 2**20
TRIALS = 3


def clean_text(text) -> str:
    """Any text (a file name's bytes, a notebook's text, the learner's exception) as valid
    UTF-8 without control characters: lone surrogates and undecodable bytes become U+FFFD."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    text = "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in str(text))
    return re.sub(r"[\x00-\x08\x0b-\x1f\x7f]", "\ufffd", text)


# --------------------------------------------------------------------------- submissions
@dataclass
class Submission:
    student: str               # as shown (made valid UTF-8)
    path: Path | None          # None: the student's folder holds no usable notebook for this set
    label: str                 # the path shown in the gradebook, relative to the submissions root
    key: str = ""              # what the inputs are drawn from: the path relative to the root
    problem: str = ""          # why `path` is None, said to the student

    def __post_init__(self):
        self.key = self.key or self.label


def notebook_name(set_id: str) -> str:
    return SETS[set_id]


def _rel(path: Path, root: Path) -> str:
    return clean_text(os.fsencode(str(path.relative_to(root))))


def _key(path: Path, root: Path) -> str:
    """The path relative to the root, unique even where the shown label is not (two names
    that differ only in undecodable bytes): those bytes are kept as \\xNN escapes."""
    return os.fsencode(str(path.relative_to(root))).decode("utf-8", "backslashreplace")


def discover(set_id: str, folder: Path) -> tuple[list[Submission], list[str]]:
    """Submissions in `folder`, flat (`<student>_<notebook>.ipynb`) or nbgrader's layout
    (`[submitted/]<student>/<set or notebook>/<notebook>.ipynb`). Returns them and the names
    of entries that were ignored. Labels and input keys are relative to the submissions root
    (`submitted/` when there is one), so `course` and `course/submitted` grade identically."""
    folder = Path(folder)
    nb = notebook_name(set_id)
    subs, ignored = [], []
    root = folder / "submitted" if (folder / "submitted").is_dir() else folder
    for entry in sorted(root.iterdir(), key=lambda p: os.fsencode(p.name)):
        name = clean_text(os.fsencode(entry.name))
        if entry.name.startswith("."):
            ignored.append(name + " (hidden)")
        elif entry.name.lower().endswith(".ipynb") and (entry.is_file() or entry.is_symlink()):
            stem = name[: -len(".ipynb")]
            student = stem[: -len(nb) - 1] if stem.endswith("_" + nb) and len(stem) > len(nb) + 1 else stem
            subs.append(Submission(student, entry, _rel(entry, root), key=_key(entry, root)))
        elif entry.is_dir() and not entry.is_symlink():
            try:
                subs.append(_student_folder(entry, root, name, set_id, nb))
            except OSError as exc:  # an unreadable folder still gets a row
                subs.append(Submission(name, None, name + "/", key=_key(entry, root) + "/",
                                       problem=f"the folder could not be read ({exc.strerror})"))
        else:
            ignored.append(name)
    return subs, ignored


def _student_folder(entry: Path, root: Path, name: str, set_id: str, nb: str) -> Submission:
    """One student's folder in nbgrader's layout: the notebook of the set, or why there is none."""
    set_dir = next((entry / n for n in (set_id, nb) if (entry / n).is_dir()), None)
    if set_dir is None:
        return Submission(name, None, name + "/", key=_key(entry, root) + "/",
                          problem=f"no folder {set_id}/ or {nb}/ was handed in")
    found = sorted((p for p in set_dir.iterdir() if p.name.lower().endswith(".ipynb")),
                   key=lambda p: os.fsencode(p.name))
    preferred = [p for p in found if p.name == nb + ".ipynb"]
    path = preferred[0] if preferred else (found[0] if len(found) == 1 else None)
    label = _rel(path, root) if path else _rel(set_dir, root) + "/"
    problem = "" if path else (f"no notebook in {_rel(set_dir, root)}/" if not found else
                               f"{len(found)} notebooks in {_rel(set_dir, root)}/ and none is named {nb}.ipynb")
    return Submission(name, path, label, key=_key(path, root) if path else _key(set_dir, root) + "/",
                      problem=problem)


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


def _read_file(path: Path, max_bytes: int) -> bytes:
    """The file's bytes: a regular file only (no link, no device), at most `max_bytes`."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        if os.path.islink(path):
            raise InvalidNotebook("a symbolic link, not a file") from None
        raise InvalidNotebook(f"the file could not be opened ({exc.strerror})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise InvalidNotebook("not a regular file")
        if info.st_size == 0:
            raise InvalidNotebook("the file is empty")
        if info.st_size > max_bytes:
            raise InvalidNotebook(f"the file is {info.st_size / 2**20:.0f} MB, more than the limit of "
                                  f"{max_bytes // 2**20} MB (clear large outputs, e.g. images, and hand it in again)")
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read(max_bytes + 1)
    finally:
        os.close(fd)


def _source(cell: dict, key: str = "source") -> str:
    src = cell.get(key, "")
    if isinstance(src, list):
        src = "".join(s for s in src if isinstance(s, str))
    return src if isinstance(src, str) else ""


def _nbformat3_cells(nb: dict) -> list | None:
    """The cells of an nbformat 3 notebook (worksheets, code under "input"), as version 4."""
    sheets = nb.get("worksheets")
    if not isinstance(sheets, list):
        return None
    cells = []
    for sheet in sheets:
        for cell in (sheet.get("cells", []) if isinstance(sheet, dict) else []):
            if isinstance(cell, dict) and cell.get("cell_type") == "code":
                cells.append({"cell_type": "code", "source": _source(cell, "input")})
            elif isinstance(cell, dict):
                cells.append({"cell_type": cell.get("cell_type", "markdown"), "source": ""})
    return cells


def read_cells(path: Path | None, max_bytes: int = MAX_NOTEBOOK_BYTES) -> list[dict]:
    """The code cells of a notebook, magics turned into calls of a stub get_ipython()."""
    global _TRANSFORM
    if path is None:
        raise InvalidNotebook("no notebook was submitted")
    data = _read_file(path, max_bytes)
    try:
        nb = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InvalidNotebook(f"not valid JSON ({type(exc).__name__})") from None
    if isinstance(nb, dict) and not isinstance(nb.get("cells"), list):
        cells3 = _nbformat3_cells(nb)
        if cells3 is not None:
            nb = {"cells": cells3}
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise InvalidNotebook("JSON, but not a Jupyter notebook (no list of cells)")
    if _TRANSFORM is None:
        _TRANSFORM = _magics_transformer()
    cells = []
    for index, cell in enumerate(nb["cells"]):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        src = _source(cell)
        if not src.strip():
            continue
        try:
            code = _TRANSFORM(src)
        except Exception:
            code = src
        head = clean_text(next((line.strip() for line in src.splitlines() if line.strip()), ""))
        cells.append({"index": index, "code": code, "head": head[:50] + ("..." if len(head) > 50 else "")})
    if not cells:
        raise InvalidNotebook("the notebook has no code")
    return cells


# --------------------------------------------------------------------------- inputs
def n_calls(q: Question, trials: int) -> int:
    return trials + len(q.stress) if q.kind == "function" else 1


def draw_inputs(qs: list[Question], seed: int, key: str, trials: int = TRIALS) -> dict[tuple[str, int], dict]:
    """Fresh inputs per question and trial (then one per stress case), from `seed` and the
    submission's key (its path relative to the submissions root): the same seed regrades
    identically, and one student's inputs depend neither on who else is graded, nor on the
    order, nor on the path the instructor typed."""
    digest = int.from_bytes(hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest()[:8], "little")
    inputs = {}
    for k, q in enumerate(qs):
        if q.kind != "function":
            continue
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(digest, k)))
        for t in range(trials):
            inputs[(q.id, t)] = q.make_inputs(rng)
        for s, stress in enumerate(q.stress):
            inputs[(q.id, trials + s)] = stress.make_inputs(rng)
    return inputs


def _scalars(first: dict) -> dict:
    out = {}
    for name, value in first.items():
        if isinstance(value, (bool, np.bool_)):
            out[name] = "bool"
        elif isinstance(value, (int, np.integer)):
            out[name] = "int"
        elif isinstance(value, (float, np.floating)):
            out[name] = "float"
    return out


def build_job(cells: list[dict], qs: list[Question], inputs: dict, trials: int,
              skip_cells: set[int], skip_questions: set[str]) -> tuple[bytes, dict]:
    """The job sent to the harness (JSON bytes) and each call's inputs as .npz bytes."""
    specs, blobs = [], {}
    for q in qs:
        spec = {"id": q.id, "name": q.name, "kind": q.kind, "trials": n_calls(q, trials), "args": [], "scalars": {}}
        if q.kind == "function":
            first = inputs[(q.id, 0)]
            spec["args"], spec["scalars"] = list(first), _scalars(first)
            if q.id not in skip_questions:
                for t in range(n_calls(q, trials)):
                    buf = io.BytesIO()
                    np.savez(buf, **{name: np.asarray(v) for name, v in inputs[(q.id, t)].items()})
                    blobs[(q.id, t)] = buf.getvalue()
        specs.append(spec)
    job = {"cells": cells, "questions": specs, "skip_cells": sorted(skip_cells), "skip_questions": sorted(skip_questions)}
    return json.dumps(job).encode("utf-8", "surrogatepass"), blobs


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
        if dtype.kind not in "biufc" or dtype.fields is not None or dtype.subdtype is not None or \
                dtype.itemsize > (16 if dtype.kind == "c" else 8):
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

    def to_dict(self) -> dict:
        d = asdict(self)
        d["submission"] = {k: v for k, v in d["submission"].items() if k != "path"}
        return d

    @classmethod
    def from_dict(cls, d: dict, submission: Submission) -> "SubmissionResult":
        qs = [QuestionResult(**q) for q in d["questions"]]
        return cls(submission, d["status"], qs, list(d["cell_errors"]), list(d["incidents"]), d["detail"],
                   int(d["runs"]), float(d["seconds"]))


def _shapes(inputs: dict) -> str:
    return ", ".join(f"{k} {v.shape}" for k, v in inputs.items() if isinstance(v, np.ndarray))


def judge_function(q: Question, trials: int, answers: dict, inputs: dict) -> tuple[str, Verdict]:
    """The verdict for a function question from the answers the child sent, computed here."""
    for t in range(n_calls(q, trials)):
        stress = q.stress[t - trials] if t >= trials else None
        ans = answers.get((q.id, t))
        if ans is None:
            return "error", Verdict(False, f"{q.name}: no answer was received (the notebook stopped before it was called)")
        if ans.get("missing"):
            return "error", Verdict(False, f"{q.name} is not defined: the grader calls a function named exactly "
                                           f"`{q.name}` (was it renamed, or did its cell fail?)")
        if "notcallable" in ans:
            return "error", Verdict(False, f"{q.name} must be a function; it is a {clean_text(ans['notcallable'])[:60]}")
        if "raised" in ans:
            if ans.get("notimpl"):
                return "error", Verdict(False, not_implemented_message(q))
            name, _, text = clean_text(ans["raised"])[:400].partition(": ")
            if stress is not None:
                return "wrong", Verdict(False, f"{q.name}: likely mistake: {stress.describe}",
                                        [f"{q.name} raised {name} on these inputs"])
            verdict = raised_message(q, name, text)
            verdict.details.append(f"inputs were: {_shapes(inputs[(q.id, t)])}")
            return "error", verdict
        try:
            got = decode_output(ans.get("out"))
        except Exception as exc:
            return "wrong", Verdict(False, f"{q.name}: the answer could not be read ({exc})")
        mutated = [clean_text(m)[:60] for m in ans.get("mutated", []) if isinstance(m, str)][:20]
        mutated = [m for m in mutated if m in inputs[(q.id, t)]]
        try:
            if stress is None:
                verdict = compare_function(q, inputs[(q.id, t)], got, mutated)
            else:
                verdict = stress_verdict(q, stress, inputs[(q.id, t)], got, mutated)
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
    verdict.message = clean_text(verdict.message)
    return ("ok" if verdict else "wrong"), verdict


def _answered(q: Question, answers: dict, trials: int) -> bool:
    """Whether the answers received settle the question (a raise settles it early)."""
    for t in range(n_calls(q, trials)):
        ans = answers.get((q.id, t))
        if ans is None:
            return False
        if "out" not in ans and "value" not in ans:
            return True
    return True


def _died_reason(res, limits: Limits, cgroup: bool) -> str:
    if res.stopped == "output":
        return f"the output limit was exceeded (more than {limits.max_output_bytes // 2**20} MB sent to the grader)"
    if res.oom or (any(e.get("e") == "memory" for e in res.events) and res.returncode == MEMORY_EXIT):
        if res.oom:
            return (f"the memory limit ({limits.run_memory_mb} MB for all its processes, shared memory and files "
                    f"together) was exceeded")
        return f"the memory limit ({limits.memory_mb} MB per process) was exceeded"
    rc = res.returncode
    if rc is not None and rc > 128:
        import signal as _signal

        try:
            name = _signal.Signals(rc - 128).name
        except ValueError:
            name = f"signal {rc - 128}"
        return f"the process was killed by {name}"
    return f"the process exited (code {rc}) before the grader was done, e.g. by os._exit or sys.exit"


def _limit_text(res, limits: Limits) -> str:
    if res.stopped == "cell":
        return f"ran longer than the per-cell time limit ({limits.cell_timeout:g} s)"
    if res.stopped == "call":
        return f"ran longer than the per-call time limit ({limits.call_timeout:g} s)"
    if res.stopped == "cpu":
        return (f"was running when the run used up its CPU time ({limits.cpu_budget:g} s for all its processes "
                f"together)")
    return (f"was running when the whole run reached its time limit ({limits.timeout:g} s for all cells and "
            f"graded calls together)")


def grade_submission(sub: Submission, set_id: str, sandbox: Sandbox, slot: int, seed: int,
                     trials: int = TRIALS, max_runs: int = 4) -> SubmissionResult:
    qs = list(questions(set_id).values())
    qres = {q.id: QuestionResult(q.id, q.name, 0.0, float(q.points), "not-run", "not graded") for q in qs}
    limits = sandbox.limits
    try:
        if sub.path is None and sub.problem:
            raise InvalidNotebook(sub.problem)
        cells = read_cells(sub.path, limits.max_notebook_mb * 2**20)
    except InvalidNotebook as exc:
        for r in qres.values():
            r.message = "not graded: the notebook could not be read"
        return SubmissionResult(sub, "invalid-notebook", list(qres.values()), detail=clean_text(exc))
    inputs = draw_inputs(qs, seed, sub.key, trials)
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
    cgroup = bool(sandbox.protections.cgroup)
    qnames = {q.id: q.name for q in qs}
    while runs < max_runs:
        done_q = {q.id for q in qs if q.id in stopped or _answered(q, answers, trials)}
        todo = [q for q in qs if q.id not in done_q]
        if runs and not todo:
            break
        job, blobs = build_job(cells, qs, inputs, trials, skip_cells, done_q)
        res = sandbox.run(job, blobs, slot)
        runs += 1
        seconds += res.wall
        if res.launcher_error or not any(e.get("e") == "ready" for e in res.events) and not res.stopped \
                and res.returncode == LAUNCHER_FAILED:
            raise RuntimeError(f"the sandbox could not start: {res.launcher_error or 'no reason given'}")
        current = None  # what was running when the run ended: ("cell", i) or ("q", qid)
        finished = False
        for e in res.events:
            kind = e.get("e")
            if kind == "cell" and isinstance(e.get("i"), int):
                current = ("cell", e["i"])
            elif kind == "cell_error" and isinstance(e.get("i"), int):
                cell_errors.setdefault(e["i"], clean_text(e.get("error", ""))[:400])
            elif kind in ("cell_end", "cells_done"):
                current = None
            elif kind == "q" and isinstance(e.get("id"), str):
                current = ("q", e["id"])
            elif kind == "ans" and isinstance(e.get("id"), str) and isinstance(e.get("t"), int):
                answers[(e["id"], e["t"])] = e
                current = None
            elif kind == "done":
                finished = True
        if finished and res.returncode == 0 and not res.stopped:
            break
        if res.stopped_at is not None:
            current = res.stopped_at
        if res.timed_out:
            what, cat = _limit_text(res, limits), "timeout"
        else:
            what, cat = f"stopped the run: {_died_reason(res, limits, cgroup)}", "kernel-died"
        worst = max(worst, cat, key=SEVERITY.get)
        if current is None:
            noun = {"run": f"the time limit of {limits.timeout:g} s for the whole run was reached",
                    "cpu": f"the run used up its CPU time ({limits.cpu_budget:g} s)"}.get(
                res.stopped, _died_reason(res, limits, cgroup))
            incidents.append(f"the run stopped outside any cell or graded call: {noun}")
            break
        if current[0] == "cell":
            incidents.append(f"{cell_name(current[1])} {what}; the notebook was run again without it")
            skip_cells.add(current[1])
        else:
            qname = qnames.get(current[1], clean_text(current[1])[:60])
            incidents.append(f"the call of {qname} {what}")
            if current[1] in qres:
                stopped[current[1]] = (cat, f"{qname}: the call {what}")
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
        r.category, r.message = cat, clean_text(verdict.message)
        r.details = [clean_text(d) for d in verdict.details]
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
                                detail=clean_text(f"the grader failed: {tb[:300]}"))
