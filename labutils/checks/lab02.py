"""Self-checks of lab 02 (backpropagation through time in NumPy): inputs, probes, hints for errors.

The judges (``labutils.checks.judges.lab02``) compare with PyTorch in float64: autograd for the
backward passes, ``torch.nn.utils.clip_grad_norm_`` for clipping, ``torch.optim.Adagrad`` for the
update, and the whole model (embedding, ``nn.RNN``, linear layer, cross-entropy) for the training
step. When an answer is off they compare it with the gradients of the usual slips -- tanh's
derivative forgotten or taken at the wrong point, a gradient transposed, the loop over time
running forwards or skipping a step, ``dh_next`` carried wrongly, ``h[:, t-1]`` at t = 0 -- and
name the one it matches.

Gradients are named after what they differentiate with a ``d`` in front (``W_hh`` -> ``dW_hh``),
everywhere in lab 02: the dicts the backward passes return, and the ``grads`` that
``clip_gradients`` and ``adagrad_update`` receive.

In a notebook::

    from labutils.checks import lab02
    lab02.check_cell_backward(rnn_cell_backward)
    lab02.check_backward(rnn_backward)
    lab02.check_clip(clip_gradients)
    lab02.check_adagrad(adagrad_update)
    lab02.check_train_step(train_step)
"""

from __future__ import annotations

import numpy as np

from .core import Check, unpack

B, T, D, H = 3, 5, 4, 6  # all different, so that a swapped axis shows in the shape
PARAMS = ("W_xh", "W_hh", "b_h")
SHAPES = {"W_xh": (H, D), "W_hh": (H, H), "b_h": (H,)}
CELL_GRADS = ("dx_t", "dh_prev", "dW_xh", "dW_hh", "db_h")
SEQ_GRADS = ("dx", "dh0", "dW_xh", "dW_hh", "db_h")
JUDGES = "labutils.checks.judges.lab02"


def _params(rng) -> dict:
    return {
        "W_xh": rng.normal(size=(H, D)) * 0.6,
        "W_hh": rng.normal(size=(H, H)) * 0.4,
        "b_h": rng.normal(size=H) * 0.3,
    }


def _gradient_dict(result, what: str, keys) -> dict:
    if not isinstance(result, dict):
        raise AssertionError(
            f"{what} must return a dict with keys {', '.join(keys)}; it returned a {type(result).__name__}."
        )
    missing = [k for k in keys if k not in result]
    if missing:
        raise AssertionError(f"the dict returned by {what} has no {missing}; its keys: {sorted(result)}.")
    return {k: result[k] for k in keys}


_BACKWARD_PRODUCTS = (
    "Let the shapes decide the order of the factors: a gradient has the shape of what it differentiates. dz_t is "
    "(B, H); dx_t = dz_t @ W_xh is (B, D); dh_prev = dz_t @ W_hh is (B, H); dW_xh = dz_t.T @ x_t is (H, D); "
    "dW_hh = dz_t.T @ h_prev is (H, H)."
)


# ------------------------------------------------------------------------------ cell backward
def _cell_inputs(rng):
    import torch

    from .core import as_numpy, tensor64

    p = _params(rng)
    x_t, h_prev = rng.normal(size=(B, D)), rng.normal(size=(B, H)) * 0.5
    with torch.no_grad():  # the forward pass by PyTorch, so that no NumPy answer lives here
        cell = torch.nn.RNNCell(D, H).double()
        cell.weight_ih.copy_(tensor64(p["W_xh"]))
        cell.weight_hh.copy_(tensor64(p["W_hh"]))
        cell.bias_ih.copy_(tensor64(p["b_h"]))
        cell.bias_hh.zero_()
        h_t = as_numpy(cell(tensor64(x_t), tensor64(h_prev)))
    return {"dh_t": rng.normal(size=(B, H)), "x_t": x_t, "h_prev": h_prev, "h_t": h_t, **p}


def _probe_cell(objs, inp):
    params = {k: inp[k].copy() for k in PARAMS}
    args = (inp["dh_t"].copy(), inp["x_t"].copy(), inp["h_prev"].copy(), inp["h_t"].copy(), params)
    return _gradient_dict(objs["rnn_cell_backward"](*args), "rnn_cell_backward", CELL_GRADS)


