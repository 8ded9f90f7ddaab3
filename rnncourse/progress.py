"""A progress bar that prints whole lines at fixed steps.

tqdm redraws one line with carriage returns on stderr and shows timings; stored in a notebook
that is both unreadable in the rendered book and different on every run. This prints a fixed
number of plain lines, so the stored output is the same each time the seeded loop runs.

With `tolerance`, the metrics are numbers from training, which may differ in their last digits
on another CPU: each line is then displayed as a measured output (see `rnncourse.repro`) whose
metrics the test suite compares within that tolerance, and whose text says so once.
"""

from __future__ import annotations


class Progress:
    def __init__(self, total: int, lines: int = 10, width: int = 20, tolerance: float | None = None,
                 digits: int = 4):
        if not isinstance(total, int) or isinstance(total, bool) or total <= 0:
            raise ValueError(f"total must be a positive int, got {total!r}")
        if not isinstance(lines, int) or isinstance(lines, bool) or lines < 0:
            raise ValueError(f"lines must be an int >= 0, got {lines!r}")
        if tolerance is not None and not (isinstance(tolerance, (int, float)) and tolerance >= 0):
            raise ValueError(f"tolerance must be None or a number >= 0, got {tolerance!r}")
        self.total, self.width, self.tolerance, self.digits = total, width, tolerance, digits
        self.marks = {max(1, round(total * k / lines)) for k in range(1, lines + 1)}
        self._noted = False

    def update(self, step: int, **metrics) -> bool:
        """Print a line if `step` (1-based) is one of the marks; return whether it printed."""
        if step not in self.marks:
            return False
        filled = round(self.width * step / self.total)
        bar = "#" * filled + "." * (self.width - filled)
        head = f"[{bar}] {100 * step / self.total:3.0f}%  step {step:>{len(str(self.total))}}/{self.total}"
        fmt = f".{self.digits}f"
        shown = "  ".join(f"{k} {v:{fmt}}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items())
        if self.tolerance is None:
            print(f"{head}  {shown}".rstrip())
            return True
        from IPython.display import display

        from .repro import MIME, Measured

        values = [Measured(v, self.tolerance, fmt) if isinstance(v, float) else str(v) for v in metrics.values()]
        text = f"{head}  {shown}".rstrip()
        if not self._noted:
            text += f"\n(losses compared across CPUs within ±{self.tolerance:g})"
            self._noted = True
        payload = {"title": None, "columns": ["step", *metrics],
                   "rows": [[f"{step}/{self.total}", *(v.to_json() if isinstance(v, Measured) else v for v in values)]]}
        display({"text/plain": text, MIME: payload}, raw=True)
        return True
