"""The grader's cgroup setup on a simulated cgroup hierarchy (plain folders and files standing
for /sys/fs/cgroup). This project's machine has its controllers bound to version 1, so the
version 2 path is checked here against some of the kernel's documented rules, which the fake
below imitates, not on a real hierarchy:
* a cgroup other than the root that holds processes cannot enable controllers for its children
  (writing its cgroup.subtree_control fails with EBUSY);
* it can enable only controllers its parent enabled for it, those in its cgroup.controllers
  (ENOENT);
* it cannot disable a controller that a child still enables for its own children (EBUSY);
* writing a pid to a cgroup's cgroup.procs moves that process out of the cgroup it was in;
* a cgroup other than the root whose subtree_control enables controllers cannot take
  processes (EBUSY);
* rmdir removes only an empty group (here: one with no sub-folder and no process)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from rnncourse.grading import Limits
from rnncourse.grading import sandbox

REAL_MKDIR, REAL_RMDIR = os.mkdir, os.rmdir     # os.mkdir and os.rmdir are patched below
OWN = "/system.slice/run-u42.scope"        # a scope of `systemd-run --scope -p Delegate=yes`
ME = str(os.getpid())


class FakeCgroupFs:
    """/sys/fs/cgroup as folders: each group's processes in its cgroup.procs file."""

    def __init__(self, root: Path, own_controllers="cpu memory pids", others_in_own=()):
        self.root = root
        self.own = root / OWN.lstrip("/")
        self.own.mkdir(parents=True)
        for group, controllers in ((root, "cpuset cpu io memory pids"), (self.own, own_controllers)):
            (group / "cgroup.controllers").write_text(controllers + "\n")
            (group / "cgroup.subtree_control").write_text("")
            (group / "cgroup.procs").write_text("")
        (self.own / "cgroup.procs").write_text("".join(f"{p}\n" for p in (*others_in_own, ME)))

    def procs(self, group) -> list[str]:
        return (Path(group) / "cgroup.procs").read_text().split()

    def enabled(self, group) -> set[str]:
        return set((Path(group) / "cgroup.subtree_control").read_text().split())

    def groups(self):
        return [Path(d) for d, _, _ in os.walk(self.root)]

    def write(self, path, text):
        path = Path(path)
        group = path.parent
        if path.name == "cgroup.subtree_control":
            enabled = self.enabled(group)
            available = set((group / "cgroup.controllers").read_text().split())
            children = [c for c in group.iterdir() if c.is_dir()]
            for word in text.split():
                name = word[1:]
                if word[0] == "+" and name not in enabled:
                    if name not in available:
                        raise OSError(errno.ENOENT, os.strerror(errno.ENOENT))
                    if group != self.root and self.procs(group):
                        raise OSError(errno.EBUSY, os.strerror(errno.EBUSY))
                    enabled.add(name)
                elif word[0] == "-" and name in enabled:
                    if any(name in self.enabled(c) for c in children):
                        raise OSError(errno.EBUSY, os.strerror(errno.EBUSY))
                    enabled.discard(name)
            path.write_text(" ".join(sorted(enabled)))
        elif path.name == "cgroup.procs":
            if self.enabled(group) and group != self.root:
                raise OSError(errno.EBUSY, os.strerror(errno.EBUSY))
            for other in self.groups():
                if (other / "cgroup.procs").exists() and text in self.procs(other):
                    (other / "cgroup.procs").write_text("".join(f"{p}\n" for p in self.procs(other) if p != text))
            with open(path, "a") as f:
                f.write(text + "\n")
        else:
            path.write_text(text)

    def mkdir(self, path, *args, **kwargs):
        REAL_MKDIR(path, *args, **kwargs)
        if str(path).startswith(str(self.root)):
            for name in ("cgroup.procs", "cgroup.subtree_control"):
                Path(path, name).write_text("")
            Path(path, "cgroup.controllers").write_text(" ".join(sorted(self.enabled(Path(path).parent))))

    def rmdir(self, path):
        path = Path(path)
        if str(path).startswith(str(self.root)):
            if any(p.is_dir() for p in path.iterdir()) or self.procs(path):
                raise OSError(errno.EBUSY, os.strerror(errno.EBUSY))
            for f in path.iterdir():
                f.unlink()
        REAL_RMDIR(path)


@pytest.fixture
def fake(tmp_path, monkeypatch):
    def make(**kwargs):
        fs = FakeCgroupFs(tmp_path / "cgroup", **kwargs)
        monkeypatch.setattr(sandbox, "CGROUP_ROOT", str(fs.root))
        monkeypatch.setattr(sandbox, "_write", fs.write)
        monkeypatch.setattr(sandbox.os, "mkdir", fs.mkdir)
        monkeypatch.setattr(sandbox.os, "rmdir", fs.rmdir)
        monkeypatch.setattr(sandbox.Cgroups, "_own", staticmethod(lambda controller: OWN))
        monkeypatch.setattr(sandbox.os, "geteuid", lambda: 0)
        monkeypatch.delenv(sandbox.DISABLE_VAR, raising=False)
        return fs
    return make


