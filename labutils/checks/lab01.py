"""Self-checks of lab 01 (the RNN forward pass in NumPy).

Each judge recomputes its oracle with PyTorch in float64 (``torch.softmax``, ``nn.RNNCell`` and
``nn.RNN`` with the student's weights copied in) and, when the answer is off, compares it with
the oracles of the usual slips (bias left out, wrong activation, ``W_hh`` transposed, the
predictions never stored...) to say what went wrong.

In a notebook::

    from labutils.checks import lab01
    lab01.check_softmax(softmax)
    lab01.check_cell_forward(rnn_cell_forward)
    lab01.check_forward(rnn_forward)
"""

from __future__ import annotations

import numpy as np

from .core import Check, assert_finite, assert_shape, rel_error

TOL = 1e-9  # float64 against float64: only rounding differs

# Sizes of the random problems: all different, so that a swapped axis shows in the shape.
B, T, D, H, V = 3, 4, 6, 5, 7


def _t(a):
    import torch

    return torch.as_tensor(np.asarray(a, dtype=np.float64))


def _np(t) -> np.ndarray:
    return t.detach().numpy()


def _close(a, b, tol: float = TOL) -> bool:
    return np.shape(a) == np.shape(b) and bool(np.all(np.isfinite(a))) and rel_error(a, b) <= tol


# ------------------------------------------------------------------------------- softmax
def _softmax_inputs(rng):
    # Rows of logits around +-800..1000: exp() overflows float64 (exp(710) is inf) or underflows to 0.
    def big(shape):
        offset = rng.choice([-1.0, 1.0], size=shape[:-1] + (1,)) * rng.uniform(800, 1000, size=shape[:-1] + (1,))
        return offset + rng.normal(size=shape) * 5

    return {"z": big((4, V)), "z3": big((2, 3, V)), "small": rng.normal(size=(2, V))}


def _probe_softmax(objs, inp):
    f = objs["softmax"]
    return {"p_small": f(inp["small"].copy()), "p": f(inp["z"].copy()), "p3": f(inp["z3"].copy())}


def _judge_softmax(inp, out):
    import torch

    for key, z_key in (("p_small", "small"), ("p", "z"), ("p3", "z3")):
        z = inp[z_key]
        p = out[key]
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
        want = _np(torch.softmax(_t(z), dim=-1))
        if _close(p, want):
            continue
        sums = p.sum(axis=-1)
        if z.ndim > 1 and np.allclose(p.sum(axis=0), 1) and not np.allclose(sums, 1):
            raise AssertionError(
                "softmax(z) sums to 1 down axis 0 instead of along the last axis: the probabilities are over "
                "the vocabulary, which is the last axis. Use axis=-1 with keepdims=True."
            )
        if np.isclose(p.sum(), 1) and not np.allclose(sums, 1):
            raise AssertionError(
                "softmax(z) sums to 1 over the whole array: each row (last axis) must sum to 1 on its own. "
                "Use np.sum(..., axis=-1, keepdims=True)."
            )
        if not np.allclose(sums, 1):
            raise AssertionError(f"the rows of softmax(z) sum to {np.round(sums.ravel()[:3], 4)}..., not 1.")
        raise AssertionError(
            f"softmax(z) differs from torch.softmax: relative error {rel_error(p, want):.1e}. "
            "Did you subtract the maximum of each row (keepdims=True) before exp()?"
        )


check_softmax = Check(
    grade_id="lab01-softmax",
    title="stable softmax",
    needs=("softmax",),
    make_inputs=_softmax_inputs,
    probe=_probe_softmax,
    judge=_judge_softmax,
)


# --------------------------------------------------------------------------- parameters
def _params(rng) -> dict:
    """Random float64 parameters shaped like PyTorch's; W_hh deliberately far from symmetric."""
    return {
        "W_xh": rng.normal(size=(H, D)) * 0.5,
        "W_hh": rng.normal(size=(H, H)) * 0.5,
        "b_h": rng.normal(size=H),
        "W_hy": rng.normal(size=(V, H)),
        "b_y": rng.normal(size=V),
    }


_PARAM_NAMES = ("W_xh", "W_hh", "b_h", "W_hy", "b_y")


def _params_from(inp) -> dict:
    return {k: inp[k].copy() for k in _PARAM_NAMES}


