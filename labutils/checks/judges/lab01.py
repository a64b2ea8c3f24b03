"""Judges of lab 01's checks: PyTorch oracles in float64 and the slips they recognise.

* softmax: ``torch.softmax``; overflow, the wrong axis, a sum over the whole array.
* cell: ``nn.RNNCell`` with the student's weights copied in, then the output layer; the slips are
  the same cell with a doctored weight (bias zeroed, ``W_hh`` transposed) or another activation.
* sequence: ``nn.RNN(batch_first=True)``; the slips are a state never carried, the predictions
  never stored, the last step never computed, every step holding the last prediction.
"""

from __future__ import annotations

import numpy as np

from ..core import assert_finite, assert_shape
from ..lab01 import B, D, H, T, V
from .oracle import as_numpy, close, describe_mismatch, first_slip, tensor64


# ------------------------------------------------------------------------------- softmax
def _judge_softmax_one(z: np.ndarray, p: np.ndarray) -> None:
    import torch

    assert_shape(
        f"softmax(z) for z of shape {z.shape}",
        p,
        z.shape,
        "softmax keeps the shape of its input: one probability per logit.",
    )
    if not np.all(np.isfinite(p)):
        raise AssertionError(
            f"softmax(z) returned NaN or inf for logits as large as {np.abs(z).max():.0f}: exp() overflowed. "
            "Subtract the largest logit of each row first (z - z.max(axis=-1, keepdims=True)); "
            "the result is mathematically the same."
        )
    want = as_numpy(torch.softmax(tensor64(z), dim=-1))
    if close(p, want):
        return
    _judge_sums(z, p)
    mismatch = describe_mismatch(p, want)
    hint = "" if "float32" in mismatch else " Did you subtract the maximum of each row (keepdims=True) before exp()?"
    raise AssertionError(f"softmax(z) {mismatch} (compared with torch.softmax).{hint}")


def _judge_sums(z: np.ndarray, p: np.ndarray) -> None:
    """Raise if the rows of ``p`` (along the last axis) do not sum to 1, naming what they sum to instead."""
    sums = p.sum(axis=-1)
    if np.allclose(sums, 1):
        return
    for axis in range(z.ndim - 1):
        if np.allclose(p.sum(axis=axis), 1):
            raise AssertionError(
                f"softmax(z) sums to 1 down axis {axis} instead of along the last axis: the probabilities are over "
                "the vocabulary, which is the last axis. Use axis=-1 with keepdims=True (for the max and the sum)."
            )
    if np.isclose(p.sum(), 1):
        raise AssertionError(
            "softmax(z) sums to 1 over the whole array: each row (last axis) must sum to 1 on its own. "
            "Use np.sum(..., axis=-1, keepdims=True)."
        )
    if np.all(p <= 1e-12) and np.allclose(np.exp(p).sum(axis=-1), 1):
        raise AssertionError(
            "softmax(z) returned log-probabilities (a log-softmax): return the probabilities themselves, "
            "e / e.sum(axis=-1, keepdims=True)."
        )
    if np.allclose(p.max(axis=-1), 1):
        raise AssertionError(
            "the largest probability of each row is exactly 1: divide exp() by the *sum* of its row, "
            "not by its maximum."
        )
    raise AssertionError(f"the rows of softmax(z) sum to {np.round(sums.ravel()[:3], 4)}..., not 1.")


def judge_softmax(inp, out):
    for key, z_key in (("p_small", "small"), ("p", "z"), ("p3", "z3"), ("p_wide", "wide")):
        _judge_softmax_one(inp[z_key], out[key])


