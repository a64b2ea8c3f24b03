"""Matplotlib plots used across the labs.

Every function draws on the ``ax`` it is given (a new pyplot figure when none is), so plots can
be combined.  ``figure_png(fig)`` renders a bare ``matplotlib.figure.Figure`` to PNG bytes for
the widgets: with an ``ax`` of such a figure nothing here touches pyplot, which keeps a drawing
made in a background thread (the explorer's live plot) away from the notebook's own figures.
"""

from __future__ import annotations

import io

import numpy as np

from .metrics import rolling_mean, smooth


def plot_history(
    history,
    ax=None,
    *,
    title: str = "",
    label: str = "",
    smoothing: float = 0.95,
    log: bool = False,
    window: int | None = None,
):
    """Training loss per step (raw, faint; smoothed, bold) and held-out loss per evaluation.

    ``history`` is a ``labutils.train.History`` (or anything with ``steps``, ``train_loss``,
    ``val_steps``, ``val_loss``).  ``window``: draw a rolling mean over that many steps instead
    of the exponential smoothing.  Returns the axes so plots can be combined.
    """
    ax = ax if ax is not None else _new_axes()
    prefix = f"{label} " if label else ""
    if history.train_loss:
        (line,) = ax.plot(history.steps, history.train_loss, alpha=0.25, lw=0.8)
        trend = rolling_mean(history.train_loss, window) if window else smooth(history.train_loss, smoothing)
        kind = f"rolling mean of {window}" if window else "smoothed"
        ax.plot(history.steps, trend, color=line.get_color(), lw=2, label=f"{prefix}training ({kind})")
        if history.val_loss:
            ax.plot(
                history.val_steps, history.val_loss, "o--", color=line.get_color(), lw=1.5, label=f"{prefix}held-out"
            )
    _label_axes(ax, "step", "cross-entropy (nats)", title, log)
    return ax


def plot_curves(curves: dict, ax=None, *, xlabel: str = "step", ylabel: str = "", title: str = "", logy=False):
    """Several named 1-D curves on one axes: ``{"RNN": values, "GRU": values}``."""
    ax = ax if ax is not None else _new_axes()
    for name, values in curves.items():
        ax.plot(np.arange(1, len(values) + 1), values, label=name)
    _label_axes(ax, xlabel, ylabel, title, logy)
    return ax


def figure_png(fig, *, crop: bool = True) -> bytes:
    """Render a matplotlib ``Figure`` to PNG bytes (no pyplot state involved).

    ``crop=False`` keeps the figure's own size (a live plot that must not change size between
    redraws); ``crop=True`` fits the image to what is drawn (``bbox_inches="tight"``).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight" if crop else None)
    return buf.getvalue()


def _new_axes():
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=(7, 3.5))
    return ax


def _label_axes(ax, xlabel: str, ylabel: str, title: str, log: bool) -> None:
    """Axis labels, optional log scale and title, a light grid, and a legend of the labelled lines."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if log:
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:  # an empty history has no line to name
        ax.legend()
