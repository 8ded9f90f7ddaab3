"""Exercise set ex11, after chapter 11 (beyond RNNs: attention's cost, linear recurrences and
the parallel scan, the minGRU): references, inputs, known mistakes.

Linear recurrences are batch-major like the rest of the package: a and b have shape
(N, T, H), the state h0 has shape (N, H), and h_t = a_t * h_{t-1} + b_t element by element.
"""

from __future__ import annotations

import numpy as np

from ..scan import combine, linear_recurrence_loop, scan_cost
from .core import Mistake, Question


# ----------------------------------------------------------------- Q1: composing two affine steps
def combine_inputs(rng):
    n, h = int(rng.integers(2, 5)), int(rng.integers(2, 6))
    return dict(a1=rng.uniform(0.5, 1.5, size=(n, h)), b1=rng.standard_normal((n, h)),
                a2=rng.uniform(0.5, 1.5, size=(n, h)), b2=rng.standard_normal((n, h)))


def combine_steps(a1, b1, a2, b2):
    """(a, b) of the step h -> a2 (a1 h + b1) + b2: first (a1, b1), then (a2, b2)."""
    return combine((a1, b1), (a2, b2))


COMBINE_MISTAKES = (
    Mistake("the steps are applied in the other order: (a2, b2) first, then (a1, b1) gives b = a1 b2 + b1; "
            "here (a1, b1) comes first, so its b1 is scaled by the later a2: b = a2 b1 + b2",
            lambda a1, b1, a2, b2: (a1 * a2, a1 * b2 + b1)),
    Mistake("b2 is missing: applying (a2, b2) to a1 h + b1 gives a2 (a1 h + b1) + b2, so b = a2 b1 + b2",
            lambda a1, b1, a2, b2: (a1 * a2, a2 * b1)),
    Mistake("b1 is not scaled by a2: the second step multiplies everything the first produced, so b = a2 b1 + b2",
            lambda a1, b1, a2, b2: (a1 * a2, b1 + b2)),
    Mistake("the a's are added: composing two scalings multiplies them, a = a1 a2",
            lambda a1, b1, a2, b2: (a1 + a2, a2 * b1 + b2)),
)


# -------------------------------------------------------------- Q2: one round of the parallel scan
def round_inputs(rng):
    offset = int(rng.choice([1, 2, 4]))
    n, t, h = int(rng.integers(2, 4)), int(rng.integers(2 * offset + 2, 2 * offset + 8)), int(rng.integers(2, 5))
    return dict(A=rng.uniform(0.5, 1.5, size=(n, t, h)), B=rng.standard_normal((n, t, h)), offset=offset)


def _round(A, B, offset, *, order="earlier_first", direction="back", in_place=False, keep_prefix=True,
           b_from_new_a=False):
    A_new, B_new = A.copy(), B.copy()
    T = A.shape[1]
    if in_place:  # a sequential loop that reads positions it has already overwritten
        for t in range(offset, T):
            A_new[:, t], B_new[:, t] = A_new[:, t - offset] * A_new[:, t], A_new[:, t] * B_new[:, t - offset] + B_new[:, t]
        return A_new, B_new
    if direction == "forward":  # position t combined with t + offset
        A_new[:, :-offset] = A[:, :-offset] * A[:, offset:]
        B_new[:, :-offset] = A[:, offset:] * B[:, :-offset] + B[:, offset:]
        return A_new, B_new
    earlier, later = (A[:, :-offset], B[:, :-offset]), (A[:, offset:], B[:, offset:])
    A_new[:, offset:], B_new[:, offset:] = combine(earlier, later) if order == "earlier_first" else combine(later, earlier)
    if b_from_new_a:
        B_new[:, offset:] = A_new[:, offset:] * B[:, :-offset] + B[:, offset:]
    if not keep_prefix:
        return A_new[:, offset:], B_new[:, offset:]
    return A_new, B_new


def scan_round(A, B, offset):
    """One Hillis-Steele round: position t becomes combine(old t - offset, old t) for t >= offset,
    every right-hand side read before anything is written; positions t < offset are unchanged."""
    return _round(A, B, offset)


