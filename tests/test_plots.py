"""labutils.plots: what the lines of a history plot are, and the PNG the widgets show."""

import numpy as np
import pytest
from matplotlib.figure import Figure

from labutils import plots
from labutils.metrics import rolling_mean, smooth
from labutils.train import History

HISTORY = History(steps=[1, 2, 3, 4], train_loss=[4.0, 3.0, 3.5, 2.0], val_steps=[2, 4], val_loss=[3.2, 2.6])


def axes():
    return Figure().add_subplot()


def test_history_plot_has_raw_smoothed_and_held_out_lines():
    ax = plots.plot_history(HISTORY, axes(), label="GRU", title="t", smoothing=0.5)
    raw, trend, held = ax.get_lines()
    np.testing.assert_array_equal(raw.get_ydata(), HISTORY.train_loss)
    np.testing.assert_allclose(trend.get_ydata(), smooth(HISTORY.train_loss, 0.5))
    np.testing.assert_array_equal(held.get_xdata(), HISTORY.val_steps)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["GRU training (smoothed)", "GRU held-out"]
    assert ax.get_xlabel() == "step" and ax.get_ylabel() == "cross-entropy (nats)" and ax.get_title() == "t"


def test_history_plot_with_a_window_draws_the_rolling_mean_and_log_scale():
    ax = plots.plot_history(HISTORY, axes(), window=2, log=True)
    np.testing.assert_allclose(ax.get_lines()[1].get_ydata(), rolling_mean(HISTORY.train_loss, 2))
    assert ax.get_legend().get_texts()[0].get_text() == "training (rolling mean of 2)"
    assert ax.get_yscale() == "log"


def test_empty_history_draws_no_line_and_no_legend():
    ax = plots.plot_history(History(), axes())
    assert ax.get_lines() == [] and ax.get_legend() is None and ax.get_xlabel() == "step"


def test_curves_start_at_one_and_are_labelled():
    ax = plots.plot_curves({"RNN": [3.0, 2.0], "GRU": [1.0, 0.5, 0.2]}, axes(), ylabel="norm", logy=True)
    assert [list(line.get_xdata()) for line in ax.get_lines()] == [[1, 2], [1, 2, 3]]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["RNN", "GRU"]
    assert ax.get_ylabel() == "norm" and ax.get_yscale() == "log"


@pytest.mark.parametrize("crop", [True, False])
def test_figure_png_keeps_the_size_unless_cropped_to_the_drawing(crop):
    import io

    from PIL import Image

    fig = Figure(figsize=(4, 2), dpi=50)
    plots.plot_history(HISTORY, fig.add_subplot())
    png = plots.figure_png(fig, crop=crop)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    size = Image.open(io.BytesIO(png)).size
    if crop:
        assert size != (200, 100), "the image should fit the drawing, not the figure"
    else:
        assert size == (200, 100), "4 x 2 inches at 50 dpi"