check_cell_backward = Check(
    grade_id="lab02-cell-backward",
    title="RNN cell backward",
    needs=("rnn_cell_backward",),
    make_inputs=_cell_inputs,
    probe=_probe_cell,
    judge=f"{JUDGES}:judge_cell",
    hints={
        "matmul": _BACKWARD_PRODUCTS,
        "broadcast": "dz_t = dh_t * (1 - h_t**2) is elementwise on two (B, H) arrays; db_h sums dz_t over the "
        "batch axis, dz_t.sum(axis=0), to get (H,).",
        "key": "params holds W_xh, W_hh and b_h.",
    },
)


# -------------------------------------------------------------------------- sequence backward
def _seq_inputs(rng):
    import torch

    from .core import as_numpy, tensor64

    p = _params(rng)
    x, h0 = rng.normal(size=(B, T, D)), rng.normal(size=(B, H)) * 0.5
    with torch.no_grad():
        rnn = torch.nn.RNN(D, H, batch_first=True).double()
        rnn.weight_ih_l0.copy_(tensor64(p["W_xh"]))
        rnn.weight_hh_l0.copy_(tensor64(p["W_hh"]))
        rnn.bias_ih_l0.copy_(tensor64(p["b_h"]))
        rnn.bias_hh_l0.zero_()
        h = as_numpy(rnn(tensor64(x), tensor64(h0)[None])[0])
    return {"dh": rng.normal(size=(B, T, H)), "x": x, "h0": h0, "h": h, **p}


def _probe_seq(objs, inp):
    """Two calls with the same inputs: the second shows whether anything carries over between calls."""
    out = {}
    for prefix in ("", "again_"):
        params = {k: inp[k].copy() for k in PARAMS}
        args = (inp["dh"].copy(), inp["x"].copy(), inp["h0"].copy(), inp["h"].copy(), params)
        grads = _gradient_dict(objs["rnn_backward"](*args), "rnn_backward", SEQ_GRADS)
        out.update({prefix + k: v for k, v in grads.items()})
    return out


check_backward = Check(
    grade_id="lab02-backward",
    title="backpropagation through time",
    needs=("rnn_backward",),
    make_inputs=_seq_inputs,
    probe=_probe_seq,
    judge=f"{JUDGES}:judge_backward",
    hints={
        "index": "The steps are t = T - 1 down to 0: reversed(range(T)). h[:, t] is the state after step t, so "
        "the state before step t is h[:, t - 1] for t > 0 and h0 for t = 0.",
        "matmul": "rnn_cell_backward(dh_t, x_t, h_prev, h_t, params) takes (B, ...) slices of one step: "
        "dh[:, t] + dh_next, x[:, t], the state before step t, and h[:, t], in that order.",
        "broadcast": "dh[:, t] and dh_next are both (B, H); dx[:, t] = the step's dx_t (B, D); the weight "
        "gradients are added up over the steps in arrays shaped like the weights (np.zeros_like(params[...])).",
        "key": "rnn_cell_backward returns dx_t, dh_prev, dW_xh, dW_hh and db_h; rnn_backward returns dx, dh0, "
        "dW_xh, dW_hh and db_h.",
    },
)


# -------------------------------------------------------------------------------- clipping
def _clip_inputs(rng):
    big = {f"big_d{k}": rng.normal(size=s) * 4 for k, s in SHAPES.items()}
    small = {f"small_d{k}": rng.normal(size=s) * 0.05 for k, s in SHAPES.items()}
    return {**big, **small, "max_norm": 5.0}


def _probe_clip(objs, inp):
    out = {}
    for case in ("big", "small"):
        grads = {f"d{k}": inp[f"{case}_d{k}"].copy() for k in SHAPES}
        result = objs["clip_gradients"](grads, float(inp["max_norm"]))
        clipped, norm = unpack(result, 2, "clip_gradients must return two things, (clipped gradients, norm)")
        out[f"{case}_norm"] = norm
        missing = [k for k in grads if k not in clipped]
        if missing:
            raise AssertionError(f"the clipped gradients have no {missing}: keep every name of grads.")
        out.update({f"{case}_{k}": clipped[k] for k in grads})
    return out


check_clip = Check(
    grade_id="lab02-clip",
    title="gradient clipping",
    needs=("clip_gradients",),
    make_inputs=_clip_inputs,
    probe=_probe_clip,
    judge=f"{JUDGES}:judge_clip",
    hints={
        "type": "grads is a dict of arrays: loop over grads.values() (or .items()) to add up their squares.",
        "inhomogeneous": "np.linalg.norm (or np.array) of a list of arrays of different shapes fails: add up the "
        "squares of every array, sum(np.sum(g**2) for g in grads.values()), then take the square root.",
    },
)