# ---------------------------------------------------------------------------- cell forward
def _cell_variants(inp, x, h_prev):
    """``{name: (h_next, y_hat)}``: the right answer (``"ok"``) and the usual slips, by PyTorch.

    Each variant is an ``nn.RNNCell`` with (some of) the weights copied in, then the output layer.
    """
    import torch
    from torch import nn

    def cell(W_xh, W_hh, b_h, nonlinearity="tanh"):
        c = nn.RNNCell(D, H, nonlinearity=nonlinearity).double()
        with torch.no_grad():
            c.weight_ih.copy_(tensor64(W_xh))
            c.weight_hh.copy_(tensor64(W_hh))
            c.bias_ih.copy_(tensor64(b_h))
            c.bias_hh.zero_()
        return c(tensor64(x), tensor64(h_prev))

    def out(h, b_y=inp["b_y"]):
        return torch.softmax(nn.functional.linear(h, tensor64(inp["W_hy"]), tensor64(b_y)), dim=-1)

    W_xh, W_hh, b_h = inp["W_xh"], inp["W_hh"], inp["b_h"]
    with torch.no_grad():
        h = cell(W_xh, W_hh, b_h)
        pre = nn.functional.linear(tensor64(x), tensor64(W_xh), tensor64(b_h)) + nn.functional.linear(
            tensor64(h_prev), tensor64(W_hh)
        )
        h_variants = {
            "ok": h,
            "no_bias": cell(W_xh, W_hh, np.zeros(H)),
            "relu": cell(W_xh, W_hh, b_h, "relu"),
            "no_activation": pre,
            "sigmoid": torch.sigmoid(pre),
            "W_hh_transposed": cell(W_xh, W_hh.T, b_h),
            "no_recurrence": cell(W_xh, np.zeros_like(W_hh), b_h),
            "bias_twice": cell(W_xh, W_hh, 2 * b_h),
        }
        ys = {name: out(hv) for name, hv in h_variants.items()}
        ys["no_output_bias"] = out(h, np.zeros(V))
        ys["logits"] = nn.functional.linear(h, tensor64(inp["W_hy"]), tensor64(inp["b_y"]))
        ys["from_h_prev"] = out(tensor64(h_prev))
        ys["from_pre_activation"] = out(pre)
        ys["softmax_over_batch"] = torch.softmax(ys["logits"], dim=0)
    return {k: as_numpy(v) for k, v in h_variants.items()}, {k: as_numpy(v) for k, v in ys.items()}


H_ADVICE = {
    "no_bias": "It matches tanh(W_xh x_t + W_hh h_prev) without b_h: add the bias b_h.",
    "relu": "It matches ReLU: the vanilla RNN cell uses tanh (np.tanh).",
    "no_activation": "It matches the pre-activation z_t: apply np.tanh to it.",
    "sigmoid": "It matches the sigmoid: the vanilla RNN cell uses tanh (np.tanh).",
    "W_hh_transposed": "It matches h_prev @ W_hh (W_hh transposed): with PyTorch-shaped W_hh of shape (H, H), "
    "batch-first rows need h_prev @ W_hh.T.",
    "no_recurrence": "It matches tanh(W_xh x_t + b_h) without the recurrent term: add h_prev @ W_hh.T, which "
    "carries the memory from the previous step.",
    "bias_twice": "It matches the cell with b_h added twice: add the bias once.",
}
Y_ADVICE = {
    "no_output_bias": "It matches softmax(W_hy h_t) without b_y: add the output bias b_y.",
    "logits": "It matches the logits W_hy h_t + b_y: apply your softmax to them.",
    "from_h_prev": "It matches the prediction from h_prev: compute y_hat from the *new* hidden state h_next.",
    "from_pre_activation": "It matches the prediction from the pre-activation z_t: compute y_hat from the hidden "
    "state after the tanh, h_next.",
    "softmax_over_batch": "It matches a softmax over axis 0 (the batch): each row, one example, must sum to 1 "
    "over the vocabulary, the last axis.",
}


