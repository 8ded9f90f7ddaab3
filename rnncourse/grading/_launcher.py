"""Builds the sandbox around one run of the harness, then becomes it (exec).

Run by the grader as `python -I -S -B _launcher.py CONFIG.json`, with the grader's own
privileges. In order, each step only if the config asks for it (the grader probes first which
ones this machine allows):

1. new namespaces: user (when the grader is not root), mount, network (no interfaces up, so
   no network at all), PID (the run's processes see only each other and all die with it);
2. fork: the child is PID 1 of the new PID namespace; this process waits for it and exits
   with its status (128 + signal if it was killed) and, if it is itself killed, takes the
   child with it (PR_SET_PDEATHSIG) and with it the whole namespace;
3. a private file-system view: a fresh tmpfs becomes the root, holding read-only bind mounts of
   the system (/usr, /lib, /etc, ...), the Python installation, site-packages and the grader's
   lib folder (harness and a stub rnncourse), plus the submission's own folder at /sandbox,
   a private /tmp, /dev/null & co. and a fresh /proc; then chroot into it. The repository,
   solutions/, other students' submissions and the output folder simply do not exist there;
4. resource limits (address space, processes, file size, open files, CPU seconds, no core);
5. drop to an unprivileged uid/gid with no supplementary groups, and set no_new_privs;
6. exec the harness.

Standalone on purpose (no imports from rnncourse): it runs before any sandbox exists.
"""

import ctypes
import json
import os
import resource
import signal
import sys

CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x00020000, 0x10000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MS_NOATIME, MS_NODIRATIME, MS_RELATIME = 1024, 2048, 1 << 21
ST_FLAGS = {1: MS_RDONLY, 2: MS_NOSUID, 4: MS_NODEV, 8: MS_NOEXEC, 1024: MS_NOATIME, 2048: MS_NODIRATIME,
            4096: MS_RELATIME}
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS = 1, 38
LAUNCHER_FAILED = 70

libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
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


def build_root(cfg):
    root = cfg["newroot"]
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "mode=755,size=4m")
    # The private /tmp first: read-only binds that live under /tmp (a virtualenv, the grader's
    # lib folder) are then mounted inside it.
    os.makedirs(root + "/tmp")
    mount("tmpfs", root + "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"mode=1777,size={cfg['tmp_mb']}m")
    bound = []
    for path, inside in sorted(cfg["ro_binds"], key=lambda pair: pair[1]):
        if not os.path.lexists(path) or any(inside == b or inside.startswith(b.rstrip("/") + "/") for b in bound):
            continue
        target = root + inside
        if os.path.islink(path):  # /bin -> usr/bin on merged-/usr systems
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.symlink(os.readlink(path), target)
            continue
        if os.path.isdir(path):
            os.makedirs(target, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            open(target, "w").close()
        mount(path, target, None, MS_BIND | MS_REC)
        mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | _locked_flags(path))
        bound.append(inside)
    os.makedirs(root + "/dev", exist_ok=True)
    for dev in ("null", "zero", "random", "urandom"):
        if os.path.exists("/dev/" + dev):
            open(f"{root}/dev/{dev}", "w").close()
            mount("/dev/" + dev, f"{root}/dev/{dev}", None, MS_BIND)
    os.makedirs(root + "/sandbox")
    mount(cfg["sandbox"], root + "/sandbox", None, MS_BIND)
    if cfg["pidns"]:
        os.makedirs(root + "/proc")
        mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    mount(None, root, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, "mode=755,size=4m")
    os.chroot(root)
    os.chdir("/sandbox")


def set_limits(cfg):
    for name, value in cfg["rlimits"].items():
        resource.setrlimit(getattr(resource, name), (value, value))


def child(cfg):
    if cfg["pidns"]:
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
    _ok(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(NO_NEW_PRIVS)")
    argv = cfg["argv"]
    os.execve(argv[0], argv, cfg["env"])


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        cfg = json.load(f)
    fd = cfg["fd"]
    os.umask(0o022)
    try:
        flags = (CLONE_NEWUSER * cfg["userns"]) | (CLONE_NEWNS * cfg["mountns"]) | \
                (CLONE_NEWNET * cfg["netns"]) | (CLONE_NEWPID * cfg["pidns"])
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
        if cfg["pidns"]:
            pid = os.fork()
            if pid:
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                _, status = os.waitpid(pid, 0)
                os._exit(128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status))
        child(cfg)
    except BaseException as exc:  # before any learner code ran: the grader's problem, say so
        try:
            os.write(fd, (json.dumps({"e": "launcher_error", "error": f"{type(exc).__name__}: {exc}"}) + "\n").encode())
        finally:
            os._exit(LAUNCHER_FAILED)


if __name__ == "__main__":
    main()
