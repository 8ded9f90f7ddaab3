"""Submissions for the grader's tests and benchmark, built from the ex03 solution notebook by
editing cells: honest ones, typical mistakes, and attacks on the grader.

`adversarial(folder, ctx)` writes one `<student>_ex03_numpy_rnn.ipynb` per case and returns
{student: Expect}. `ctx` holds paths the attacks aim at (the repository, the output folder,
another student's file, a world-writable folder outside the sandbox).
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOLUTION = ROOT / "solutions" / "ex03_numpy_rnn" / "ex03_numpy_rnn.ipynb"
NOTEBOOK = "ex03_numpy_rnn"
POINTS = {"rnn_step_backward": 4, "rnn_backward": 4, "last_hidden_state": 2, "temperature_softmax": 2, "initial_loss": 1,
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


def _grade_id(cell: dict) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def set_code(nb: dict, grade_id: str, source: str) -> dict:
    """Replace the source of the cell whose nbgrader grade_id is `grade_id`."""
    for cell in nb["cells"]:
        if _grade_id(cell) == grade_id:
            cell["source"] = source
            return nb
    raise KeyError(grade_id)


def add_cell(nb: dict, source: str, position: int | None = None) -> dict:
    nb["cells"].insert(len(nb["cells"]) if position is None else position, _code_cell(source))
    return nb


def _is_check_cell(cell: dict) -> bool:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return bool(meta.get("grade")) and not meta.get("solution")


def duplicate_cell(nb: dict, grade_id: str, source: str | None = None) -> dict:
    """Insert a copy of the cell whose grade_id is `grade_id` right after it (with `source`, if
    given, instead of its own), as a student who copies an answer cell to try a variant."""
    i = next(k for k, c in enumerate(nb["cells"]) if _grade_id(c) == grade_id)
    copy_ = copy.deepcopy(nb["cells"][i])
    copy_["id"] = f"{copy_.get('id', 'cell')}-copy"
    if source is not None:
        copy_["source"] = source
    nb["cells"].insert(i + 1, copy_)
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
BPTT_NO_CARRY = '''def rnn_backward(dh, x, h0, h, kernel, recurrent_kernel):
    dx, dh_prev = np.zeros_like(x), None
    grads = [np.zeros_like(kernel), np.zeros_like(recurrent_kernel), np.zeros(h.shape[2])]
    for t in reversed(range(h.shape[1])):
        h_prev = h[:, t - 1] if t > 0 else h0
        dx[:, t], dh_prev, *step = rnn_step_backward(dh[:, t], x[:, t], h_prev, h[:, t], kernel, recurrent_kernel)
        grads = [g + s for g, s in zip(grads, step)]
    return (dx, dh_prev, *grads)
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
    # rnn_backward calls the broken step, so it is wrong too, and says which question to fix
    case("wrong", nb, Expect("wrong", ("rnn_step_backward", "rnn_backward", "temperature_softmax", "carried_state"),
                             {"rnn_step_backward": "tanh derivative is missing",
                              "rnn_backward": "fix question 1's rnn_step_backward first",
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
         Expect("timeout", ("rnn_step_backward", "rnn_backward"), {"rnn_step_backward": "per-call time limit"}))

    case("sleep_one_function", set_code(copy.deepcopy(sol), "temperature_softmax_code",
                                        "import time\n\ndef temperature_softmax(logits, temperature):\n"
                                        "    time.sleep(1000)\n"),
         Expect("timeout", ("temperature_softmax",), {"temperature_softmax": "per-call time limit"}))

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
    case("renamed", nb, Expect("error", ("rnn_step_backward", "rnn_backward"), {"rnn_step_backward": "is not defined"}))

    # What editing a notebook by hand does to it: answers are found by name in the notebook's final
    # state, as if it were run top to bottom, whatever happened to the cells around them.
    nb = copy.deepcopy(sol)
    nb["cells"] = [c for c in nb["cells"] if not _is_check_cell(c)]
    case("check_cells_deleted", nb, Expect("ok"))
    nb = copy.deepcopy(sol)
    nb["cells"] = [c for c in nb["cells"] if _grade_id(c) != "carried_state_code"]
    case("answer_cell_deleted", nb, Expect("error", ("carried_state",), {"carried_state": "is not defined"}))
    case("answer_cell_duplicated", duplicate_cell(copy.deepcopy(sol), "last_hidden_state_code"), Expect("ok"))
    nb = duplicate_cell(copy.deepcopy(sol), "last_hidden_state_code", LAST_OFF_BY_ONE)
    case("answer_redefined_wrong_below", nb,
         Expect("wrong", ("last_hidden_state",), {"last_hidden_state": "off by one in time"}))
    nb = copy.deepcopy(sol)
    for cell in nb["cells"]:
        cell["id"] = "same-id"          # an editor that copies cells with their ids
    case("duplicate_cell_ids", nb, Expect("ok"))

    nb = set_code(copy.deepcopy(sol), "rnn_step_backward_code", STEP_ZEROS)
    set_code(nb, "temperature_softmax_code",
             "def temperature_softmax(logits, temperature):\n    return np.full(logits.shape, 0.5)\n")
    add_cell(nb, "np.allclose = lambda *a, **k: True\nnp.array_equal = lambda *a, **k: True\n"
                 "np.isfinite = lambda x: np.ones(np.shape(x), bool)\n"
                 "np.testing.assert_allclose = lambda *a, **k: None\n"
                 "def check(*args, **kwargs):\n    print('PASS')\n", position=2)
    case("monkeypatch_numpy", nb, Expect("wrong", ("rnn_step_backward", "rnn_backward", "temperature_softmax")))

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
         # rnn_backward adds the transposed (H, D) gradient to a (D, H) sum and raises ValueError: status error
         Expect("error", ("rnn_step_backward", "rnn_backward"), {"rnn_step_backward": "it looks transposed",
                                                                 "rnn_backward": "shapes did not fit inside the loop"}))

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
    case("forged_results", nb, Expect("wrong", ("rnn_step_backward", "rnn_backward")))

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

    add_hostile_cases(case, sol, ctx)
    names = {"non_utf8_name": b"caf\xe9_" + NOTEBOOK.encode() + b".ipynb",
             "x" * 229: ("x" * 229 + f"_{NOTEBOOK}.ipynb").encode(),
             MARKUP_NAME: f"{MARKUP_NAME}_{NOTEBOOK}.ipynb".encode()}
    renamed = {"non_utf8_name": "caf\ufffd"}
    out = {}
    for student, (nb, expect) in cases.items():
        raw = names.get(student, f"{student}_{NOTEBOOK}.ipynb".encode())
        write(nb, Path(os.fsdecode(os.fsencode(str(folder)) + b"/" + raw)))
        out[renamed.get(student, student)] = expect
    return out


MARKUP_NAME = "**bold** [x](javascript:alert(1)) <b>"

# A cell that looks for the grader's inputs: a readable pipe holding data before any call, or
# a file named like the grader's job or inputs anywhere it can see.
PEEK_PIPES = """import os, select, sys
found = []
for name in os.listdir('/proc/self/fd'):
    fd = int(name)
    try:
        if fd > 2 and os.readlink(f'/proc/self/fd/{fd}').startswith('pipe:') and select.select([fd], [], [], 0)[0]:
            found.append(fd)
    except (OSError, ValueError):
        pass
