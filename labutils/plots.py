"""Matplotlib plots used across the labs."""

from __future__ import annotations

import matplotlib.pyplot as plt
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
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.5))
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
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats)")
    if log:
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return ax


def plot_curves(curves: dict, ax=None, *, xlabel: str = "step", ylabel: str = "", title: str = "", logy=False):
    """Several named 1-D curves on one axes: ``{"RNN": values, "GRU": values}``."""
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.5))
    for name, values in curves.items():
        ax.plot(np.arange(1, len(values) + 1), values, label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return ax