def _cell_variants(inp, x, h_prev):
    """``{name: (h_next, y_hat)}``: the right answer (``"ok"``) and the usual slips, by PyTorch.

    Each variant is an ``nn.RNNCell`` with (some of) the weights copied in, then the output layer.
    """
    import torch
    from torch import nn

    def cell(W_xh, W_hh, b_h, nonlinearity="tanh"):
        c = nn.RNNCell(D, H, nonlinearity=nonlinearity).double()
        with torch.no_grad():
            c.weight_ih.copy_(_t(W_xh))
            c.weight_hh.copy_(_t(W_hh))
            c.bias_ih.copy_(_t(b_h))
            c.bias_hh.zero_()
        return c(_t(x), _t(h_prev))

    def out(h, b_y=inp["b_y"]):
        return torch.softmax(nn.functional.linear(h, _t(inp["W_hy"]), _t(b_y)), dim=-1)

    W_xh, W_hh, b_h = inp["W_xh"], inp["W_hh"], inp["b_h"]
    with torch.no_grad():
        h = cell(W_xh, W_hh, b_h)
        pre = nn.functional.linear(_t(x), _t(W_xh), _t(b_h)) + nn.functional.linear(_t(h_prev), _t(W_hh))
        h_variants = {
            "ok": h,
            "no_bias": cell(W_xh, W_hh, np.zeros(H)),
            "relu": cell(W_xh, W_hh, b_h, "relu"),
            "no_activation": pre,
            "sigmoid": torch.sigmoid(pre),
            "W_hh_transposed": cell(W_xh, W_hh.T, b_h),
        }
        ys = {name: out(hv) for name, hv in h_variants.items()}
        ys["no_output_bias"] = out(h, np.zeros(V))
        ys["logits"] = nn.functional.linear(h, _t(inp["W_hy"]), _t(inp["b_y"]))
        ys["from_h_prev"] = out(_t(h_prev))
    return {k: _np(v) for k, v in h_variants.items()}, {k: _np(v) for k, v in ys.items()}


_H_ADVICE = {
    "no_bias": "It matches tanh(W_xh x_t + W_hh h_prev) without b_h: add the bias b_h.",
    "relu": "It matches ReLU: the vanilla RNN cell uses tanh (np.tanh).",
    "no_activation": "It matches the pre-activation z_t: apply np.tanh to it.",
    "sigmoid": "It matches the sigmoid: the vanilla RNN cell uses tanh (np.tanh).",
    "W_hh_transposed": "It matches h_prev @ W_hh (W_hh transposed): with PyTorch-shaped W_hh of shape (H, H), "
    "batch-first rows need h_prev @ W_hh.T.",
}
_Y_ADVICE = {
    "no_output_bias": "It matches softmax(W_hy h_t) without b_y: add the output bias b_y.",
    "logits": "It matches the logits W_hy h_t + b_y: apply your softmax to them.",
    "from_h_prev": "It matches the prediction from h_prev: compute y_hat from the *new* hidden state h_next.",
}


def _diagnose(name: str, got, variants: dict, advice: dict, what: str) -> None:
    """Raise unless ``got`` matches ``variants['ok']``; name the slip it matches, if any."""
    want = variants["ok"]
    expected = want.shape
    shape = np.shape(got)
    if shape != expected:
        hint = ""
        if len(shape) == len(expected) and tuple(reversed(shape)) == expected:
            hint = (
                "This is the column convention (features first): the labs are batch-first, "
                "one row per example, so use x_t @ W.T rather than W @ x_t."
            )
        assert_shape(name, got, expected, hint)
    assert_finite(name, got, "Overflow? Check the scale of the inputs and your softmax.")
    if _close(got, want):
        return
    for slip, text in advice.items():
        if slip in variants and _close(got, variants[slip]):
            raise AssertionError(f"{name} is wrong. {text}")
    raise AssertionError(
        f"{name} differs from PyTorch's {what} with the same weights: relative error {rel_error(got, want):.1e}. "
        "Check each term of the equation against the code."
    )


# ---------------------------------------------------------------------------- cell forward
def _cell_inputs(rng):
    return {"x_t": rng.normal(size=(B, D)), "h_prev": rng.normal(size=(B, H)) * 0.5, **_params(rng)}


def _probe_cell(objs, inp):
    h_next, y_hat = objs["rnn_cell_forward"](inp["x_t"].copy(), inp["h_prev"].copy(), _params_from(inp))
    return {"h_next": h_next, "y_hat": y_hat}


