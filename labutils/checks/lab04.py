"""Self-checks of lab 04 (GRU and LSTM cells written with tensor operations).

* ``check_lstm_cell``: ``lstm_cell(x_t, h_prev, c_prev, W_ih, W_hh, b_ih, b_hh) -> (h_t, c_t)``
  against ``nn.LSTMCell`` with the same weights (gate blocks in PyTorch's order i, f, g, o).
* ``check_gru_cell``: ``gru_cell(x_t, h_prev, W_ih, W_hh, b_ih, b_hh) -> h_t`` against
  ``nn.GRUCell`` (gate blocks r, z, n).

Both compare the outputs and the gradients of a random linear loss with respect to every input
and weight.  The usual slips are recognised by running the PyTorch cell itself on *doctored*
weights: blocks permuted (gates swapped), a gate's bias pushed to +-1e4 so that the gate is
exactly 1 or 0 (a missing reset gate, a missing forget gate), a bias zeroed.
"""

from __future__ import annotations

import itertools

import numpy as np

from .core import Check, assert_shape, rel_error
from .lab03 import _close, _grads_of, _judge_grads, _np, _t

B, D, H = 3, 4, 5
LSTM_GATES = ("i", "f", "g", "o")
GRU_GATES = ("r", "z", "n")
BIG = 1e4  # sigmoid(+-1e4) is exactly 1 or 0 in float64
WEIGHTS = ("W_ih", "W_hh", "b_ih", "b_hh")


def _cell_inputs(rng, n_gates: int, with_c: bool):
    inp = {
        "x_t": rng.normal(size=(B, D)),
        "h_prev": rng.normal(size=(B, H)) * 0.8,
        "W_ih": rng.normal(size=(n_gates * H, D)) * 0.6,
        "W_hh": rng.normal(size=(n_gates * H, H)) * 0.6,
        "b_ih": rng.normal(size=n_gates * H) * 0.5,
        "b_hh": rng.normal(size=n_gates * H) * 0.5,
        "G_h": rng.normal(size=(B, H)),  # loss = sum(h_t * G_h) (+ sum(c_t * G_c))
    }
    if with_c:
        inp["c_prev"] = rng.normal(size=(B, H))
        inp["G_c"] = rng.normal(size=(B, H))
    return inp


def _blocks(w: np.ndarray, order) -> np.ndarray:
    """Reorder the gate blocks (of H rows each) of a stacked weight or bias."""
    return np.concatenate([w[k * H : (k + 1) * H] for k in order], axis=0)


def _with_gate(inp: dict, gate: int, value: float | None) -> dict:
    """Weights where gate ``gate``'s pre-activation is 0 everywhere plus ``value`` (or untouched)."""
    doctored = {k: np.array(inp[k], copy=True) for k in WEIGHTS}
    if value is not None:
        rows = slice(gate * H, (gate + 1) * H)
        doctored["W_ih"][rows] = 0.0
        doctored["W_hh"][rows] = 0.0
        doctored["b_ih"][rows] = value
        doctored["b_hh"][rows] = 0.0
    return doctored


def _torch_cell(kind: str, weights: dict):
    import torch
    from torch import nn

    cell = (nn.LSTMCell if kind == "lstm" else nn.GRUCell)(D, H).double()
    with torch.no_grad():
        cell.weight_ih.copy_(_t(weights["W_ih"]))
        cell.weight_hh.copy_(_t(weights["W_hh"]))
        cell.bias_ih.copy_(_t(weights["b_ih"]))
        cell.bias_hh.copy_(_t(weights["b_hh"]))
    return cell


def _run(kind: str, inp: dict, weights: dict | None = None):
    """The PyTorch cell on ``inp`` (with ``weights`` instead of the inputs' own if given), as arrays."""
    import torch

    cell = _torch_cell(kind, weights or inp)
    with torch.no_grad():
        if kind == "lstm":
            h, c = cell(_t(inp["x_t"]), (_t(inp["h_prev"]), _t(inp["c_prev"])))
            return _np(h), _np(c)
        return _np(cell(_t(inp["x_t"]), _t(inp["h_prev"]))), None


