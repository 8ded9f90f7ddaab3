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
class Stress:
    """Extra inputs that only a numerically careful answer survives (say logits of 800, where a
    softmax that does not subtract the maximum overflows). They are tried after the ordinary
    inputs pass; an answer that is wrong, not finite or raises on them gets `describe`."""

    make_inputs: Callable[[np.random.Generator], dict]
    describe: str


@dataclass(frozen=True)
class RaiseHint:
    """What an exception of class `exception` (its name, e.g. "IndexError") raised by the
    learner's function most likely means, e.g. an off-by-one in the time loop."""

    exception: str
    describe: str


@dataclass(frozen=True)
class Question:
    """One graded item of an exercise set.

    kind "function": the learner defines `name`; it is called with `make_inputs(rng)` as
    keyword arguments and must return what `reference` returns (an array or a tuple of arrays).
    kind "value": the learner assigns the variable `name`; `reference()` gives the answer (a
    number, compared with `atol`, or a string such as a multiple-choice letter).

    `stress` (optional): extra inputs for numerical stability; `raise_hints` (optional): what
    an exception from the learner's function likely means. `calls` (optional): an earlier
    answer the learner's function is expected to call, named for the learner ("question 1's
    rnn_step_backward"); a wrong answer that matches no known mistake, or one that is not
    implemented, then also says that the fault may lie there.
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
    stress: tuple[Stress, ...] = ()
    raise_hints: tuple[RaiseHint, ...] = ()
    calls: str = ""


@dataclass
class Verdict:
    ok: bool
    message: str
    details: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.ok


# The one tolerance policy, for self-checks and the grader alike. An answer is compared in
# float64 with the question's own tolerance (rtol, atol) when it is float64 (or an integer,
# or a Python number); a float32 answer, whose own rounding is about 6e-8 relative, gets at
# least rtol 1e-4 and atol 1e-5 (a few hundred float32 roundings, far below any real mistake);
# a float16 answer at least rtol 1e-2 and atol 1e-3. Complex answers are refused (the answers
# are real: a complex result means an eigenvalue or a square root went wrong), and so is
# anything that is not an array or a number.
FLOAT32_TOLERANCE = (1e-4, 1e-5)
FLOAT16_TOLERANCE = (1e-2, 1e-3)


def tolerance(question: Question, dtype: np.dtype) -> tuple[float, float]:
    """(rtol, atol) for an answer of this dtype: see the policy above."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f" and dtype.itemsize <= 2:
        return max(question.rtol, FLOAT16_TOLERANCE[0]), max(question.atol, FLOAT16_TOLERANCE[1])
    if dtype.kind == "f" and dtype.itemsize <= 4:
        return max(question.rtol, FLOAT32_TOLERANCE[0]), max(question.atol, FLOAT32_TOLERANCE[1])
    return question.rtol, question.atol


def random_sizes(rng: np.random.Generator) -> tuple[int, int, int]:
    """Random batch, input and hidden sizes for a question's inputs: N >= 2, so that summing
    and averaging over the batch give different answers, and D != H, so that a transposed
    weight always shows up as a wrong shape rather than a silently wrong value."""
    n = int(rng.integers(2, 5))
    d, h = (int(v) for v in rng.choice(np.arange(2, 8), size=2, replace=False))
    return n, d, h


def _as_answer(value) -> tuple[tuple[np.ndarray, ...], tuple[np.dtype, ...]]:
    """(float64 arrays, the dtypes the learner returned). Raises TypeError with a message fit
    for the learner on anything that is not a real array or number."""
    items = value if isinstance(value, tuple) else (value,)
    arrays, dtypes = [], []
    for item in items:
        if isinstance(item, (bool, np.bool_)) or not isinstance(
                item, (np.ndarray, float, int, complex, np.floating, np.integer, np.complexfloating)):
            raise TypeError(f"expected NumPy arrays or numbers, got {type(item).__name__}")
        dtype = np.asarray(item).dtype if isinstance(item, np.ndarray) else np.result_type(type(item))
        if isinstance(item, np.generic):
            dtype = item.dtype
        if dtype.kind == "c":
            raise TypeError(f"complex numbers (dtype {dtype}) were returned where the answer is real; "
                            "take the modulus (np.abs) or the real part only where the mathematics says so")
        if dtype.kind == "O":  # an object array of plain numbers converts (or raises TypeError)
            arr = np.array(item, dtype=np.float64)
            dtype = np.dtype(np.float64)
        else:
            arr = np.array(item, dtype=np.float64)
        arrays.append(arr)
        dtypes.append(np.dtype(np.float64) if dtype.kind in "biu" else dtype)
    return tuple(arrays), tuple(dtypes)


def as_outputs(value) -> tuple[np.ndarray, ...]:
    """Normalise a function's result to a tuple of float64 arrays, refusing anything else.

    np.array(..., dtype=float64) on a plain ndarray is exact; on an object that only pretends
    to be an array (say one whose __eq__ always answers True) it raises, so such an object can
    never pass a comparison. Complex results are refused (TypeError).
    """
    return _as_answer(value)[0]


def _label(question: Question, k: int, n: int) -> str:
    if question.output_names and k < len(question.output_names):
        return question.output_names[k]
    return "the output" if n == 1 else f"output {k}"


