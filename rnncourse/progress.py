"""A progress bar that prints whole lines at fixed steps.

tqdm redraws one line with carriage returns on stderr and shows timings; stored in a notebook
that is both unreadable in the rendered book and different on every run. This prints a fixed
number of plain lines, so the stored output is the same each time the seeded loop runs.
"""

from __future__ import annotations


class Progress:
    def __init__(self, total: int, lines: int = 10, width: int = 20):
        if total <= 0:
            raise ValueError(f"total must be positive, got {total}")
        self.total, self.width = total, width
        self.marks = {max(1, round(total * k / lines)) for k in range(1, lines + 1)}

    def update(self, step: int, **metrics) -> bool:
        """Print a line if `step` (1-based) is one of the marks; return whether it printed."""
        if step not in self.marks:
            return False
        filled = round(self.width * step / self.total)
        bar = "#" * filled + "." * (self.width - filled)
        shown = "  ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items())
        print(f"[{bar}] {100 * step / self.total:3.0f}%  step {step:>{len(str(self.total))}}/{self.total}  {shown}".rstrip())
        return True
