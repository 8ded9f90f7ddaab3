"""Questions, reference answers and diagnoses, shared by learners' self-checks and the grader.

A question names a function (or a variable) the learner writes, how to draw fresh random
inputs for it, the reference it must agree with, and a list of *known mistakes*: wrong
implementations that learners really write (a transposed weight, a missing bias, a sign
error, an off-by-one in time). When an answer is wrong, the mistake whose output it matches
is named, which says far more than "wrong".

`compare(expected, got, question, inputs)` does the judging and is pure NumPy on plain arrays,
so the instructor's grader can run it in its own process on arrays sent back by a sandboxed
submission, while a learner's `check(...)` runs it in the notebook.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np


@dataclass(frozen=True)
class Mistake:
    """A plausible wrong answer: `describe` is shown when the learner's output matches `compute`."""

    describe: str
    compute: Callable[..., Any]


@dataclass(frozen=True)
class Question:
    """One graded item of an exercise set.

    kind "function": the learner defines `name`; it is called with `make_inputs(rng)` as
    keyword arguments and must return what `reference` returns (an array or a tuple of arrays).
    kind "value": the learner assigns the variable `name`; `reference()` gives the answer (a
    number, compared with `atol`, or a string such as a multiple-choice letter).
    """

    id: str
    name: str
    points: float
    reference: Callable[..., Any]
    make_inputs: Callable[[np.random.Generator], dict] | None = None
    mistakes: tuple[Mistake, ...] = ()
    kind: str = "function"
    rtol: float = 1e-6
    atol: float = 1e-8
    choices: tuple[str, ...] = ()
    output_names: tuple[str, ...] = ()


@dataclass
class Verdict:
    ok: bool
    message: str
    details: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.ok


def random_sizes(rng: np.random.Generator) -> tuple[int, int, int]:
    """Random batch, input and hidden sizes for a question's inputs: N >= 2, so that summing
    and averaging over the batch give different answers, and D != H, so that a transposed
    weight always shows up as a wrong shape rather than a silently wrong value."""
    n = int(rng.integers(2, 5))
    d, h = (int(v) for v in rng.choice(np.arange(2, 8), size=2, replace=False))
    return n, d, h


def as_outputs(value) -> tuple[np.ndarray, ...]:
    """Normalise a function's result to a tuple of float arrays, refusing anything else.

    np.asarray(..., dtype=float64) on a plain ndarray is exact; on an object that only pretends
    to be an array (say one whose __eq__ always answers True) it raises, so such an object can
    never pass a comparison.
    """
    items = value if isinstance(value, tuple) else (value,)
    out = []
    for item in items:
        if isinstance(item, (np.ndarray, float, int, np.floating, np.integer)) and not isinstance(item, bool):
            out.append(np.array(item, dtype=np.float64))
        else:
            raise TypeError(f"expected NumPy arrays or numbers, got {type(item).__name__}")
    return tuple(out)


def _label(question: Question, k: int, n: int) -> str:
    if question.output_names and k < len(question.output_names):
        return question.output_names[k]
    return "the output" if n == 1 else f"output {k}"


def _close(a: np.ndarray, b: np.ndarray, q: Question) -> bool:
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=q.rtol, atol=q.atol))


def compare_function(question: Question, inputs: dict, got) -> Verdict:
    """Judge a learner's result `got` for `inputs` against the reference and known mistakes."""
    expected = as_outputs(question.reference(**inputs))
    try:
        got = as_outputs(got)
    except TypeError as exc:
        return Verdict(False, f"{question.name} returned the wrong kind of thing: {exc}")
    n = len(expected)
    if len(got) != n:
        what = "one array" if n == 1 else f"a tuple of {n} arrays ({', '.join(question.output_names)})"
        return Verdict(False, f"{question.name} must return {what}, but returned {len(got)} value(s)")
    problems = []
    for k, (e, g) in enumerate(zip(expected, got)):
        label = _label(question, k, n)
        if g.shape != e.shape:
            hint = " (it looks transposed)" if g.shape == e.shape[::-1] and g.ndim == 2 else ""
            problems.append(f"{label} has shape {g.shape}, expected {e.shape}{hint}")
        elif not np.all(np.isfinite(g)):
            problems.append(f"{label} contains NaN or inf")
        elif not _close(g, e, question):
            err = float(np.max(np.abs(g - e)))
            problems.append(f"{label} differs from the reference (largest difference {err:.3g})")
    if not problems:
        return Verdict(True, f"{question.name}: correct")
    # Which known mistake does the answer reproduce? Compare every output.
    for mistake in question.mistakes:
        try:
            wrong = as_outputs(mistake.compute(**inputs))
        except Exception:  # a mistake variant may not apply to these inputs
            continue
        if len(wrong) == n and all(_close(g, w, question) for g, w in zip(got, wrong)):
            return Verdict(False, f"{question.name}: likely mistake: {mistake.describe}", problems)
    return Verdict(False, f"{question.name}: {problems[0]}", problems[1:])


def compare_value(question: Question, got) -> Verdict:
    expected = question.reference()
    if got is None:
        return Verdict(False, f"{question.name} is not answered yet: replace None by your answer")
    if isinstance(expected, str):
        if not isinstance(got, str):
            return Verdict(False, f"{question.name} must be a string, one of {list(question.choices)}")
        answer = got.strip().lower()
        if question.choices and answer not in question.choices:
            return Verdict(False, f"{question.name} must be one of {list(question.choices)}, got {got!r}")
        return Verdict(answer == expected, f"{question.name}: " + ("correct" if answer == expected else "not this one"))
    if isinstance(got, bool) or not isinstance(got, (int, float, np.integer, np.floating)):
        return Verdict(False, f"{question.name} must be a number, got {type(got).__name__}")
    if not math.isfinite(float(got)):
        return Verdict(False, f"{question.name} is {got}, not a finite number")
    ok = abs(float(got) - float(expected)) <= question.atol
    return Verdict(ok, f"{question.name}: " + ("correct" if ok else f"off by more than {question.atol:g}"))
