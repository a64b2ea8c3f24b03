"""Self-checks of lab 02 (backpropagation through time in NumPy).

The oracles are PyTorch autograd in float64 (the backward passes), ``torch.nn.utils.clip_grad_norm_``
(clipping) and ``torch.optim.Adagrad`` (the update). When an answer is off, the judge compares it
with the autograd gradients of the usual slips -- tanh's derivative forgotten or taken at the
wrong state, a gradient transposed, the bias gradient not summed over the batch, the gradients
overwritten instead of accumulated over time, the hidden-state gradient not carried back -- and
names the one it matches.

In a notebook::

    from labutils.checks import lab02
    lab02.check_cell_backward(rnn_cell_backward)
    lab02.check_backward(rnn_backward)
    lab02.check_clip(clip_gradients)
    lab02.check_adagrad(adagrad_update)
"""

from __future__ import annotations

import numpy as np

from .core import Check, assert_finite, assert_shape, rel_error

TOL = 1e-7
B, T, D, H = 3, 5, 4, 6  # all different, so that a swapped axis shows in the shape
PARAMS = ("W_xh", "W_hh", "b_h")


def _t(a, grad: bool = False):
    import torch

    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def _np(t) -> np.ndarray:
    return t.detach().numpy().copy()


def _close(a, b, tol: float = TOL) -> bool:
    return np.shape(a) == np.shape(b) and bool(np.all(np.isfinite(a))) and rel_error(a, b) <= tol


def _params(rng) -> dict:
    return {
        "W_xh": rng.normal(size=(H, D)) * 0.6,
        "W_hh": rng.normal(size=(H, H)) * 0.4,
        "b_h": rng.normal(size=H) * 0.3,
    }


def _judge_gradients(got: dict, want: dict, slips: list[tuple[str, dict, str]], shape_hints: dict) -> None:
    """Compare each gradient; on a mismatch, name the slip whose gradients it matches.

    ``slips`` holds ``(label, {name: array}, advice)``: a slip matches a name when its array
    for that name equals the student's.
    """
    for name, ref in want.items():
        if name not in got:
            raise AssertionError(f"the result has no {name!r}: return a dict with keys {sorted(want)}.")
        g = got[name]
        if np.shape(g) != ref.shape:
            if np.ndim(g) == 2 and np.shape(g) == ref.T.shape:
                raise AssertionError(
                    f"{name} has shape {np.shape(g)}, expected {ref.shape}: the gradient is transposed. "
                    f"A gradient has the shape of what it differentiates; swap the factors of the product."
                )
            assert_shape(name, g, ref.shape, shape_hints.get(name, ""))
        assert_finite(name, g)
        if _close(g, ref):
            continue
        for _label, arrays, advice in slips:
            if name in arrays and _close(g, arrays[name]):
                raise AssertionError(f"{name} is wrong. {advice}")
        if ref.ndim == 2 and ref.shape[0] == ref.shape[1] and _close(g, ref.T):
            raise AssertionError(
                f"{name} is transposed: it matches the transpose of the true gradient. "
                "Swap the order of the outer product (dz.T @ h_prev, not h_prev.T @ dz)."
            )
        if _close(-g, ref):
            raise AssertionError(f"{name} has the wrong sign.")
        if np.allclose(g, 0):
            raise AssertionError(f"{name} is all zeros: is it computed (and accumulated) at all?")
        raise AssertionError(
            f"{name} differs from PyTorch autograd: relative error {rel_error(g, ref):.1e} (want < {TOL:.0e}). "
            "Write the chain rule one factor at a time and check each shape."
        )