def _diagnose(name: str, got, variants: dict, advice: dict, what: str) -> None:
    """Raise unless ``got`` matches ``variants['ok']``; name the slip it matches, if any."""
    want = variants["ok"]
    shape = np.shape(got)
    if shape != want.shape:
        hint = ""
        if len(shape) == want.ndim and tuple(reversed(shape)) == want.shape:
            hint = (
                "This is the column convention (features first): the labs are batch-first, "
                "one row per example, so use x_t @ W.T rather than W @ x_t."
            )
        assert_shape(name, got, want.shape, hint)
    assert_finite(name, got, "Overflow? Check the scale of the inputs and your softmax.")
    if close(got, want):
        return
    slip = first_slip(got, ((text, variants.get(key)) for key, text in advice.items()))
    if slip:
        raise AssertionError(f"{name} is wrong. {slip}")
    raise AssertionError(
        f"{name} {describe_mismatch(got, want)} (compared with PyTorch's {what} with the same weights). "
        "Check each term of the equation against the code."
    )


def _judge_unchanged(what: str, changed) -> None:
    """Raise if the student's function wrote into the arrays it was given (``changed``: their names)."""
    names = [str(n) for n in np.atleast_1d(changed)]
    if names:
        raise AssertionError(
            f"{what} changed the array(s) it was given, {', '.join(names)}, in place (h[:] = ..., +=, *=): the "
            "caller's arrays must stay as they were. Compute new arrays instead (h_next = np.tanh(z_t))."
        )


def judge_cell(inp, out):
    if np.shape(out["h_next"]) == (B, V) and np.shape(out["y_hat"]) == (B, H):
        raise AssertionError("rnn_cell_forward returned (y_hat_t, h_next): return them in the order h_next, y_hat_t.")
    hs, ys = _cell_variants(inp, inp["x_t"], inp["h_prev"])
    _diagnose("h_next", out["h_next"], hs, H_ADVICE, "nn.RNNCell")
    _diagnose("y_hat", out["y_hat"], ys, Y_ADVICE, "softmax(Linear(h_next))")
    _judge_unchanged("rnn_cell_forward", out["changed"])


# ------------------------------------------------------------------------ sequence forward
def _rnn_oracle(inp, h0, nonlinearity: str = "tanh"):
    """``nn.RNN(batch_first=True)`` with the weights copied in -> (all h (B, T, H), y_hat (B, T, V))."""
    import torch
    from torch import nn

    rnn = nn.RNN(D, H, batch_first=True, nonlinearity=nonlinearity).double()
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(tensor64(inp["W_xh"]))
        rnn.weight_hh_l0.copy_(tensor64(inp["W_hh"]))
        rnn.bias_ih_l0.copy_(tensor64(inp["b_h"]))
        rnn.bias_hh_l0.zero_()
        h, _ = rnn(tensor64(inp["x"]), tensor64(h0)[None])
        y = torch.softmax(nn.functional.linear(h, tensor64(inp["W_hy"]), tensor64(inp["b_y"])), dim=-1)
    return as_numpy(h), as_numpy(y)


def _judge_shapes(h, y) -> None:
    if np.shape(h) == (B, T + 1, H):
        raise AssertionError(f"h has shape {np.shape(h)}, expected {(B, T, H)}: keep h_1 ... h_T, not h0.")
    if np.shape(h) == (T, B, H) or np.shape(y) == (T, B, V):
        raise AssertionError(
            f"h has shape {np.shape(h)} and y_hat {np.shape(y)}: time-first, the steps stacked along axis 0. The "
            f"labs are batch-first: h is (B, T, H) = {(B, T, H)}; stack the steps along axis 1 "
            "(np.stack(states, axis=1)), or fill np.zeros((B, T, H)) with h[:, t] = ..."
        )
    if np.shape(h) == (H, B, T) or np.shape(y) == (V, B, T):
        raise AssertionError(
            f"h has shape {np.shape(h)} and y_hat {np.shape(y)}: that is the column convention (n, m, T). "
            f"The labs are batch-first: h is (B, T, H) = {(B, T, H)} and y_hat is (B, T, V) = {(B, T, V)}."
        )
    for name, got, size, letter, what in (("h", h, H, "H", "One hidden state"), ("y_hat", y, V, "V", "One prediction")):
        hint = f"{what} per example and time step: np.zeros((B, T, {letter})) to start."
        if np.shape(got) == (B, T - 1, size):
            hint = "One step short: does the loop run over range(T), T = x.shape[1]?"
        assert_shape(name, got, (B, T, size), hint)
    assert_finite("h", h)
    assert_finite("y_hat", y)


