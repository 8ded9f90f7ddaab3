"""Diagrams of the LSTM and GRU cells, drawn with matplotlib (boxes, arrows, labels).

The symbols are chapter 5's: row vectors, x_t the input, h_{t-1} and c_{t-1} the previous
states; LSTM gates i_t, f_t, o_t and candidate g_t; GRU update gate z_t, reset gate r_t and
candidate h~_t (the Keras convention, h_t = z_t * h_{t-1} + (1 - z_t) * h~_t). Drawing them
from code keeps the figures in the repository as text, and the labels in step with the
equations.
"""

from __future__ import annotations

from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch

GATE_COLOR = "#f4d8a8"   # sigmoid gates
TANH_COLOR = "#bcd7ef"   # tanh layers
OP_COLOR = "#ffffff"     # element-wise operations


def _figure_axes(ax, size):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=size)
    ax.set_xlim(-0.8, 12.8)
    ax.set_ylim(-2.0, 6.6)
    ax.set_aspect("equal")
    ax.axis("off")
    return ax


def _box(ax, x, y, text, color, width=1.3, height=0.8, label=None):
    ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height,
                                boxstyle="round,pad=0.05", fc=color, ec="k", lw=1.2, zorder=3))
    if label:   # the operation on top, the name of what it computes below it
        ax.text(x, y + 0.17, text, ha="center", va="center", fontsize=12, zorder=4)
        ax.text(x, y - 0.24, label, ha="center", va="center", fontsize=8, zorder=4)
    else:
        ax.text(x, y, text, ha="center", va="center", fontsize=12, zorder=4)


def _op(ax, x, y, text):
    ax.add_patch(Circle((x, y), 0.3, fc=OP_COLOR, ec="k", lw=1.2, zorder=3))
    ax.text(x, y, text, ha="center", va="center", fontsize=12, zorder=4)


def _arrow(ax, points, head=True, color="k"):
    """A polyline through `points`, with an arrow head on the last segment."""
    for (x0, y0), (x1, y1) in zip(points[:-2], points[1:-1]):
        ax.plot([x0, x1], [y0, y1], color=color, lw=1.3, zorder=2, solid_capstyle="round")
    (x0, y0), (x1, y1) = points[-2], points[-1]
    ax.add_patch(FancyArrowPatch((x0, y0), (x1, y1), arrowstyle="-|>" if head else "-",
                                 mutation_scale=12, color=color, lw=1.3, zorder=2, shrinkA=0, shrinkB=0))


def draw_lstm_cell(ax=None):
    """Draw one LSTM step: c_{t-1} -> (x f_t) -> (+ i_t g_t) -> c_t, and h_t = o_t * tanh(c_t)."""
    ax = _figure_axes(ax, (10, 6.2))
    ax.add_patch(FancyBboxPatch((0.3, -0.2), 10.9, 6.0, boxstyle="round,pad=0.1", fc="#f7f7f7",
                                ec="0.6", lw=1, zorder=0))
    top, gates_y, bus = 5.0, 2.6, 0.6
    # cell-state line, the additive path
    ax.text(-0.7, top, "$c_{t-1}$", ha="left", va="center", fontsize=13)
    _op(ax, 3.0, top, r"$\times$")
    _op(ax, 6.0, top, "$+$")
    _arrow(ax, [(0.0, top), (2.7, top)])
    _arrow(ax, [(3.3, top), (5.7, top)])
    _arrow(ax, [(6.3, top), (12.2, top)])
    ax.text(12.3, top, "$c_t$", ha="left", va="center", fontsize=13)
    ax.text(4.5, top + 0.25, r"cell state: gradient $\bar c_{t-1} = \bar c_t \odot f_t$",
            ha="center", va="bottom", fontsize=8.5)
    # inputs, concatenated on the bus
    ax.text(-0.7, bus, "$h_{t-1}$", ha="left", va="center", fontsize=13)
    ax.text(1.5, -1.25, "$x_t$", ha="center", va="bottom", fontsize=13)
    _arrow(ax, [(0.1, bus), (8.6, bus)], head=False)
    _arrow(ax, [(1.5, -0.85), (1.5, bus)], head=False)
    # the four blocks of a_t = x_t W + h_{t-1} U + b
    blocks = [(3.0, r"$\sigma$", GATE_COLOR, "forget $f_t$"),
              (4.7, r"$\sigma$", GATE_COLOR, "input $i_t$"),
              (6.6, r"$\tanh$", TANH_COLOR, "candidate $g_t$"),
              (8.6, r"$\sigma$", GATE_COLOR, "output $o_t$")]
    for x, text, color, label in blocks:
        _arrow(ax, [(x, bus), (x, gates_y - 0.5)])
        _box(ax, x, gates_y, text, color, width=1.5, height=1.0, label=label)
    _arrow(ax, [(3.0, gates_y + 0.5), (3.0, top - 0.3)])                    # f_t -> x c_{t-1}
    _op(ax, 5.65, 3.9, r"$\times$")                                            # i_t * g_t
    _arrow(ax, [(4.7, gates_y + 0.5), (4.7, 3.9), (5.35, 3.9)])
    _arrow(ax, [(6.6, gates_y + 0.5), (6.6, 3.9), (5.95, 3.9)])
    _arrow(ax, [(5.65, 4.2), (5.9, top - 0.3)])
    # h_t = o_t * tanh(c_t)
    _arrow(ax, [(10.2, top), (10.2, 4.15)])
    _box(ax, 10.2, 3.75, r"$\tanh$", TANH_COLOR, width=1.0, height=0.6)
    _op(ax, 10.2, gates_y, r"$\times$")
    _arrow(ax, [(10.2, 3.45), (10.2, gates_y + 0.3)])
    _arrow(ax, [(8.6 + 0.75, gates_y), (9.9, gates_y)])
    _arrow(ax, [(10.2, gates_y - 0.3), (10.2, bus), (12.2, bus)])
    ax.text(12.3, bus, "$h_t$", ha="left", va="center", fontsize=13)
    ax.text(5.8, -1.7, r"all four blocks read $a_t = x_t W + h_{t-1} U + b$, cut as $[a^i \mid a^f \mid a^g \mid a^o]$",
            ha="center", va="center", fontsize=9)
    ax.set_title(r"LSTM step: $c_t = f_t \odot c_{t-1} + i_t \odot g_t$,  $h_t = o_t \odot \tanh(c_t)$", fontsize=12)
    return ax