# ---------------------------------------------------------------------------------- Adagrad
def _adagrad_inputs(rng):
    p = {f"p_{k}": rng.normal(size=s) for k, s in SHAPES.items()}
    g1 = {f"g1_{k}": rng.normal(size=s) for k, s in SHAPES.items()}
    g1["g1_W_xh"][0] = 0.0  # a row with no gradient yet, like the embedding row of an unseen character
    g1["g1_b_h"][:2] = 0.0
    g2 = {f"g2_{k}": rng.normal(size=s) * 3 for k, s in SHAPES.items()}
    return {**p, **g1, **g2, "lr": 0.1}


def _probe_adagrad(objs, inp):
    params = {k: inp[f"p_{k}"].copy() for k in SHAPES}
    memory = {k: np.zeros_like(v) for k, v in params.items()}
    out = {}
    for step in (1, 2):
        grads = {f"d{k}": inp[f"g{step}_{k}"].copy() for k in SHAPES}
        objs["adagrad_update"](params, grads, memory, float(inp["lr"]))
        for k in SHAPES:
            out[f"s{step}_p_{k}"] = params[k].copy()
            out[f"s{step}_m_{k}"] = memory[k].copy()
    return out


check_adagrad = Check(
    grade_id="lab02-adagrad",
    title="Adagrad update",
    needs=("adagrad_update",),
    make_inputs=_adagrad_inputs,
    probe=_probe_adagrad,
    judge=f"{JUDGES}:judge_adagrad",
    hints={
        "key": 'The gradients carry a "d" in front of the name of what they differentiate, as everywhere in this '
        'lab: the gradient of params["W_hh"] is grads["dW_hh"], and memory has the names of params.',
    },
)


# ---------------------------------------------------------------------- the training step
STEP_V, STEP_D, STEP_H, STEP_B, STEP_T = 7, 3, 5, 2, 6
STEP_NAMES = ("E", "W_xh", "W_hh", "b_h", "W_hy", "b_y")
STEP_CLIPS = (100.0, 0.05)  # the first call never clips, the second always does


def _step_inputs(rng):
    V, D, H = STEP_V, STEP_D, STEP_H
    shapes = {"E": (V, D), "W_xh": (H, D), "W_hh": (H, H), "b_h": (H,), "W_hy": (V, H), "b_y": (V,)}
    inp = {f"p_{k}": rng.normal(size=s) * (1.0 if k == "E" else 0.5) for k, s in shapes.items()}
    for call in (1, 2):
        inp[f"inputs{call}"] = rng.integers(0, V - 1, size=(STEP_B, STEP_T))  # id V - 1 unread: a zero row of dE
        inp[f"targets{call}"] = rng.integers(0, V, size=(STEP_B, STEP_T))
    inp["h0"] = rng.normal(size=(STEP_B, H)) * 0.5
    inp["lr"] = 0.1
    return inp


def _probe_step(objs, inp):
    params = {k: inp[f"p_{k}"].copy() for k in STEP_NAMES}
    memory = {k: np.zeros_like(v) for k, v in params.items()}
    out = {}
    for call, clip in zip((1, 2), STEP_CLIPS):
        args = (inp[f"inputs{call}"].copy(), inp[f"targets{call}"].copy(), inp["h0"].copy(), float(inp["lr"]), clip)
        result = objs["train_step"](params, memory, *args)
        loss, h = unpack(result, 2, "train_step must return two things, (loss, the last hidden state)")
        out[f"loss{call}"], out[f"h{call}"] = float(loss), np.array(h)
        out.update({f"s{call}_p_{k}": params[k].copy() for k in STEP_NAMES})
        out.update({f"s{call}_m_{k}": np.array(memory[k]) for k in STEP_NAMES})
    return out


check_train_step = Check(
    grade_id="lab02-train-step",
    title="training step",
    needs=("train_step",),
    make_inputs=_step_inputs,
    probe=_probe_step,
    judge=f"{JUDGES}:judge_train_step",
    hints={
        "key": 'char_lm_loss_and_grads returns the gradients named with a "d" (dE, dW_xh, ...), which is what '
        "clip_gradients and adagrad_update take.",
        "unpack": "char_lm_loss_and_grads returns three things, (loss, grads, last hidden state); clip_gradients "
        "returns two, (clipped grads, norm).",
    },
)
