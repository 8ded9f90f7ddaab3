"""Exercise set ex01, after chapter 1 (background and core concepts): concept questions.

Every question is a value (a number or the letter of a choice). The self-check says whether
an answer is right, or by more than how much a number is off; it never shows the answer.
"""

from __future__ import annotations

import math

from .core import Question


def _rnn_parameters() -> float:
    # SimpleRNN with D = 30 inputs and H = 20 units: kernel D*H, recurrent kernel H*H, bias H.
    D, H = 30, 20
    return float(D * H + H * H + H)


def _impulse() -> float:
    # h_t = w h_{t-1} + x_t with w = 0.8, x_0 = 1 and zeros after: h_10 = 0.8 ** 10.
    return 0.8**10


def _steps_to_half() -> float:
    # The smallest t with 0.9 ** t < 1/2.
    return float(math.ceil(math.log(0.5) / math.log(0.9)))


def _latch() -> float:
    # The chapter's latch: tanh(8 * x + 4 * h_prev) with x = 1 and h_prev = -1.
    return math.tanh(8.0 * 1.0 + 4.0 * (-1.0))


QUESTIONS = (
    Question("rnn_parameters", "answer_rnn_parameters", 1, _rnn_parameters, kind="value", atol=0.5),
    Question("parameters_and_length", "answer_parameters_and_length", 1, lambda: "a", kind="value",
             choices=("a", "b", "c")),
    Question("impulse", "answer_impulse", 1, _impulse, kind="value", atol=1e-3),
    Question("steps_to_half", "answer_steps_to_half", 1, _steps_to_half, kind="value", atol=0.5),
    Question("latch", "answer_latch", 1, _latch, kind="value", atol=1e-3),
    Question("elman_or_jordan", "answer_elman_or_jordan", 1, lambda: "b", kind="value", choices=("a", "b")),
    Question("output_equation", "answer_output_equation", 1, lambda: "c", kind="value", choices=("a", "b", "c")),
    Question("sequence_or_time_series", "answer_sequence_or_time_series", 1, lambda: "a", kind="value",
             choices=("a", "b")),
)