def draw_gru_cell(ax=None):
    """Draw one GRU step (Keras convention): h_t = z_t * h_{t-1} + (1 - z_t) * h~_t."""
    ax = _figure_axes(ax, (10, 6.2))
    ax.add_patch(FancyBboxPatch((0.3, -0.2), 10.9, 6.0, boxstyle="round,pad=0.1", fc="#f7f7f7",
                                ec="0.6", lw=1, zorder=0))
    top, gates_y, bus = 5.0, 2.6, 0.6
    ax.text(-0.7, top, "$h_{t-1}$", ha="left", va="center", fontsize=13)
    _op(ax, 4.2, top, r"$\times$")
    _op(ax, 8.6, top, "$+$")
    _arrow(ax, [(0.0, top), (3.9, top)])
    _arrow(ax, [(4.5, top), (8.3, top)])
    _arrow(ax, [(8.9, top), (12.2, top)])
    ax.text(12.3, top, "$h_t$", ha="left", va="center", fontsize=13)
    ax.text(6.4, top + 0.25, r"gradient $\bar h_{t-1} = \bar h_t \odot z_t + \ldots$", ha="center", va="bottom", fontsize=8.5)
    # h_{t-1} also goes down to the bus that feeds the gates
    _arrow(ax, [(0.6, top), (0.6, bus), (7.6, bus)], head=False)
    ax.text(2.2, -1.25, "$x_t$", ha="center", va="bottom", fontsize=13)
    _arrow(ax, [(2.2, -0.85), (2.2, bus)], head=False)
    blocks = [(2.2, r"$\sigma$", GATE_COLOR, "reset $r_t$"),
              (4.2, r"$\sigma$", GATE_COLOR, "update $z_t$")]
    for x, text, color, label in blocks:
        _arrow(ax, [(x, bus), (x, gates_y - 0.5)])
        _box(ax, x, gates_y, text, color, width=1.5, height=1.0, label=label)
    # candidate: tanh(x_t W_h + r_t * (h_{t-1} U_h + b_h^rec) + b_h^in)   (reset_after=True)
    _box(ax, 7.6, gates_y, r"$\tanh$", TANH_COLOR, width=1.5, height=1.0, label=r"candidate $\tilde h_t$")
    _op(ax, 6.0, 1.6, r"$\times$")
    _arrow(ax, [(2.2 + 0.75, gates_y), (3.2, gates_y), (3.2, 1.6), (5.7, 1.6)])
    _arrow(ax, [(6.0, bus), (6.0, 1.3)])
    _arrow(ax, [(6.3, 1.6), (7.6, 1.6), (7.6, gates_y - 0.5)])
    ax.text(6.15, 0.45, r"$r_t \odot (h_{t-1} U_h + b^{\mathrm{rec}}_h)$", ha="left", va="top", fontsize=8)
    # z_t weighs the old state; 1 - z_t the candidate
    _arrow(ax, [(4.2, gates_y + 0.5), (4.2, top - 0.3)])
    _box(ax, 5.9, 3.9, r"$1-$", OP_COLOR, width=0.8, height=0.55)
    _arrow(ax, [(4.2, 3.9), (5.5, 3.9)])
    _op(ax, 8.6, 3.9, r"$\times$")
    _arrow(ax, [(6.3, 3.9), (8.3, 3.9)])
    _arrow(ax, [(7.6, gates_y + 0.5), (7.6, 3.25), (8.45, 3.25), (8.55, 3.6)])
    _arrow(ax, [(8.6, 4.2), (8.6, top - 0.3)])
    ax.text(5.8, -1.7, r"$z_t, r_t = \sigma(x_t W_{z,r} + h_{t-1} U_{z,r} + b_{z,r})$; Keras's default reset_after=True form",
            ha="center", va="center", fontsize=9)
    ax.set_title(r"GRU step: $h_t = z_t \odot h_{t-1} + (1 - z_t) \odot \tilde h_t$", fontsize=12)
    return ax
