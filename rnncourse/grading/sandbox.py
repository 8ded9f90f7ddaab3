"""The sandbox a submission runs in, and a probe of which of its protections this machine allows.

Design (see `_launcher.py` for the steps): a plain Python child per submission (no Jupyter
kernel), started through a small launcher that uses Linux primitives directly (unshare(2),
mount(2), chroot(2), setrlimit(2), setresuid(2), prctl(2), keyctl(2)) and the cgroup file
system, so nothing beyond Python is needed (no setpriv, unshare, prlimit or Docker). Each
protection is probed once per grading run by actually starting a child with it; what is
unavailable is reported at the top of the grading report, and the grader refuses to grade in
a weaker sandbox unless asked to (`allow_weaker=True`, `--allow-weaker-sandbox`).

Protections, by key:
    user      the child runs as a dedicated unprivileged uid/gid (one per parallel slot, so one
              student's processes cannot touch, signal or starve another's); needs root
    files     a private root file system: only the system, Python and the harness exist; the
              repository, solutions/, other submissions, the output and any installed copy of
              the references are absent (mount namespace + chroot; root, or a user namespace)
    network   a new network namespace with no interface up: no connection can be made
    pids      a PID namespace: the child sees only its own processes
    ipc       an IPC namespace (System V shared memory, semaphores, message queues and POSIX
              message queues die with the run) and fresh kernel keyrings for the sandbox uid
    memory    a cgroup memory limit for the run as a whole: every process, shared memory,
              memfd and the files it writes (tmpfs) count together; no swap. Without cgroups:
              RLIMIT_AS, per process only
    processes a cgroup pids limit for the run as a whole (RLIMIT_NPROC without cgroups)
    cpu       at most one core per run (cgroup CPU quota) and a CPU-time budget for all its
              processes together (RLIMIT_CPU per process without cgroups)
    disk      one size-limited tmpfs holds everything the run can write (its folder, /tmp,
              /dev/shm) and vanishes with it (needs the private file system)
    output    prints are discarded in the child; the grader reads at most `max_output_bytes`
              and stops the run beyond that
    time      wall-clock limits per cell, per graded call and per run, enforced by the grader
    cleanup   every process the run started is killed when it ends (cgroup, PID namespace,
              uid, and the launcher as child subreaper); nothing it wrote stays on the host
"""

from __future__ import annotations

import copy
import errno
import fcntl
import grp
import json
import os
import pwd
import secrets
import shutil
import signal
import site
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
LAUNCHER_FAILED = 70
MEMORY_EXIT = 86
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
DEFAULT_UID_BASE = 61000
_PROBED: dict[tuple, tuple] = {}
DISABLE_VAR = "RNNCOURSE_GRADER_DISABLE"  # e.g. "mountns,cgroup": treat as unavailable (for tests)
CGROUP_ROOT = "/sys/fs/cgroup"
MAX_LINE = 8 * 2**20                      # one event line (an answer of up to 4 MB, base64)



def _entries_of_dead_graders(parent: str) -> list[str]:
    """Names `rnngrade-PID-N` in `parent` whose grader process PID no longer exists."""
    try:
        entries = os.listdir(parent)
    except OSError:
        return []
    found = []
    for entry in entries:
        parts = entry.split("-")
        if len(parts) == 3 and parts[0] == "rnngrade" and parts[1].isdigit() \
                and not os.path.exists(f"/proc/{parts[1]}"):
            found.append(entry)
    return found

class SandboxUnavailable(RuntimeError):
    """The machine cannot provide the full sandbox and a weaker one was not allowed."""


