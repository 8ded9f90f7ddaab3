"""The reproducibility frame: measured values and the nbval plugin that compares them with tolerance."""

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from rnncourse.nbval_tolerance import compare_payloads
from rnncourse.repro import MIME, Measured, results_text

ROOT = Path(__file__).resolve().parent.parent


def test_measured_refuses_bad_values():
    with pytest.raises(ValueError, match="finite"):
        Measured(float("nan"), 0.1)
    with pytest.raises(ValueError, match="tol"):
        Measured(1.0, -1)
    with pytest.raises(ValueError, match="positive"):
        Measured(0.0, 1, log=True)
    with pytest.raises(TypeError, match="real number"):
        Measured("0.5", 0.1)


def test_measured_agreement_absolute_and_log():
    assert Measured(0.80, 0.02).agrees_with(Measured(0.819, 0.02))
    assert not Measured(0.80, 0.02).agrees_with(Measured(0.821, 0.02))
    assert Measured(3e-10, 1, log=True).agrees_with(Measured(2.9e-9, 1, log=True))
    assert not Measured(3e-10, 1, log=True).agrees_with(Measured(4e-9, 1, log=True))


def test_results_text_states_the_tolerances():
    text = results_text([("majority", Measured(0.5, 0, ".4f")), ("LSTM", Measured(0.8123, 0.02, ".2f"))],
                        ("model", "accuracy"), title="Test set")
    assert text.splitlines()[0] == "Test set"
    assert "0.5000" in text and "0.81" in text
    assert text.splitlines()[-1] == "Compared across CPUs within: accuracy ±0.02 (LSTM)."


def _payload(value, tol=0.02, label="LSTM"):
    m = Measured(value, tol, ".2f")
    return {"title": "t", "columns": ["model", "accuracy"], "rows": [[label, m.to_json()]]}


def test_compare_payloads():
    assert compare_payloads(_payload(0.80), _payload(0.815)) == []
    [problem] = compare_payloads(_payload(0.80), _payload(0.83))
    assert "'LSTM'" in problem and "accuracy" in problem and "tolerance 0.02" in problem
    assert "tolerance changed" in compare_payloads(_payload(0.80), _payload(0.80, tol=0.1))[0]
    assert compare_payloads(_payload(0.80, tol=0.028872080137082156), _payload(0.80, tol=0.028872080137080893)) == []
    assert "stored 'LSTM'" in compare_payloads(_payload(0.80), _payload(0.80, label="GRU"))[0]


NOTEBOOK_CODE = """
from rnncourse.repro import Measured, show_results, show_value
print("exact text")
show_results([("model A", Measured(VALUE, 0.01, ".3f"), 7)], ("model", "score", "epochs"), title="demo")
show_value("gradient check", Measured(3e-10, 1, ".0e", log=True))
"""


def _run_nbval(tmp_path, stored_value, rerun_value, env=None):
    """Store a notebook executed with `stored_value`, then nbval it with `rerun_value` in the code."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(NOTEBOOK_CODE.replace("VALUE", repr(stored_value)))]
    NotebookClient(nb, kernel_name="python3").execute()
    nb.cells[0].source = NOTEBOOK_CODE.replace("VALUE", repr(rerun_value))
    path = tmp_path / "demo.ipynb"
    nbformat.write(nb, path)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "--nbval", "--nbval-current-env",
                           "-p", "rnncourse.nbval_tolerance", "-p", "no:cacheprovider", str(path)],
                          capture_output=True, text=True, cwd=tmp_path, env=env)


@pytest.mark.slow
def test_plugin_accepts_within_and_rejects_outside_tolerance(tmp_path):
    inside = _run_nbval(tmp_path, 0.5, 0.509)
    assert inside.returncode == 0, inside.stdout[-2000:]
    outside = _run_nbval(tmp_path, 0.5, 0.52)
    assert outside.returncode != 0
    assert "outside their stated tolerance" in outside.stdout and "'model A'" in outside.stdout


@pytest.mark.slow
def test_plugin_logs_every_measured_value_when_asked(tmp_path):
    """RNNCOURSE_NBVAL_DRIFT: one line per measured value, passing or not, with both values."""
    log = tmp_path / "drift.jsonl"
    result = _run_nbval(tmp_path, 0.5, 0.509, env={**os.environ, "RNNCOURSE_NBVAL_DRIFT": str(log)})
    assert result.returncode == 0, result.stdout[-2000:]
    records = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    assert [(r["row"], r["column"], r["stored"], r["got"], r["tol"], r["log"]) for r in records] == [
        ("model A", "score", 0.5, 0.509, 0.01, False), ("gradient check", "value", 3e-10, 3e-10, 1.0, True)]
    assert records[0]["title"] == "demo" and records[0]["test"].endswith("Cell 0")


def test_stored_measured_outputs_are_well_formed():
    """Every measured output in the repository's notebooks has the fields the plugin reads."""
    for nb_path in sorted(p for d in ("chapters", "solutions", "exercises") for p in (ROOT / d).rglob("*.ipynb")):
        for cell in json.loads(nb_path.read_text(encoding="utf-8"))["cells"]:
            for out in cell.get("outputs", []):
                payload = out.get("data", {}).get(MIME)
                if payload is None:
                    continue
                assert set(payload) == {"title", "columns", "rows"}, nb_path
                for row in payload["rows"]:
                    assert len(row) == len(payload["columns"]), nb_path
                    for c in row:
                        if isinstance(c, dict):
                            assert {"value", "tol", "log", "text"} <= set(c), nb_path
