"""Judges of lab 04's checks: ``nn.LSTMCell`` and ``nn.GRUCell`` with the student's weights copied in.

Most slips are recognised by running the PyTorch cell itself on *doctored* weights: blocks
permuted (gates swapped), a gate's bias pushed to +-1e4 so that the gate is exactly 1 or 0 (a
missing reset gate, a missing forget gate), a bias zeroed. The slips that no doctored weight can
produce -- the candidate's activation, where the reset gate multiplies -- are built from the
affine maps and the gate blocks (``_pre_activations``).
"""

from __future__ import annotations

import itertools

import numpy as np

from ..core import assert_shape, grads_of
from ..lab04 import WEIGHTS, B, D, H
from .oracle import as_numpy, close, describe_mismatch, first_slip, judge_grads, tensor64

LSTM_GATES = ("i", "f", "g", "o")
GRU_GATES = ("r", "z", "n")
BIG = 1e4  # sigmoid(+-1e4) is exactly 1 or 0 in float64


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
        cell.weight_ih.copy_(tensor64(weights["W_ih"]))
        cell.weight_hh.copy_(tensor64(weights["W_hh"]))
        cell.bias_ih.copy_(tensor64(weights["b_ih"]))
        cell.bias_hh.copy_(tensor64(weights["b_hh"]))
    return cell


def _run(kind: str, inp: dict, weights: dict | None = None):
    """The PyTorch cell on ``inp`` (with ``weights`` instead of the inputs' own if given), as arrays."""
    import torch

    cell = _torch_cell(kind, weights or inp)
    with torch.no_grad():
        if kind == "lstm":
            h, c = cell(tensor64(inp["x_t"]), (tensor64(inp["h_prev"]), tensor64(inp["c_prev"])))
            return as_numpy(h), as_numpy(c)
        return as_numpy(cell(tensor64(inp["x_t"]), tensor64(inp["h_prev"]))), None


def _oracle_grads(kind: str, inp: dict) -> dict:
    """Gradients of the loss through the PyTorch cell, named like the probe's."""
    cell = _torch_cell(kind, inp)
    x, h_prev = tensor64(inp["x_t"], grad=True), tensor64(inp["h_prev"], grad=True)
    tensors = {"x_t": x, "h_prev": h_prev}
    if kind == "lstm":
        c_prev = tensor64(inp["c_prev"], grad=True)
        h, c = cell(x, (h_prev, c_prev))
        loss = (h * tensor64(inp["G_h"])).sum() + (c * tensor64(inp["G_c"])).sum()
        tensors["c_prev"] = c_prev
    else:
        h = cell(x, h_prev)
        loss = (h * tensor64(inp["G_h"])).sum()
    tensors.update({"W_ih": cell.weight_ih, "W_hh": cell.weight_hh, "b_ih": cell.bias_ih, "b_hh": cell.bias_hh})
    return grads_of(loss, tensors)


def _pre_activations(inp: dict, n_gates: int):
    """The gate blocks of the two affine maps, x_t @ W_ih.T + b_ih and h_prev @ W_hh.T + b_hh (torch)."""
    from torch.nn.functional import linear

    x_part = linear(tensor64(inp["x_t"]), tensor64(inp["W_ih"]), tensor64(inp["b_ih"]))
    h_part = linear(tensor64(inp["h_prev"]), tensor64(inp["W_hh"]), tensor64(inp["b_hh"]))
    return x_part.chunk(n_gates, dim=1), h_part.chunk(n_gates, dim=1)


def _shape_hint(name: str, got) -> str:
    if tuple(np.shape(got)) == (H, B):
        return f"{name} is (H, B): the labs are batch-first, so compute x_t @ W_ih.T (one row per example)."
    if np.shape(got) and np.shape(got)[-1] in (3 * H, 4 * H):
        return f"{name} still holds every gate block: split the pre-activations into H-wide chunks along dim 1."
    if np.shape(got) and np.shape(got)[0] == 1:
        return f"{name} has one row: were the gates split along dim 0 (the batch) instead of dim 1?"
    return ""