ROUND_MISTAKES = (
    Mistake("positions were updated one after another in place, so position t read position t - offset after "
            "that position had already been updated in this round; compute every new value from the old arrays "
            "(all at once, or into copies) before writing any",
            lambda A, B, offset: _round(A, B, offset, in_place=True)),
    Mistake("the two blocks are combined in the wrong order: the earlier block (t - offset) is applied first, so "
            "the new B_t = A_t B_(t-offset) + B_t, not A_(t-offset) B_t + B_(t-offset)",
            lambda A, B, offset: _round(A, B, offset, order="later_first")),
    Mistake("position t was combined with t + offset (a scan from the end); a prefix scan combines t with the "
            "block that ends offset steps earlier, t - offset",
            lambda A, B, offset: _round(A, B, offset, direction="forward")),
    Mistake("B was computed with the A of this round already updated: the new B_t = A_t B_(t-offset) + B_t "
            "uses the old A_t, so compute B's new values before overwriting A (or from copies)",
            lambda A, B, offset: _round(A, B, offset, b_from_new_a=True)),
    Mistake("only positions offset .. T - 1 were returned; the first offset positions have no partner this round "
            "and must be returned unchanged, so that the arrays keep their T steps",
            lambda A, B, offset: _round(A, B, offset, keep_prefix=False)),
)


# ----------------------------------------------------------------- Q3: the states of the recurrence
def recurrence_inputs(rng):
    n, t, h = int(rng.integers(2, 5)), int(rng.integers(3, 9)), int(rng.integers(2, 6))
    return dict(a=rng.uniform(0.5, 1.0, size=(n, t, h)), b=rng.standard_normal((n, t, h)),
                h0=rng.standard_normal((n, h)) + 1.0)


def linear_recurrence(a, b, h0):
    """h (N, T, H): h[:, t] = a[:, t] * h[:, t - 1] + b[:, t], starting from h0 (chapter 11's loop)."""
    return linear_recurrence_loop(a, b, h0)


# Each mistake is the package's loop run on other inputs: a (h + b) = a h + (a b); b h + a swaps them.
RECURRENCE_MISTAKES = (
    Mistake("h0 is ignored: the first state is a[:, 0] * h0 + b[:, 0], not b[:, 0] (start from h0, not from zeros)",
            lambda a, b, h0: linear_recurrence_loop(a, b)),
    Mistake("the states are shifted by one step: h[:, t] must be the state *after* the step a[:, t], b[:, t], so "
            "the first one returned is a[:, 0] * h0 + b[:, 0], and h0 itself is not returned",
            lambda a, b, h0: np.concatenate([h0[:, None], linear_recurrence_loop(a, b, h0)[:, :-1]], axis=1)),
    Mistake("b_t is added before the multiplication: h_t = a_t h_(t-1) + b_t, not a_t (h_(t-1) + b_t)",
            lambda a, b, h0: linear_recurrence_loop(a, a * b, h0)),
    Mistake("a and b are swapped: a_t multiplies the previous state and b_t is added, h_t = a_t h_(t-1) + b_t",
            lambda a, b, h0: linear_recurrence_loop(b, a, h0)),
)


# ------------------------------------------------------------------------------ value questions
def scan_time_bound() -> float:
    """max(work / P, depth) of the Hillis-Steele scan for T = 1024 on P = 4 processors (9217 / 4)."""
    cost = scan_cost(1024, "hillis-steele")
    return max(cost["work"] / 4, cost["depth"])


def attention_crossover() -> float:
    """The T at which attention's T^2 terms, 4 N T^2 d, equal the LSTM's gate products,
    8 N T (D + H) H, for D = 32, H = 128, d = 64: T = 2 (D + H) H / d."""
    D, H, d = 32, 128, 64
    return 2 * (D + H) * H / d


QUESTIONS = (
    Question("combine_steps", "combine_steps", 2, combine_steps, combine_inputs, COMBINE_MISTAKES,
             output_names=("a", "b")),
    Question("scan_round", "scan_round", 3, scan_round, round_inputs, ROUND_MISTAKES, output_names=("A", "B")),
    Question("linear_recurrence", "linear_recurrence", 2, linear_recurrence, recurrence_inputs, RECURRENCE_MISTAKES),
    Question("scan_time_bound", "answer_scan_time_bound", 1, scan_time_bound, kind="value", atol=0.3),
    Question("attention_crossover", "answer_attention_crossover", 1, attention_crossover, kind="value", atol=0.5),
    Question("why_mingru_scans", "answer_why_mingru_scans", 1, lambda: "b", kind="value", choices=("a", "b", "c")),
)
