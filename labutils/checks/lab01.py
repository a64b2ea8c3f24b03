"""Self-checks of lab 01 (the RNN forward pass in NumPy): inputs, probes, and hints for errors.

The judges (``labutils.checks.judges.lab01``) recompute their oracles with PyTorch in float64
(``torch.softmax``, ``nn.RNNCell`` and ``nn.RNN`` with the student's weights copied in) and, when
an answer is off, compare it with the oracles of the usual slips (bias left out, wrong
activation, ``W_hh`` transposed, the predictions never stored, the last step never computed...).

In a notebook::

    from labutils.checks import lab01
    lab01.check_softmax(softmax)
    lab01.check_cell_forward(rnn_cell_forward)
    lab01.check_forward(rnn_forward)
"""

from __future__ import annotations

import numpy as np

from .core import Check, unpack

# Sizes of the random problems: all different, so that a swapped axis shows in the shape.
B, T, D, H, V = 3, 4, 6, 5, 7
PARAM_NAMES = ("W_xh", "W_hh", "b_h", "W_hy", "b_y")
JUDGES = "labutils.checks.judges.lab01"


# ------------------------------------------------------------------------------- softmax
def _softmax_inputs(rng):
    # Rows of logits around +-800..1000: exp() overflows float64 (exp(710) is inf) or underflows to 0.
    def big(shape):
        offset = rng.choice([-1.0, 1.0], size=shape[:-1] + (1,)) * rng.uniform(800, 1000, size=shape[:-1] + (1,))
        return offset + rng.normal(size=shape) * 5

    # And a row spread from -900 to 900: shifted by its minimum instead of its maximum, exp() overflows.
    wide = np.linspace(-900, 900, V)[None] + rng.normal(size=(1, V))
    return {"z": big((4, V)), "z3": big((2, 3, V)), "small": rng.normal(size=(2, V)), "wide": wide}


def _probe_softmax(objs, inp):
    f = objs["softmax"]
    out = {"p_small": f(inp["small"].copy()), "p": f(inp["z"].copy()), "p3": f(inp["z3"].copy())}
    return out | {"p_wide": f(inp["wide"].copy())}


check_softmax = Check(
    grade_id="lab01-softmax",
    title="stable softmax",
    needs=("softmax",),
    make_inputs=_softmax_inputs,
    probe=_probe_softmax,
    judge=f"{JUDGES}:judge_softmax",
    hints={
        "broadcast": "For z of shape (B, V), z.max(axis=-1) has shape (B,), which does not line up with (B, V). "
        "Keep the reduced axis: z.max(axis=-1, keepdims=True) is (B, 1) and broadcasts over each row; "
        "the same for the sum.",
    },
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


def _params_from(inp) -> dict:
    return {k: inp[k].copy() for k in PARAM_NAMES}


def _changed(given: dict, inp) -> np.ndarray:
    """The names of the arrays a student's function was given (``given``: the copies it got, ``params``
    a dict of them) that it changed in place, compared with the inputs they were copied from."""
    flat = {k: v for k, v in given.items() if k != "params"} | given.get("params", {})
    return np.asarray([k for k, v in flat.items() if k in inp and not np.array_equal(v, inp[k])], dtype=str)


_PRODUCTS = (
    "The weights are shaped like PyTorch's, (out, in): W_xh is (H, D), W_hh is (H, H), W_hy is (V, H). With one "
    "example per row, x_t (B, D) @ W_xh.T (D, H) gives (B, H); likewise h_prev @ W_hh.T is (B, H) and "
    "h_next @ W_hy.T is (B, V)."
)


# ---------------------------------------------------------------------------- cell forward
def _cell_inputs(rng):
    return {"x_t": rng.normal(size=(B, D)), "h_prev": rng.normal(size=(B, H)) * 0.5, **_params(rng)}


def _probe_cell(objs, inp):
    given = {"x_t": inp["x_t"].copy(), "h_prev": inp["h_prev"].copy(), "params": _params_from(inp)}
    result = objs["rnn_cell_forward"](given["x_t"], given["h_prev"], given["params"])
    h_next, y_hat = unpack(result, 2, "rnn_cell_forward must return two arrays, (h_next, y_hat_t)")
    return {"h_next": h_next, "y_hat": y_hat, "changed": _changed(given, inp)}


check_cell_forward = Check(
    grade_id="lab01-cell-forward",
    title="RNN cell forward",
    needs=("rnn_cell_forward",),
    make_inputs=_cell_inputs,
    probe=_probe_cell,
    judge=f"{JUDGES}:judge_cell",
    hints={
        "matmul": _PRODUCTS,
        "broadcast": "Every term of z_t must be (B, H): x_t @ W_xh.T, h_prev @ W_hh.T, and b_h (H,), which "
        "broadcasts over the rows. A term of shape (H, B) comes from the column convention W @ x_t.",
        "key": "params holds W_xh, W_hh, b_h, W_hy and b_y.",
    },
)


# ------------------------------------------------------------------------ sequence forward
def _forward_inputs(rng):
    return {"x": rng.normal(size=(B, T, D)), "h0": rng.normal(size=(B, H)) * 0.5, **_params(rng)}


def _probe_forward(objs, inp):
    given = {"x": inp["x"].copy(), "h0": inp["h0"].copy(), "params": _params_from(inp)}
    result = objs["rnn_forward"](given["x"], given["h0"], given["params"])
    h, y_hat = unpack(result, 2, "rnn_forward must return two arrays, (h, y_hat)")
    return {"h": h, "y_hat": y_hat, "changed": _changed(given, inp)}


check_forward = Check(
    grade_id="lab01-forward",
    title="RNN forward over a sequence",
    needs=("rnn_forward",),
    make_inputs=_forward_inputs,
    probe=_probe_forward,
    judge=f"{JUDGES}:judge_forward",
    hints={
        "index": "x has T = x.shape[1] steps, x[:, 0] ... x[:, T - 1]: loop over range(T) and store h[:, t] and "
        "y_hat[:, t] at the same t as you read x[:, t].",
        "matmul": "rnn_cell_forward(x_t, h_prev, params) takes x[:, t], of shape (B, D), and the previous state "
        f"(B, H), in that order. {_PRODUCTS}",
        "broadcast": "h[:, t] is (B, H) and y_hat[:, t] is (B, V): make the arrays np.zeros((B, T, H)) and "
        "np.zeros((B, T, V)), with H = W_hh.shape[0] and V = W_hy.shape[0].",
        "unpack": "rnn_cell_forward returns two arrays: h_next, y_hat_t = rnn_cell_forward(x[:, t], h_t, params).",
    },
)
