"""The grader's cgroup setup on a simulated cgroup version 2 hierarchy (plain folders and files
standing for /sys/fs/cgroup). This project's machine has its controllers bound to version 1,
so the version 2 path is checked here against the kernel's documented rules, not on a real
hierarchy: a cgroup other than the root that has processes cannot enable controllers for its
children (writing its cgroup.subtree_control fails with EBUSY)."""

from __future__ import annotations

import errno
import os

import pytest

from rnncourse.grading import Limits
from rnncourse.grading import sandbox

OWN = "/user.slice/user-1000.slice/session-3.scope"   # where `sudo` leaves the grader under systemd


def fake_hierarchy(tmp_path, monkeypatch, root_controllers="cpuset cpu io memory pids",
                   own_controllers="cpu memory pids", own_has_processes=True):
    root = tmp_path / "cgroup"
    own = root / OWN.lstrip("/")
    own.mkdir(parents=True)
    (root / "cgroup.controllers").write_text(root_controllers + "\n")
    (root / "cgroup.subtree_control").write_text("")
    (own / "cgroup.controllers").write_text(own_controllers + "\n")
    (own / "cgroup.subtree_control").write_text("")
    real_write = sandbox._write

    def write(path, text):
        if own_has_processes and path == f"{own}/cgroup.subtree_control":
            raise OSError(errno.EBUSY, os.strerror(errno.EBUSY))
        real_write(path, text)

    monkeypatch.setattr(sandbox, "CGROUP_ROOT", str(root))
    monkeypatch.setattr(sandbox, "_write", write)
    monkeypatch.setattr(sandbox.Cgroups, "_own", staticmethod(lambda controller: OWN))
    monkeypatch.setattr(sandbox.os, "geteuid", lambda: 0)
    monkeypatch.delenv(sandbox.DISABLE_VAR, raising=False)
    return root, own


def test_a_grader_whose_own_cgroup_has_processes_makes_its_group_at_the_root(tmp_path, monkeypatch):
    root, own = fake_hierarchy(tmp_path, monkeypatch)
    cg = sandbox.Cgroups()
    assert cg.version == "v2", cg.why
    base = cg.bases["unified"]
    assert os.path.dirname(base) == str(root) and os.path.basename(base).startswith(f"rnngrade-{os.getpid()}-")
    assert (root / "cgroup.subtree_control").read_text() == "+memory +pids +cpu"
    assert not [e for e in os.listdir(own) if e.startswith("rnngrade-")]
    run = cg.new_run(Limits(memory_mb=512, nproc=32, cpus=1.0))
    [procs] = run.procs_files
    folder = os.path.dirname(procs)
    assert os.path.dirname(folder) == base
    assert open(f"{folder}/memory.max").read() == str(Limits(memory_mb=512).run_memory_mb * 2**20)
    assert open(f"{folder}/pids.max").read() == "32"
    assert open(f"{folder}/cpu.max").read() == "100000 100000"


def test_a_grader_whose_own_cgroup_can_delegate_keeps_its_group_there(tmp_path, monkeypatch):
    root, own = fake_hierarchy(tmp_path, monkeypatch, own_has_processes=False)
    cg = sandbox.Cgroups()
    assert cg.version == "v2" and os.path.dirname(cg.bases["unified"]) == str(own)
    assert (root / "cgroup.subtree_control").read_text() == ""


def test_without_the_controllers_anywhere_the_reason_names_each_place_tried(tmp_path, monkeypatch):
    root, own = fake_hierarchy(tmp_path, monkeypatch, root_controllers="cpu io", own_controllers="cpu")
    cg = sandbox.Cgroups()
    assert cg.version == "" and cg.bases == {}
    assert f"in {own}: controllers not available: memory, pids" in cg.why
    assert f"in {root}: controllers not available: memory, pids" in cg.why
    assert not [e for e in os.listdir(root) if e.startswith("rnngrade-")]


def test_a_busy_own_cgroup_and_a_root_without_the_controllers_fall_back_with_both_reasons(tmp_path, monkeypatch):
    root, own = fake_hierarchy(tmp_path, monkeypatch, root_controllers="cpu io")
    cg = sandbox.Cgroups()
    assert cg.version == ""
    assert "Device or resource busy" in cg.why and f"in {root}: controllers not available" in cg.why
    assert not [e for e in os.listdir(own) if e.startswith("rnngrade-")]