for top in ('/', os.getcwd(), '/tmp', '/dev/shm', '/opt/grader-lib', os.path.dirname(os.path.dirname(__file__))
            if '__file__' in globals() else '/'):
    for root, dirs, files in os.walk(top):
        if root.startswith(('/proc', '/sys', '/usr', '/etc', '/lib', '/bin', '/sbin', '/opt/grader-site', sys.prefix)):
            dirs[:] = []
            continue
        found += [os.path.join(root, f) for f in files if f in ('inputs.npz', 'job.json', 'launch.json')]
if found:
    raise RuntimeError(f'inputs readable: {found}')
"""

SYSV_LEAK = """import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
KEY = 0x5EED14
# Did an earlier submission leave a segment, a queue or a key? Then isolation failed.
seen = []
if libc.shmget(KEY, 0, 0) >= 0:
    seen.append('shm')
if libc.msgget(KEY, 0) >= 0:
    seen.append('msg')
if libc.syscall(250, 10, ctypes.c_long(-4), b'user', b'rnngrade-leak', 0) >= 0:  # keyctl(SEARCH, @u)
    seen.append('key')
# Leave some for the next submission to find.
libc.shmget(KEY, 4096, 0o1000 | 0o666)
libc.msgget(KEY, 0o1000 | 0o666)
libc.syscall(248, b'user', b'rnngrade-leak', b'secret', 6, ctypes.c_long(-4))  # add_key to @u
if seen:
    raise RuntimeError('found what an earlier run left: ' + ', '.join(seen))
