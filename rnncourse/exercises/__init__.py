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
import warnings
from pathlib import Path

import numpy as np

from .core import (Mistake, Question, RaiseHint, Stress, Verdict, compare_function, compare_value,
                   mutated_inputs, not_implemented_message, raised_message, scalar_answer, stress_verdict)

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


# Distinct wrong answers a value question accepts per session before the self-check stops
# judging it: trying values until it says "correct" is not learning (the grader decides marks).
MAX_VALUE_ATTEMPTS = 25
_WRONG_VALUES: dict[str, set] = {}


def _call(answer, inputs: dict):
    """Call the learner's function on copies of `inputs`; return (result, exception, mutated)."""
    passed = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in inputs.items()}
    try:
        got = answer(**passed)
    except NotImplementedError:
        raise
    except Exception as exc:  # the learner's code raised: the caller says what it likely means
        return None, exc, []
    return got, None, mutated_inputs(inputs, passed)


def _check_function(q: Question, answer, trials: int, rng: np.random.Generator) -> Verdict:
    verdict = Verdict(True, f"{q.name}: correct on {trials} random inputs")
    for _ in range(trials):
        inputs = q.make_inputs(rng)
        try:
            got, exc, mutated = _call(answer, inputs)
        except NotImplementedError:
            return Verdict(False, not_implemented_message(q))
        if exc is not None:
            return raised_message(q, type(exc).__name__, str(exc))
        verdict_one = compare_function(q, inputs, got, mutated)
        if not verdict_one:
            shapes = ", ".join(f"{k} {v.shape}" for k, v in inputs.items() if isinstance(v, np.ndarray))
            verdict_one.details.append(f"inputs were: {shapes}")
            return verdict_one
    for stress in q.stress:  # numerically hard inputs, once the ordinary ones pass
        inputs = stress.make_inputs(rng)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                got, exc, mutated = _call(answer, inputs)
            except NotImplementedError:
                got, exc, mutated = None, NotImplementedError(), []
        if exc is not None:
            return Verdict(False, f"{q.name}: likely mistake: {stress.describe}",
                           [f"{q.name} raised {type(exc).__name__} on these inputs"])
        verdict_one = stress_verdict(q, stress, inputs, got, mutated)
        if not verdict_one:
            return verdict_one
    return verdict


def check(qualified_id: str, answer, trials: int = 3, seed: int | None = None) -> Verdict:
    """Check a learner's function (or value) against the reference, on fresh random inputs.

    Prints what was found; raises CheckFailed (an AssertionError) if the answer is wrong, so a
    check cell fails visibly. `seed` fixes the inputs (by default they are new every call).
    A self-check is for learning: it runs in the learner's own process and can be fooled;
    marks come only from the instructor's grader.
    """
    q = get_question(qualified_id)
    if q.kind == "value":
        verdict = compare_value(q, answer)
        tried = _WRONG_VALUES.setdefault(qualified_id, set())
        if not verdict and not isinstance(q.reference(), str) and verdict.message.endswith(f"{q.atol:g}"):
            tried.add(repr(scalar_answer(answer)))
            if len(tried) > MAX_VALUE_ATTEMPTS:
                verdict = Verdict(False, f"{q.name}: {len(tried)} different wrong values tried; this self-check "
                                         "stops judging it in this session. Work it out from the chapter: "
                                         "marks come only from the grader")
    else:
        if not callable(answer):
            raise CheckFailed(f"{q.name} must be a function; got {type(answer).__name__}")
        verdict = _check_function(q, answer, trials, np.random.default_rng(seed))
    print(("PASS  " if verdict else "FAIL  ") + verdict.message)
    for line in verdict.details:
        print("      " + line)
    if not verdict:
        raise CheckFailed(verdict.message)
    return verdict


__all__ = ["Mistake", "Question", "Stress", "RaiseHint", "Verdict", "CheckFailed", "check", "questions", "get_question", "SETS"]