# ------------------------------------------------------------------------------ cell backward
def _cell_inputs(rng):
    import torch

    p = _params(rng)
    x_t, h_prev = rng.normal(size=(B, D)), rng.normal(size=(B, H)) * 0.5
    with torch.no_grad():  # the forward pass by PyTorch, so that no NumPy answer lives here
        cell = torch.nn.RNNCell(D, H).double()
        cell.weight_ih.copy_(_t(p["W_xh"]))
        cell.weight_hh.copy_(_t(p["W_hh"]))
        cell.bias_ih.copy_(_t(p["b_h"]))
        cell.bias_hh.zero_()
        h_t = _np(cell(_t(x_t), _t(h_prev)))
    return {"dh_t": rng.normal(size=(B, H)), "x_t": x_t, "h_prev": h_prev, "h_t": h_t, **p}


def _probe_cell(objs, inp):
    params = {k: inp[k].copy() for k in PARAMS}
    g = objs["rnn_cell_backward"](
        inp["dh_t"].copy(), inp["x_t"].copy(), inp["h_prev"].copy(), inp["h_t"].copy(), params
    )
    if not isinstance(g, dict):
        raise TypeError("rnn_cell_backward must return a dict with keys dx_t, dh_prev, dW_xh, dW_hh, db_h")
    return g


_CELL_NAMES = {"dx_t": "x_t", "dh_prev": "h_prev", "dW_xh": "W_xh", "dW_hh": "W_hh", "db_h": "b_h"}


def _cell_autograd(inp, upstream_of_z=None):
    """Gradients of sum(h_t * dh_t) (or of sum(z_t * upstream_of_z)) by autograd: {"dx_t": ..., ...}."""
    import torch

    leaves = {k: _t(inp[k], grad=True) for k in ("x_t", "h_prev", *PARAMS)}
    z = leaves["x_t"] @ leaves["W_xh"].T + leaves["h_prev"] @ leaves["W_hh"].T + leaves["b_h"]
    loss = (torch.tanh(z) * _t(inp["dh_t"])).sum() if upstream_of_z is None else (z * _t(upstream_of_z)).sum()
    loss.backward()
    return {f"d{k}": _np(v.grad) for k, v in leaves.items()}


def _judge_cell(inp, out):
    want = _cell_autograd(inp)
    dz = inp["dh_t"] * (1 - inp["h_t"] ** 2)
    no_tanh = _cell_autograd(inp, upstream_of_z=inp["dh_t"])
    at_prev = _cell_autograd(inp, upstream_of_z=inp["dh_t"] * (1 - inp["h_prev"] ** 2))
    sq = _cell_autograd(inp, upstream_of_z=inp["dh_t"] * (1 - inp["h_t"]))
    slips = [
        (
            "no tanh'",
            no_tanh,
            "It matches the gradient without tanh's derivative: multiply dh_t by (1 - h_t**2) to get dz_t first.",
        ),
        (
            "tanh' at h_prev",
            at_prev,
            "It uses tanh's derivative at h_prev: the derivative is 1 - h_t**2, at the cell's own output h_t.",
        ),
        ("1 - h", sq, "It uses 1 - h_t: tanh's derivative is 1 - h_t**2 (squared)."),
        (
            "W_hh not transposed",
            {"dh_prev": dz @ inp["W_hh"].T},
            "dh_prev = dz_t @ W_hh (no .T): h_prev enters as h_prev @ W_hh.T, so its gradient is dz @ W_hh.",
        ),
        ("db_h batch 0", {"db_h": dz[0]}, "db_h must add the contributions of every example: dz_t.sum(axis=0)."),
        (
            "db_h mean",
            {"db_h": dz.mean(axis=0)},
            "db_h is the mean over the batch: it must be the sum (the loss is a sum over examples).",
        ),
    ]
    hints = {"db_h": "The bias gradient has the bias's shape (H,): sum dz_t over the batch axis."}
    missing = [k for k in _CELL_NAMES if k not in out]
    if missing:
        raise AssertionError(f"the dict returned by rnn_cell_backward has no {missing}; keys: {sorted(out)}")
    _judge_gradients(out, want, slips, hints)


check_cell_backward = Check(
    grade_id="lab02-cell-backward",
    title="RNN cell backward",
    needs=("rnn_cell_backward",),
    make_inputs=_cell_inputs,
    probe=_probe_cell,
    judge=_judge_cell,
)