def test_a_grader_alone_in_its_delegated_cgroup_moves_into_a_leaf_and_back(fake):
    fs = fake()
    cg = sandbox.Cgroups()
    assert cg.version == "v2", cg.why
    base = Path(cg.bases["unified"])
    assert base.parent == fs.own and fs.enabled(fs.own) == {"cpu", "memory", "pids"}
    [leaf] = [g for g in fs.own.iterdir() if g.is_dir() and g != base]
    assert fs.procs(leaf) == [ME] and fs.procs(fs.own) == []
    assert fs.enabled(fs.root) == set()               # nothing outside the delegated group touched
    run = cg.new_run(Limits(memory_mb=512, nproc=32, cpus=1.0))
    [procs] = run.procs_files
    folder = Path(procs).parent
    assert folder.parent == base
    assert (folder / "memory.max").read_text() == str(Limits(memory_mb=512).run_memory_mb * 2**20)
    assert (folder / "pids.max").read_text() == "32" and (folder / "cpu.max").read_text() == "100000 100000"
    fs.rmdir(folder)
    cg.close()
    assert fs.procs(fs.own) == [ME] and fs.enabled(fs.own) == set()
    assert [g for g in fs.own.iterdir() if g.is_dir()] == []


def test_a_grader_sharing_its_cgroup_moves_nobody_and_says_what_to_do(fake):
    fs = fake(others_in_own=("4242",))
    cg = sandbox.Cgroups()
    assert cg.version == "" and cg.bases == {}
    assert "other processes (1) share the grader's cgroup" in cg.why and "Delegate=yes" in cg.why
    assert fs.procs(fs.own) == ["4242", ME] and fs.enabled(fs.own) == set()
    assert [g for g in fs.own.iterdir() if g.is_dir()] == [] and fs.enabled(fs.root) == set()


def test_without_the_controllers_the_reason_names_them(fake):
    fs = fake(own_controllers="cpu io")
    cg = sandbox.Cgroups()
    assert cg.version == "" and f"in {fs.own}: controllers not available: memory, pids" in cg.why


def test_a_failure_after_the_move_puts_the_grader_back(fake, monkeypatch):
    fs = fake()
    real_write = fs.write

    def write(path, text):
        if Path(path).name == "cgroup.subtree_control" and Path(path).parent.name.startswith("rnngrade-"):
            raise OSError(errno.EACCES, os.strerror(errno.EACCES))
        real_write(path, text)

    monkeypatch.setattr(sandbox, "_write", write)
    cg = sandbox.Cgroups()
    assert cg.version == "" and "Permission denied" in cg.why
    assert fs.procs(fs.own) == [ME] and fs.enabled(fs.own) == set()
    assert [g for g in fs.own.iterdir() if g.is_dir()] == []


def test_groups_of_dead_graders_are_removed_and_live_ones_kept(fake):
    fs = fake()
    dead, alive = fs.own / "rnngrade-999999999-ab12cd34", fs.own / f"rnngrade-{ME}-ef56ab78"
    for group in (dead, alive):
        fs.mkdir(group)
        fs.mkdir(group / "run-1-abc123")
    cg = sandbox.Cgroups()
    assert cg.version == "v2", cg.why
    assert not dead.exists() and (alive / "run-1-abc123").is_dir()


def test_a_hybrid_host_keeps_to_version_1(tmp_path, monkeypatch):
    """Controllers bound to version 1, the unified hierarchy holding none of them (as on this
    project's machine): version 1, as before."""
    root = tmp_path / "cgroup"
    (root / "unified").mkdir(parents=True)
    (root / "unified" / "cgroup.controllers").write_text("hugetlb\n")
    for controller in sandbox.Cgroups.V1:
        (root / controller).mkdir()
        (root / controller / "cgroup.procs").write_text("")
    monkeypatch.setattr(sandbox, "CGROUP_ROOT", str(root))
    monkeypatch.setattr(sandbox.Cgroups, "_own", staticmethod(lambda controller: "/"))
    monkeypatch.setattr(sandbox.os, "geteuid", lambda: 0)
    monkeypatch.delenv(sandbox.DISABLE_VAR, raising=False)
    cg = sandbox.Cgroups()
    assert cg.version == "v1" and set(cg.bases) == set(sandbox.Cgroups.V1)
    assert all(Path(base).parent == root / c for c, base in cg.bases.items())


def test_a_run_joins_its_group_and_the_grader_stays_in_its_leaf(fake):
    fs = fake()
    cg = sandbox.Cgroups()
    run = cg.new_run(Limits())
    [procs] = run.procs_files
    fs.write(procs, "7777")                     # what the launcher does for the run's first process
    assert fs.procs(Path(procs).parent) == ["7777"]
    [leaf] = [g for g in fs.own.iterdir() if g.is_dir() and str(g) != cg.bases["unified"]]
    assert fs.procs(leaf) == [ME]


def test_a_failed_move_into_the_leaf_leaves_no_leaf(fake, monkeypatch):
    fs = fake()
    real_write = fs.write

    def write(path, text):
        if Path(path).name == "cgroup.procs" and Path(path).parent != fs.own:
            raise OSError(errno.EACCES, os.strerror(errno.EACCES))
        real_write(path, text)

    monkeypatch.setattr(sandbox, "_write", write)
    cg = sandbox.Cgroups()
    assert cg.version == "" and "Permission denied" in cg.why
    assert fs.procs(fs.own) == [ME] and [g for g in fs.own.iterdir() if g.is_dir()] == []
