"""Submissions for the grader's tests and benchmark, built from the ex03 solution notebook by
editing cells: honest ones, typical mistakes, and attacks on the grader.

`adversarial(folder, ctx)` writes one `<student>_ex03_numpy_rnn.ipynb` per case and returns
{student: Expect}. `ctx` holds paths the attacks aim at (the repository, the output folder,
another student's file, a world-writable folder outside the sandbox).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOLUTION = ROOT / "solutions" / "ex03_numpy_rnn" / "ex03_numpy_rnn.ipynb"
NOTEBOOK = "ex03_numpy_rnn"
POINTS = {"rnn_step_backward": 4, "last_hidden_state": 2, "temperature_softmax": 2, "initial_loss": 1,
          "carried_state": 1}
FULL = sum(POINTS.values())


@dataclass
class Expect:
    status: str
    zero: tuple[str, ...] = ()           # questions that must get 0 points (all others full)
    message: dict[str, str] = field(default_factory=dict)   # question -> text its verdict contains
    needs: tuple[str, ...] = ()          # protections it relies on ("a|b": either), skipped if absent

    @property
    def total(self) -> float:
        return FULL - sum(POINTS[q] for q in self.zero)


def solution() -> dict:
    return json.loads(SOLUTION.read_text(encoding="utf-8"))


def _code_cell(source: str) -> dict:
    return {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": source}


def set_code(nb: dict, grade_id: str, source: str) -> dict:
    """Replace the source of the cell whose nbgrader grade_id is `grade_id`."""
    for cell in nb["cells"]:
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == grade_id:
            cell["source"] = source
            return nb
    raise KeyError(grade_id)


def add_cell(nb: dict, source: str, position: int | None = None) -> dict:
    nb["cells"].insert(len(nb["cells"]) if position is None else position, _code_cell(source))
    return nb


def write(nb, path: Path) -> Path:
    path.write_text(nb if isinstance(nb, str) else json.dumps(nb, indent=1), encoding="utf-8")
    return path


# Function bodies used by several cases.
STEP_NO_TANH = '''def rnn_step_backward(dh_next, x_t, h_prev, h_next, kernel, recurrent_kernel):
    dz = dh_next
    return dz @ kernel.T, dz @ recurrent_kernel.T, x_t.T @ dz, h_prev.T @ dz, dz.sum(axis=0)
'''
SOFTMAX_TIMES_T = '''def temperature_softmax(logits, temperature):
    z = logits * temperature
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)
'''
STEP_ZEROS = '''def rnn_step_backward(dh_next, x_t, h_prev, h_next, kernel, recurrent_kernel):
    return (np.zeros_like(x_t), np.zeros_like(h_prev), np.zeros_like(kernel),
            np.zeros_like(recurrent_kernel), np.zeros(kernel.shape[1]))
'''
LAST_OFF_BY_ONE = '''def last_hidden_state(h, lengths):
    return h[np.arange(h.shape[0]), np.minimum(lengths, h.shape[1] - 1)]
'''


def adversarial(folder: Path, ctx: dict) -> dict[str, Expect]:
    """Write every case into `folder`; return what the grader must say about each."""
    cases: dict[str, tuple[dict | str, Expect]] = {}
    sol = solution()

    def case(student, nb, expect):
        cases[student] = (nb, expect)

    case("correct", copy.deepcopy(sol), Expect("ok"))

    nb = set_code(copy.deepcopy(sol), "rnn_step_backward_code", STEP_NO_TANH)
    set_code(nb, "temperature_softmax_code", SOFTMAX_TIMES_T)
    set_code(nb, "carried_state_code", 'answer_carried_state = "b"\n')
    case("wrong", nb, Expect("wrong", ("rnn_step_backward", "temperature_softmax", "carried_state"),
                             {"rnn_step_backward": "tanh derivative is missing",
                              "temperature_softmax": "multiplied by the temperature"}))

    case("off_by_one", set_code(copy.deepcopy(sol), "last_hidden_state_code", LAST_OFF_BY_ONE),
         Expect("wrong", ("last_hidden_state",), {"last_hidden_state": "off by one in time"}))

    case("raises", set_code(copy.deepcopy(sol), "last_hidden_state_code",
                            "def last_hidden_state(h, lengths):\n    raise ValueError('no idea')\n"),
         Expect("error", ("last_hidden_state",), {"last_hidden_state": "raised ValueError: no idea"}))

    case("markup_in_error", set_code(copy.deepcopy(sol), "last_hidden_state_code",
                                     "def last_hidden_state(h, lengths):\n"
                                     "    raise ValueError('<script>alert(1)</script>\\n| a | b |' + 'x' * 100000)\n"),
         Expect("error", ("last_hidden_state",), {"last_hidden_state": "raised ValueError"}))

    case("loop_top", add_cell(copy.deepcopy(sol), "while True:\n    pass\n"), Expect("timeout"))

    case("loop_function", set_code(copy.deepcopy(sol), "rnn_step_backward_code",
                                   "def rnn_step_backward(**kwargs):\n    while True:\n        pass\n"),
         Expect("timeout", ("rnn_step_backward",), {"rnn_step_backward": "did not finish"}))

    case("sleep_one_function", set_code(copy.deepcopy(sol), "temperature_softmax_code",
                                        "import time\n\ndef temperature_softmax(logits, temperature):\n"
                                        "    time.sleep(1000)\n"),
         Expect("timeout", ("temperature_softmax",), {"temperature_softmax": "did not finish"}))

    case("memory_bomb", add_cell(copy.deepcopy(sol), "hog = []\nwhile True:\n    hog.append(np.ones(2**23))\n"),
         Expect("kernel-died", needs=("memory",)))

    case("memory_bomb_function", set_code(copy.deepcopy(sol), "last_hidden_state_code",
                                          "def last_hidden_state(h, lengths):\n    return np.ones((2**40,))\n"),
         Expect("kernel-died", ("last_hidden_state",), {"last_hidden_state": "memory limit"}, needs=("memory",)))

    case("fork_bomb", add_cell(copy.deepcopy(sol),
                               "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"),
         Expect("timeout", needs=("processes", "pids")))

    case("os_exit", add_cell(copy.deepcopy(sol), "import os\nos._exit(0)\n"), Expect("kernel-died"))

    case("os_exit_function", set_code(copy.deepcopy(sol), "temperature_softmax_code",
                                      "import os\n\ndef temperature_softmax(logits, temperature):\n    os._exit(3)\n"),
         Expect("kernel-died", ("temperature_softmax",), {"temperature_softmax": "exited"}))

    case("segfault", add_cell(copy.deepcopy(sol), "import ctypes\nctypes.string_at(0)\n"), Expect("kernel-died"))

    case("invalid_json", '{"cells": [', Expect("invalid-notebook", tuple(POINTS)))
    case("empty_file", "", Expect("invalid-notebook", tuple(POINTS)))
    case("empty_notebook", json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}),
         Expect("invalid-notebook", tuple(POINTS)))
    case("not_a_notebook", json.dumps([1, 2, 3]), Expect("invalid-notebook", tuple(POINTS)))

    nb = copy.deepcopy(sol)
    set_code(nb, "rnn_step_backward_code",
             sol_source(sol, "rnn_step_backward_code").replace("def rnn_step_backward(", "def rnn_backward("))
    case("renamed", nb, Expect("error", ("rnn_step_backward",), {"rnn_step_backward": "is not defined"}))

    nb = set_code(copy.deepcopy(sol), "rnn_step_backward_code", STEP_ZEROS)
    set_code(nb, "temperature_softmax_code",
             "def temperature_softmax(logits, temperature):\n    return np.full(logits.shape, 0.5)\n")
    add_cell(nb, "np.allclose = lambda *a, **k: True\nnp.array_equal = lambda *a, **k: True\n"
                 "np.isfinite = lambda x: np.ones(np.shape(x), bool)\n"
                 "np.testing.assert_allclose = lambda *a, **k: None\n"
                 "def check(*args, **kwargs):\n    print('PASS')\n", position=2)
    case("monkeypatch_numpy", nb, Expect("wrong", ("rnn_step_backward", "temperature_softmax")))

    nb = set_code(copy.deepcopy(sol), "last_hidden_state_code",
                  "class Always(np.ndarray):\n"
                  "    def __eq__(self, other):\n        return True\n"
                  "    def __array_function__(self, *a, **k):\n        return True\n\n"
                  "def last_hidden_state(h, lengths):\n"
                  "    return np.zeros((h.shape[0], h.shape[2])).view(Always)\n")
    set_code(nb, "temperature_softmax_code",
             "class Liar:\n    def __eq__(self, other):\n        return True\n"
             "    def __array__(self, *a, **k):\n        raise TypeError\n\n"
             "def temperature_softmax(logits, temperature):\n    return Liar()\n")
    case("fake_equality", nb, Expect("wrong", ("last_hidden_state", "temperature_softmax"),
                                     {"temperature_softmax": "wrong kind of thing"}))

    case("nan_output", set_code(copy.deepcopy(sol), "temperature_softmax_code",
                                "def temperature_softmax(logits, temperature):\n"
                                "    return np.full(logits.shape, np.nan)\n"),
         Expect("wrong", ("temperature_softmax",), {"temperature_softmax": "NaN"}))

    targets = [str(ROOT / "solutions" / "ex03_numpy_rnn" / "ex03_numpy_rnn.ipynb"),
               str(ROOT / "rnncourse" / "exercises" / "ex03_numpy_rnn.py"), str(ctx["other_submission"])]
    case("read_solutions", add_cell(copy.deepcopy(sol),
                                    "import os\nleaks = []\n"
                                    f"for path in {targets!r}:\n"
                                    "    try:\n        open(path).read(10)\n        leaks.append(path)\n"
                                    "    except OSError:\n        pass\n"
                                    f"if os.path.exists({str(ROOT)!r}) and os.listdir({str(ROOT)!r}):\n"
                                    f"    leaks.append('listed the repository')\n"
                                    "try:\n    import rnncourse.exercises.ex03_numpy_rnn\n"
                                    "    leaks.append('imported the references')\nexcept ImportError:\n    pass\n"
                                    "if leaks:\n    raise RuntimeError('LEAKED ' + ', '.join(leaks))\n"),
         Expect("ok", needs=("files",)))

    writes = [str(ctx["out_dir"] / "gradebook.csv"), str(ctx["other_submission"]), str(ROOT / "PWNED.txt"),
              str(ctx["world_writable"] / "escaped.txt"), str(ctx["out_dir"] / "feedback" / "correct.md")]
    case("write_outside", add_cell(copy.deepcopy(sol),
                                   "written = []\n"
                                   f"for path in {writes!r}:\n"
                                   "    try:\n        with open(path, 'w') as f:\n            f.write('pwned')\n"
                                   "        written.append(path)\n    except OSError:\n        pass\n"
                                   "with open('mine.txt', 'w') as f:\n    f.write('my own folder is writable')\n"
                                   "if written:\n    raise RuntimeError('WROTE ' + ', '.join(written))\n"),
         Expect("ok", needs=("files",)))

    case("network", add_cell(copy.deepcopy(sol),
                             "import socket\nreached = []\n"
                             "for host, port in [('1.1.1.1', 53), ('pypi.org', 443), ('127.0.0.1', 22)]:\n"
                             "    try:\n        socket.create_connection((host, port), timeout=2).close()\n"
                             "        reached.append(host)\n    except OSError:\n        pass\n"
                             "if reached:\n    raise RuntimeError('REACHED ' + ', '.join(reached))\n"),
         Expect("ok", needs=("network",)))

    nb = add_cell(copy.deepcopy(sol), "import os, sys\nprint('x' * 30_000_000)\nsys.stderr.write('e' * 5_000_000)\n"
                                      "sys.stdout = sys.__stdout__\nprint('y' * 5_000_000)\n"
                                      "os.write(1, b'z' * 5_000_000)\nos.write(2, b'w' * 5_000_000)\n")
    set_code(nb, "last_hidden_state_code",
             "def last_hidden_state(h, lengths):\n    print('chatty ' * 1_000_000)\n"
             "    return h[np.arange(h.shape[0]), lengths - 1]\n")
    case("print_megabytes", nb, Expect("ok"))

    case("float32", set_code(copy.deepcopy(sol), "rnn_step_backward_code",
                             sol_source(sol, "rnn_step_backward_code").replace(
                                 "return dx_t, dh_prev, dkernel, drecurrent_kernel, dbias",
                                 "return tuple(g.astype(np.float32) for g in "
                                 "(dx_t, dh_prev, dkernel, drecurrent_kernel, dbias))")),
         Expect("ok"))

    case("transposed", set_code(copy.deepcopy(sol), "rnn_step_backward_code",
                                sol_source(sol, "rnn_step_backward_code").replace(
                                    "return dx_t, dh_prev, dkernel,", "return dx_t, dh_prev, dkernel.T,")),
         Expect("wrong", ("rnn_step_backward",), {"rnn_step_backward": "it looks transposed"}))

    case("returns_list", set_code(copy.deepcopy(sol), "last_hidden_state_code",
                                  "def last_hidden_state(h, lengths):\n"
                                  "    return h[np.arange(h.shape[0]), lengths - 1].tolist()\n"),
         Expect("wrong", ("last_hidden_state",), {"last_hidden_state": "got list"}))

    nb = set_code(copy.deepcopy(sol), "rnn_step_backward_code", STEP_ZEROS)
    add_cell(nb, "import json, os\n"
                 "fake = {'tuple': True, 'items': [{'k': 'array', 'dtype': '<f8', 'shape': [], 'data': 'AAAAAAAAAAA='}]}\n"
                 "for fd in range(3, 12):\n"
                 "    for t in range(3):\n"
                 "        line = json.dumps({'e': 'ans', 'id': 'rnn_step_backward', 't': t, 'out': fake}) + '\\n'\n"
                 "        try:\n            os.write(fd, line.encode() + b'{\"e\": \"done\"}\\n' + b'{not json\\n')\n"
                 "        except OSError:\n            pass\n")
    case("forged_results", nb, Expect("wrong", ("rnn_step_backward",)))

    case("kill_everything", add_cell(copy.deepcopy(sol),
                                     "import os, signal\n"
                                     "for pid in range(1, 5000):\n"
                                     "    if pid != os.getpid():\n"
                                     "        try:\n            os.kill(pid, signal.SIGKILL)\n"
                                     "        except OSError:\n            pass\n"),
         Expect("ok", needs=("user|pids",)))

    case("sys_exit", add_cell(copy.deepcopy(sol), "import sys\nsys.exit(1)\n", position=2), Expect("error"))
    case("syntax_error", add_cell(copy.deepcopy(sol), "def broken(:\n    pass\n"), Expect("error"))

    nb = copy.deepcopy(sol)
    set_code(nb, "temperature_softmax_code", "%%time\n" + sol_source(sol, "temperature_softmax_code"))
    add_cell(nb, "%matplotlib inline\n!pip install cheating\nx = 1\n%time y = x + 1\nassert y == 2\n", position=2)
    for cell in nb["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade"):
            meta["points"] = 100
    case("magics_and_points_hack", nb, Expect("ok"))

    for student, (nb, _) in cases.items():
        write(nb, folder / f"{student}_{NOTEBOOK}.ipynb")
    return {student: expect for student, (_, expect) in cases.items()}


def sol_source(nb: dict, grade_id: str) -> str:
    for cell in nb["cells"]:
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == grade_id:
            src = cell["source"]
            return "".join(src) if isinstance(src, list) else src
    raise KeyError(grade_id)


MISTAKES = {
    "step_no_tanh": ("rnn_step_backward_code", STEP_NO_TANH),
    "softmax_times_t": ("temperature_softmax_code", SOFTMAX_TIMES_T),
    "last_off_by_one": ("last_hidden_state_code", LAST_OFF_BY_ONE),
    "loss_wrong": ("initial_loss_code", "answer_initial_loss = 65.0\n"),
}


def benchmark_class(folder: Path, n: int = 100) -> None:
    """`n` ordinary submissions: about half correct, the rest with one or two typical mistakes."""
    sol = solution()
    names = list(MISTAKES)
    for k in range(n):
        nb = copy.deepcopy(sol)
        if k % 2:
            for name in {names[k % len(names)], names[(k // 2) % len(names)]}:
                set_code(nb, *MISTAKES[name])
        write(nb, folder / f"student{k:03d}_{NOTEBOOK}.ipynb")