# -------------------------------------------------------------------------- sequence backward
def _seq_inputs(rng):
    import torch

    p = _params(rng)
    x, h0 = rng.normal(size=(B, T, D)), rng.normal(size=(B, H)) * 0.5
    with torch.no_grad():
        rnn = torch.nn.RNN(D, H, batch_first=True).double()
        rnn.weight_ih_l0.copy_(_t(p["W_xh"]))
        rnn.weight_hh_l0.copy_(_t(p["W_hh"]))
        rnn.bias_ih_l0.copy_(_t(p["b_h"]))
        rnn.bias_hh_l0.zero_()
        h = _np(rnn(_t(x), _t(h0)[None])[0])
    return {"dh": rng.normal(size=(B, T, H)), "x": x, "h0": h0, "h": h, **p}


def _probe_seq(objs, inp):
    params = {k: inp[k].copy() for k in PARAMS}
    g = objs["rnn_backward"](inp["dh"].copy(), inp["x"].copy(), inp["h0"].copy(), inp["h"].copy(), params)
    if not isinstance(g, dict):
        raise TypeError("rnn_backward must return a dict with keys dx, dh0, dW_xh, dW_hh, db_h")
    return g


def _seq_autograd(inp, *, carry: bool = True, only_last_dh: bool = False):
    """Autograd through an unrolled RNN with one copy of each weight per step.

    Returns the gradients (summed over steps) plus, per step, the weights' gradients at that step:
    ``per_step[t]`` is what a loop that overwrote instead of accumulating would keep after step t.
    ``carry=False`` cuts the hidden-state path between steps (no BPTT); ``only_last_dh`` keeps the
    loss of the last step only.
    """
    import torch

    x = _t(inp["x"], grad=True)
    h0 = _t(inp["h0"], grad=True)
    copies = [{k: _t(inp[k], grad=True) for k in PARAMS} for _ in range(T)]
    h_t, loss = h0, 0.0
    dh = _t(inp["dh"])
    for t in range(T):
        p = copies[t]
        prev = h_t if carry else h_t.detach()
        h_t = torch.tanh(x[:, t] @ p["W_xh"].T + prev @ p["W_hh"].T + p["b_h"])
        if not only_last_dh or t == T - 1:
            loss = loss + (h_t * dh[:, t]).sum()
    loss.backward()
    per_step = [{f"d{k}": _np(c[k].grad) for k in PARAMS} for c in copies]
    total = {f"d{k}": sum(s[f"d{k}"] for s in per_step) for k in PARAMS}
    total["dx"] = _np(x.grad)
    total["dh0"] = _np(h0.grad) if h0.grad is not None else np.zeros_like(inp["h0"])
    return total, per_step


def _judge_seq(inp, out):
    want, per_step = _seq_autograd(inp)
    no_carry, _ = _seq_autograd(inp, carry=False)
    last_only, _ = _seq_autograd(inp, only_last_dh=True)
    slips = [
        (
            "overwrite, backward loop",
            per_step[0],
            "It holds only the contribution of step 0: the weights are "
            "shared by every step, so add each step's gradient (dW_hh += ...), do not overwrite it.",
        ),
        (
            "overwrite, forward loop",
            per_step[-1],
            "It holds only the contribution of the last step: accumulate "
            "(+=) the weight gradients over all time steps.",
        ),
        (
            "no carry",
            no_carry,
            "The gradient does not flow back through time: at step t use dh[:, t] plus the "
            "dh_prev returned by step t+1.",
        ),
        (
            "last dh only",
            last_only,
            "Only dh[:, -1] is used: every step's output contributes, add dh[:, t] at each step t (many-to-many).",
        ),
    ]
    hints = {"dx": f"dx has the shape of x, (B, T, D) = {(B, T, D)}.", "dh0": f"dh0 has the shape of h0, {(B, H)}."}
    names = ("dx", "dh0", "dW_xh", "dW_hh", "db_h")
    missing = [k for k in names if k not in out]
    if missing:
        raise AssertionError(f"the dict returned by rnn_backward has no {missing}; keys: {sorted(out)}")
    if np.allclose(out["dh0"], 0) and not np.allclose(want["dh0"], 0):
        raise AssertionError("dh0 is all zeros: return the dh_prev of the first step (t = 0) as dh0.")
    _judge_gradients(out, {k: want[k] for k in names}, slips, hints)


