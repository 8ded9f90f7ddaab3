"""Generate the student notebooks in exercises/ from the solution notebooks in solutions/.

    python scripts/generate_exercises.py            # regenerate exercises/, execute, store outputs
    python scripts/generate_exercises.py ex09_forecasting   # only the named set(s)
    python scripts/generate_exercises.py --check    # fail if exercises/ differs from generation

Generation is nbgrader's `generate_assignment` (solutions replaced by stubs that raise
NotImplementedError, hidden tests removed), followed by executing each student notebook so
the book can show it and nbval can verify it. Only cells tagged `raises-exception` (the
check cells, which fail until the learner writes the code) may raise.

`--check` regenerates into a temporary folder and compares every cell's type, source and
metadata with the committed exercises/ (outputs are left to nbval, which re-executes them).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from execute_notebook import execute  # noqa: E402


def exercise_sets(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "solutions").iterdir() if p.is_dir() and any(p.glob("*.ipynb")))


def generate(root: Path, only: list[str] | None = None) -> None:
    """Run nbgrader in `root` (a course directory with nbgrader_config.py and solutions/)."""
    db = tempfile.NamedTemporaryFile(suffix=".db", delete=False)
    db.close()
    nbgrader = [sys.executable, "-m", "nbgrader"]
    known = exercise_sets(root)
    unknown = sorted(set(only or []) - set(known))
    if unknown:
        raise SystemExit(f"no such exercise set in solutions/: {', '.join(unknown)} (known: {', '.join(known)})")
    for set_id in (only or known):
        shutil.rmtree(root / "exercises" / set_id, ignore_errors=True)
        result = subprocess.run(
            nbgrader + ["generate_assignment", set_id, "--force", "--log-level=WARN",
                        f"--CourseDirectory.root={root}", f"--CourseDirectory.db_url=sqlite:///{db.name}"],
            cwd=root, capture_output=True, text=True)
        if result.returncode != 0:
            raise SystemExit(f"nbgrader failed for {set_id}:\n{result.stdout}\n{result.stderr}")
        for path in sorted((root / "exercises" / set_id).glob("*.ipynb")):
            tag_unfinished_cells(path)
    Path(db.name).unlink(missing_ok=True)


def tag_unfinished_cells(path: Path) -> None:
    """Tag `raises-exception` on the cells of a student notebook that fail until it is done.

    Those are the graded check cells, and cells whose solution was a top-level statement
    (now a top-level `raise NotImplementedError()`). The solution notebooks carry no such
    tag, so nbval holds every one of their cells to running cleanly.
    """
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        meta = cell.metadata.get("nbgrader", {})
        is_check = meta.get("grade") and not meta.get("solution")
        unfinished_top_level = re.search(r"(?m)^raise NotImplementedError", cell.source)
        tags = cell.metadata.setdefault("tags", [])
        if (is_check or unfinished_top_level) and "raises-exception" not in tags:
            tags.append("raises-exception")
    nbformat.write(nb, path)


def cell_signature(nb) -> list[tuple]:
    return [(c.cell_type, c.source, nbformat.writes(nbformat.from_dict({"m": c.metadata}))) for c in nb.cells]


def check() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        tmp_root = Path(tmp)
        shutil.copytree(ROOT / "solutions", tmp_root / "solutions")
        shutil.copy(ROOT / "nbgrader_config.py", tmp_root)
        generate(tmp_root)
        fresh = sorted(p.relative_to(tmp_root) for p in (tmp_root / "exercises").rglob("*.ipynb"))
        committed = sorted(p.relative_to(ROOT) for p in (ROOT / "exercises").rglob("*.ipynb")
                           if ".ipynb_checkpoints" not in p.parts)
        if fresh != committed:
            print(f"exercises/ holds {[str(p) for p in committed]}, generation gives {[str(p) for p in fresh]}")
            return 1
        stale = [str(p) for p in fresh
                 if cell_signature(nbformat.read(tmp_root / p, 4)) != cell_signature(nbformat.read(ROOT / p, 4))]
        if stale:
            print("exercises/ is out of date with solutions/ (run `make exercises`): " + ", ".join(stale))
            return 1
    print(f"exercises/ matches generation from solutions/ ({len(fresh)} notebooks)")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    parser.add_argument("sets", nargs="*", help="exercise sets to regenerate (default: all)")
    args = parser.parse_args()
    if args.check:
        return check()
    generate(ROOT, args.sets)
    for path in sorted(p for s in (args.sets or exercise_sets(ROOT)) for p in (ROOT / "exercises" / s).glob("*.ipynb")):
        print(f"executing {path.relative_to(ROOT)} ...", flush=True)
        execute(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
