"""Reproducible numbers on every reader's CPU: pinned TensorFlow settings, and results that
carry the tolerance they are compared with.

Two things change a notebook's numbers from one machine to the next:

* TensorFlow picks its kernels and its summation order at run time: oneDNN kernels (on by
  default on x86 Linux) differ by instruction set, and the number of threads changes how a
  reduction is split. `setup_tensorflow()` pins both *before* TensorFlow is imported, so a
  reader's Jupyter gets the same settings as the test suite.
* Training a network is a long chain of floating-point operations; a difference in the last
  bit of one product (NumPy and OpenBLAS choose SIMD kernels per CPU) can grow into a
  different final score. Printing such a score to four decimals and comparing the text would
  be dishonest precision. `Measured` values carry a stated tolerance instead, and
  `show_results()` displays them in a table whose stored copy the test suite compares number
  by number, within that tolerance (see `rnncourse.nbval_tolerance`).

Everything else a notebook prints is still compared exactly.
"""

from __future__ import annotations

import json
import math
import os
import sys
from dataclasses import dataclass

MIME = "application/vnd.rnncourse.measured+json"
"""The output type that carries measured values; the nbval plugin compares these with tolerance."""


# ----------------------------------------------------------------------------- TensorFlow


def setup_tensorflow(seed: int = 0, threads: int = 1):
    """Import TensorFlow with pinned settings and seed every generator; return `keras`.

    Call it before anything imports TensorFlow (Keras included). It

    * turns oneDNN's kernels off (`TF_ENABLE_ONEDNN_OPTS=0`): they are chosen per instruction
      set, so their results differ between CPUs;
    * runs every op on `threads` threads (intra- and inter-op), so reductions are split the
      same way on a laptop and on a 64-core server (and two notebooks can run side by side);
    * silences TensorFlow's C++ log lines (`TF_CPP_MIN_LOG_LEVEL=3`);
    * seeds Python, NumPy and TensorFlow (`keras.utils.set_random_seed`) and asks for
      deterministic op implementations.
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise ValueError(f"threads must be a positive int, got {threads!r}")
    already = "tensorflow" in sys.modules
    if already and os.environ.get("TF_ENABLE_ONEDNN_OPTS") != "0":
        raise RuntimeError(
            "TensorFlow was imported before setup_tensorflow() could pin its settings: "
            "restart the kernel and call setup_tensorflow() before importing tensorflow or keras"
        )
    os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"   # C++ log lines (e.g. during fit with validation data) would land on stderr
    import keras
    import tensorflow as tf

    if not already:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    return keras


# ----------------------------------------------------------------------------- measured values


@dataclass(frozen=True)
class Measured:
    """A number that may honestly differ between CPUs, with the tolerance it is compared with.

    `tol` is absolute: the test suite accepts a re-computed value within `tol` of the stored
    one. With `log=True` it is a tolerance on log10 of the value instead (for quantities such
    as a gradient check's relative error, where only the order of magnitude is meaningful).
    `fmt` is how the value is printed; print no more digits than the tolerance leaves stable.
    """

    value: float
    tol: float
    fmt: str = ".3f"
    log: bool = False

    def __post_init__(self):
        if isinstance(self.value, (str, bytes, bool)):
            raise TypeError(f"Measured value must be a real number, got {type(self.value).__name__}")
        try:
            value = float(self.value)
        except (TypeError, ValueError):
            raise TypeError(f"Measured value must be a real number, got {type(self.value).__name__}") from None
        if not math.isfinite(value):
            raise ValueError(f"Measured value must be finite, got {value}")
        if self.log and value <= 0:
            raise ValueError(f"a Measured value with log=True must be positive, got {value}")
        if not (isinstance(self.tol, (int, float)) and math.isfinite(self.tol) and self.tol >= 0):
            raise ValueError(f"tol must be a finite number >= 0, got {self.tol!r}")
        object.__setattr__(self, "value", value)

    def __str__(self) -> str:
        return format(self.value, self.fmt)

    def describe_tolerance(self) -> str:
        if self.log:
            return f"a factor of {10 ** self.tol:g}"
        return f"±{self.tol:.2g}" if self.tol else "exact"

    def to_json(self) -> dict:
        return {"value": self.value, "tol": self.tol, "log": self.log, "text": str(self)}

    def agrees_with(self, other: "Measured") -> bool:
        """Whether `other` (a re-computed value) is within this value's tolerance."""
        if self.log:
            return abs(math.log10(other.value) - math.log10(self.value)) <= self.tol + 1e-12
        return abs(other.value - self.value) <= self.tol * (1 + 1e-9) + 1e-12


def _cell_text(cell) -> str:
    return str(cell)


def _cell_json(cell):
    if isinstance(cell, Measured):
        return cell.to_json()
    if isinstance(cell, bool) or cell is None:
        return str(cell)
    if isinstance(cell, (int, str)):
        return cell
    if isinstance(cell, float):
        raise TypeError(
            "a bare float in a results table would be compared exactly as text: wrap it in "
            "Measured(value, tol, fmt) (tol=0 for a number that must not change), or format it "
            "yourself"
        )
    return str(cell)


def results_text(rows, columns, title: str | None = None, tolerance_note: bool = True) -> str:
    """The plain-text table that `show_results` displays."""
    header = list(columns)
    body = [[_cell_text(c) for c in row] for row in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in body)) if body else len(str(h)) for i, h in enumerate(header)]
    lines = []
    if title:
        lines.append(title)
    lines.append("  ".join(str(h).ljust(w) if i == 0 else str(h).rjust(w) for i, (h, w) in enumerate(zip(header, widths))))
    lines.append("  ".join("-" * w for w in widths))
    for row in body:
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))
    if tolerance_note:
        notes = []
        for index, name in enumerate(header):
            groups: dict[str, list[str]] = {}
            for row in rows:
                cell = row[index]
                if isinstance(cell, Measured) and cell.tol:
                    groups.setdefault(cell.describe_tolerance(), []).append(str(row[0]))
            if len(groups) == 1 and len(next(iter(groups.values()))) > 1:
                notes.append(f"{name} {next(iter(groups))}")
            elif groups:
                notes.append(f"{name} " + ", ".join(f"{tol} ({'; '.join(labels)})" for tol, labels in groups.items()))
        if notes:
            lines.append("Compared across CPUs within: " + "; ".join(notes) + ".")
    return "\n".join(lines)