def _oracle_grads(kind: str, inp: dict) -> dict:
    """Gradients of the loss through the PyTorch cell, named like the probe's."""
    cell = _torch_cell(kind, inp)
    x, h_prev = _t(inp["x_t"], grad=True), _t(inp["h_prev"], grad=True)
    tensors = {"x_t": x, "h_prev": h_prev}
    if kind == "lstm":
        c_prev = _t(inp["c_prev"], grad=True)
        h, c = cell(x, (h_prev, c_prev))
        loss = (h * _t(inp["G_h"])).sum() + (c * _t(inp["G_c"])).sum()
        tensors["c_prev"] = c_prev
    else:
        h = cell(x, h_prev)
        loss = (h * _t(inp["G_h"])).sum()
    tensors.update({"W_ih": cell.weight_ih, "W_hh": cell.weight_hh, "b_ih": cell.bias_ih, "b_hh": cell.bias_hh})
    return _grads_of(loss, tensors)


def _probe_cell(kind: str, fname: str):
    def probe(objs, inp):
        import torch

        names = ["x_t", "h_prev"] + (["c_prev"] if kind == "lstm" else []) + list(WEIGHTS)
        tensors = {n: _t(inp[n], grad=True) for n in names}
        result = objs[fname](*tensors.values())
        if kind == "lstm":
            if not isinstance(result, (tuple, list)) or len(result) != 2:
                raise AssertionError("lstm_cell must return two tensors: (h_t, c_t).")
            h, c = (torch.as_tensor(r) for r in result)
            out = {"h_t": _np(h), "c_t": _np(c)}
            loss = torch.zeros((), dtype=torch.float64)
            if tuple(h.shape) == (B, H):
                loss = loss + (h * _t(inp["G_h"])).sum()
            if tuple(c.shape) == (B, H):
                loss = loss + (c * _t(inp["G_c"])).sum()
        else:
            if isinstance(result, (tuple, list)):
                raise AssertionError("gru_cell must return one tensor, h_t (a GRU has no separate cell state).")
            h = torch.as_tensor(result)
            out = {"h_t": _np(h)}
            loss = (h * _t(inp["G_h"])).sum() if tuple(h.shape) == (B, H) else torch.zeros((), dtype=torch.float64)
        out.update(_grads_of(loss, tensors))
        return out

    return probe


def _shape_hint(name: str, got) -> str:
    if tuple(np.shape(got)) == (H, B):
        return f"{name} is (H, B): the labs are batch-first, so compute x_t @ W_ih.T (one row per example)."
    if np.shape(got) and np.shape(got)[-1] in (3 * H, 4 * H):
        return f"{name} still holds every gate block: split the pre-activations into H-wide chunks."
    return ""


def _order_name(perm, gates) -> str:
    """How a student who matches PyTorch after permuting blocks by ``perm`` reads the blocks."""
    reading = [""] * len(gates)
    for j, k in enumerate(perm):
        reading[k] = gates[j]
    return ", ".join(reading)


# ------------------------------------------------------------------------------------ LSTM
def _judge_lstm(inp, out):
    h, c = out["h_t"], out["c_t"]
    assert_shape("h_t", h, (B, H), _shape_hint("h_t", h))
    assert_shape("c_t", c, (B, H), _shape_hint("c_t", c))
    h_ok, c_ok = _run("lstm", inp)
    if not (_close(h, h_ok) and _close(c, c_ok)):
        if _close(h, c_ok) and _close(c, h_ok):
            raise AssertionError("h_t and c_t are swapped: return (h_t, c_t), in that order.")
        for perm in itertools.permutations(range(4)):
            if perm == (0, 1, 2, 3):
                continue
            doctored = {k: _blocks(inp[k], perm) for k in WEIGHTS}
            h_s, c_s = _run("lstm", inp, doctored)
            if _close(h, h_s) and _close(c, c_s):
                raise AssertionError(
                    f"the gates are swapped: you read the four blocks of W_ih, W_hh and the biases as "
                    f"({_order_name(perm, LSTM_GATES)}); PyTorch stacks them as (i, f, g, o)."
                )
        if _close(c, c_ok) and _close(h, h_ok * c_ok / np.tanh(c_ok)):
            raise AssertionError("c_t is right but h_t is not: h_t = o_t * tanh(c_t) -- the tanh is missing.")
        if _close(c, c_ok) and _close(h, np.tanh(c_ok)):
            raise AssertionError("c_t is right but h_t is not: h_t = o_t * tanh(c_t) -- the output gate is missing.")
        for value, hint in (
            (-BIG, "c_t ignores c_prev: the forget gate is missing (c_t = f_t * c_prev + i_t * g_t)."),
            (BIG, "c_t keeps all of c_prev: the forget gate f_t is not applied (c_t = f_t * c_prev + i_t * g_t)."),
        ):
            h_s, c_s = _run("lstm", inp, _with_gate(inp, 1, value))
            if _close(c, c_s):
                raise AssertionError(hint)
        for key in ("b_hh", "b_ih"):
            doctored = _with_gate(inp, 0, None)
            doctored[key] = np.zeros_like(doctored[key])
            h_s, c_s = _run("lstm", inp, doctored)
            if _close(h, h_s) and _close(c, c_s):
                raise AssertionError(f"{key} is not added: both biases enter every gate's pre-activation.")
        which = "h_t" if not _close(h, h_ok) else "c_t"
        raise AssertionError(
            f"{which} differs from nn.LSTMCell (relative errors h: {rel_error(h, h_ok):.1e}, "
            f"c: {rel_error(c, c_ok):.1e}). "
            "Gates: [i, f, g, o] = chunks of x_t @ W_ih.T + b_ih + h_prev @ W_hh.T + b_hh; sigmoid for i, f, o and "
            "tanh for g; c_t = f * c_prev + i * g; h_t = o * tanh(c_t)."
        )
    _judge_grads(out, _oracle_grads("lstm", inp), True, "lstm_cell")