def _order_name(perm, gates) -> str:
    """How a student who matches PyTorch after permuting blocks by ``perm`` reads the blocks."""
    reading = [""] * len(gates)
    for j, k in enumerate(perm):
        reading[k] = gates[j]
    return ", ".join(reading)


def _swapped_gates(kind: str, inp: dict, matches) -> str | None:
    """Advice if the result equals the cell run with its gate blocks permuted."""
    gates = LSTM_GATES if kind == "lstm" else GRU_GATES
    for perm in itertools.permutations(range(len(gates))):
        if perm != tuple(range(len(gates))) and matches(*_run(kind, inp, {k: _blocks(inp[k], perm) for k in WEIGHTS})):
            stacked = ", ".join(gates)
            return (
                f"the gates are swapped: you read the {len(gates)} blocks of the weights as "
                f"({_order_name(perm, gates)}); PyTorch stacks them as ({stacked})."
            )
    return None


def _bias_not_added(kind: str, inp: dict, matches) -> str | None:
    """Advice if the result equals the cell run with one of its two biases zeroed."""
    where = "every gate's pre-activation" if kind == "lstm" else "the gates (and b_hn sits inside r_t * (...))"
    for key in ("b_hh", "b_ih"):
        doctored = _with_gate(inp, 0, None)
        doctored[key] = np.zeros_like(doctored[key])
        if matches(*_run(kind, inp, doctored)):
            return f"{key} is not added: both biases enter {where}."
    return None


# ------------------------------------------------------------------------------------ LSTM
def _lstm_from(inp, candidate=None, *, gates=None, memory="c_prev", h_reads="c_t"):
    """(h_t, c_t) of an LSTM with a slip: ``candidate`` (an activation) instead of tanh for g_t,
    ``gates`` ({"i": activation, ...}) instead of the sigmoid for some gates, ``memory`` the state the
    forget gate scales ("c_prev" or "h_prev"), ``h_reads`` the cell state h_t reads ("c_t" or "c_prev")."""
    import torch

    acts = {"i": torch.sigmoid, "f": torch.sigmoid, "o": torch.sigmoid} | (gates or {})
    (xi, xf, xg, xo), (hi, hf, hg, ho) = _pre_activations(inp, 4)
    i, f, o = acts["i"](xi + hi), acts["f"](xf + hf), acts["o"](xo + ho)
    c = f * tensor64(inp[memory]) + i * (candidate or torch.tanh)(xg + hg)
    return as_numpy(o * torch.tanh(c if h_reads == "c_t" else tensor64(inp["c_prev"]))), as_numpy(c)


def _lstm_slips(inp) -> list[tuple[str, tuple]]:
    """(advice, (h_t, c_t)) of the LSTMs students write by mistake, beyond swapped blocks and biases."""
    import torch

    forget_plus_one = {k: np.array(inp[k], copy=True) for k in WEIGHTS}
    forget_plus_one["b_ih"][H : 2 * H] += 1.0
    return [
        (
            "the candidate g_t goes through a sigmoid: it is the value to write, in (-1, 1), so it uses tanh; "
            "the sigmoid is for the gates i, f and o.",
            _lstm_from(inp, torch.sigmoid),
        ),
        ("the candidate g_t has no activation: g_t = tanh(its pre-activation).", _lstm_from(inp, lambda a: a)),
        *(
            (
                f"the gate {gate}_t goes through a tanh: the gates i, f and o use the sigmoid, so that they lie "
                "in (0, 1); tanh is for the candidate g_t.",
                _lstm_from(inp, gates={gate: torch.tanh}),
            )
            for gate in ("i", "f", "o")
        ),
        (
            "c_t scales h_prev by the forget gate: the memory it keeps is the previous *cell* state, "
            "c_t = f_t * c_prev + i_t * g_t.",
            _lstm_from(inp, memory="h_prev"),
        ),
        (
            "h_t reads the previous cell state: h_t = o_t * tanh(c_t), with the c_t just computed.",
            _lstm_from(inp, h_reads="c_prev"),
        ),
        (
            "the forget gate's pre-activation has 1 added (a forget-gate bias, as some libraries add): "
            "PyTorch's cell adds only b_ih and b_hh.",
            _run("lstm", inp, forget_plus_one),
        ),
    ]


