"""Runs one submission inside the sandbox: its code cells, then its answers on the grader's inputs.

This file is copied into the grading work folder and run there, as
`python -I -S -B _harness.py IN_FD OUT_FD`, by an unprivileged child process. It imports
nothing from rnncourse (the sandbox holds only a stub of the package). It never judges
anything: it sends what the learner's code returned, as plain data, over the pipe OUT_FD, one
JSON object per line, and the grader compares in its own process:

    {"e": "ready"}                         the job was read, about to run the cells
    {"e": "cell", "i": 3}                  starting code cell 3
    {"e": "cell_error", "i": 3, "error": "NameError: ..."}
    {"e": "cell_end", "i": 3}
    {"e": "cells_done"}
    {"e": "q", "id": "rnn_step_backward", "t": 0}              about to call, trial 0
    {"e": "ans", "id": ..., "t": 0, "out": {...}, "mutated": []}  what it returned
    {"e": "ans", "id": ..., "t": 0, "raised": "...", "notimpl": false}
    {"e": "ans", "id": ..., "t": 0, "value": {...}}            a variable's value
    {"e": "memory"}                        MemoryError: the grader reports the memory limit
    {"e": "done"}

The job (the code cells, the questions) arrives on IN_FD, a pipe, never as a file. The inputs
of a graded call arrive on the same pipe only when the call is about to be made, after every
cell has run (the grader answers each "q" event with that call's arrays and nothing else), so
the notebook's code cannot read the grader's inputs before it is called on them.

Everything the learner's code can reach (this module, numpy, the pipes) it can also tamper
with; that is harmless by design, because the grader trusts nothing here except arrays, which
it checks against a reference it computes itself on inputs it drew itself.
"""

import base64
import builtins
import io
import json
import os
import sys
import types

IN_FD, FD = int(sys.argv[1]), int(sys.argv[2])
MAIN_PID = os.getpid()
_getpid, _write, _read, _exit, _dumps = os.getpid, os.write, os.read, os._exit, json.dumps
_isinstance, _callable, _type, _str, _float, _int, _bytes = isinstance, callable, type, str, float, int, bytes
_len, _min = len, min
MAX_ARRAY_BYTES = 4 * 2**20
MAX_TEXT = 300
MEMORY_EXIT = 86


def emit(obj):
    if _getpid() != MAIN_PID:  # a forked copy of this process: it must not speak for it
        _exit(0)
    view = memoryview((_dumps(obj) + "\n").encode("utf-8", "replace"))
    while view:
        view = view[_write(FD, view):]


def read_exact(n):
    parts, left = [], n
    while left:
        chunk = _read(IN_FD, _min(left, 1 << 20))
        if not chunk:
            raise EOFError("the grader closed the job pipe")
        parts.append(chunk)
        left -= _len(chunk)
    return b"".join(parts)


def read_message():
    size = _int.from_bytes(read_exact(8), "little")
    return read_exact(size)


def fatal_memory():
    try:
        _write(FD, b'{"e": "memory"}\n')
    finally:
        _exit(MEMORY_EXIT)


def describe(exc):
    try:
        name = _type(exc).__name__
    except BaseException:
        name = "Exception"
    try:
        text = _str(exc)
    except BaseException:
        text = "<message could not be printed>"
    text = text if _isinstance(text, _str) else ""
    if len(text) > MAX_TEXT:
        text = text[:MAX_TEXT] + "..."
    text = "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in text)  # lone surrogates
    return f"{name}: {text}" if text else name


class _Discard(io.TextIOBase):
    """Where the learner's prints go: counted, never stored, never sent."""

    def write(self, s):
        return len(s) if _isinstance(s, _str) else 0

    def writable(self):
        return True

    def isatty(self):
        return False


