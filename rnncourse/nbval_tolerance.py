"""A pytest plugin for nbval: measured values are compared within their stated tolerance.

Load it beside nbval with `-p rnncourse.nbval_tolerance` (the Makefile does). nbval compares
every output of every cell as exact text. An output displayed by `rnncourse.repro`
(`show_results`, `show_value`) also carries its numbers as JSON under the MIME type
`rnncourse.repro.MIME`; for those outputs this plugin replaces the exact text comparison by

* the same title, columns, row labels and every non-measured cell, exactly;
* every measured cell within the tolerance *stored in the notebook* (the re-computed
  tolerance must also be the same, to one part in a million, so a loosened tolerance shows
  up as a change while a tolerance computed from the value itself may differ in its last bits);

and leaves every other output to nbval's exact comparison. Nothing is skipped: a measured
value outside its tolerance fails the cell with a message naming the row and column.

A value that passes says nothing about how close it came. With the environment variable
`RNNCOURSE_NBVAL_DRIFT` set to a file name, every measured value compared is also appended to
that file, one JSON object per line (the test's id, row, column, stored and re-computed value,
tolerance), so that a maintainer can see how far each value moved under a CPU profile and
whether a tolerance is wider than it needs to be.
"""

from __future__ import annotations

import json
import math
import os

from .repro import MIME

DRIFT_LOG = "RNNCOURSE_NBVAL_DRIFT"


def _is_measured(output) -> bool:
    return output.get("output_type") in ("display_data", "execute_result") and MIME in output.get("data", {})


def _compare_cell(ref, test):
    """Return None if the cells agree, else a description of the difference."""
    if isinstance(ref, dict) != isinstance(test, dict):
        return f"stored {ref!r}, got {test!r}"
    if not isinstance(ref, dict):
        return None if ref == test else f"stored {ref!r}, got {test!r}"
    same_tol = math.isclose(float(ref.get("tol", 0)), float(test.get("tol", 0)), rel_tol=1e-6, abs_tol=1e-15)
    if not same_tol or bool(ref.get("log")) != bool(test.get("log")):
        return f"the tolerance changed: stored {ref.get('tol')} (log={ref.get('log')}), got {test.get('tol')} (log={test.get('log')})"
    r, t, tol = float(ref["value"]), float(test["value"]), float(ref["tol"])
    if not math.isfinite(t):
        return f"stored {ref['text']}, got {t}"
    if ref.get("log"):
        if t <= 0:
            return f"stored {ref['text']}, got {t} (must be positive)"
        diff = abs(math.log10(t) - math.log10(r))
        ok = diff <= tol + 1e-12
        what = f"log10 differs by {diff:.3g}, tolerance {tol:g}"
    else:
        diff = abs(t - r)
        ok = diff <= tol * (1 + 1e-9) + 1e-12
        what = f"differs by {diff:.3g}, tolerance {tol:g}"
    return None if ok else f"stored {ref['text']}, got {test['text']} ({what})"


def compare_payloads(ref: dict, test: dict) -> list[str]:
    """Every difference between a stored and a re-computed measured output (empty: they agree)."""
    problems = []
    for key in ("title", "columns"):
        if ref.get(key) != test.get(key):
            problems.append(f"{key}: stored {ref.get(key)!r}, got {test.get(key)!r}")
    ref_rows, test_rows = ref.get("rows", []), test.get("rows", [])
    if len(ref_rows) != len(test_rows):
        problems.append(f"stored {len(ref_rows)} rows, got {len(test_rows)}")
        return problems
    columns = ref.get("columns") or []
    for ref_row, test_row in zip(ref_rows, test_rows):
        label = ref_row[0] if ref_row else "?"
        if len(ref_row) != len(test_row):
            problems.append(f"row {label!r}: stored {len(ref_row)} cells, got {len(test_row)}")
            continue
        for index, (rc, tc) in enumerate(zip(ref_row, test_row)):
            difference = _compare_cell(rc, tc)
            if difference:
                column = columns[index] if index < len(columns) else index
                problems.append(f"row {label!r}, column {column!r}: {difference}")
    return problems


def drift_records(ref: dict, test: dict) -> list[dict]:
    """Every measured cell of a stored and a re-computed output, side by side (rows and cells
    that do not pair up are left to `compare_payloads`)."""
    records = []
    columns = ref.get("columns") or []
    for ref_row, test_row in zip(ref.get("rows", []), test.get("rows", [])):
        for index, (rc, tc) in enumerate(zip(ref_row, test_row)):
            if isinstance(rc, dict) and isinstance(tc, dict) and "value" in rc and "value" in tc:
                records.append({"title": ref.get("title"), "row": ref_row[0] if ref_row else None,
                                "column": columns[index] if index < len(columns) else index,
                                "stored": float(rc["value"]), "got": float(tc["value"]),
                                "tol": float(rc.get("tol", 0)), "log": bool(rc.get("log"))})
    return records


def _log_drift(path: str, test_id: str, pairs) -> None:
    with open(path, "a", encoding="utf-8") as log:
        for r, t in pairs:
            for record in drift_records(r["data"][MIME], t["data"][MIME]):
                log.write(json.dumps({"test": test_id, **record}) + "\n")


def pytest_configure(config):
    try:
        from nbval.plugin import IPyNbCell
    except ImportError:  # nbval not installed: nothing to extend
        return
    if getattr(IPyNbCell.compare_outputs, "_rnncourse_tolerant", False):
        return
    exact_compare = IPyNbCell.compare_outputs

    def compare_outputs(self, test, ref, skip_compare=None):
        test_measured = [o for o in test if _is_measured(o)]
        ref_measured = [o for o in ref if _is_measured(o)]
        exact_ok = exact_compare(self, [o for o in test if not _is_measured(o)],
                                 [o for o in ref if not _is_measured(o)], skip_compare)
        if not exact_ok:
            return False
        problems = []
        if len(test_measured) != len(ref_measured):
            problems.append(f"stored {len(ref_measured)} measured outputs, got {len(test_measured)}")
        for r, t in zip(ref_measured, test_measured):
            problems += compare_payloads(r["data"][MIME], t["data"][MIME])
        if os.environ.get(DRIFT_LOG):
            _log_drift(os.environ[DRIFT_LOG], getattr(self, "nodeid", "?"), zip(ref_measured, test_measured))
        if problems:
            self.comparison_traceback = ["Measured values outside their stated tolerance:"] + \
                ["  " + p for p in problems]
            return False
        return True

    compare_outputs._rnncourse_tolerant = True
    IPyNbCell.compare_outputs = compare_outputs