def _judge_states(inp, h, h_ok) -> None:
    if close(h, h_ok):
        return
    if close(h[:, :-1], h_ok[:, :-1]) and np.allclose(h[:, -1], 0):
        raise AssertionError(
            "h is right except at the last step, which is all zeros: the last time step is never computed. "
            "Loop over range(T), not range(T - 1)."
        )
    if np.allclose(h[:, 0], 0):
        raise AssertionError(
            "h[:, 0] is all zeros: step 0 is never computed. Loop over range(T), which starts at t = 0 with the "
            "state h0."
        )
    # h_prev never updated: every step starts again from h0.
    stale = np.stack([_rnn_oracle({**inp, "x": inp["x"][:, t : t + 1]}, inp["h0"])[0][:, 0] for t in range(T)], 1)
    if close(h, stale):
        raise AssertionError(
            "h is wrong: every step starts from h0. Pass the new hidden state on: h_prev = h_next inside the loop."
        )
    cell_slips = (
        ("no_bias", _rnn_oracle({**inp, "b_h": np.zeros(H)}, inp["h0"])[0]),
        ("W_hh_transposed", _rnn_oracle({**inp, "W_hh": inp["W_hh"].T}, inp["h0"])[0]),
        ("relu", _rnn_oracle(inp, inp["h0"], "relu")[0]),
    )
    slip = first_slip(h, ((H_ADVICE[key], result) for key, result in cell_slips))
    if slip:
        raise AssertionError(f"h is wrong at every step, as from a wrong cell: does check_cell_forward pass? {slip}")
    if close(h[:, 0], h_ok[:, 0]):
        raise AssertionError(
            f"h {describe_mismatch(h, h_ok, time_axis=1)}: h[:, 0] is right, so the cell is; is the hidden state "
            "carried from step to step, and is x[:, t] (not x[:, 0]) fed at step t?"
        )
    raise AssertionError(
        f"h {describe_mismatch(h, h_ok, time_axis=1)} (compared with nn.RNN with the same weights). "
        "Does check_cell_forward pass? Is h[:, t] the state after reading x[:, t]?"
    )


def _judge_predictions(y, y_ok) -> None:
    if np.allclose(y, 0):
        raise AssertionError(
            "y_hat is all zeros: the predictions are computed in the loop but never stored. "
            "This is the bug of a widely copied version of this code: write y_hat[:, t] = y_hat_t."
        )
    filled = [t for t in range(T) if not np.allclose(y[:, t], 0)]
    if filled == [T - 1]:
        raise AssertionError(
            "only the last step of y_hat is filled: store the prediction of every step "
            "(many-to-many), y_hat[:, t] = y_hat_t inside the loop."
        )
    if close(y, y_ok):
        return
    if filled == list(range(T - 1)) and close(y[:, :-1], y_ok[:, :-1]):
        raise AssertionError(
            "y_hat is right except at the last step, which is all zeros: the last time step's prediction is "
            "never stored. Loop over range(T)."
        )
    if all(close(y[:, t], y_ok[:, -1]) for t in range(T)):
        raise AssertionError("every step of y_hat holds the last prediction: store y_hat[:, t] at each step.")
    raise AssertionError(
        f"y_hat {describe_mismatch(y, y_ok, time_axis=1)} (compared with softmax(Linear(nn.RNN(x)))). "
        "Does check_cell_forward pass? Is y_hat[:, t] computed from h[:, t]?"
    )


def judge_forward(inp, out):
    h, y = out["h"], out["y_hat"]
    _judge_shapes(h, y)
    h_ok, y_ok = _rnn_oracle(inp, inp["h0"])
    _judge_states(inp, h, h_ok)
    _judge_predictions(y, y_ok)
    _judge_unchanged("rnn_forward", out["changed"])
