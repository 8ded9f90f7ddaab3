"""How far back a gradient reaches in a vanilla RNN, an LSTM and a GRU at a given initialisation.

Chapters 4 and 5 measure the same quantity: put a loss on the last hidden state only,
L = sum(h_T * u) with a random u, and record the norm of the gradient that reaches every
input, ||dL/dx_t|| for t = 1 .. T (array index t - 1, the course's convention: `h[:, t-1]`
holds h_t). All three cells have an input at every step, so the curves are comparable.

Whether the vanilla RNN's or the LSTM's gradient falls faster depends on the inputs: the RNN's
factor per step is set by how saturated its tanh units are (the mean of tanh'(z) = 1 - h^2),
the LSTM's by its forget gate, which at Keras's initialisation sits near sigmoid(1) whatever
the inputs. `GradientFlow` reports both the curve and the mean of that per-step factor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import gru, lstm, rnn

CELLS = ("RNN", "LSTM", "GRU")


@dataclass(frozen=True)
class GradientFlow:
    """The gradient reaching each input, and the mean per-step factor that governs it.

    norms[t - 1] is ||dL/dx_t|| (norm over the batch and the features) for t = 1 .. T.
    mean_factor is the mean over steps, examples and units of the cell's own multiplier:
    tanh'(z_t) = 1 - h_t^2 for the RNN, the forget gate f_t for the LSTM, the update gate z_t
    for the GRU.
    """

    norms: np.ndarray
    mean_factor: float

    def factor_per_step(self, steps: int | None = None) -> float:
        """Geometric-mean factor by which the norm shrinks per step over the last `steps` steps.

        (norm at x_{T-steps} / norm at x_T) ** (1 / steps); all steps back to x_1 by default.
        Below 1 the gradient vanishes, above 1 it grows.
        """
        T = self.norms.size
        steps = T - 1 if steps is None else steps
        if not isinstance(steps, (int, np.integer)) or isinstance(steps, bool) or not 1 <= steps <= T - 1:
            raise ValueError(f"steps must be an int in 1 .. {T - 1} (T = {T}), got {steps!r}")
        return float((self.norms[T - 1 - steps] / self.norms[T - 1]) ** (1.0 / steps))


def input_gradient_flow(cell: str, x: np.ndarray, units: int, seed: int = 0, gate_bias: float | None = None,
                        recurrent_scale: float = 1.0) -> GradientFlow:
    """Initialise `cell` as Keras does (seeded), run it over x (N, T, D), and measure ||dL/dx_t||.

    cell: "RNN" (tanh), "LSTM" or "GRU" (reset_after=True). gate_bias, if given, sets the bias
    of the LSTM's forget gate (Keras: 1) or of the GRU's update gate (Keras: 0; the input row
    of the bias); it is not defined for the RNN. recurrent_scale multiplies the recurrent
    kernel. The initial state is zero and L = sum(h_T * u), u drawn from the same seed.
    """
    if cell not in CELLS:
        raise ValueError(f"cell must be one of {CELLS}, got {cell!r}")
    x = np.asarray(x)
    if x.ndim != 3 or not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"x must be a float array of shape (N, T, D), got dtype {x.dtype} and shape {x.shape}")
    N, T, D = x.shape
    if T < 2:
        raise ValueError(f"x needs at least 2 steps (T >= 2), got T = {T}")
    if not isinstance(units, (int, np.integer)) or isinstance(units, bool) or units < 1:
        raise ValueError(f"units must be a positive int, got {units!r}")
    if gate_bias is not None and cell == "RNN":
        raise ValueError("gate_bias is defined for the LSTM (forget gate) and the GRU (update gate), not for cell='RNN'")
    rng = np.random.default_rng(seed)
    zeros = np.zeros((N, units))
    u = rng.standard_normal((N, units))
    if cell == "RNN":
        p = rnn.init_rnn_params(D, units, rng)
        p["recurrent_kernel"] = p["recurrent_kernel"] * recurrent_scale
        h, cache = rnn.rnn_forward(x, zeros, **p)
        factor = np.mean(1.0 - h ** 2)
        backward = lambda dh: rnn.rnn_backward(dh, cache)[0]  # noqa: E731
    elif cell == "LSTM":
        p = lstm.init_lstm_params(D, units, rng)
        if gate_bias is not None:
            p["bias"][units:2 * units] = gate_bias
        p["recurrent_kernel"] = p["recurrent_kernel"] * recurrent_scale
        h, _, cache = lstm.lstm_forward(x, zeros, zeros, **p)
        factor = np.mean(lstm.lstm_gates(cache)["f"])
        backward = lambda dh: lstm.lstm_backward(dh, cache)[0]  # noqa: E731
    else:
        p = gru.init_gru_params(D, units, rng)
        if gate_bias is not None:
            p["bias"][0, :units] = gate_bias
        p["recurrent_kernel"] = p["recurrent_kernel"] * recurrent_scale
        h, cache = gru.gru_forward(x, zeros, **p)
        factor = np.mean(gru.gru_gates(cache)["z"])
        backward = lambda dh: gru.gru_backward(dh, cache)[0]  # noqa: E731
    dh = np.zeros_like(h)
    dh[:, -1] = u
    dx = backward(dh)
    return GradientFlow(norms=np.linalg.norm(dx, axis=(0, 2)), mean_factor=float(factor))