@dataclass
class Limits:
    timeout: float = 300.0         # wall-clock seconds per run of a notebook (cells and calls)
    memory_mb: int = 2048          # the run as a whole (cgroup); per process without cgroups
    nproc: int = 64                # processes and threads of the run
    cell_timeout: float | None = 120.0  # wall-clock seconds per code cell (None: only `timeout`)
    call_timeout: float | None = 30.0   # wall-clock seconds per graded call (None: only `timeout`)
    cpu_seconds: float | None = None    # CPU time of the whole run (None: as `timeout`)
    cpus: float = 1.0              # cores a run may use at once (cgroup CPU quota)
    disk_mb: int = 256             # everything the run writes: its folder, /tmp, /dev/shm
    fsize_mb: int = 64             # RLIMIT_FSIZE: one file
    nofile: int = 256              # RLIMIT_NOFILE
    max_output_bytes: int = 16 * 2**20   # the most the grader reads back from one run
    max_notebook_mb: int = 100     # a larger file is not run (invalid-notebook), and says so

    def __post_init__(self):
        # A short overall limit (as in quick tests) caps the per-cell and per-call ones.
        if self.cell_timeout is not None:
            self.cell_timeout = min(self.cell_timeout, self.timeout)
        if self.call_timeout is not None:
            self.call_timeout = min(self.call_timeout, self.timeout)

    @property
    def run_memory_mb(self) -> int:
        """The whole run's memory (cgroup): `memory_mb` for one process's address space, plus room
        for the page cache of the libraries it reads, so that one growing process fails at once
        with MemoryError instead of thrashing against the cgroup's limit."""
        return self.memory_mb + max(128, self.memory_mb // 4)

    @property
    def cpu_budget(self) -> float:
        return float(self.cpu_seconds if self.cpu_seconds is not None else self.timeout * max(1.0, self.cpus))

    def as_dict(self) -> dict:
        return asdict(self)


FULL_MODE_KEYS = ("user", "files", "network", "pids", "ipc", "memory", "processes", "cpu", "disk", "cleanup")


@dataclass
class Protections:
    """Which protections are active, and why a missing one is missing."""

    active: dict[str, bool] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    uids: list[int] = field(default_factory=list)
    cgroup: str = ""   # "v1", "v2" or ""

    @property
    def missing(self) -> list[str]:
        return [k for k in FULL_MODE_KEYS if not self.active.get(k)]

    @property
    def full(self) -> bool:
        return not self.missing

    def labels(self, limits: Limits) -> dict[str, str]:
        cg = bool(self.cgroup)
        cell = f"{limits.cell_timeout:g} s per cell, " if limits.cell_timeout else ""
        call = f"{limits.call_timeout:g} s per graded call, " if limits.call_timeout else ""
        return {
            "user": "separate unprivileged user",
            "files": "private file system (repository, solutions/, other submissions, output and installed "
                     "references invisible)",
            "network": "no network (empty network namespace)",
            "pids": "PID namespace (the submission sees only its own processes)",
            "ipc": "private IPC (System V shared memory, semaphores and message queues, POSIX queues) and "
                   "fresh kernel keyrings",
            "memory": (f"memory limit {limits.run_memory_mb} MB for the whole run (all its processes, shared "
                       f"memory, files and page cache together, no swap; cgroup {self.cgroup}) and {limits.memory_mb} "
                       f"MB per process (RLIMIT_AS)" if cg else
                       f"memory limit {limits.memory_mb} MB (RLIMIT_AS, per process)"),
            "processes": (f"process limit {limits.nproc} for the whole run (cgroup {self.cgroup})" if cg else
                          f"process limit {limits.nproc} (RLIMIT_NPROC)"),
            "cpu": (f"CPU limit: {limits.cpus:g} core(s) at once, {limits.cpu_budget:g} s of CPU time for the "
                    f"whole run (cgroup {self.cgroup})" if cg else
                    f"CPU limit {limits.cpu_budget:g} s (RLIMIT_CPU, per process)"),
            "disk": f"disk quota {limits.disk_mb} MB (its folder, /tmp and /dev/shm on one tmpfs, gone after the run)",
            "output": f"output limit (prints discarded; the run is stopped after {limits.max_output_bytes // 2**20} "
                      f"MB sent back; files <= {limits.fsize_mb} MB each)",
            "time": f"time limits: {cell}{call}{limits.timeout:g} s per run (kill)",
            "cleanup": "nothing left behind (every process of the run is killed when it ends)",  # noqa: E501
        }

    def describe(self, limits: Limits) -> list[str]:
        lines = []
        for key, text in self.labels(limits).items():
            ok = self.active.get(key, False)
            note = self.notes.get(key, "")
            lines.append(f"- [{'x' if ok else ' '}] {text}: {'active' if ok else 'NOT ACTIVE'}"
                         + (f" ({note})" if note else ""))
        return lines

    def mode_line(self) -> str:
        if self.full:
            return "Sandbox mode: **full** (every protection above is active)."
        return ("Sandbox mode: **WEAKER** (missing: " + ", ".join(self.missing) +
                "). Grades are computed the same way, but the protections marked NOT ACTIVE are not given: "
                "see the instructor guide before trusting this run with untrusted code.")


@dataclass
class RunResult:
    events: list[dict]
    returncode: int | None
    stopped: str | None            # None, or the limit that stopped the run: run, cell, call, cpu, output
    wall: float
    output_truncated: bool
    launcher_error: str | None = None
    oom: bool = False
    stopped_at: tuple | None = None    # ("cell", i) or ("q", id): what was running when stopped

    @property
    def timed_out(self) -> bool:
        return self.stopped in ("run", "cell", "call", "cpu")


def _child_sys_path() -> list[str]:
    """Where the child finds numpy and friends: the grader's site-packages, without running
    their .pth files (so an editable install cannot point the child back at the repository)."""
    import numpy

    paths = []
    numpy_home = os.path.dirname(os.path.dirname(os.path.abspath(numpy.__file__)))
    for p in [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"], *site.getsitepackages(), numpy_home]:
        if p and os.path.isdir(p) and os.path.realpath(p) not in [os.path.realpath(x) for x in paths]:
            paths.append(p)
    return paths


SITE_MOUNT = "/opt/grader-site"  # where the child sees the grader's site-packages, in a private root
LIB_MOUNT = "/opt/grader-lib"    # where it sees the harness and the stub package


def _interpreter() -> str:
    """The real Python binary. A virtualenv's `python` is only a link to it, and the venv itself
    may live inside the course repository, which a submission must not be able to see."""
    return os.path.realpath(sys.executable)


def _ro_binds() -> list[list[str]]:
    """[source, target] pairs bound read-only into the private root.

    Site-packages folders are bound at neutral paths (SITE_MOUNT/0, /1, ...), never at their
    own paths: a virtualenv inside the repository would otherwise recreate the repository's
    path (and its name) inside the sandbox.
    """
    exe = _interpreter()
    same_path = set(SYSTEM_DIRS) | {os.path.abspath(p) for p in
                                    [sys.base_prefix, os.path.realpath(sys.base_prefix), os.path.dirname(exe)]}
    pairs = [[p, p] for p in sorted(same_path) if os.path.lexists(p)]
    pairs += [[os.path.realpath(p), f"{SITE_MOUNT}/{i}"] for i, p in enumerate(_child_sys_path())]
    return pairs


def _overlays(lib: Path) -> list[list[str]]:
    """Any installed copy of rnncourse (a regular, non-editable install puts the references in
    site-packages) is covered by the stub package, inside the sandbox only."""
    pairs = []
    for i, p in enumerate(_child_sys_path()):
        if os.path.isdir(os.path.join(p, "rnncourse")):
            pairs.append([str(lib / "rnncourse"), f"{SITE_MOUNT}/{i}/rnncourse"])
    return pairs


def _sys_path_inside(features: dict) -> list[str]:
    if features.get("mountns"):
        return [f"{SITE_MOUNT}/{i}" for i in range(len(_child_sys_path()))]
    return _child_sys_path()


def _free_uids(base: int, count: int) -> list[int]:
    """Uids with no account and no group of that number: nobody else's files or processes."""
    uids, candidate = [], base
    while len(uids) < count and candidate < base + 10000:
        try:
            pwd.getpwuid(candidate)
        except KeyError:
            try:
                grp.getgrgid(candidate)
            except KeyError:
                uids.append(candidate)
        candidate += 1
    return uids


LOCK_DIR = "/run/lock" if os.path.isdir("/run/lock") else tempfile.gettempdir()


def _claim_uids(base: int, count: int) -> tuple[list[int], list[int]]:
    """Claim `count` free uids for this grader with an exclusive lock per uid, so that two
    graders running at once on one machine never share a uid (each kills its uid's leftovers)."""
    uids, fds = [], []
    for uid in _free_uids(base, count + 200):
        fd = os.open(os.path.join(LOCK_DIR, f"rnncourse-grading-uid-{uid}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        uids.append(uid)
        fds.append(fd)
        if len(uids) == count:
            break
    return uids, fds


def remove_tree(path) -> None:
    """Remove a folder whatever it holds (1,500 nested levels, odd names, no permissions): GNU
    rm walks it without recursion; shutil.rmtree is the fallback where rm is missing."""
    path = str(path)
    if not os.path.lexists(path):
        return
    try:
        subprocess.run(["rm", "-rf", "--one-file-system", "--", path], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300, check=False)
    except (OSError, subprocess.SubprocessError):
        pass
    if os.path.lexists(path):
        try:
            shutil.rmtree(path, ignore_errors=True)
        except RecursionError:
            pass


# --------------------------------------------------------------------------- cgroups
def _disabled() -> set[str]:
    return {x.strip() for x in os.environ.get(DISABLE_VAR, "").split(",") if x.strip()}


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def _rmdir_quietly(path: str) -> None:
    try:
        os.rmdir(path)
    except OSError:
        pass


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


class Cgroups:
    """One cgroup per run, under a group of this grader's own: v2 (unified) if it offers the
    memory, pids and cpu controllers, else v1 (one hierarchy per controller).

    Version 2 lets a cgroup other than the machine's root hand controllers to its children only
    while it holds no process itself, and the grader's own cgroup holds the grader. Where the
    grader is alone in it (a delegated scope: `sudo systemd-run --scope -p Delegate=yes --
    .venv/bin/python -m rnncourse.grading ...`), the grader moves itself into a leaf group of its
    own, enables the controllers in its cgroup's cgroup.subtree_control (which cgroup v2 leaves to
    the delegatee), and undoes both when it closes: the layout systemd's delegation document
    recommends. Where other processes share it (a login session's scope), it moves nobody and
    says so. It cannot tell whether its cgroup was delegated: without Delegate=yes, systemd may
    reset that file while runs use it."""

    V1 = ("memory", "pids", "cpu", "cpuacct")
    CONTROLLERS = "+memory +pids +cpu"

    def __init__(self):
        self.version = ""
        self.why = ""
        self.bases: dict[str, str] = {}   # controller (or "unified") -> this grader's group
        self._moved: tuple[str, str] | None = None   # (own cgroup, leaf) once the grader moved itself
        self._n = 0
        if "cgroup" in _disabled():
            self.why = f"disabled by {DISABLE_VAR}"
            return
        if os.geteuid() != 0:
            self.why = "the grader is not root (cgroups need root, or a delegated cgroup)"
            return
        try:
            self._setup()
        except OSError as exc:
            self.close()
            self.bases, self.version = {}, ""
            self.why = f"cgroups could not be used: {exc}"

    @staticmethod
    def _own(controller: str) -> str:
        for line in _read("/proc/self/cgroup").splitlines():
            num, ctrls, path = line.split(":", 2)
            if controller in ctrls.split(",") or (controller == "" and num == "0"):
                return path
        return "/"

    @staticmethod
    def _remove_stale(parent: str) -> None:
        """Groups left by a grader that was killed (its pid is gone): empty, so removable."""
        for entry in _entries_of_dead_graders(parent):
            base = os.path.join(parent, entry)
            try:
                subs = os.listdir(base)
            except OSError:          # gone already (another grader cleaning up), or not a folder
                continue
            for sub in subs:
                if os.path.isdir(os.path.join(base, sub)):
                    try:
                        os.rmdir(os.path.join(base, sub))
                    except OSError:
                        pass
            try:
                os.rmdir(base)
            except OSError:
                pass

    def _setup(self) -> None:
        name = f"rnngrade-{os.getpid()}-{secrets.token_hex(4)}"
        unified = next((d for d in (CGROUP_ROOT, CGROUP_ROOT + "/unified")
                        if os.path.exists(d + "/cgroup.controllers")), None)
        v2_error = ""
        if unified:
            own = unified + self._own("").rstrip("/")
            try:
                self._setup_v2(own, name)
                return
            except OSError as exc:
                self._move_back()
                v2_error = f"in {own}: {exc}"
        if all(os.path.exists(f"{CGROUP_ROOT}/{c}/cgroup.procs") for c in self.V1):
            for c in self.V1:
                parent = f"{CGROUP_ROOT}/{c}{self._own(c).rstrip('/')}"
                self._remove_stale(parent)
                base = f"{parent}/{name}"
                os.mkdir(base)
                self.bases[c] = base
            self.version = "v1"
            return
        raise OSError("no usable cgroup hierarchy with memory, pids and cpu controllers"
                      + (f" (v2: {v2_error})" if v2_error else ""))

    def _setup_v2(self, own: str, name: str) -> None:
        """This grader's group `own/name`, with memory, pids and cpu enabled for its runs."""
        missing = {"memory", "pids", "cpu"} - set(_read(own + "/cgroup.controllers").split())
        if missing:
            raise OSError(f"controllers not available: {', '.join(sorted(missing))}")
        self._remove_stale(own)
        try:
            _write(own + "/cgroup.subtree_control", self.CONTROLLERS)
        except OSError as exc:
            if exc.errno != errno.EBUSY:
                raise
            self._move_into_leaf(own)     # EBUSY: the grader's own cgroup holds processes
        base = f"{own}/{name}"
        try:
            os.mkdir(base)
            _write(base + "/cgroup.subtree_control", self.CONTROLLERS)
        except OSError:
            _rmdir_quietly(base)
            raise
        self.bases, self.version = {"unified": base}, "v2"

    def _move_into_leaf(self, own: str) -> None:
        """Move the grader, if it is alone in `own`, into a new leaf group below it, then enable the
        controllers in `own`; raise OSError, having moved nobody, if other processes are there."""
        others = [p for p in _read(own + "/cgroup.procs").split() if p != str(os.getpid())]
        if others:
            raise OSError(f"other processes ({len(others)}) share the grader's cgroup, and cgroup v2 lets a "
                          "cgroup that holds processes give its children no controller: run the grader alone "
                          f"in a delegated scope, `sudo systemd-run --scope -p Delegate=yes -- {sys.executable} "
                          "-m rnncourse.grading ...`")
        leaf = f"{own}/rnngrade-{os.getpid()}-{secrets.token_hex(4)}"
        os.mkdir(leaf)
        try:
            _write(leaf + "/cgroup.procs", str(os.getpid()))
        except OSError:
            _rmdir_quietly(leaf)
            raise
        self._moved = (own, leaf)
        try:
            _write(own + "/cgroup.subtree_control", self.CONTROLLERS)
        except OSError:
            self._move_back()
            raise

    def _move_back(self) -> None:
        """Undo `_move_into_leaf`: controllers off in the grader's own cgroup, the grader back in
        it, its leaf removed. Best effort: a step that fails leaves the rest to systemd, which
        removes a scope's groups when the scope ends."""
        if self._moved is None:
            return
        own, leaf = self._moved
        for path, text in ((own + "/cgroup.subtree_control", "-memory -pids -cpu"),
                           (own + "/cgroup.procs", str(os.getpid()))):
            try:
                _write(path, text)
            except OSError:
                return
        _rmdir_quietly(leaf)
        self._moved = None

    def new_run(self, limits: Limits) -> "RunGroup":
        self._n += 1
        return RunGroup(self, f"run-{self._n}-{secrets.token_hex(3)}", limits)

    def close(self) -> None:
        self._remove_bases()
        self._move_back()

    def _remove_bases(self) -> None:
        for base in self.bases.values():
            for _ in range(50):
                try:
                    for sub in os.listdir(base):
                        if os.path.isdir(os.path.join(base, sub)):
                            try:
                                os.rmdir(os.path.join(base, sub))
                            except OSError:
                                pass
                    os.rmdir(base)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)


class RunGroup:
    def __init__(self, cg: Cgroups, name: str, limits: Limits):
        self.cg, self.v2 = cg, cg.version == "v2"
        self.paths = {c: f"{base}/{name}" for c, base in cg.bases.items()}
        try:
            self._make(limits)
        except OSError:
            for path in self.paths.values():
                _rmdir_quietly(path)
            raise

    def _make(self, limits: Limits) -> None:
        mem = limits.run_memory_mb * 2**20
        for path in self.paths.values():
            os.mkdir(path)
        if self.v2:
            p = self.paths["unified"]
            _write(p + "/memory.max", str(mem))
            if os.path.exists(p + "/memory.swap.max"):
                _write(p + "/memory.swap.max", "0")
            _write(p + "/pids.max", str(limits.nproc))
            _write(p + "/cpu.max", f"{int(100000 * limits.cpus)} 100000")
        else:
            m = self.paths["memory"]
            _write(m + "/memory.limit_in_bytes", str(mem))
            if os.path.exists(m + "/memory.memsw.limit_in_bytes"):
                try:
                    _write(m + "/memory.memsw.limit_in_bytes", str(mem))
                except OSError:
                    pass
            _write(self.paths["pids"] + "/pids.max", str(limits.nproc))
            _write(self.paths["cpu"] + "/cpu.cfs_period_us", "100000")
            _write(self.paths["cpu"] + "/cpu.cfs_quota_us", str(int(100000 * limits.cpus)))

    @property
    def procs_files(self) -> list[str]:
        return [p + "/cgroup.procs" for p in self.paths.values()]

    def cpu_seconds(self) -> float:
        if self.v2:
            for line in _read(self.paths["unified"] + "/cpu.stat").splitlines():
                if line.startswith("usage_usec"):
                    return int(line.split()[1]) / 1e6
            return 0.0
        text = _read(self.paths["cpuacct"] + "/cpuacct.usage").strip()
        return int(text) / 1e9 if text else 0.0

    def oom(self) -> bool:
        path = self.paths["unified"] + "/memory.events" if self.v2 else self.paths["memory"] + "/memory.oom_control"
        for line in _read(path).splitlines():
            if line.startswith("oom_kill ") and int(line.split()[1]) > 0:
                return True
        return False

    def pids(self) -> list[int]:
        key = "unified" if self.v2 else "pids"
        return [int(x) for x in _read(self.paths[key] + "/cgroup.procs").split()]

    def kill(self) -> None:
        """Kill every process of the run: no fork can outrun it (pids.max drops to 0 first)."""
        key = "unified" if self.v2 else "pids"
        try:
            _write(self.paths[key] + "/pids.max", "0")
        except OSError:
            pass
        if self.v2 and os.path.exists(self.paths[key] + "/cgroup.kill"):
            try:
                _write(self.paths[key] + "/cgroup.kill", "1")
            except OSError:
                pass
        for _ in range(500):
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.005)

    def remove(self) -> None:
        for path in self.paths.values():
            for _ in range(100):
                try:
                    os.rmdir(path)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.01)


# --------------------------------------------------------------------------- the sandbox
class Sandbox:
    """Owns a private work folder (lib/ with the harness and the stub package) and starts runs.
    Use as a context manager; `probe()` before the first run."""

    def __init__(self, limits: Limits, jobs: int = 1, uid_base: int = DEFAULT_UID_BASE,
                 hide: tuple[str, ...] = ()):
        self.limits = limits
        self.jobs = jobs
        self.uid_base = uid_base
        self.hide = tuple(os.path.realpath(p) for p in hide)
        self.work = Path(self._make_work_dir())
        self.lib = self.work / "lib"
        self.newroot = self.work / "root"
        self.features: dict[str, bool] = {}
        self.uids: list[int] = []
        self._uid_locks: list[int] = []
        if os.geteuid() == 0:
            self.uids, self._uid_locks = _claim_uids(uid_base, max(1, jobs))
        self.protections = Protections()
        self.cgroups = Cgroups()
        self._prepare_lib()
        self.newroot.mkdir(mode=0o755)

    # ------------------------------------------------------------------ set-up
    @staticmethod
    def _remove_stale_work_dirs(base: str) -> None:
        """Work folders of graders that were killed (their pid is gone): the harness copy only."""
        for entry in _entries_of_dead_graders(base):
            path = os.path.join(base, entry)
            if os.path.isdir(path) and not os.path.islink(path) and os.stat(path).st_uid == os.geteuid():
                remove_tree(path)

    def _make_work_dir(self) -> str:
        """A private folder outside every hidden path (the repository, submissions, output)."""
        for base in (None, "/tmp", "/var/tmp", "/dev/shm"):
            if base is not None and not os.path.isdir(base):
                continue
            self._remove_stale_work_dirs(base or tempfile.gettempdir())
            d = tempfile.mkdtemp(prefix=f"rnngrade-{os.getpid()}-", dir=base)
            real = os.path.realpath(d)
            if not any(real == h or real.startswith(h + "/") for h in self.hide):
                os.chmod(d, 0o711)  # others may pass through to their own run folder, not list
                return d
            os.rmdir(d)
        raise RuntimeError("no temporary folder outside the repository, submissions and output")

    def _prepare_lib(self) -> None:
        """lib/: the harness, and a copy of rnncourse whose `exercises` is a stub (check() does
        nothing in the sandbox: the verdict is the grader's). No references, no grader."""
        import rnncourse

        self.lib.mkdir(mode=0o755)
        shutil.copy(HERE / "_harness.py", self.lib / "_harness.py")
        src = Path(rnncourse.__file__).resolve().parent
        dst = self.lib / "rnncourse"
        shutil.copytree(src, dst, ignore=shutil.ignore_patterns("grading", "exercises", "__pycache__", "*.pyc"))
        (dst / "exercises").mkdir()
        (dst / "exercises" / "__init__.py").write_text(
            '"""Stub used while a submission is graded: the grader judges in its own process."""\n\n\n'
            "class CheckFailed(AssertionError):\n    pass\n\n\n"
            "def check(*args, **kwargs):\n    return None\n", encoding="utf-8")
        for root, dirs, files in os.walk(self.lib):
            for name in dirs:
                os.chmod(os.path.join(root, name), 0o755)
            for name in files:
                os.chmod(os.path.join(root, name), 0o644)

    def close(self) -> None:
        if self.features.get("setuid"):
            for uid in self.uids:  # empty the keyrings the last runs left (no learner code runs)
                try:
                    self._run_raw(["-c", "pass"], dict(self.features, mountns=False, netns=False, pidns=False,
                                                       ipcns=False, cgroup=False), uid, timeout=20)
                except Exception:
                    pass
                _kill_uid(uid)
        self.cgroups.close()
        remove_tree(self.work)
        for fd in self._uid_locks:
            os.close(fd)
        self._uid_locks = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------------ probe
    def probe(self) -> Protections:
        """Find which protections work here, by starting a trivial child with each (once per
        process and configuration: the answer does not change while the grader runs)."""
        key = (os.geteuid(), sys.executable, bool(self.uids), os.environ.get(DISABLE_VAR, ""),
               self.cgroups.version)
        if key not in _PROBED:
            _PROBED[key] = self._probe()
        self.features, self.protections = (copy.deepcopy(x) for x in _PROBED[key])
        p = self.protections
        if self.features["setuid"]:
            uids = self.uids
            p.uids = list(uids)
            p.notes["user"] = (f"uids {uids[0]}..{uids[-1]}, one per parallel job" if len(uids) > 1
                               else f"uid {uids[0]}")
        else:
            self.uids = []
        return p

    def _probe(self):
        root = os.geteuid() == 0
        uids = self.uids
        disabled = _disabled()
        none = dict(userns=False, mountns=False, netns=False, pidns=False, ipcns=False, setuid=False,
                    cgroup=False)
        bases = ([dict(none)] if root else []) + [dict(none, userns=True)]
        features = dict(none)
        names = ("mountns", "netns", "pidns", "ipcns")
        for base in bases:
            trial = dict(base, mountns=True, netns=True, pidns=True, ipcns=True)
            if self._probe_run(trial):
                features = trial
                break
        else:  # one at a time (say, network namespaces but no mounts)
            for base in bases:
                got = dict(base)
                for key in names:
                    if self._probe_run(dict(got, **{key: True})):
                        got[key] = True
                if any(got[k] for k in names):
                    features = got
                    break
        if self.cgroups.version:
            try:
                features["cgroup"] = self._probe_run(dict(features, cgroup=True))
            except OSError as exc:          # the trial run's own group could not be made
                self.cgroups.why = f"a trial run's cgroup could not be made: {exc}"
        setuid_error = ""
        if uids:
            ok, setuid_error = self._probe_run(dict(features, setuid=True), uids[0], want_error=True)
            features["setuid"] = ok

        p = Protections(cgroup=self.cgroups.version if features["cgroup"] else "")
        p.active["user"] = features["setuid"]
        if not features["setuid"]:
            if not root:
                why = "the grader is not root"
            elif DISABLE_VAR in setuid_error:
                why = setuid_error
            elif "Permission denied" in setuid_error:
                why = (f"an unprivileged user cannot run {sys.executable} here (it lies in a folder others cannot "
                       "read) and no private file system can expose it; install Python where others can read it")
            else:
                why = f"dropping to another uid failed: {setuid_error or 'no reason given'}"
            p.notes["user"] = why + "; the child runs as the grader's own user" + (
                " (root!)" if root else ": it can write whatever the grader can, the gradebook included")
        for key, feat in (("files", "mountns"), ("network", "netns"), ("pids", "pidns"), ("ipc", "ipcns")):
            p.active[key] = features[feat]
            if features[feat] and features["userns"]:
                p.notes[key] = "in a user namespace"
            elif not features[feat]:
                p.notes[key] = (f"disabled by {DISABLE_VAR}" if feat in disabled else
                                "this machine does not allow the namespace (needs root or user namespaces)")
        if not features["mountns"]:
            p.notes["files"] += ("; only file permissions protect the repository and the installed references: "
                                 "make them unreadable to others" if features["setuid"] else
                                 "; the child can read what the grader's user can read")
        if features["ipcns"] and not features["setuid"]:
            p.active["ipc"] = False
            p.notes["ipc"] = ("IPC namespace active, but without a separate user the grader's own keyrings are "
                              "not separated from the submission's")
        cg = features["cgroup"]
        why_cg = self.cgroups.why or ("a trial run in a cgroup failed" if self.cgroups.version else "")
        for key in ("memory", "processes", "cpu"):
            p.active[key] = cg
            if not cg:
                p.notes[key] = f"no cgroups ({why_cg})"
        if not cg:
            p.notes["memory"] += ("; RLIMIT_AS bounds each process alone: shared memory, memfd and several "
                                  "processes together can exceed the limit")
            p.notes["processes"] += ("; RLIMIT_NPROC counts every process of the uid" +
                                     ("" if features["setuid"] or features["userns"] else
                                      " (the grader's own too, so it is not set)"))
            p.notes["cpu"] += "; RLIMIT_CPU bounds each process alone, and several runs share the cores freely"
        p.active["disk"] = features["mountns"]
        if not features["mountns"]:
            p.notes["disk"] = ("needs the private file system; the run writes into a host folder, each file "
                               f"at most {self.limits.fsize_mb} MB but no bound in total")
        p.active["output"] = p.active["time"] = True
        p.active["cleanup"] = bool(cg or features["pidns"] or features["setuid"])
        p.notes["cleanup"] = ", ".join(
            w for w, ok in (("cgroup", cg), ("PID ns", features["pidns"]), ("uid", features["setuid"]),
                            ("subreaper", True)) if ok)
        if not p.active["cleanup"]:
            p.notes["cleanup"] = ("only the launcher (a child subreaper) and a per-run marker find the run's "
                                  "processes; one that kills the launcher and changes its environment escapes")
        return features, p

    def _probe_run(self, features: dict, uid: int | None = None, want_error: bool = False):
        disabled = _disabled()
        if any(features.get(x) for x in disabled):
            return (False, f"disabled by {DISABLE_VAR}") if want_error else False
        code = ("import json, os, sys; sys.path += json.loads(os.environ['GRADER_SYS_PATH']); import numpy; "
                "os.write(int(sys.argv[2]), b'{\"e\": \"done\"}\\n')")
        res = self._run_raw(["-c", code], features, uid, timeout=60)
        ok = res.returncode == 0 and any(e.get("e") == "done" for e in res.events)
        return (ok, res.launcher_error or "") if want_error else ok

    # ------------------------------------------------------------------ runs
    def uid_for(self, slot: int) -> int | None:
        return self.uids[slot % len(self.uids)] if self.features.get("setuid") and self.uids else None

    def run(self, job: bytes, inputs: dict, slot: int) -> RunResult:
        """Run the harness on `job` (JSON bytes); `inputs[(question id, trial)]` are the bytes of
        an .npz sent when (and only when) the harness is about to make that call."""
        return self._run_raw(None, self.features, self.uid_for(slot), timeout=self.limits.timeout,
                             job=job, inputs=inputs)

    def _run_raw(self, argv_tail, features: dict, uid: int | None, timeout: float, job: bytes = b"{}",
                 inputs: dict | None = None) -> RunResult:
        lim = self.limits
        use_uid = uid if features.get("setuid") else None
        run_dir = None
        if not features.get("mountns"):  # a host folder: removed after the run, whatever it holds
            run_dir = self.work / f"run-{secrets.token_hex(8)}"
            run_dir.mkdir(mode=0o700)
            (run_dir / "tmp").mkdir(mode=0o700)
            if use_uid is not None:
                os.chown(run_dir, use_uid, use_uid)
                os.chown(run_dir / "tmp", use_uid, use_uid)
        inside = "/sandbox" if features.get("mountns") else str(run_dir)
        cg = self.cgroups.new_run(lim) if features.get("cgroup") else None   # before the pipes: it may fail
        out_r, out_w = os.pipe()
        in_r, in_w = os.pipe()
        if argv_tail is None:
            lib = LIB_MOUNT if features.get("mountns") else str(self.lib)
            argv_tail = [f"{lib}/_harness.py"]
        argv = [_interpreter(), "-I", "-S", "-B", *argv_tail, str(in_r), str(out_w)]
        rlimits = {"RLIMIT_FSIZE": lim.fsize_mb * 2**20, "RLIMIT_NOFILE": lim.nofile, "RLIMIT_CORE": 0,
                   "RLIMIT_CPU": int(lim.cpu_budget + 10)}
        # Address space per process, also with a cgroup: a single process that grows fails at once
        # with MemoryError instead of making the whole run thrash against the cgroup's limit.
        rlimits["RLIMIT_AS"] = lim.memory_mb * 2**20
        if cg is None:
            if use_uid is not None:
                rlimits["RLIMIT_NPROC"] = lim.nproc
            elif features.get("userns"):
                rlimits["RLIMIT_NPROC"] = lim.nproc + _count_own_processes()
        marker = secrets.token_hex(12)
        tmp = "/tmp" if features.get("mountns") else str(run_dir / "tmp")
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": inside, "TMPDIR": tmp, "LANG": "C.UTF-8",
               "MPLBACKEND": "Agg", "MPLCONFIGDIR": tmp, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
               "MKL_NUM_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONHASHSEED": "0",
               "GRADER_SYS_PATH": json.dumps(_sys_path_inside(features)), "RNNGRADE_RUN": marker}
        ids = use_uid if use_uid is not None else None
        cfg = dict(features, fd=out_w, keep_fds=[in_r, out_w], newroot=str(self.newroot),
                   sandbox=str(run_dir) if run_dir else "",
                   ro_binds=_ro_binds() + [[str(self.lib), LIB_MOUNT]], overlays=_overlays(self.lib),
                   disk_mb=lim.disk_mb, rlimits=rlimits,
                   uid=ids if ids is not None else os.getuid(), gid=ids if ids is not None else os.getgid(),
                   argv=argv, env=env, cgroup_procs=cg.procs_files if cg else [], grader_pid=os.getpid())
        cfg_dir = Path(tempfile.mkdtemp(dir=self.work, prefix="cfg-"))  # mode 0700: the grader's only
        cfg_path = cfg_dir / "launch.json"
        cfg_path.write_text(json.dumps(cfg), encoding="utf-8")

        events: list[dict] = []
        state = {"n": 0, "truncated": False, "current": None, "since": time.monotonic(), "launcher_error": None}
        sent: set = set()
        send_queue: list[bytes] = []
        send_cv = threading.Condition()

        def queue_send(blob: bytes | None):
            with send_cv:
                send_queue.append(blob)
                send_cv.notify()

        def writer():
            try:
                while True:
                    with send_cv:
                        while not send_queue:
                            send_cv.wait()
                        blob = send_queue.pop(0)
                    if blob is None:
                        return
                    view = memoryview(len(blob).to_bytes(8, "little") + blob)
                    while view:
                        view = view[os.write(in_w, view):]
            except OSError:  # the run ended (EPIPE): nothing more to send
                pass

        def handle(line: bytes):
            if not line.strip() or len(line) > MAX_LINE:
                return
            try:
                obj = json.loads(line)
            except (ValueError, RecursionError):
                return
            if not isinstance(obj, dict) or not isinstance(obj.get("e"), str):
                return
            kind = obj["e"]
            if kind == "launcher_error" and not events:
                state["launcher_error"] = str(obj.get("error"))[:500]
                return
            events.append(obj)
            now = time.monotonic()
            if kind == "cell" and isinstance(obj.get("i"), int):
                state["current"], state["since"] = ("cell", obj["i"]), now
            elif kind == "q" and isinstance(obj.get("id"), str) and isinstance(obj.get("t"), int):
                state["current"], state["since"] = ("q", obj["id"]), now
                key = (obj["id"], obj["t"])
                if inputs is not None and key in inputs and key not in sent:
                    sent.add(key)
                    queue_send(inputs[key])
            elif kind in ("cell_end", "ans", "cells_done"):
                state["current"] = None

        def reader():
            buf = b""
            with os.fdopen(out_r, "rb", buffering=0) as f:
                while True:
                    data = f.read(1 << 16)
                    if not data:
                        break
                    state["n"] += len(data)
                    if state["n"] > lim.max_output_bytes:
                        state["truncated"] = True
                        continue  # keep draining (the run is being stopped), keep nothing
                    buf += data
                    while b"\n" in buf:
                        line, _, buf = buf.partition(b"\n")
                        handle(line)
                    if len(buf) > MAX_LINE:
                        buf = b""
                if buf and not state["truncated"]:
                    handle(buf)

        start = time.monotonic()
        try:
            proc = subprocess.Popen([sys.executable, "-I", "-S", "-B", str(HERE / "_launcher.py"), str(cfg_path)],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    pass_fds=(in_r, out_w), start_new_session=True, close_fds=True)
        except BaseException:
            for fd in (out_r, out_w, in_r, in_w):
                os.close(fd)
            if cg:
                cg.remove()
            raise
        finally:
            pass
        os.close(out_w)
        os.close(in_r)
        threads = [threading.Thread(target=reader, daemon=True), threading.Thread(target=writer, daemon=True)]
        for t in threads:
            t.start()
        queue_send(job)
        stopped, stopped_at = None, None
        while proc.poll() is None:
            now = time.monotonic()
            current, since = state["current"], state["since"]
            if current and current[0] == "cell" and lim.cell_timeout and now - since > lim.cell_timeout:
                stopped = "cell"
            elif current and current[0] == "q" and lim.call_timeout and now - since > lim.call_timeout:
                stopped = "call"
            elif now - start > timeout:
                stopped = "run"
            elif cg is not None and cg.cpu_seconds() > lim.cpu_budget:
                stopped = "cpu"
            elif state["truncated"]:
                stopped = "output"
            if stopped:
                stopped_at = current
                break
            time.sleep(0.02)
        self._terminate(proc, use_uid, cg, marker, graceful=stopped is None)
        oom = cg.oom() if cg else False
        wall = time.monotonic() - start
        threads[0].join(timeout=10)  # every writer is dead once the run's processes are killed
        queue_send(None)
        try:
            os.close(in_w)
        except OSError:
            pass
        threads[1].join(timeout=5)
        if cg:
            cg.remove()
        remove_tree(cfg_dir)
        if run_dir is not None:
            remove_tree(run_dir)
        if state["truncated"] and stopped is None:
            stopped = "output"
        return RunResult(list(events), proc.returncode, stopped, wall, state["truncated"], state["launcher_error"],
                         oom, stopped_at)

    def _terminate(self, proc: subprocess.Popen, uid: int | None, cg: RunGroup | None, marker: str,
                   graceful: bool) -> None:
        """Kill the run and everything it started: its cgroup, the launcher (which kills every
        process below it, and with a PID namespace the namespace dies with it), its process
        group, any process left with the run's uid, and any process carrying the run's marker."""
        if cg is not None:
            cg.kill()
        if proc.poll() is None:
            try:
                proc.terminate()  # the launcher kills every process below it, then exits
                proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                proc.kill()
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        proc.wait()
        if cg is not None:
            cg.kill()
        if uid is not None:
            _kill_uid(uid)
        elif cg is None:
            _kill_marked(marker)