check_backward = Check(
    grade_id="lab02-backward",
    title="backpropagation through time",
    needs=("rnn_backward",),
    make_inputs=_seq_inputs,
    probe=_probe_seq,
    judge=_judge_seq,
)


# -------------------------------------------------------------------------------- clipping
_CLIP_SHAPES = {"W_xh": (H, D), "W_hh": (H, H), "b_h": (H,)}


def _clip_inputs(rng):
    big = {f"big_{k}": rng.normal(size=s) * 4 for k, s in _CLIP_SHAPES.items()}
    small = {f"small_{k}": rng.normal(size=s) * 0.05 for k, s in _CLIP_SHAPES.items()}
    return {**big, **small, "max_norm": 5.0}


def _probe_clip(objs, inp):
    out = {}
    for case in ("big", "small"):
        grads = {k: inp[f"{case}_{k}"].copy() for k in _CLIP_SHAPES}
        clipped, norm = objs["clip_gradients"](grads, float(inp["max_norm"]))
        out[f"{case}_norm"] = norm
        for k in _CLIP_SHAPES:
            out[f"{case}_{k}"] = clipped[k]
    return out


def _judge_clip(inp, out):
    import torch

    max_norm = float(inp["max_norm"])
    for case in ("big", "small"):
        g = {k: inp[f"{case}_{k}"] for k in _CLIP_SHAPES}
        tensors = [_t(v) for v in g.values()]
        for t in tensors:
            t.grad = t.detach().clone()
        total = float(torch.nn.utils.clip_grad_norm_(tensors, max_norm))
        want = {k: _np(t.grad) for k, t in zip(g, tensors, strict=True)}
        norm = float(np.asarray(out[f"{case}_norm"]))
        if not np.isclose(norm, total, rtol=1e-9):
            if np.isclose(norm, sum(np.linalg.norm(v) for v in g.values())):
                raise AssertionError(
                    "the returned norm is the sum of the arrays' norms: the global norm is "
                    "sqrt(sum of every squared entry of every array)."
                )
            raise AssertionError(
                f"the returned norm is {norm:.4g}, expected the global norm {total:.4g} "
                "(of all gradients together, before clipping)."
            )
        for k in _CLIP_SHAPES:
            got = out[f"{case}_{k}"]
            assert_shape(k, got, g[k].shape)
            if _close(got, want[k], 1e-6):  # torch divides by (norm + 1e-6)
                continue
            if case == "small":
                raise AssertionError(
                    f"{k} changed although the global norm {total:.3g} is below max_norm={max_norm}: "
                    "only scale gradients *down* (by min(1, max_norm / norm))."
                )
            if _close(got, np.clip(g[k], -max_norm, max_norm)):
                raise AssertionError(
                    f"{k} was clipped entry by entry (np.clip): that is clipping by value. "
                    "Scale every array by the same factor max_norm / global_norm instead."
                )
            if _close(got, g[k] * max_norm / np.linalg.norm(g[k]), 1e-6):
                raise AssertionError(
                    f"{k} was scaled by its own norm: use one global norm over all gradients, "
                    "so that the update keeps its direction."
                )
            raise AssertionError(
                f"{k} differs from torch.nn.utils.clip_grad_norm_: relative error {rel_error(got, want[k]):.1e}."
            )


check_clip = Check(
    grade_id="lab02-clip",
    title="gradient clipping",
    needs=("clip_gradients",),
    make_inputs=_clip_inputs,
    probe=_probe_clip,
    judge=_judge_clip,
)


