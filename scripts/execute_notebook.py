"""Execute notebooks in place and store their outputs, the way the book and nbval expect them.

    python scripts/execute_notebook.py chapters/03_numpy_rnn.ipynb [more.ipynb ...]

Each notebook runs top to bottom in a fresh kernel, in its own directory. A cell may raise
only if it is tagged `raises-exception`; anything written to stderr (a warning, a log line)
is an error too, because nbval ignores the kernel's stderr and the stored output would no
longer match. Timing metadata is not recorded, so re-running an unchanged notebook leaves
the file unchanged.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# A non-inline MPLBACKEND (e.g. Agg) would stop plt.show() from storing any figure.
os.environ.pop("MPLBACKEND", None)


def execute(path: Path, timeout: int = 900) -> float:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute()
    elapsed = time.perf_counter() - start
    problems = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        tags = cell.metadata.get("tags", [])
        for out in cell.get("outputs", []):
            if out.output_type == "stream" and out.name == "stderr" and "nbval-ignore-output" not in tags:
                problems.append(f"cell {index} wrote to stderr: {out.text[:300]!r}")
            if out.output_type == "error" and "raises-exception" not in tags:
                problems.append(f"cell {index} raised {out.ename}")
    if problems:
        raise SystemExit(f"{path}:\n  " + "\n  ".join(problems))
    nbformat.write(nb, path)
    return elapsed


def main(argv: list[str]) -> None:
    if not argv:
        raise SystemExit(__doc__)
    for name in argv:
        path = Path(name)
        if not path.exists():
            raise SystemExit(f"no such notebook: {name}")
        print(f"executing {path} ...", flush=True)
        print(f"  done in {execute(path):.0f} s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