"""

SHARED_MEMORY_BOMB = """import ctypes, os, time
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
seg = libc.shmget(0, 300 * 2**20, 0o1000 | 0o600)
addr = libc.shmat(seg, None, 0)
ctypes.memset(addr, 1, 300 * 2**20)          # 300 MB of System V shared memory
with open('/dev/shm/blob', 'wb') as f:         # files in /dev/shm are memory too
    f.write(b'y' * 40 * 2**20)
for _ in range(4):                             # children, each below any per-process limit
    if os.fork() == 0:
        hog = []
        while True:
            hog.append(b'z' * 2**20)
            time.sleep(0.001)
time.sleep(30)
"""

UNSTABLE_SOFTMAX = """def temperature_softmax(logits, temperature):
    e = np.exp(logits / temperature)
    return e / e.sum(axis=-1, keepdims=True)
"""

MUTATING_STEP = """def rnn_step_backward(dh_next, x_t, h_prev, h_next, kernel, recurrent_kernel):
    dh_next *= 1.0 - h_next**2          # in place: the caller's dh_next changes
    dz = dh_next
    return dz @ kernel.T, dz @ recurrent_kernel.T, x_t.T @ dz, h_prev.T @ dz, dz.sum(axis=0)
"""

STEP_U_NOT_T = """def rnn_step_backward(dh_next, x_t, h_prev, h_next, kernel, recurrent_kernel):
    dz = dh_next * (1.0 - h_next**2)
    return dz @ kernel.T, dz @ recurrent_kernel, x_t.T @ dz, h_prev.T @ dz, dz.sum(axis=0)
"""

DISK_FILLER = """import os
block = b'x' * 2**20
for k in range(20):
    with open(f'/tmp/fill{k}', 'wb') as f:
        for _ in range(32):
            f.write(block)
"""

SETSID_HOG = """import os
for _ in range(3):
    if os.fork() == 0:
        os.setsid()
        if os.fork():
            os._exit(0)
        while True:
            pass
"""

OUTPUT_FLOOD = """import os
junk = b'{"e": "x"}' * 2**16 + b'\\n'
fds = [int(n) for n in os.listdir('/proc/self/fd') if int(n) > 2]
for _ in range(400):
    for fd in fds:
        try:
            os.write(fd, junk)
        except OSError:
            pass
