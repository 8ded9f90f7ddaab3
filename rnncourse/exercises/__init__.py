"""Exercise sets: their questions (references, random inputs, known mistakes) and `check`.

A learner calls, in an exercise notebook,

    check("ex03.rnn_step_backward", rnn_step_backward)

which draws fresh random inputs, calls the function, and prints either "correct" or the
likely mistake. The instructor's grader (`python -m rnncourse.grading`) uses the same questions
but runs submissions in a sandbox and judges in its own process.

Adding a set for a new chapter: write `solutions/<set>/<set>.ipynb` in nbgrader format and a
module `rnncourse/exercises/<set>.py` defining QUESTIONS (its file name, `exNN_<topic>.py`,
registers it as set `exNN`).
"""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np

from .core import Mistake, Question, Verdict, compare_function, compare_value

# Set id -> module name, one per module `exNN_<topic>.py` in this folder.
SETS = {p.stem.partition("_")[0]: p.stem for p in sorted(Path(__file__).parent.glob("ex[0-9][0-9]_*.py"))}


def questions(set_id: str) -> dict[str, Question]:
    """The questions of one exercise set, by question id."""
    if set_id not in SETS:
        raise KeyError(f"unknown exercise set {set_id!r}; known: {sorted(SETS)}")
    module = importlib.import_module(f"{__name__}.{SETS[set_id]}")
    return {q.id: q for q in module.QUESTIONS}


def get_question(qualified_id: str) -> Question:
    """'ex03.rnn_step_backward' -> the Question."""
    set_id, _, qid = qualified_id.partition(".")
    found = questions(set_id)
    if qid not in found:
        raise KeyError(f"exercise set {set_id!r} has no question {qid!r}; it has {sorted(found)}")
    return found[qid]


class CheckFailed(AssertionError):
    """Raised by `check` so that a failing check cell fails (nbgrader's convention).

    In Jupyter it shows as one line, not a traceback into this package: the printed diagnosis
    above it is what the learner needs.
    """

    def _render_traceback_(self):  # IPython's hook for custom tracebacks
        return [f"CheckFailed: {self}"]


def check(qualified_id: str, answer, trials: int = 3, seed: int | None = None) -> Verdict:
    """Check a learner's function (or value) against the reference, on fresh random inputs.

    Prints what was found; raises CheckFailed (an AssertionError) if the answer is wrong, so a
    check cell fails visibly. `seed` fixes the inputs (by default they are new every call).
    """
    q = get_question(qualified_id)
    if q.kind == "value":
        verdict = compare_value(q, answer)
    else:
        if not callable(answer):
            raise CheckFailed(f"{q.name} must be a function; got {type(answer).__name__}")
        rng = np.random.default_rng(seed)
        verdict = Verdict(True, f"{q.name}: correct on {trials} random inputs")
        for _ in range(trials):
            inputs = q.make_inputs(rng)
            try:
                got = answer(**{k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in inputs.items()})
            except NotImplementedError:
                verdict = Verdict(False, f"{q.name} is not implemented yet: replace `raise NotImplementedError()` with your code")
                break
            except Exception as exc:  # the learner's code raised: say what, where it came from
                verdict = Verdict(False, f"{q.name} raised {type(exc).__name__}: {exc}")
                break
            verdict_one = compare_function(q, inputs, got)
            if not verdict_one:
                shapes = ", ".join(f"{k} {v.shape}" for k, v in inputs.items() if isinstance(v, np.ndarray))
                verdict_one.details.append(f"inputs were: {shapes}")
                verdict = verdict_one
                break
    print(("PASS  " if verdict else "FAIL  ") + verdict.message)
    for line in verdict.details:
        print("      " + line)
    if not verdict:
        raise CheckFailed(verdict.message)
    return verdict


__all__ = ["Mistake", "Question", "Verdict", "CheckFailed", "check", "questions", "get_question", "SETS"]
