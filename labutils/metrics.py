"""Numbers that describe a model: bits per character, perplexity, accuracy.

All take a mean cross-entropy in *nats* (what ``torch.nn.functional.cross_entropy`` returns).
"""

from __future__ import annotations

import math

import numpy as np


def bits_per_char(loss_nats: float) -> float:
    """Mean cross-entropy in nats per character -> bits per character (divide by ln 2)."""
    return float(loss_nats) / math.log(2)


def perplexity(loss_nats: float) -> float:
    """``exp(loss)``: the model is as unsure as a uniform choice among this many tokens."""
    return float(math.exp(min(float(loss_nats), 700.0)))  # 700: exp overflows float64 past ~709


def accuracy(logits, targets) -> float:
    """Fraction of rows whose largest logit is at the target class.  logits (N, C), targets (N,)."""
    logits = logits.detach().cpu().numpy() if hasattr(logits, "detach") else np.asarray(logits)
    targets = targets.detach().cpu().numpy() if hasattr(targets, "detach") else np.asarray(targets)
    if len(targets) == 0:
        raise ValueError("accuracy of no predictions is undefined")
    return float(np.mean(np.argmax(logits, axis=-1) == targets))


def unigram_loss(train_ids, eval_ids, vocab_size: int, smoothing: float = 1.0) -> float:
    """Cross-entropy (nats) of the add-``smoothing`` unigram model of ``train_ids`` on ``eval_ids``.

    The baseline every language model must beat: predicting by word frequency alone.
    """
    counts = np.bincount(np.asarray(train_ids), minlength=vocab_size).astype(np.float64) + smoothing
    log_p = np.log(counts / counts.sum())
    return float(-np.mean(log_p[np.asarray(eval_ids)]))


def smooth(values, weight: float = 0.98) -> np.ndarray:
    """Exponential moving average with bias correction (the first values are not pulled to 0)."""
    values = np.asarray(values, dtype=np.float64)
    out = np.empty_like(values)
    avg = 0.0
    for i, v in enumerate(values):
        avg = weight * avg + (1 - weight) * v
        out[i] = avg / (1 - weight ** (i + 1))
    return out


def rolling_mean(values, window: int = 50) -> np.ndarray:
    """Mean of the last ``window`` values at each position (fewer at the start)."""
    values = np.asarray(values, dtype=np.float64)
    if window < 1:
        raise ValueError(f"window must be at least 1, got {window}")
    sums = np.cumsum(np.concatenate([[0.0], values]))
    n = np.arange(1, len(values) + 1)
    lo = np.maximum(n - window, 0)
    return (sums[n] - sums[lo]) / (n - lo)
