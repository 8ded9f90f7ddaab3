import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from rnncourse.diagrams import draw_gru_cell, draw_lstm_cell  # noqa: E402


def texts(ax):
    return " ".join(t.get_text() for t in ax.texts) + " " + ax.get_title()


@pytest.mark.parametrize("draw, symbols", [
    (draw_lstm_cell, ["$f_t$", "$i_t$", "$g_t$", "$o_t$", "$c_{t-1}$", "$c_t$", "$h_{t-1}$", "$h_t$", "$x_t$"]),
    (draw_gru_cell, ["$z_t$", "$r_t$", r"$\tilde h_t$", "$h_{t-1}$", "$h_t$", "$x_t$"]),
])
def test_every_symbol_of_the_equations_is_labelled(draw, symbols):
    fig, ax = plt.subplots()
    assert draw(ax) is ax
    label_text = texts(ax)
    for symbol in symbols:
        assert symbol in label_text, symbol
    assert len(ax.patches) > 8          # boxes, circles and arrows were drawn
    fig.canvas.draw()                   # renders (mathtext parses) without error
    plt.close(fig)


def test_draws_its_own_figure():
    ax = draw_lstm_cell()
    assert ax.figure is not None
    plt.close(ax.figure)