class _FakeIPython:
    """Enough of get_ipython() for transformed magics: %time/%%time/%timeit/%%capture run the
    code once, %%writefile writes its file, %cd/%pwd/%env work; every other magic and shell
    escape (!cmd) does nothing."""

    def __init__(self, ns):
        self._ns = ns
        self.user_ns = ns

    def _run(self, code):
        exec(compile(code, "<magic>", "exec"), self._ns)

    def run_line_magic(self, name, line, *args, **kwargs):
        if name in ("time", "timeit") and line.strip():
            words = line.split()
            while words and words[0].startswith("-"):  # %timeit -n1 -r1 expr
                words = words[2:] if _len(words[0]) == 2 and words[0] in ("-n", "-r") else words[1:]
            self._run(" ".join(words) if name == "timeit" else line)
        elif name == "cd" and line.strip():
            os.chdir(os.path.expanduser(line.strip().strip("'\"")))
        elif name == "pwd":
            return os.getcwd()
        elif name == "env" and "=" in line:
            key, _, value = line.strip().partition("=")
            os.environ[key.strip()] = value.strip()
        return None

    def run_cell_magic(self, name, line, body, *args, **kwargs):
        if name in ("time", "timeit", "capture", "prun"):
            self._run(body)
        elif name in ("writefile", "file"):
            words = line.split()
            append = "-a" in words or "--append" in words
            path = next((w for w in words if not w.startswith("-")), None)
            if path:
                with open(path.strip("'\""), "a" if append else "w", encoding="utf-8") as f:
                    f.write(body)
        return None

    def system(self, *args, **kwargs):
        return None

    def getoutput(self, *args, **kwargs):
        return []

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def _display(*objs, **kwargs):
    """IPython's display() without a front end: print (to the discarded output)."""
    for obj in objs:
        print(repr(obj))