# ---------------------------------------------------------------------------------- Adagrad
def _adagrad_inputs(rng):
    p = {f"p_{k}": rng.normal(size=s) for k, s in _CLIP_SHAPES.items()}
    g1 = {f"g1_{k}": rng.normal(size=s) for k, s in _CLIP_SHAPES.items()}
    g2 = {f"g2_{k}": rng.normal(size=s) * 3 for k, s in _CLIP_SHAPES.items()}
    return {**p, **g1, **g2, "lr": 0.1}


def _probe_adagrad(objs, inp):
    params = {k: inp[f"p_{k}"].copy() for k in _CLIP_SHAPES}
    memory = {k: np.zeros_like(v) for k, v in params.items()}
    out = {}
    for step in (1, 2):
        grads = {k: inp[f"g{step}_{k}"].copy() for k in _CLIP_SHAPES}
        objs["adagrad_update"](params, grads, memory, float(inp["lr"]))
        for k in _CLIP_SHAPES:
            out[f"s{step}_p_{k}"] = params[k].copy()
            out[f"s{step}_m_{k}"] = memory[k].copy()
    return out


def _judge_adagrad(inp, out):
    import torch

    lr = float(inp["lr"])
    tensors = {k: _t(inp[f"p_{k}"], grad=True) for k in _CLIP_SHAPES}
    opt = torch.optim.Adagrad(tensors.values(), lr=lr, eps=1e-8)
    for step in (1, 2):
        for k, t in tensors.items():
            t.grad = _t(inp[f"g{step}_{k}"])
        opt.step()
        for k, t in tensors.items():
            p0 = inp[f"p_{k}"] if step == 1 else out[f"s1_p_{k}"]
            g = inp[f"g{step}_{k}"]
            want_p = _np(t)
            want_m = _np(opt.state[t]["sum"])
            got_p, got_m = out[f"s{step}_p_{k}"], out[f"s{step}_m_{k}"]
            assert_shape(f"params[{k!r}]", got_p, want_p.shape)
            assert_shape(f"memory[{k!r}]", got_m, want_m.shape)
            if step == 1 and np.allclose(got_m, 0):
                raise AssertionError(
                    "memory is still all zeros after a step: update it in place "
                    "(memory[name] += grad**2), do not rebind a local name."
                )
            if step == 1 and _close(got_p, inp[f"p_{k}"], 1e-15):
                raise AssertionError("the parameters did not change: update them in place (params[name] -= ...).")
            if not _close(got_m, want_m):
                if step == 2 and _close(got_m, g**2):
                    raise AssertionError(
                        "memory holds only the last squared gradient: Adagrad *accumulates* "
                        "them, memory[name] += grad**2."
                    )
                raise AssertionError(
                    f"memory[{k!r}] differs from torch.optim.Adagrad's sum of squared gradients: "
                    f"relative error {rel_error(got_m, want_m):.1e}."
                )
            if _close(got_p, want_p):
                continue
            step_taken = got_p - p0
            if _close(step_taken, lr * g / (np.sqrt(want_m) + 1e-8)):
                raise AssertionError(f"params[{k!r}] moved uphill: subtract the step (params -= ...).")
            if _close(step_taken, -lr * g / (want_m + 1e-8)):
                raise AssertionError(
                    "the step divides by the memory itself: divide by its square root, "
                    "lr * grad / (np.sqrt(memory) + eps)."
                )
            if step == 1 and (np.abs(step_taken) > 1e3).any():
                raise AssertionError(
                    "the first step is enormous: add grad**2 to the memory *before* dividing by its square root."
                )
            raise AssertionError(
                f"params[{k!r}] after step {step} differs from torch.optim.Adagrad: relative "
                f"error {rel_error(got_p, want_p):.1e}."
            )


check_adagrad = Check(
    grade_id="lab02-adagrad",
    title="Adagrad update",
    needs=("adagrad_update",),
    make_inputs=_adagrad_inputs,
    probe=_probe_adagrad,
    judge=_judge_adagrad,
)