check_lstm_cell = Check(
    grade_id="lab04-lstm-cell",
    title="LSTM cell",
    needs=("lstm_cell",),
    make_inputs=lambda rng: _cell_inputs(rng, 4, True),
    probe=_probe_cell("lstm", "lstm_cell"),
    judge=_judge_lstm,
    success="✔ lstm_cell equals nn.LSTMCell: h_t, c_t and the gradients with respect to every input match.",
)


# ------------------------------------------------------------------------------------- GRU
def _judge_gru(inp, out):
    h = out["h_t"]
    assert_shape("h_t", h, (B, H), _shape_hint("h_t", h))
    h_ok, _ = _run("gru", inp)
    if not _close(h, h_ok):
        for perm in itertools.permutations(range(3)):
            if perm == (0, 1, 2):
                continue
            h_s, _ = _run("gru", inp, {k: _blocks(inp[k], perm) for k in WEIGHTS})
            if _close(h, h_s):
                raise AssertionError(
                    f"the gates are swapped: you read the three blocks of the weights as "
                    f"({_order_name(perm, GRU_GATES)}); PyTorch stacks them as (r, z, n)."
                )
        n_t, _ = _run("gru", inp, _with_gate(inp, 1, -BIG))  # z = 0: h_t is the candidate n_t
        if _close(h, n_t):
            raise AssertionError(
                "h_t is the candidate n_t: blend it with the previous state, h_t = (1 - z_t) * n_t + z_t * h_prev."
            )
        if _close(h, n_t + inp["h_prev"] - h_ok):
            raise AssertionError(
                "z_t and 1 - z_t are swapped: PyTorch's GRU keeps the *old* state where z_t is 1, "
                "h_t = (1 - z_t) * n_t + z_t * h_prev."
            )
        h_s, _ = _run("gru", inp, _with_gate(inp, 0, BIG))  # r = 1
        if _close(h, h_s):
            raise AssertionError(
                "the reset gate is missing: n_t = tanh(W_in x_t + b_in + r_t * (W_hn h_prev + b_hn)) -- "
                "r_t must scale the hidden state's contribution."
            )
        for key in ("b_hh", "b_ih"):
            doctored = _with_gate(inp, 0, None)
            doctored[key] = np.zeros_like(doctored[key])
            h_s, _ = _run("gru", inp, doctored)
            if _close(h, h_s):
                raise AssertionError(
                    f"{key} is not added: both biases enter the gates (and b_hn sits inside r_t * (...))."
                )
        raise AssertionError(
            f"h_t differs from nn.GRUCell (relative error {rel_error(h, h_ok):.1e}). PyTorch's GRU: "
            "[r, z] = sigmoid of the first two chunks of x_t @ W_ih.T + b_ih + h_prev @ W_hh.T + b_hh; "
            "n = tanh(x_t @ W_in.T + b_in + r * (h_prev @ W_hn.T + b_hn)) -- r multiplies the whole hidden term, "
            "b_hn included, after the product; h_t = (1 - z) * n + z * h_prev."
        )
    _judge_grads(out, _oracle_grads("gru", inp), True, "gru_cell")


check_gru_cell = Check(
    grade_id="lab04-gru-cell",
    title="GRU cell",
    needs=("gru_cell",),
    make_inputs=lambda rng: _cell_inputs(rng, 3, False),
    probe=_probe_cell("gru", "gru_cell"),
    judge=_judge_gru,
    success="✔ gru_cell equals nn.GRUCell: h_t and the gradients with respect to every input match.",
)