def _judge_cell(inp, out):
    hs, ys = _cell_variants(inp, inp["x_t"], inp["h_prev"])
    _diagnose("h_next", out["h_next"], hs, _H_ADVICE, "nn.RNNCell")
    _diagnose("y_hat", out["y_hat"], ys, _Y_ADVICE, "softmax(Linear(h_next))")


check_cell_forward = Check(
    grade_id="lab01-cell-forward",
    title="RNN cell forward",
    needs=("rnn_cell_forward",),
    make_inputs=_cell_inputs,
    probe=_probe_cell,
    judge=_judge_cell,
)


# ------------------------------------------------------------------------ sequence forward
def _forward_inputs(rng):
    return {"x": rng.normal(size=(B, T, D)), "h0": rng.normal(size=(B, H)) * 0.5, **_params(rng)}


def _probe_forward(objs, inp):
    h, y_hat = objs["rnn_forward"](inp["x"].copy(), inp["h0"].copy(), _params_from(inp))
    return {"h": h, "y_hat": y_hat}


def _rnn_oracle(inp, h0):
    """``nn.RNN(batch_first=True)`` with the weights copied in -> (all h (B, T, H), y_hat (B, T, V))."""
    import torch
    from torch import nn

    rnn = nn.RNN(D, H, batch_first=True).double()
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(_t(inp["W_xh"]))
        rnn.weight_hh_l0.copy_(_t(inp["W_hh"]))
        rnn.bias_ih_l0.copy_(_t(inp["b_h"]))
        rnn.bias_hh_l0.zero_()
        h, _ = rnn(_t(inp["x"]), _t(h0)[None])
        y = torch.softmax(nn.functional.linear(h, _t(inp["W_hy"]), _t(inp["b_y"])), dim=-1)
    return _np(h), _np(y)


def _judge_forward(inp, out):
    h_ok, y_ok = _rnn_oracle(inp, inp["h0"])
    h, y = out["h"], out["y_hat"]
    if np.shape(h) == (B, T + 1, H):
        raise AssertionError(f"h has shape {np.shape(h)}, expected {(B, T, H)}: keep h_1 ... h_T, not h0.")
    if np.shape(h) == (H, B, T) or np.shape(y) == (V, B, T):
        raise AssertionError(
            f"h has shape {np.shape(h)} and y_hat {np.shape(y)}: that is the column convention (n, m, T). "
            f"The labs are batch-first: h is (B, T, H) = {(B, T, H)} and y_hat is (B, T, V) = {(B, T, V)}."
        )
    assert_shape("h", h, (B, T, H), "One hidden state per example and time step: np.zeros((B, T, H)) to start.")
    assert_shape("y_hat", y, (B, T, V), "One prediction per example and time step: np.zeros((B, T, V)) to start.")
    assert_finite("h", h)
    assert_finite("y_hat", y)
    if not _close(h, h_ok):
        # h_prev never updated: every step starts again from h0.
        stale = np.stack([_rnn_oracle({**inp, "x": inp["x"][:, t : t + 1]}, inp["h0"])[0][:, 0] for t in range(T)], 1)
        if _close(h, stale):
            raise AssertionError(
                "h is wrong: every step starts from h0. Pass the new hidden state on: h_prev = h_next inside the loop."
            )
        if _close(h[:, 0], h_ok[:, 0]):
            raise AssertionError(
                "h[:, 0] is right but later steps are not: is the hidden state carried from "
                "step to step, and is x[:, t] (not x[:, 0]) fed at step t?"
            )
        raise AssertionError(
            f"h differs from nn.RNN with the same weights: relative error {rel_error(h, h_ok):.1e}. "
            "Does check_cell_forward pass? Is h[:, t] the state after reading x[:, t]?"
        )
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
    if not _close(y, y_ok):
        if all(_close(y[:, t], y_ok[:, -1]) for t in range(T)):
            raise AssertionError("every step of y_hat holds the last prediction: store y_hat[:, t] at each step.")
        raise AssertionError(
            f"y_hat differs from softmax(Linear(nn.RNN(x))): relative error {rel_error(y, y_ok):.1e}. "
            "Does check_cell_forward pass? Is y_hat[:, t] computed from h[:, t]?"
        )


check_forward = Check(
    grade_id="lab01-forward",
    title="RNN forward over a sequence",
    needs=("rnn_forward",),
    make_inputs=_forward_inputs,
    probe=_probe_forward,
    judge=_judge_forward,
)