def _count_own_processes() -> int:
    uid, n = os.getuid(), 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    n += 1
            except OSError:
                pass
    return n


def _kill_uid(uid: int) -> None:
    """SIGKILL every process whose real uid is `uid` (a sandbox uid: only runs we started)."""
    for _ in range(50):
        found = False
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/status", encoding="utf-8") as f:
                    real_uid = next(int(line.split()[1]) for line in f if line.startswith("Uid:"))
            except (OSError, StopIteration, ValueError):
                continue
            if real_uid == uid:
                found = True
                try:
                    os.kill(int(entry), signal.SIGKILL)
                except OSError:
                    pass
        if not found:
            return
        time.sleep(0.02)


def _kill_marked(marker: str) -> None:
    """Without a cgroup or a uid of its own, a run's leftovers are found by the marker in their
    environment (inherited by every process it starts)."""
    needle = f"RNNGRADE_RUN={marker}".encode()
    me = os.getpid()
    for _ in range(20):
        found = False
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == me:
                continue
            try:
                with open(f"/proc/{entry}/environ", "rb") as f:
                    env = f.read()
            except OSError:
                continue
            if needle in env.split(b"\0"):
                found = True
                try:
                    os.kill(int(entry), signal.SIGKILL)
                except OSError:
                    pass
        if not found:
            return
        time.sleep(0.02)