def main():
    job = json.loads(read_message())
    import numpy as np  # from the grader's site-packages, appended to sys.path below

    _ndarray, _np_array, _float64 = np.ndarray, np.array, np.float64
    _np_integer, _np_floating, _np_bool, _np_load = np.integer, np.floating, np.bool_, np.load
    _tobytes = np.ndarray.tobytes

    def encode_item(x):
        if _isinstance(x, (bool, _np_bool)):
            return {"k": "other", "type": "bool"}
        if _isinstance(x, complex):
            x = _np_array(x)
        if _isinstance(x, (_float, _int, _np_integer, _np_floating)):
            try:
                x = _np_array(_float(x), dtype=_float64)
            except BaseException:
                return {"k": "other", "type": "number too large"}
        if _isinstance(x, _ndarray) or _type(x).__module__ == "numpy":
            try:
                a = _np_array(x, copy=True, subok=False)
                if a.dtype.kind == "O":  # an object array of numbers converts, as in check()
                    a = _np_array(a, dtype=_float64)
                if a.dtype.kind == "f" and a.dtype.itemsize > 8:  # longdouble: float64, as check() does
                    a = a.astype(_float64)
                if a.dtype.kind == "c" and a.dtype.itemsize > 16:
                    a = a.astype(np.complex128)
                if a.dtype.kind not in "biufc" or a.dtype.fields is not None:
                    return {"k": "other", "type": f"ndarray of {a.dtype}"}
                a = a.astype(a.dtype.newbyteorder("<"))
                if a.nbytes > MAX_ARRAY_BYTES:
                    return {"k": "other", "type": f"array too large (more than {MAX_ARRAY_BYTES // 2**20} MB)"}
                return {"k": "array", "dtype": a.dtype.str, "shape": [_int(n) for n in a.shape],
                        "data": base64.b64encode(a.tobytes()).decode("ascii")}
            except MemoryError:
                fatal_memory()
            except BaseException as exc:
                return {"k": "other", "type": "unreadable array: " + describe(exc)}
        try:
            return {"k": "other", "type": _type(x).__name__}
        except BaseException:
            return {"k": "other", "type": "object"}

    def encode_output(out):
        if _isinstance(out, tuple):
            return {"tuple": True, "items": [encode_item(x) for x in tuple.__iter__(out)][:64]}
        return {"tuple": False, "items": [encode_item(out)]}

    def encode_value(v, missing):
        if v is missing:
            return {"k": "missing"}
        if _isinstance(v, _ndarray) and v.ndim == 0 and v.dtype.kind in "biufU":
            v = v.item()  # a 0-d array answers a scalar question, as in check()
        if v is None:
            return {"k": "none"}
        if _isinstance(v, (bool, _np_bool)):
            return {"k": "bool", "v": bool(v)}
        if _isinstance(v, _str):
            return {"k": "str", "v": _str.__str__(v)[:1000].encode("utf-8", "replace").decode("utf-8")}
        if _isinstance(v, (_int, _np_integer)):
            n = _int(v)
            return {"k": "int", "v": n} if abs(n) < 2**63 else {"k": "other", "type": "int too large"}
        if _isinstance(v, (_float, _np_floating)):
            return {"k": "float", "v": _float(v)}
        try:
            return {"k": "other", "type": _type(v).__name__}
        except BaseException:
            return {"k": "other", "type": "object"}

    def receive_inputs(spec):
        with _np_load(io.BytesIO(read_message()), allow_pickle=False) as archive:
            stored = {key: archive[key] for key in archive.files}
        kwargs = {}
        for name in spec["args"]:
            arr = stored[name]
            scalar = spec["scalars"].get(name)
            kwargs[name] = {"float": float, "int": int, "bool": bool}[scalar](arr.item()) if scalar else arr
        pristine = {k: (v.dtype.str, v.shape, _tobytes(v)) for k, v in kwargs.items() if _isinstance(v, _ndarray)}
        return kwargs, pristine

    # The learner's world: a fresh __main__, prints discarded, a stub get_ipython, display and help.
    main_module = types.ModuleType("__main__")
    ns = main_module.__dict__
    ns["__builtins__"] = builtins
    ns["get_ipython"] = lambda: _FakeIPython(ns)
    ns["display"] = _display
    builtins.display = _display
    builtins.help = lambda *args, **kwargs: None  # `site` is not run, so help/exit/quit are set here
    builtins.exit = builtins.quit = sys.exit
    sys.modules["__main__"] = main_module
    sys.stdout = sys.stderr = _Discard()
    sys.stdin = io.StringIO("")
    sys.argv = ["notebook"]

    sys.path.insert(1, os.getcwd())  # as in Jupyter, the notebook's folder is importable (%%writefile modules)
    emit({"e": "ready"})
    skip_cells = set(job["skip_cells"])
    for cell in job["cells"]:
        i = cell["index"]
        if i in skip_cells:
            continue
        emit({"e": "cell", "i": i})
        try:
            exec(compile(cell["code"], f"<cell {i}>", "exec"), ns)
        except MemoryError:
            fatal_memory()
        except BaseException as exc:  # SystemExit and KeyboardInterrupt too: the next cell runs
            emit({"e": "cell_error", "i": i, "error": describe(exc)})
        emit({"e": "cell_end", "i": i})
    emit({"e": "cells_done"})

    missing = object()
    skip_questions = set(job["skip_questions"])
    for spec in job["questions"]:
        qid = spec["id"]
        if qid in skip_questions:
            continue
        obj = ns.get(spec["name"], missing)
        if spec["kind"] == "value":
            emit({"e": "q", "id": qid, "t": 0})
            emit({"e": "ans", "id": qid, "t": 0, "value": encode_value(obj, missing)})
            continue
        for trial in range(spec["trials"]):
            if obj is missing:
                emit({"e": "ans", "id": qid, "t": trial, "missing": True})
                break
            if not _callable(obj):
                emit({"e": "ans", "id": qid, "t": trial, "notcallable": _type(obj).__name__})
                break
            emit({"e": "q", "id": qid, "t": trial})
            kwargs, pristine = receive_inputs(spec)
            try:
                out = obj(**kwargs)
                answer = {"e": "ans", "id": qid, "t": trial, "out": encode_output(out)}
            except MemoryError:
                fatal_memory()
            except BaseException as exc:
                emit({"e": "ans", "id": qid, "t": trial, "raised": describe(exc),
                      "notimpl": _isinstance(exc, NotImplementedError)})
                break
            mutated = []
            for name, (dtype, shape, data) in pristine.items():
                now = kwargs[name]
                try:
                    same = now.dtype.str == dtype and now.shape == shape and _tobytes(now) == data
                except BaseException:
                    same = False
                if not same:
                    mutated.append(name)
            answer["mutated"] = mutated
            emit(answer)
    emit({"e": "done"})
    _exit(0)  # no atexit handlers, no finalizers of the learner's objects


if __name__ == "__main__":
    for path in json.loads(os.environ.get("GRADER_SYS_PATH", "[]")):
        sys.path.append(path)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    try:
        main()
    except MemoryError:
        fatal_memory()