"""

NOTEBOOK_FEATURES = [
    "display('shown'); help(len)\nfrom IPython.display import display as show, HTML\nshow(HTML('<b>x</b>'))\n",
    "%%writefile helper_module.py\ndef twice(x):\n    return 2 * x\n",
    "import helper_module\nassert helper_module.twice(2) == 4\n%timeit -n1 -r1 helper_module.twice(3)\n",
]


def add_hostile_cases(case, sol, ctx) -> None:
    """The cases of issue 14: names, texts, resources across processes, leftovers, fairness."""
    case("surrogate_error", set_code(copy.deepcopy(sol), "last_hidden_state_code",
                                     "def last_hidden_state(h, lengths):\n    raise ValueError('bad \\ud800 text')\n"),
         Expect("error", ("last_hidden_state",), {"last_hidden_state": "raised ValueError"}))
    case("non_utf8_name", copy.deepcopy(sol), Expect("ok"))
    case("x" * 229, copy.deepcopy(sol), Expect("ok"))
    case(MARKUP_NAME, copy.deepcopy(sol), Expect("ok"))
    case("a b", copy.deepcopy(sol), Expect("ok"))
    case("a_b", copy.deepcopy(sol), Expect("ok"))
    case("deep_directory", add_cell(copy.deepcopy(sol),
                                    "import os\nbase = os.getcwd()\nfor _ in range(1500):\n"
                                    "    os.mkdir('d')\n    os.chdir('d')\nos.chdir(base)\n"), Expect("ok"))
    case("sysv_leaker_1", add_cell(copy.deepcopy(sol), SYSV_LEAK), Expect("ok", needs=("ipc",)))
    case("sysv_leaker_2", add_cell(copy.deepcopy(sol), SYSV_LEAK), Expect("ok", needs=("ipc",)))
    case("shared_memory_bomb", add_cell(copy.deepcopy(sol), SHARED_MEMORY_BOMB),
         Expect("kernel-died", needs=("memory",)))
    case("disk_filler", add_cell(copy.deepcopy(sol), DISK_FILLER), Expect("error", needs=("disk",)))
    case("setsid_cpu_hog", add_cell(copy.deepcopy(sol), SETSID_HOG, position=2), Expect("ok"))
    case("output_flood", add_cell(copy.deepcopy(sol), OUTPUT_FLOOD), Expect("kernel-died"))
    case("inputs_unreadable", add_cell(copy.deepcopy(sol), PEEK_PIPES), Expect("ok", needs=("files",)))
    nb = copy.deepcopy(sol)
    for k, src in enumerate(NOTEBOOK_FEATURES):
        add_cell(nb, src, position=2 + k)
    case("notebook_features", nb, Expect("ok"))
    case("complex_answer", set_code(copy.deepcopy(sol), "temperature_softmax_code",
                                    "def temperature_softmax(logits, temperature):\n"
                                    "    e = np.exp((logits - logits.max(axis=-1, keepdims=True)) / temperature)\n"
                                    "    return (e / e.sum(axis=-1, keepdims=True)).astype(complex)\n"),
         Expect("wrong", ("temperature_softmax",), {"temperature_softmax": "complex"}))
    case("longdouble_answer", set_code(copy.deepcopy(sol), "rnn_step_backward_code",
                                       sol_source(sol, "rnn_step_backward_code").replace(
                                           "return dx_t, dh_prev, dkernel, drecurrent_kernel, dbias",
                                           "return tuple(g.astype(np.longdouble) for g in "
                                           "(dx_t, dh_prev, dkernel, drecurrent_kernel, dbias))")), Expect("ok"))
    case("unstable_softmax", set_code(copy.deepcopy(sol), "temperature_softmax_code", UNSTABLE_SOFTMAX),
         Expect("wrong", ("temperature_softmax",), {"temperature_softmax": "not numerically stable"}))
    case("mutates_input", set_code(copy.deepcopy(sol), "rnn_step_backward_code", MUTATING_STEP),
         Expect("wrong", ("rnn_step_backward",), {"rnn_step_backward": "in place"}))
    case("u_not_transposed", set_code(copy.deepcopy(sol), "rnn_step_backward_code", STEP_U_NOT_T),
         Expect("wrong", ("rnn_step_backward", "rnn_backward"), {"rnn_step_backward": "U where U transposed belongs"}))
    # A right step inside a wrong loop: only rnn_backward loses its points, with the mistake named.
    case("bptt_wraps_to_last_state", set_code(copy.deepcopy(sol), "rnn_backward_code",
                                              sol_source(sol, "rnn_backward_code").replace(
                                                  "h[:, t - 1] if t > 0 else h0", "h[:, t - 1]")),
         Expect("wrong", ("rnn_backward",), {"rnn_backward": "Python counts negative indices"}))
    case("index_error_in_loop", set_code(copy.deepcopy(sol), "last_hidden_state_code",
                                         "def last_hidden_state(h, lengths):\n"
                                         "    return h[np.arange(h.shape[0]), lengths]\n"),
         Expect("error", ("last_hidden_state",), {"last_hidden_state": "ran past the end of the time axis"}))
    case("zero_d_answer", set_code(copy.deepcopy(sol), "initial_loss_code",
                                   "import math\nanswer_initial_loss = np.array(math.log(65))\n"), Expect("ok"))
    case("nbformat3", nbformat3(sol), Expect("ok"))
    case("slow_cells_fast_calls", add_cell(copy.deepcopy(sol), "import time\ntime.sleep(1.5)\n", position=2),
         Expect("ok"))


def nbformat3(nb4: dict) -> dict:
    """The same notebook in nbformat 3 (worksheets, code under "input")."""
    cells = []
    for cell in nb4["cells"]:
        src = cell["source"] if isinstance(cell["source"], list) else [cell["source"]]
        if cell["cell_type"] == "code":
            cells.append({"cell_type": "code", "input": src, "language": "python", "metadata": {},
                          "outputs": [], "collapsed": False})
        else:
            cells.append({"cell_type": "markdown", "source": src, "metadata": {}})
    return {"metadata": {"name": ""}, "nbformat": 3, "nbformat_minor": 0,
            "worksheets": [{"cells": cells, "metadata": {}}]}


def sol_source(nb: dict, grade_id: str) -> str:
    for cell in nb["cells"]:
        if _grade_id(cell) == grade_id:
            src = cell["source"]
            return "".join(src) if isinstance(src, list) else src
    raise KeyError(grade_id)


MISTAKES = {
    "step_no_tanh": ("rnn_step_backward_code", STEP_NO_TANH),
    "softmax_times_t": ("temperature_softmax_code", SOFTMAX_TIMES_T),
    "last_off_by_one": ("last_hidden_state_code", LAST_OFF_BY_ONE),
    "loss_wrong": ("initial_loss_code", "answer_initial_loss = 65.0\n"),
    "bptt_no_carry": ("rnn_backward_code", BPTT_NO_CARRY),
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
