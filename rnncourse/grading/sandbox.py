"""The sandbox a submission runs in, and a probe of which of its protections this machine allows.

Design (see `_launcher.py` for the steps): a plain Python child per submission (no Jupyter
kernel), started through a small launcher that uses Linux primitives directly (unshare(2),
mount(2), chroot(2), setrlimit(2), setresuid(2), prctl(2)), so nothing beyond Python is needed
(no setpriv, unshare or prlimit binaries, no Docker). Each protection is probed once per
grading run by actually starting a child with it; what is unavailable is reported at the top
of the grading report, never silently assumed.

Protections, by key:
    user      the child runs as a dedicated unprivileged uid/gid (one per parallel slot, so one
              student's processes cannot touch, signal or starve another's); needs root
    files     a private root file system: only the system, Python and the submission's own
              folder exist; the repository, solutions/, other submissions and the output are
              absent (mount namespace + chroot; root, or a user namespace)
    network   a new network namespace with no interface up: no connection can be made
    pids      a PID namespace: the child sees only its own processes, and killing it on a
              timeout kills everything it started (fork bombs included)
    memory    RLIMIT_AS (address space) in MB
    processes RLIMIT_NPROC (per uid: exact with a dedicated uid)
    output    prints are discarded in the child; RLIMIT_FSIZE caps any file it writes; the
              grader reads at most `max_output_bytes` from it
    time      a wall-clock limit enforced by the grader (kill), plus RLIMIT_CPU as a backstop
"""

from __future__ import annotations

import copy
import fcntl
import json
import os
import pwd
import grp
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
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
LAUNCHER_FAILED = 70
MEMORY_EXIT = 86
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
DEFAULT_UID_BASE = 61000
_PROBED: dict[tuple, tuple] = {}
DISABLE_VAR = "RNNCOURSE_GRADER_DISABLE"  # e.g. "mountns,netns": treat as unavailable (for tests)


@dataclass
class Limits:
    timeout: float = 30.0          # wall-clock seconds per run of a submission
    memory_mb: int = 2048          # RLIMIT_AS (TensorFlow alone needs about 1.5 GB)
    nproc: int = 64                # RLIMIT_NPROC (processes and threads of the sandbox uid)
    fsize_mb: int = 64             # RLIMIT_FSIZE
    tmp_mb: int = 64               # size of the private /tmp
    nofile: int = 256              # RLIMIT_NOFILE
    max_output_bytes: int = 64 * 2**20   # the most the grader reads back from one run


@dataclass
class Protections:
    """Which protections are active, and why a missing one is missing."""

    active: dict[str, bool] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    uids: list[int] = field(default_factory=list)

    def describe(self, limits: Limits) -> list[str]:
        label = {
            "user": "separate unprivileged user",
            "files": "private file system (repository, solutions/, other submissions and output invisible)",
            "network": "no network (empty network namespace)",
            "pids": "PID namespace (a timeout kills every process the submission started)",
            "memory": f"memory limit {limits.memory_mb} MB (RLIMIT_AS)",
            "processes": f"process limit {limits.nproc} (RLIMIT_NPROC)",
            "output": f"output limit (prints discarded, files <= {limits.fsize_mb} MB, "
                      f"<= {limits.max_output_bytes // 2**20} MB read back)",
            "time": f"wall-clock limit {limits.timeout:g} s per run (kill)",
        }
        lines = []
        for key, text in label.items():
            ok = self.active.get(key, False)
            note = self.notes.get(key, "")
            lines.append(f"- [{'x' if ok else ' '}] {text}: {'active' if ok else 'NOT ACTIVE'}"
                         + (f" ({note})" if note else ""))
        return lines


@dataclass
class RunResult:
    events: list[dict]
    returncode: int | None
    timed_out: bool
    wall: float
    output_truncated: bool
    launcher_error: str | None = None


