"""Properties of the stored notebooks that nbval alone does not check."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted(p for d in ("chapters", "solutions", "exercises") for p in (ROOT / d).rglob("*.ipynb")
                   if ".ipynb_checkpoints" not in p.parts)
MACHINE_PATH = re.compile(r"(/root/|/home/\w+/|/tmp/|/work/|site-packages)")


def outputs(nb_path):
    for cell in json.loads(nb_path.read_text(encoding="utf-8"))["cells"]:
        if cell["cell_type"] == "code":
            yield cell, cell.get("outputs", [])


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 4


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_stored_outputs_are_executed_and_clean(nb):
    cells = list(outputs(nb))
    assert all(cell.get("execution_count") is not None for cell, _ in cells if cell["source"]), \
        "some code cells were never executed: run `make execute NB=...`"
    for cell, outs in cells:
        tags = cell.get("metadata", {}).get("tags", [])
        for out in outs:
            text = "".join(out.get("text", "")) + "".join(out.get("data", {}).get("text/plain", "")) \
                + "".join(out.get("traceback", []))
            assert not MACHINE_PATH.search(text), f"a stored output shows a machine path: {text[:200]}"
            assert out.get("name") != "stderr", f"a stored stderr output: {text[:200]}"
            if out["output_type"] == "error":
                assert "raises-exception" in tags, f"an error ({out['ename']}) in a cell not tagged raises-exception"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_plot_is_stored_as_an_image(nb):
    """A cell that calls plt.show() must have stored a PNG (a non-inline backend stores none)."""
    for cell, outs in outputs(nb):
        if "plt.show()" in "".join(cell["source"]):
            assert any("image/png" in o.get("data", {}) for o in outs), \
                f"a plotting cell stored no image: {''.join(cell['source'])[:80]!r}"


@pytest.mark.parametrize("nb", [p for p in NOTEBOOKS if p.parts[-3] == "solutions"], ids=lambda p: p.name)
def test_solutions_raise_nothing_and_pass_every_check(nb):
    for cell, outs in outputs(nb):
        assert "raises-exception" not in cell.get("metadata", {}).get("tags", []), "solution cells are never tagged"
        assert all(o["output_type"] != "error" for o in outs)
        if "check(" in "".join(cell["source"]):
            assert any("PASS" in "".join(o.get("text", "")) for o in outs), "a check in a solution did not pass"


def test_exercises_match_generation_from_solutions():
    """exercises/ must be exactly what nbgrader generates from solutions/ (cell sources and tags)."""
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "generate_exercises.py"), "--check"],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_exercise_stubs_have_no_solution_left():
    for nb in (ROOT / "exercises").rglob("*.ipynb"):
        text = nb.read_text(encoding="utf-8")
        assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text, nb