def show_results(rows, columns, title: str | None = None) -> None:
    """Display a table of results; Measured cells are compared with their tolerance by the tests.

    `rows` is a list of sequences whose first element is a label; `columns` names every
    column (the label's column first). Cells are strings, ints, or `Measured`.

    >>> show_results([("majority class", Measured(0.5012, 0, ".4f"))], ("model", "accuracy"))  # doctest: +SKIP
    """
    rows = [list(r) for r in rows]
    columns = list(columns)
    for row in rows:
        if len(row) != len(columns):
            raise ValueError(f"each row needs {len(columns)} cells ({', '.join(map(str, columns))}), got {len(row)}: {row!r}")
    payload = {"title": title, "columns": [str(c) for c in columns],
               "rows": [[_cell_json(c) for c in row] for row in rows]}
    text = results_text(rows, columns, title)
    from IPython.display import display

    display({"text/plain": text, MIME: payload}, raw=True)


def show_value(label: str, value: Measured) -> None:
    """Display one measured value as a line: `label: value` (compared within its tolerance)."""
    if not isinstance(value, Measured):
        raise TypeError(f"value must be a Measured, got {type(value).__name__}")
    text = f"{label}: {value}"
    if value.tol:
        text += f"   (compared across CPUs within {value.describe_tolerance()})"
    payload = {"title": None, "columns": ["quantity", "value"], "rows": [[label, value.to_json()]]}
    from IPython.display import display

    display({"text/plain": text, MIME: payload}, raw=True)


def dumps(payload) -> str:
    """Stable JSON text of a payload (used by the tests)."""
    return json.dumps(payload, sort_keys=True)


# ----------------------------------------------------------------------------- errors and checks


def order_of(error: float, decades: float = 1.0) -> Measured:
    """A relative error shown as its order of magnitude, compared within `decades` powers of 10.

    The digits of a gradient check's relative error (4.3e-10 on one CPU, 2.9e-10 on another)
    are round-off, not information; its order of magnitude is the information.
    """
    return Measured(error, decades, ".0e", log=True)


def below(error: float, bound: float) -> str:
    """'< 1e-12' when `error` is below `bound`, else the error and the word ABOVE.

    For differences that are pure round-off (two implementations of the same formula), the
    honest statement is a bound, not a number that changes with the CPU's kernels.
    """
    if not (isinstance(bound, (int, float)) and bound > 0):
        raise ValueError(f"bound must be a positive number, got {bound!r}")
    error = float(error)
    return f"< {bound:.0e}" if error < bound else f"{error:.1e} ABOVE {bound:.0e}"