def _close(a: np.ndarray, b: np.ndarray, q: Question, dtype=np.float64) -> bool:
    rtol, atol = tolerance(q, dtype)
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=rtol, atol=atol))


def _copies(inputs: dict) -> dict:
    return {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in inputs.items()}


def mutated_inputs(original: dict, passed: dict) -> list[str]:
    """Names of the array inputs that the learner's function changed in place."""
    changed = []
    for name, value in original.items():
        if isinstance(value, np.ndarray):
            now = passed.get(name)
            if not (isinstance(now, np.ndarray) and now.shape == value.shape and now.dtype == value.dtype
                    and np.array_equal(now, value, equal_nan=True)):
                changed.append(name)
    return changed


def mutation_message(question: Question, names) -> str:
    names = list(names)
    which = ", ".join(f"`{n}`" for n in names)
    return (f"{question.name} changed its input{'s' if len(names) > 1 else ''} {which} in place (for example "
            f"with +=, -= or an assignment into a slice); the caller's arrays must not change: compute into "
            f"new arrays, or work on a copy ({names[0]}.copy())")


def raised_message(question: Question, exc_name: str, text: str) -> Verdict:
    """The verdict for a function that raised `exc_name: text`, with the question's hint if any."""
    hint = next((h.describe for h in question.raise_hints if h.exception == exc_name), None)
    head = f"{question.name} raised {exc_name}" + (f": {text}" if text else "")
    if hint:
        return Verdict(False, f"{question.name}: likely mistake: {hint}", [head])
    return Verdict(False, head, [calls_note(question)] if question.calls else [])


def calls_note(question: Question) -> str:
    """What a question whose function calls an earlier answer adds to an undiagnosed failure."""
    return f"{question.name} calls {question.calls}: if that check fails, fix it first"


def not_implemented_message(question: Question) -> str:
    where = f" (here, or in {question.calls}, which it calls)" if question.calls else ""
    return f"{question.name} is not implemented yet{where}: replace `raise NotImplementedError()` with your code"


def compare_function(question: Question, inputs: dict, got, mutated=()) -> Verdict:
    """Judge a learner's result `got` for `inputs` against the reference and known mistakes.

    `mutated`: names of inputs the learner's function changed in place (the caller knows).
    """
    with np.errstate(all="ignore"):
        expected = as_outputs(question.reference(**_copies(inputs)))
    try:
        got, dtypes = _as_answer(got)
    except TypeError as exc:
        return Verdict(False, f"{question.name} returned the wrong kind of thing: {exc}")
    n = len(expected)
    if len(got) != n:
        what = "one array" if n == 1 else f"a tuple of {n} arrays ({', '.join(question.output_names)})"
        return Verdict(False, f"{question.name} must return {what}, but returned {len(got)} value(s)")
    problems = []
    for k, (e, g, dt) in enumerate(zip(expected, got, dtypes)):
        label = _label(question, k, n)
        if g.shape != e.shape:
            hint = " (it looks transposed)" if g.shape == e.shape[::-1] and g.ndim == 2 else ""
            problems.append(f"{label} has shape {g.shape}, expected {e.shape}{hint}")
        elif not np.all(np.isfinite(g)):  # (NaN never equals anything, so no mistake matches it either)
            problems.append(f"{label} contains NaN or inf")
        elif not _close(g, e, question, dt):
            err = float(np.max(np.abs(g - e)))
            problems.append(f"{label} differs from the reference (largest difference {err:.3g})")
    if not problems:
        if mutated:
            return Verdict(False, mutation_message(question, mutated))
        return Verdict(True, f"{question.name}: correct")
    if mutated:
        problems.append(mutation_message(question, mutated))
    # Which known mistake does the answer reproduce? Compare every output.
    for mistake in question.mistakes:
        try:
            with np.errstate(all="ignore"):
                wrong = as_outputs(mistake.compute(**_copies(inputs)))
        except Exception:  # a mistake variant may not apply to these inputs
            continue
        if len(wrong) == n and all(_close(g, w, question, dt) for g, w, dt in zip(got, wrong, dtypes)):
            return Verdict(False, f"{question.name}: likely mistake: {mistake.describe}", problems)
    return Verdict(False, f"{question.name}: {problems[0]}",
                   problems[1:] + ([calls_note(question)] if question.calls else []))


def stress_verdict(question: Question, stress: Stress, inputs: dict, got, mutated=()) -> Verdict:
    """Judge an answer on a stress input: any failure is reported as the stress's diagnosis."""
    verdict = compare_function(question, inputs, got, mutated)
    if verdict or (mutated and verdict.message == mutation_message(question, mutated)):
        return verdict
    return Verdict(False, f"{question.name}: likely mistake: {stress.describe}", [verdict.message, *verdict.details])


def scalar_answer(got):
    """A 0-d array (or a one-element NumPy scalar) answers a scalar question like a number."""
    if isinstance(got, np.ndarray) and got.ndim == 0:
        return got.item()
    if isinstance(got, np.generic):
        return got.item()
    return got


def compare_value(question: Question, got) -> Verdict:
    """Judge a value answer. Never says what the expected value is, nor in which direction
    the answer is off: only right, or wrong by more than the tolerance."""
    expected = question.reference()
    got = scalar_answer(got)
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
