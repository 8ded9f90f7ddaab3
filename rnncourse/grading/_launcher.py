"""Builds the sandbox around one run of the harness, then becomes it (exec).

Run by the grader as `python -I -S -B _launcher.py CONFIG.json`, with the grader's own
privileges. In order, each step only if the config asks for it (the grader probes first which
ones this machine allows):

0. join the run's cgroups (memory, pids, CPU: limits on the run as a whole, every process,
   shared memory and tmpfs page included) and become a child subreaper, so that every process
   the run starts, even one that detaches with setsid or a double fork, stays below this one;
1. new namespaces: user (when the grader is not root), mount, network (no interfaces up, so
   no network at all), PID (the run's processes see only each other and all die with it), IPC
   (System V shared memory, semaphores, message queues and POSIX queues are private and are
   destroyed with the run);
2. fork: the child runs the harness; this process waits for it, then kills every process left
   below it, and exits with the child's status (128 + signal if it was killed); if this process
   is itself killed, the child dies too (PR_SET_PDEATHSIG) and, with a PID namespace, the whole
   namespace with it;
3. a private file-system view: a fresh tmpfs becomes the root, holding read-only bind mounts of
   the system (/usr, /lib, /etc, ...), the Python installation, site-packages (with any
   installed copy of rnncourse replaced by the stub that holds no references) and the grader's
   lib folder (harness and the stub), plus ONE size-limited tmpfs (the disk quota) that holds
   /sandbox (the working folder), /tmp and /dev/shm, /dev/null & co. and a fresh /proc; then
   chroot into it. The repository, solutions/, other students' submissions and the output
   folder do not exist there, and everything written disappears with the run;
4. resource limits (address space, processes, file size, open files, CPU seconds, no core);
5. drop to an unprivileged uid/gid with no supplementary groups, empty that uid's kernel
   keyrings (left by an earlier run) and join a fresh session keyring, set no_new_privs;
6. exec the harness.

Standalone on purpose (no imports from rnncourse): it runs before any sandbox exists.
"""

import ctypes
import json
import os
import platform
import resource
import signal
import sys
import time

CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWIPC = \
    0x00020000, 0x10000000, 0x20000000, 0x40000000, 0x08000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MS_NOATIME, MS_NODIRATIME, MS_RELATIME = 1024, 2048, 1 << 21
MNT_DETACH = 2
ST_FLAGS = {1: MS_RDONLY, 2: MS_NOSUID, 4: MS_NODEV, 8: MS_NOEXEC, 1024: MS_NOATIME, 2048: MS_NODIRATIME,
            4096: MS_RELATIME}
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS, PR_SET_CHILD_SUBREAPER = 1, 38, 36
KEYCTL_JOIN_SESSION_KEYRING, KEYCTL_CLEAR = 1, 7
KEY_SPEC_USER_KEYRING, KEY_SPEC_USER_SESSION_KEYRING = -4, -5
SYS_KEYCTL = {"x86_64": 250, "aarch64": 219, "ppc64le": 283, "s390x": 280}.get(platform.machine())
LAUNCHER_FAILED = 70

libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
libc.unshare.argtypes = [ctypes.c_int]
libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]


def _ok(ret, what):
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _b(s):
    return s.encode() if s is not None else None


def mount(source, target, fstype, flags, data=None):
    _ok(libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data)), f"mount {target}")


def _locked_flags(path):
    """The flags of the mount `path` is on, which a read-only remount must keep."""
    f = os.statvfs(path).f_flag
    return sum(ms for st, ms in ST_FLAGS.items() if f & st and ms != MS_RDONLY)


def _bind_ro(path, target):
    if os.path.isdir(path):
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if not os.path.exists(target):
            open(target, "w").close()
    mount(path, target, None, MS_BIND | MS_REC)
    mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | _locked_flags(path))


def build_root(cfg):
    root = cfg["newroot"]
    uid, gid = cfg["uid"], cfg["gid"]
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "mode=755,size=4m")
    bound = []
    for path, inside in sorted(cfg["ro_binds"], key=lambda pair: pair[1]):
        if not os.path.lexists(path) or any(inside == b or inside.startswith(b.rstrip("/") + "/") for b in bound):
            continue
        target = root + inside
        if os.path.islink(path):  # /bin -> usr/bin on merged-/usr systems
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.symlink(os.readlink(path), target)
            continue
        _bind_ro(path, target)
        bound.append(inside)
    for path, inside in cfg.get("overlays", []):  # e.g. the stub over an installed rnncourse
        if os.path.isdir(root + inside):
            _bind_ro(path, root + inside)
    os.makedirs(root + "/dev", exist_ok=True)
    for dev in ("null", "zero", "random", "urandom"):
        if os.path.exists("/dev/" + dev):
            open(f"{root}/dev/{dev}", "w").close()
            mount("/dev/" + dev, f"{root}/dev/{dev}", None, MS_BIND)
    # The disk quota: one tmpfs for everything the run may write (its folder, /tmp, /dev/shm).
    disk = root + "/.disk"
    os.makedirs(disk)
    mount("tmpfs", disk, "tmpfs", MS_NOSUID | MS_NODEV, f"mode=755,size={cfg['disk_mb']}m")
    for name, inside, mode in (("home", "/sandbox", 0o700), ("tmp", "/tmp", 0o1777), ("shm", "/dev/shm", 0o1777)):
        os.makedirs(f"{disk}/{name}")
        os.chown(f"{disk}/{name}", uid, gid)
        os.chmod(f"{disk}/{name}", mode)
        os.makedirs(root + inside, exist_ok=True)
        mount(f"{disk}/{name}", root + inside, None, MS_BIND)
    _ok(libc.umount2(_b(disk), MNT_DETACH), "umount /.disk")
    os.rmdir(disk)
    if cfg["pidns"]:
        os.makedirs(root + "/proc")
        mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    mount(None, root, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, "mode=755,size=4m")
    os.chroot(root)
    os.chdir("/sandbox")