def _lstm_slip(inp, h, c, h_ok, c_ok) -> str | None:

    def matches(h_s, c_s):
        return close(h, h_s) and close(c, c_s)

    if close(h, c_ok) and close(c, h_ok):
        return "h_t and c_t are swapped: return (h_t, c_t), in that order."
    advice = _swapped_gates("lstm", inp, matches)
    if advice:
        return advice
    for advice, (h_s, c_s) in _lstm_slips(inp):
        if matches(h_s, c_s):
            return advice
    if close(c, c_ok) and close(h, h_ok * c_ok / np.tanh(c_ok)):
        return "c_t is right but h_t is not: h_t = o_t * tanh(c_t) -- the tanh is missing."
    if close(c, c_ok) and close(h, np.tanh(c_ok)):
        return "c_t is right but h_t is not: h_t = o_t * tanh(c_t) -- the output gate is missing."
    for value, hint in (
        (-BIG, "c_t ignores c_prev: the forget gate is missing (c_t = f_t * c_prev + i_t * g_t)."),
        (BIG, "c_t keeps all of c_prev: the forget gate f_t is not applied (c_t = f_t * c_prev + i_t * g_t)."),
    ):
        if close(c, _run("lstm", inp, _with_gate(inp, 1, value))[1]):
            return hint
    return _bias_not_added("lstm", inp, matches)


def judge_lstm(inp, out):
    h, c = out["h_t"], out["c_t"]
    assert_shape("h_t", h, (B, H), _shape_hint("h_t", h))
    assert_shape("c_t", c, (B, H), _shape_hint("c_t", c))
    h_ok, c_ok = _run("lstm", inp)
    if not (close(h, h_ok) and close(c, c_ok)):
        advice = _lstm_slip(inp, h, c, h_ok, c_ok)
        if advice:
            raise AssertionError(advice)
        which, got, want = ("h_t", h, h_ok) if not close(h, h_ok) else ("c_t", c, c_ok)
        raise AssertionError(
            f"{which} {describe_mismatch(got, want)} (compared with nn.LSTMCell). Gates: [i, f, g, o] = the four "
            "H-wide chunks (along dim 1) of x_t @ W_ih.T + b_ih + h_prev @ W_hh.T + b_hh; sigmoid for i, f, o and "
            "tanh for g; c_t = f * c_prev + i * g; h_t = o * tanh(c_t)."
        )
    judge_grads(out, _oracle_grads("lstm", inp), "lstm_cell")


# ------------------------------------------------------------------------------------- GRU
def _reset_slips(inp) -> list[tuple[str, object]]:
    """h_t of GRUs whose reset gate multiplies somewhere else, with the advice for each."""
    import torch
    from torch.nn.functional import linear

    (xr, xz, xn), (hr, hz, hn) = _pre_activations(inp, 3)
    r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
    h_prev = tensor64(inp["h_prev"])
    W_hn, b_hn = tensor64(inp["W_hh"][2 * H :]), tensor64(inp["b_hh"][2 * H :])

    def h_t(n):
        return (1 - z) * n + z * h_prev

    right = "PyTorch's candidate is n_t = tanh(x_t @ W_in.T + b_in + r_t * (h_prev @ W_hn.T + b_hn))"
    return [
        (
            f"r_t multiplies h_prev before the product, (r_t * h_prev) @ W_hn.T: that is the original paper's GRU. "
            f"{right}: r_t multiplies after the product.",
            h_t(torch.tanh(xn + linear(r * h_prev, W_hn, b_hn))),
        ),
        (
            f"r_t multiplies h_prev @ W_hn.T but not b_hn. {right}: b_hn is inside.",
            h_t(torch.tanh(xn + r * (hn - b_hn) + b_hn)),
        ),
        (
            f"r_t scales the input part of the candidate instead of the hidden part. {right}.",
            h_t(torch.tanh(r * xn + hn)),
        ),
        (
            f"r_t scales the whole pre-activation of the candidate. {right}: the input part is not reset.",
            h_t(torch.tanh(r * (xn + hn))),
        ),
        (f"r_t multiplies the candidate after the tanh. {right}.", h_t(r * torch.tanh(xn + hn))),
    ]


