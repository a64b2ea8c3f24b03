"""Learning-rate schedules as pure functions of training progress.

A schedule answers one question: what learning rate at fraction ``p`` in [0, 1] of training?
It keeps no state and knows no clock.  ``labutils.train.fit`` measures the progress -- the
fraction of the binding budget used, steps or seconds, whichever runs out first -- and sets the
optimiser's learning rate to ``lr_schedule(p)`` before every step::

    fit(model, batches, max_seconds=300, lr_schedule=lambda p: cosine_lr(p, 3e-3))

Why decay at all: a learning rate that stays high to the end leaves the weights bouncing around
a minimum; lowering it lets them settle.  The warm-up keeps the first, poorly informed steps
small, while Adam's running averages are still estimates from a handful of gradients.
"""

from __future__ import annotations

import math

__all__ = ["cosine_lr"]


def cosine_lr(p: float, lr: float, *, warmup: float = 0.02, final: float = 0.0) -> float:
    """The learning rate at fraction ``p`` of training: linear warm-up, then half a cosine.

    With ``w = warmup``, ``f = final`` and ``q = (p - w) / (1 - w)`` the fraction of the decay done::

        eta(p) = lr * max(p / w, 0.01)                        for p < w   (warm-up from 1% of lr)
        eta(p) = lr * (f + (1 - f) * (1 + cos(pi * q)) / 2)   for p >= w  (from lr down to f * lr)

    So ``eta(w) = lr`` and ``eta(1) = final * lr`` (0 by default).
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p is the fraction of training done, in [0, 1]: got {p}")
    if not (0.0 <= warmup < 1.0 and 0.0 <= final <= 1.0):
        raise ValueError(f"warmup must be in [0, 1) and final in [0, 1]: got warmup={warmup}, final={final}")
    if p < warmup:
        return lr * max(p / warmup, 0.01)
    q = (p - warmup) / (1 - warmup)
    return lr * (final + (1 - final) * 0.5 * (1 + math.cos(math.pi * q)))