def _child_sys_path() -> list[str]:
    """Where the child finds numpy and friends: the grader's site-packages, without running
    their .pth files (so an editable install cannot point the child back at the repository)."""
    import numpy

    paths = []
    numpy_home = os.path.dirname(os.path.dirname(os.path.abspath(numpy.__file__)))
    for p in [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"], *site.getsitepackages(), numpy_home]:
        if p and os.path.isdir(p) and p not in paths:
            paths.append(p)
    return paths


SITE_MOUNT = "/opt/grader-site"  # where the child sees the grader's site-packages, in a private root


def _interpreter() -> str:
    """The real Python binary. A virtualenv's `python` is only a link to it, and the venv itself
    may live inside the course repository, which a submission must not be able to see."""
    return os.path.realpath(sys.executable)


def _ro_binds(lib_dir: Path) -> list[list[str]]:
    """[source, target] pairs bound read-only into the private root.

    Site-packages folders are bound at neutral paths (SITE_MOUNT/0, /1, ...), never at their
    own paths: a virtualenv inside the repository would otherwise recreate the repository's
    path (and its name) inside the sandbox.
    """
    exe = _interpreter()
    same_path = set(SYSTEM_DIRS) | {os.path.abspath(p) for p in
                                    [sys.base_prefix, os.path.realpath(sys.base_prefix), os.path.dirname(exe), str(lib_dir)]}
    pairs = [[p, p] for p in sorted(same_path) if os.path.lexists(p)]
    pairs += [[os.path.realpath(p), f"{SITE_MOUNT}/{i}"] for i, p in enumerate(_child_sys_path())]
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


class Sandbox:
    """Owns a private work folder (lib/ with the harness and the stub package, one folder per
    run) and starts runs in it. Use as a context manager; `probe()` before the first run."""

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
        self._prepare_lib()
        self.newroot.mkdir(mode=0o755)

    # ------------------------------------------------------------------ set-up
    def _make_work_dir(self) -> str:
        """A private folder outside every hidden path (the repository, submissions, output)."""
        for base in (None, "/tmp", "/var/tmp", "/dev/shm"):
            if base is not None and not os.path.isdir(base):
                continue
            d = tempfile.mkdtemp(prefix="rnngrade-", dir=base)
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
        shutil.rmtree(self.work, ignore_errors=True)
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
        key = (os.geteuid(), sys.executable, bool(self.uids), os.environ.get(DISABLE_VAR, ""))
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
        none = dict(userns=False, mountns=False, netns=False, pidns=False, setuid=False)
        bases = ([dict(none)] if root else []) + [dict(none, userns=True)]
        features = dict(none)
        for base in bases:
            trial = dict(base, mountns=True, netns=True, pidns=True)
            if self._probe_run(trial):
                features = trial
                break
        else:  # one at a time (say, network namespaces but no mounts)
            for base in bases:
                got = dict(base)
                for key in ("netns", "pidns", "mountns"):
                    if self._probe_run(dict(got, **{key: True})):
                        got[key] = True
                if any(got[k] for k in ("netns", "pidns", "mountns")):
                    features = got
                    break
        setuid_error = ""
        if uids:
            ok, setuid_error = self._probe_run(dict(features, setuid=True), uids[0], want_error=True)
            features["setuid"] = ok

        p = Protections()
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
                " (root!)" if root else "")
        for key, feat in (("files", "mountns"), ("network", "netns"), ("pids", "pidns")):
            p.active[key] = features[feat]
            if features[feat] and features["userns"]:
                p.notes[key] = "in a user namespace"
            elif not features[feat]:
                p.notes[key] = (f"disabled by {DISABLE_VAR}" if feat in os.environ.get(DISABLE_VAR, "") else
                                "this machine does not allow the namespace (needs root or user namespaces)")
        if not features["mountns"]:
            p.notes["files"] += ("; only file permissions protect the repository: make it unreadable to others"
                                 if features["setuid"] else "; the child can read what the grader's user can read")
        p.active["memory"] = p.active["output"] = p.active["time"] = True
        p.active["processes"] = features["setuid"] or features["userns"]
        if not features["setuid"]:
            p.notes["processes"] = ("no dedicated uid: the limit counts the grader user's own processes too"
                                    if p.active["processes"] else
                                    "no dedicated uid or user namespace: RLIMIT_NPROC would count the grader's own processes")
        return features, p

    def _probe_run(self, features: dict, uid: int | None = None, want_error: bool = False):
        disabled = {x.strip() for x in os.environ.get(DISABLE_VAR, "").split(",") if x.strip()}
        if any(features.get(x) for x in disabled):
            return (False, f"disabled by {DISABLE_VAR}") if want_error else False
        code = ("import json, os, sys; sys.path += json.loads(os.environ['GRADER_SYS_PATH']); import numpy; "
                "os.write(int(sys.argv[1]), b'{\"e\": \"done\"}\\n')")
        run_dir = self.new_run_dir(0, uid)
        try:
            res = self._run(["-c", code], run_dir, features, uid, timeout=60)
        finally:
            shutil.rmtree(run_dir, ignore_errors=True)
        ok = res.returncode == 0 and any(e.get("e") == "done" for e in res.events)
        return (ok, res.launcher_error or "") if want_error else ok

    # ------------------------------------------------------------------ runs
    def uid_for(self, slot: int) -> int | None:
        return self.uids[slot % len(self.uids)] if self.features.get("setuid") and self.uids else None

    def new_run_dir(self, slot: int, uid: int | None = None) -> Path:
        """A fresh folder for one run, owned by the run's uid, invisible to other uids."""
        d = self.work / f"run-{slot}-{secrets.token_hex(8)}"
        d.mkdir(mode=0o700)
        uid = self.uid_for(slot) if uid is None else uid
        if uid is not None:
            os.chown(d, uid, uid)
        return d

    def run(self, run_dir: Path, slot: int) -> RunResult:
        """Run the harness on the job in `run_dir` (job.json and inputs.npz, written by the caller)."""
        uid = self.uid_for(slot)
        for name in os.listdir(run_dir):
            os.chmod(run_dir / name, 0o644)
        return self._run(None, run_dir, self.features, uid, timeout=self.limits.timeout)

    def _run(self, argv_tail, run_dir: Path, features: dict, uid: int | None, timeout: float) -> RunResult:
        lim = self.limits
        use_uid = uid if features.get("setuid") else None
        inside = "/sandbox" if features.get("mountns") else str(run_dir)
        read_fd, write_fd = os.pipe()
        if argv_tail is None:
            argv_tail = [f"{self.lib}/_harness.py", inside]
        argv = [_interpreter(), "-I", "-S", "-B", *argv_tail, str(write_fd)]
        rlimits = {"RLIMIT_AS": lim.memory_mb * 2**20, "RLIMIT_FSIZE": lim.fsize_mb * 2**20,
                   "RLIMIT_NOFILE": lim.nofile, "RLIMIT_CORE": 0, "RLIMIT_CPU": int(2 * timeout + 10)}
        if use_uid is not None:
            rlimits["RLIMIT_NPROC"] = lim.nproc
        elif features.get("userns"):
            rlimits["RLIMIT_NPROC"] = lim.nproc + _count_own_processes()
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": inside, "TMPDIR": "/tmp", "LANG": "C.UTF-8",
               "MPLBACKEND": "Agg", "MPLCONFIGDIR": "/tmp", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
               "MKL_NUM_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONHASHSEED": "0",
               "GRADER_SYS_PATH": json.dumps(_sys_path_inside(features))}
        cfg = dict(features, fd=write_fd, newroot=str(self.newroot), sandbox=str(run_dir),
                   ro_binds=_ro_binds(self.lib), tmp_mb=lim.tmp_mb, rlimits=rlimits,
                   uid=use_uid if use_uid is not None else os.getuid(),
                   gid=use_uid if use_uid is not None else os.getgid(), argv=argv, env=env)
        cfg_dir = Path(tempfile.mkdtemp(dir=self.work, prefix="cfg-"))  # mode 0700: the grader's only
        cfg_path = cfg_dir / "launch.json"
        cfg_path.write_text(json.dumps(cfg), encoding="utf-8")

        chunks: list[bytes] = []
        state = {"n": 0, "truncated": False}

        def reader():
            with os.fdopen(read_fd, "rb", buffering=0) as f:
                while True:
                    data = f.read(1 << 16)
                    if not data:
                        break
                    if state["n"] < lim.max_output_bytes:
                        chunks.append(data[: lim.max_output_bytes - state["n"]])
                    else:
                        state["truncated"] = True
                    state["n"] += len(data)

        start = time.monotonic()
        try:
            proc = subprocess.Popen([sys.executable, "-I", "-S", "-B", str(HERE / "_launcher.py"), str(cfg_path)],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    pass_fds=(write_fd,), start_new_session=True, close_fds=True)
        finally:
            os.close(write_fd)
        thread = threading.Thread(target=reader, daemon=True)
        thread.start()
        timed_out = False
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
        self._terminate(proc, use_uid)
        wall = time.monotonic() - start
        thread.join(timeout=10)  # every writer is dead once the run's processes are killed
        shutil.rmtree(cfg_dir, ignore_errors=True)
        events, launcher_error = _parse_events(b"".join(chunks))
        return RunResult(events, proc.returncode, timed_out, wall, state["truncated"], launcher_error)

    def _terminate(self, proc: subprocess.Popen, uid: int | None) -> None:
        """Kill the run: the launcher (its PID-namespace child and every process in it die with
        it), its process group, and, with a dedicated uid, any process left with that uid."""
        if proc.poll() is None:
            proc.kill()
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        proc.wait()
        if uid is not None:
            _kill_uid(uid)


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


def _parse_events(data: bytes) -> tuple[list[dict], str | None]:
    """The child's JSON lines, each parsed defensively; anything malformed is dropped."""
    events, launcher_error = [], None
    for line in data.split(b"\n"):
        if not line.strip() or len(line) > 48 * 2**20:
            continue
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if not isinstance(obj, dict) or not isinstance(obj.get("e"), str):
            continue
        if obj["e"] == "launcher_error" and not events:
            launcher_error = str(obj.get("error"))[:500]
            continue
        events.append(obj)
    return events, launcher_error