def _gru_slip(inp, h, h_ok) -> str | None:
    def matches(h_s, _=None):
        return close(h, h_s)

    advice = _swapped_gates("gru", inp, matches)
    if advice:
        return advice
    n_t, _ = _run("gru", inp, _with_gate(inp, 1, -BIG))  # z = 0: h_t is the candidate n_t
    if close(h, n_t):
        return "h_t is the candidate n_t: blend it with the previous state, h_t = (1 - z_t) * n_t + z_t * h_prev."
    if close(h, n_t + inp["h_prev"] - h_ok):
        return (
            "z_t and 1 - z_t are swapped: PyTorch's GRU keeps the *old* state where z_t is 1, "
            "h_t = (1 - z_t) * n_t + z_t * h_prev."
        )
    if close(h, _run("gru", inp, _with_gate(inp, 0, BIG))[0]):  # r = 1
        return (
            "the reset gate is missing: n_t = tanh(W_in x_t + b_in + r_t * (W_hn h_prev + b_hn)) -- "
            "r_t must scale the hidden state's contribution."
        )
    advice = first_slip(h, _reset_slips(inp) + _gru_activation_slips(inp))
    return advice or _bias_not_added("gru", inp, matches)


def _gru_activation_slips(inp) -> list[tuple[str, object]]:
    """h_t of GRUs with an activation or a gate in the wrong place, with the advice for each."""
    import torch

    (xr, xz, xn), (hr, hz, hn) = _pre_activations(inp, 3)
    r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
    h_prev = tensor64(inp["h_prev"])
    n = torch.tanh(xn + r * hn)
    return [
        (
            "the candidate n_t goes through a sigmoid: it is the new content, in (-1, 1), so it uses tanh.",
            (1 - z) * torch.sigmoid(xn + r * hn) + z * h_prev,
        ),
        (
            "the update gate z_t goes through a tanh: the gates r and z use the sigmoid, so that they lie in (0, 1).",
            (1 - torch.tanh(xz + hz)) * n + torch.tanh(xz + hz) * h_prev,
        ),
        (
            "the reset gate r_t goes through a tanh: the gates r and z use the sigmoid, so that they lie in (0, 1).",
            (1 - z) * torch.tanh(xn + torch.tanh(xr + hr) * hn) + z * h_prev,
        ),
        (
            "the candidate is scaled by z_t where the reset gate belongs: n_t = tanh(x_n + r_t * (h_prev @ W_hn.T "
            "+ b_hn)), with r_t, the first block.",
            (1 - z) * torch.tanh(xn + z * hn) + z * h_prev,
        ),
    ]


def judge_gru(inp, out):
    h = out["h_t"]
    assert_shape("h_t", h, (B, H), _shape_hint("h_t", h))
    h_ok, _ = _run("gru", inp)
    if not close(h, h_ok):
        advice = _gru_slip(inp, h, h_ok)
        if advice:
            raise AssertionError(advice)
        raise AssertionError(
            f"h_t {describe_mismatch(h, h_ok)} (compared with nn.GRUCell). PyTorch's GRU: [r, z] = sigmoid of the "
            "first two H-wide chunks (along dim 1) of x_t @ W_ih.T + b_ih + h_prev @ W_hh.T + b_hh; "
            "n = tanh(x_t @ W_in.T + b_in + r * (h_prev @ W_hn.T + b_hn)) -- r multiplies the whole hidden term, "
            "b_hn included, after the product; h_t = (1 - z) * n + z * h_prev."
        )
    judge_grads(out, _oracle_grads("gru", inp), "gru_cell")