def set_limits(cfg):
    for name, value in cfg["rlimits"].items():
        resource.setrlimit(getattr(resource, name), (value, value))


def fresh_keyrings(clear):
    """Empty this uid's user keyrings (keys an earlier run of the same sandbox uid left; only
    for a sandbox uid, never the grader's own) and join a new, empty session keyring, so
    nothing is shared with the grader or with other runs."""
    if SYS_KEYCTL is None:
        return
    for spec in (KEY_SPEC_USER_KEYRING, KEY_SPEC_USER_SESSION_KEYRING) if clear else ():
        libc.syscall(SYS_KEYCTL, KEYCTL_CLEAR, ctypes.c_long(spec))
    if libc.syscall(SYS_KEYCTL, KEYCTL_JOIN_SESSION_KEYRING, None) < 0:
        err = ctypes.get_errno()
        if err not in (38,):  # ENOSYS: a kernel without keyrings has none to share
            raise OSError(err, f"keyctl(JOIN_SESSION_KEYRING): {os.strerror(err)}")


def child(cfg):
    _ok(libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl(PDEATHSIG)")
    if cfg["mountns"]:
        build_root(cfg)
    else:
        os.chdir(cfg["sandbox"])
    set_limits(cfg)
    if cfg["setuid"]:
        os.setgroups([])
        os.setresgid(cfg["gid"], cfg["gid"], cfg["gid"])
        os.setresuid(cfg["uid"], cfg["uid"], cfg["uid"])
    fresh_keyrings(clear=cfg["setuid"])
    _ok(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(NO_NEW_PRIVS)")
    for fd in cfg["keep_fds"]:
        os.set_inheritable(fd, True)
    argv = cfg["argv"]
    os.execve(argv[0], argv, cfg["env"])


def _descendants(root_pid):
    """Pids of every process below `root_pid` (as a subreaper, orphans stay below it)."""
    parent = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    stat = f.read()
                parent[int(entry)] = int(stat[stat.rindex(b")") + 2:].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    found, frontier = set(), {root_pid}
    while frontier:
        frontier = {pid for pid, ppid in parent.items() if ppid in frontier and pid not in found}
        found |= frontier
    return found


def kill_below(me):
    """SIGKILL every descendant and reap it, until none is left (a fork bomb included)."""
    for _ in range(200):
        pids = _descendants(me)
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        while True:
            try:
                if os.waitpid(-1, os.WNOHANG)[0] == 0:
                    break
            except ChildProcessError:
                break
        time.sleep(0.01)


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        cfg = json.load(f)
    fd = cfg["fd"]
    os.umask(0o022)
    try:
        # If the grader dies (killed, interrupted), this run dies with it: nothing runs unwatched.
        _ok(libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl(PDEATHSIG)")
        if os.getppid() != cfg.get("grader_pid", os.getppid()):
            os._exit(LAUNCHER_FAILED)
        for procs in cfg.get("cgroup_procs", []):
            with open(procs, "w") as f:
                f.write(str(os.getpid()))
        _ok(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), "prctl(CHILD_SUBREAPER)")
        flags = (CLONE_NEWUSER * cfg["userns"]) | (CLONE_NEWNS * cfg["mountns"]) | \
                (CLONE_NEWNET * cfg["netns"]) | (CLONE_NEWPID * cfg["pidns"]) | (CLONE_NEWIPC * cfg["ipcns"])
        uid, gid = os.getuid(), os.getgid()
        if flags:
            _ok(libc.unshare(flags), "unshare")
        if cfg["userns"]:
            if uid == 0:  # root keeps every uid, so it can still drop to the sandbox uid
                maps = ("0 0 4294967295", None, "0 0 4294967295")
            else:  # a user maps only itself: the run stays its uid, inside the namespaces
                maps = (f"{uid} {uid} 1", "deny", f"{gid} {gid} 1")
            for name, text in zip(("uid_map", "setgroups", "gid_map"), maps):
                if text is not None:
                    with open(f"/proc/self/{name}", "w") as f:
                        f.write(text)
        me = os.getpid()
        pid = os.fork()
        if pid:
            for fd_ in cfg["keep_fds"]:
                os.close(fd_)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, lambda *a: (kill_below(me), os._exit(137)))
            _, status = os.waitpid(pid, 0)
            kill_below(me)
            os._exit(128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status))
        child(cfg)
    except BaseException as exc:  # before any learner code ran: the grader's problem, say so
        try:
            os.write(fd, (json.dumps({"e": "launcher_error", "error": f"{type(exc).__name__}: {exc}"}) + "\n").encode())
        finally:
            os._exit(LAUNCHER_FAILED)


if __name__ == "__main__":
    main()
