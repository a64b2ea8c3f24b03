"""Judges of lab 02's checks: autograd, ``clip_grad_norm_`` and ``torch.optim.Adagrad`` in float64.

Each backward pass is compared with autograd. A wrong answer is compared with the gradients of
the usual slips, built from the same pieces: autograd through the affine map of one step for a
given ``dz_t`` (``_affine_grads``), assembled into the loops students write by mistake
(``_bptt_loop``: running forwards, skipping a step, ``h[:, t-1]`` at t = 0, ``dh_next`` started,
summed or carried wrongly).
"""

from __future__ import annotations

import numpy as np

from ..core import assert_finite, assert_shape
from ..lab02 import PARAMS, SEQ_GRADS, SHAPES, STEP_CLIPS, STEP_NAMES, STEP_V, B, D, H, T
from .oracle import as_numpy, close, describe_mismatch, tensor64

TOL = 1e-7
CLIP_TOL = 1e-5  # clip_grad_norm_ divides by (norm + 1e-6): a clipped step differs from max_norm / norm by ~1e-6


def _judge_gradients(got: dict, want: dict, slips: list[tuple[str, dict]], shape_hints: dict) -> None:
    """Compare each gradient; on a mismatch, name the slip whose gradients it matches.

    ``slips`` holds ``(advice, {name: array})``: a slip matches when the student's arrays equal all
    of its arrays and one of them is wrong (a slip lists only the gradients it determines).
    """
    for name, ref in want.items():
        g = got[name]
        if np.shape(g) != ref.shape:
            if np.ndim(g) == 2 and np.shape(g) == ref.T.shape:
                raise AssertionError(
                    f"{name} has shape {np.shape(g)}, expected {ref.shape}: the gradient is transposed. "
                    "A gradient has the shape of what it differentiates; swap the factors of the product."
                )
            assert_shape(name, g, ref.shape, shape_hints.get(name, ""))
        assert_finite(name, g)
    wrong = [name for name, ref in want.items() if not close(got[name], ref, TOL)]
    if not wrong:
        return
    for advice, arrays in slips:
        if set(arrays) & set(wrong) and all(close(got[k], v, TOL) for k, v in arrays.items()):
            raise AssertionError(f"{', '.join(k for k in wrong if k in arrays)} wrong. {advice}")
    name = wrong[0]
    g, ref = got[name], want[name]
    if ref.ndim == 2 and ref.shape[0] == ref.shape[1] and close(g, ref.T, TOL):
        raise AssertionError(
            f"{name} is transposed: it matches the transpose of the true gradient. "
            "Swap the order of the outer product (dz.T @ h_prev, not h_prev.T @ dz)."
        )
    if np.allclose(g, 0):
        raise AssertionError(f"{name} is all zeros: is it computed (and accumulated) at all?")
    time_axis = 1 if np.ndim(g) == 3 else None
    raise AssertionError(
        f"{name} {describe_mismatch(g, ref, tol=TOL, time_axis=time_axis)} (compared with PyTorch autograd). "
        "Write the chain rule one factor at a time and check each shape."
    )


def _affine_grads(params: dict, x_t, h_prev, dz) -> dict:
    """Gradients of sum(z_t * dz) for z_t = x_t W_xh^T + h_prev W_hh^T + b_h, by autograd."""
    leaves = {"x_t": tensor64(x_t, grad=True), "h_prev": tensor64(h_prev, grad=True)}
    leaves.update({k: tensor64(params[k], grad=True) for k in PARAMS})
    z = leaves["x_t"] @ leaves["W_xh"].T + leaves["h_prev"] @ leaves["W_hh"].T + leaves["b_h"]
    (z * tensor64(dz)).sum().backward()
    return {f"d{k}": as_numpy(v.grad) for k, v in leaves.items()}


# ------------------------------------------------------------------------------ cell backward
#: What a gradient of the wrong shape in ``rnn_cell_backward`` should have been, and why.
CELL_SHAPE_HINTS = {
    "db_h": "The bias gradient has the bias's shape (H,): sum dz_t over the batch axis.",
    "dW_xh": "dW_xh has the shape of W_xh, (H, D): dz_t.T @ x_t (x_t is what W_xh multiplies).",
    "dW_hh": "dW_hh has the shape of W_hh, (H, H): dz_t.T @ h_prev (h_prev is what W_hh multiplies).",
    "dx_t": "dx_t has the shape of x_t, (B, D): dz_t @ W_xh (x_t reaches z_t through W_xh).",
    "dh_prev": "dh_prev has the shape of h_prev, (B, H): dz_t @ W_hh (h_prev reaches z_t through W_hh).",
}


def judge_cell(inp, out):
    """``rnn_cell_backward``'s gradients against the oracle's, naming the slips of a tanh cell."""
    dh, h_t, h_prev = inp["dh_t"], inp["h_t"], inp["h_prev"]

    def with_dz(dz):
        return _affine_grads(inp, inp["x_t"], h_prev, dz)

    want = with_dz(dh * (1 - h_t**2))  # autograd through z_t, with tanh'(z_t) from the saved output
    dz = dh * (1 - h_t**2)
    slips = [
        (
            "It matches the gradient without tanh's derivative: multiply dh_t by (1 - h_t**2) to get dz_t first.",
            with_dz(dh),
        ),
        (
            "It takes tanh's derivative of h_t: 1 - np.tanh(h_t)**2 is tanh'(h_t), but the derivative is needed at "
            "z_t, and tanh'(z_t) = 1 - tanh(z_t)**2 = 1 - h_t**2 (h_t already is tanh(z_t)).",
            with_dz(dh * (1 - np.tanh(h_t) ** 2)),
        ),
        (
            "It uses tanh's derivative at h_prev: the derivative is 1 - h_t**2, at the cell's own output h_t.",
            with_dz(dh * (1 - h_prev**2)),
        ),
        ("It uses 1 - h_t: tanh's derivative is 1 - h_t**2 (squared).", with_dz(dh * (1 - h_t))),
        (
            "It uses the sigmoid's derivative, h_t * (1 - h_t): the cell's activation is tanh, whose derivative "
            "is 1 - h_t**2.",
            with_dz(dh * h_t * (1 - h_t)),
        ),
        (
            "dh_prev = dz_t leaves out W_hh: h_prev enters through h_prev @ W_hh.T, so dh_prev = dz_t @ W_hh.",
            {"dh_prev": dz},
        ),
        (
            "dW_hh uses h_t: what W_hh multiplies at this step is h_prev, so dW_hh = dz_t.T @ h_prev.",
            {"dW_hh": dz.T @ h_t},
        ),
        (
            "dh_prev = dz_t @ W_hh (no .T): h_prev enters as h_prev @ W_hh.T, so its gradient is dz @ W_hh.",
            {"dh_prev": dz @ inp["W_hh"].T},
        ),
        ("db_h must add the contributions of every example: dz_t.sum(axis=0).", {"db_h": dz[0]}),
        (
            "db_h is the mean over the batch: it must be the sum (the loss is a sum over examples).",
            {"db_h": dz.mean(axis=0)},
        ),
    ]
    _judge_gradients(out, want, slips, CELL_SHAPE_HINTS)


# -------------------------------------------------------------------------- sequence backward
def _seq_autograd(inp, *, carry: bool = True, only_last_dh: bool = False):
    """Autograd through an unrolled RNN with one copy of each weight per step.

    Returns the gradients (summed over steps) plus, per step, the weights' gradients at that step:
    ``per_step[t]`` is what a loop that overwrote instead of accumulating would keep after step t.
    ``carry=False`` cuts the hidden-state path between steps (no BPTT); ``only_last_dh`` keeps the
    loss of the last step only.
    """
    import torch

    x = tensor64(inp["x"], grad=True)
    h0 = tensor64(inp["h0"], grad=True)
    copies = [{k: tensor64(inp[k], grad=True) for k in PARAMS} for _ in range(T)]
    h_t, loss = h0, 0.0
    dh = tensor64(inp["dh"])
    for t in range(T):
        p = copies[t]
        prev = h_t if carry else h_t.detach()
        h_t = torch.tanh(x[:, t] @ p["W_xh"].T + prev @ p["W_hh"].T + p["b_h"])
        if not only_last_dh or t == T - 1:
            loss = loss + (h_t * dh[:, t]).sum()
    loss.backward()
    per_step = [{f"d{k}": as_numpy(c[k].grad) for k in PARAMS} for c in copies]
    total = {f"d{k}": sum(s[f"d{k}"] for s in per_step) for k in PARAMS}
    total["dx"] = as_numpy(x.grad)
    total["dh0"] = as_numpy(h0.grad) if h0.grad is not None else np.zeros_like(inp["h0"])
    return total, per_step


def _bptt_loop(
    inp, *, forwards=False, skip=None, wrap=False, prev="before", dh_init_last=False, carry="dh_prev"
) -> dict:
    """The weight gradients of a loop over time written with a slip (a step's own backward is right).

    ``forwards``: t = 0 .. T-1; ``skip``: a step left out; ``wrap``: h[:, t-1] at t = 0; ``prev``: the
    state taken as the one before step t -- ``"before"`` (right), ``"zeros"`` at t = 0 instead of h0, or
    ``"same"``, h[:, t] itself;
    ``dh_init_last``: dh_next starts at dh[:, -1]; ``carry``: what dh_next becomes after a step --
    ``"dh_prev"`` (right), ``"accumulate"`` (dh_next += dh_prev) or ``"upstream"`` (the gradient
    that arrived at the step, not passed through it).
    """
    dh, h, x = inp["dh"], inp["h"], inp["x"]
    steps = [t for t in (range(T) if forwards else reversed(range(T))) if t != skip]
    dh_next = dh[:, -1].copy() if dh_init_last else np.zeros_like(inp["h0"])
    sums = {f"d{k}": np.zeros(SHAPES[k]) for k in PARAMS}
    for t in steps:
        h_prev = h[:, t - 1] if t > 0 or wrap else inp["h0"]
        if prev == "same":
            h_prev = h[:, t]
        elif prev == "zeros" and t == 0:
            h_prev = np.zeros_like(inp["h0"])
        upstream = dh[:, t] + dh_next
        grads = _affine_grads(inp, x[:, t], h_prev, upstream * (1 - h[:, t] ** 2))
        for k in sums:
            sums[k] = sums[k] + grads[k]
        dh_next = {"dh_prev": grads["dh_prev"], "accumulate": dh_next + grads["dh_prev"], "upstream": upstream}[carry]
    return sums


def _loop_slips(inp) -> list[tuple[str, dict]]:
    loop = "for t in reversed(range(T))"
    return [
        (
            f"The loop runs forwards in time: BPTT starts at the last step, where nothing comes from the future, "
            f"and goes back to t = 0: {loop}.",
            _bptt_loop(inp, forwards=True),
        ),
        (
            f"The last step, t = T - 1, is never computed: start the loop there, {loop} (not range(T - 1)).",
            _bptt_loop(inp, skip=T - 1),
        ),
        (f"Step 0 is never computed: the loop must go down to t = 0 included, {loop}.", _bptt_loop(inp, skip=0)),
        (
            "At t = 0 you used h[:, t - 1], which is h[:, -1], the *last* state (a negative index wraps around): "
            "the state before step 0 is h0.",
            {"dW_hh": _bptt_loop(inp, wrap=True)["dW_hh"]},
        ),
        (
            "At t = 0 you used zeros as the state before the step: it is h0, h_prev = h[:, t - 1] if t > 0 else h0.",
            {"dW_hh": _bptt_loop(inp, prev="zeros")["dW_hh"]},
        ),
        (
            "h_prev = h[:, t] is the state *after* step t: the state before step t is h[:, t - 1] (h0 at t = 0).",
            {"dW_hh": _bptt_loop(inp, prev="same")["dW_hh"]},
        ),
        (
            "dh_next starts at dh[:, -1], so the last step's own gradient is counted twice: dh_next starts at "
            "zeros, since nothing flows back into the last step from the future.",
            _bptt_loop(inp, dh_init_last=True),
        ),
        (
            "dh_next adds up the dh_prev of every later step: replace it at each step by the dh_prev that this "
            "step's backward pass returns (the chain rule already carries the later ones).",
            _bptt_loop(inp, carry="accumulate"),
        ),
        (
            "dh_next is the gradient that arrived at step t, not passed back through the cell: carry the dh_prev "
            "that rnn_cell_backward returns.",
            _bptt_loop(inp, carry="upstream"),
        ),
    ]


def _judge_repeatable(out) -> None:
    changed = [k for k in SEQ_GRADS if not np.array_equal(out[k], out["again_" + k], equal_nan=True)]
    if changed:
        empty = (
            " An array made with np.empty_like holds whatever was in memory where it is never written: is "
            "dx[:, t] written at every step t?"
            if "dx" in changed
            else ""
        )
        raise AssertionError(
            f"called twice with the same inputs, rnn_backward returned different {', '.join(changed)} the second "
            "time: something carries over between calls. Start dh_next and every gradient at zeros inside the "
            f"function (a global, or a default argument such as grads={{}}, keeps its values from call to call).{empty}"
        )


def judge_backward(inp, out):
    want, per_step = _seq_autograd(inp)
    _judge_repeatable(out)
    slips = [
        (
            "It holds only the contribution of step 0: the weights are shared by every step, so add each step's "
            "gradient (dW_hh += ...), do not overwrite it.",
            per_step[0],
        ),
        (
            "It holds only the contribution of the last step: accumulate (+=) the weight gradients over all "
            "time steps.",
            per_step[-1],
        ),
        (
            "The gradient does not flow back through time: at step t use dh[:, t] plus the dh_prev returned by "
            "step t+1.",
            {k: v for k, v in _seq_autograd(inp, carry=False)[0].items() if k != "dh0"},
        ),
        (
            "Only dh[:, -1] is used: every step's output contributes, add dh[:, t] at each step t (many-to-many).",
            _seq_autograd(inp, only_last_dh=True)[0],
        ),
        *_loop_slips(inp),
    ]
    hints = {"dx": f"dx has the shape of x, (B, T, D) = {(B, T, D)}.", "dh0": f"dh0 has the shape of h0, {(B, H)}."}
    if np.allclose(out["dh0"], 0) and not np.allclose(want["dh0"], 0):
        raise AssertionError("dh0 is all zeros: return the dh_prev of the first step (t = 0) as dh0.")
    _judge_gradients({k: out[k] for k in SEQ_GRADS}, {k: want[k] for k in SEQ_GRADS}, slips, hints)


# -------------------------------------------------------------------------------- clipping
def _judge_norm(norm: float, total: float, grads: dict) -> None:
    if np.isclose(norm, total, rtol=1e-9):
        return
    if np.isclose(norm, total**2, rtol=1e-9):
        raise AssertionError(
            f"the returned norm is {norm:.4g}, the *squared* global norm: take its square root, "
            "sqrt(sum of every squared entry of every array)."
        )
    if np.isclose(norm, sum(np.linalg.norm(v) for v in grads.values())):
        raise AssertionError(
            "the returned norm is the sum of the arrays' norms: the global norm is "
            "sqrt(sum of every squared entry of every array)."
        )
    raise AssertionError(
        f"the returned norm is {norm:.4g}, expected the global norm {total:.4g} "
        "(of all gradients together, before clipping)."
    )


def _judge_clipped(k: str, got, g, want, total: float, max_norm: float, case: str) -> None:
    assert_shape(k, got, g.shape)
    if close(got, want, 1e-6):  # torch divides by (norm + 1e-6)
        return
    if case == "small":
        raise AssertionError(
            f"{k} changed although the global norm {total:.3g} is below max_norm={max_norm}: "
            "only scale gradients *down* (by min(1, max_norm / norm))."
        )
    if close(got, np.clip(g, -max_norm, max_norm), TOL):
        raise AssertionError(
            f"{k} was clipped entry by entry (np.clip): that is clipping by value. "
            "Scale every array by the same factor max_norm / global_norm instead."
        )
    if close(got, g * max_norm / np.linalg.norm(g), 1e-6):
        raise AssertionError(
            f"{k} was scaled by its own norm: use one global norm over all gradients, so that the update keeps "
            "its direction."
        )
    if close(got, g * total / max_norm, 1e-6):
        raise AssertionError(
            f"{k} was scaled by norm / max_norm, upside down: multiply by max_norm / norm, which is below 1 when "
            "the norm exceeds max_norm."
        )
    if close(got, g * max_norm / total**2, 1e-6):
        raise AssertionError(f"{k} was scaled by max_norm / norm**2: divide by the norm itself, its square root.")
    raise AssertionError(f"{k} {describe_mismatch(got, want, tol=1e-6)} (compared with clip_grad_norm_).")


def judge_clip(inp, out):
    import torch

    max_norm = float(inp["max_norm"])
    for case in ("big", "small"):
        g = {f"d{k}": inp[f"{case}_d{k}"] for k in SHAPES}
        tensors = [tensor64(v) for v in g.values()]
        for t in tensors:
            t.grad = t.detach().clone()
        total = float(torch.nn.utils.clip_grad_norm_(tensors, max_norm))
        want = {k: as_numpy(t.grad) for k, t in zip(g, tensors, strict=True)}
        _judge_norm(float(np.asarray(out[f"{case}_norm"])), total, g)
        for k in g:
            _judge_clipped(k, out[f"{case}_{k}"], g[k], want[k], total, max_norm, case)


# ---------------------------------------------------------------------------------- Adagrad
def _judge_adagrad_entry(k: str, step: int, inp, out, want_p, want_m, lr: float) -> None:
    p0 = inp[f"p_{k}"] if step == 1 else out[f"s1_p_{k}"]
    g = inp[f"g{step}_{k}"]
    got_p, got_m = out[f"s{step}_p_{k}"], out[f"s{step}_m_{k}"]
    assert_shape(f"params[{k!r}]", got_p, want_p.shape)
    assert_shape(f"memory[{k!r}]", got_m, want_m.shape)
    if step == 1 and np.allclose(got_m, 0):
        raise AssertionError(
            "memory is still all zeros after a step: update it in place (memory[name] += grad**2); "
            "m = m + grad**2 only rebinds a local name and the memory never changes."
        )
    _judge_adagrad_memory(k, step, got_m, want_m, g)
    if not np.all(np.isfinite(got_p)):
        raise AssertionError(
            f"params[{k!r}] has NaN or inf where the gradient and the memory are still 0 (a character not yet "
            "seen has a zero gradient row): 0 / sqrt(0) is 0 / 0. That is what eps is for: "
            "lr * grad / (np.sqrt(memory) + eps)."
        )
    if step == 1 and close(got_p, inp[f"p_{k}"], 1e-15):
        raise AssertionError("the parameters did not change: update them in place (params[name] -= ...).")
    if close(got_p, want_p, TOL):
        return
    step_taken = got_p - p0
    if close(step_taken, -lr * g / np.sqrt(want_m + 1e-8), TOL):
        raise AssertionError(
            f"params[{k!r}]: eps is inside the square root, np.sqrt(memory + eps) (as in min-char-rnn). This lab "
            "follows torch.optim.Adagrad and its docstring: lr * grad / (np.sqrt(memory) + eps), eps added after "
            "the root (the two differ where the memory is small)."
        )
    if close(step_taken, lr * g / (np.sqrt(want_m) + 1e-8), TOL):
        raise AssertionError(f"params[{k!r}] moved uphill: subtract the step (params -= ...).")
    if close(step_taken, -lr * g / (want_m + 1e-8), TOL):
        raise AssertionError(
            "the step divides by the memory itself: divide by its square root, lr * grad / (np.sqrt(memory) + eps)."
        )
    if step == 1 and (np.abs(step_taken) > 1e3).any():
        raise AssertionError("the first step is enormous: add grad**2 to the memory *before* dividing by its root.")
    raise AssertionError(
        f"params[{k!r}] after step {step} {describe_mismatch(got_p, want_p, tol=TOL)} (compared with "
        "torch.optim.Adagrad)."
    )


def _judge_adagrad_memory(k: str, step: int, got_m, want_m, g) -> None:
    """Raise unless memory[k] after ``step`` is the sum of the squared gradients so far; name the slip."""
    if close(got_m, want_m, TOL):
        return
    if step == 1 and (close(got_m, g, TOL) or close(got_m, np.abs(g), TOL)):
        raise AssertionError(
            "memory adds up the gradients themselves: Adagrad adds their *squares*, memory[name] += grad**2."
        )
    if step == 2 and close(got_m, g**2, TOL):
        raise AssertionError(
            "memory holds only the last squared gradient: Adagrad *accumulates* them, memory[name] += grad**2."
        )
    raise AssertionError(
        f"memory[{k!r}] {describe_mismatch(got_m, want_m, tol=TOL)} (compared with the sum of squared "
        "gradients, torch.optim.Adagrad's state)."
    )


def judge_adagrad(inp, out):
    import torch

    lr = float(inp["lr"])
    tensors = {k: tensor64(inp[f"p_{k}"], grad=True) for k in SHAPES}
    opt = torch.optim.Adagrad(tensors.values(), lr=lr, eps=1e-8)
    for step in (1, 2):
        for k, t in tensors.items():
            t.grad = tensor64(inp[f"g{step}_{k}"])
        opt.step()
        for k, t in tensors.items():
            _judge_adagrad_entry(k, step, inp, out, as_numpy(t), as_numpy(opt.state[t]["sum"]), lr)


# ---------------------------------------------------------------------- the training step
def _char_model(inp):
    """Embedding, nn.RNN (bias_hh fixed at 0) and Linear in float64, holding the inputs' parameters."""
    import torch
    from torch import nn

    V, D = inp["p_E"].shape
    H = inp["p_W_hh"].shape[0]
    emb, rnn, lin = nn.Embedding(V, D).double(), nn.RNN(D, H, batch_first=True).double(), nn.Linear(H, V).double()
    with torch.no_grad():
        for module, name, key in (
            (emb, "weight", "E"),
            (rnn, "weight_ih_l0", "W_xh"),
            (rnn, "weight_hh_l0", "W_hh"),
            (rnn, "bias_ih_l0", "b_h"),
            (lin, "weight", "W_hy"),
            (lin, "bias", "b_y"),
        ):
            getattr(module, name).copy_(tensor64(inp[f"p_{key}"]))
        rnn.bias_hh_l0.zero_()
    rnn.bias_hh_l0.requires_grad_(False)
    named = {"E": emb.weight, "W_xh": rnn.weight_ih_l0, "W_hh": rnn.weight_hh_l0, "b_h": rnn.bias_ih_l0}
    return emb, rnn, lin, {**named, "W_hy": lin.weight, "b_y": lin.bias}


def _step_oracle(inp, clips=STEP_CLIPS) -> list[dict]:
    """Per call: the loss, the last state, the parameters and Adagrad's memory after the update."""
    import torch

    emb, rnn, lin, named = _char_model(inp)
    opt = torch.optim.Adagrad(named.values(), lr=float(inp["lr"]), eps=1e-8)
    results = []
    for call, clip in zip((1, 2), clips):
        opt.zero_grad()
        states, _ = rnn(emb(torch.as_tensor(inp[f"inputs{call}"])), tensor64(inp["h0"])[None])
        logits = lin(states)
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, STEP_V), torch.as_tensor(inp[f"targets{call}"]).reshape(-1)
        )
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(named.values()), clip)
        opt.step()
        results.append(
            {
                "loss": float(loss.detach()),
                "h": as_numpy(states[:, -1]),
                "p": {k: as_numpy(v) for k, v in named.items()},
                "m": {k: as_numpy(opt.state[v]["sum"]) for k, v in named.items()},
            }
        )
    return results


def _last_step_only_grads(inp) -> dict:
    """The RNN's weight gradients of a backward pass through the last step only (and no dE)."""
    import torch

    emb, rnn, lin, named = _char_model(inp)
    with torch.no_grad():
        x = emb(torch.as_tensor(inp["inputs1"]))
        states, _ = rnn(x, tensor64(inp["h0"])[None])
    h_all = states.clone().requires_grad_(True)
    targets = torch.as_tensor(inp["targets1"]).reshape(-1)
    loss = torch.nn.functional.cross_entropy(lin(h_all).reshape(-1, STEP_V), targets)
    (dh,) = torch.autograd.grad(loss, h_all)
    h_last = torch.tanh(x[:, -1] @ named["W_xh"].T + states[:, -2] @ named["W_hh"].T + named["b_h"])
    grads = torch.autograd.grad((h_last * dh[:, -1]).sum(), [named[k] for k in ("W_xh", "W_hh", "b_h")])
    return {k: as_numpy(g) for k, g in zip(("W_xh", "W_hh", "b_h"), grads, strict=True)}


def _judge_step_memory(inp, out, want: dict) -> None:
    """After the first call (never clipped) the memory is each gradient squared: it shows the gradients."""
    got = {k: out[f"s1_m_{k}"] for k in STEP_NAMES}
    for k in STEP_NAMES:
        assert_shape(f"memory[{k!r}]", got[k], want[k].shape)
    if all(np.allclose(v, 0) for v in got.values()):
        raise AssertionError(
            "the Adagrad memory is still all zeros after a step: it is never updated. Let adagrad_update change "
            "it in place (memory[name] += grad**2): m = m + g * g only rebinds a local name."
        )
    if np.allclose(got["E"], 0) and not np.allclose(want["E"], 0):
        raise AssertionError(
            "no gradient reaches the embedding E (its memory stays zero): the backward pass computes only part of "
            "the gradients. char_lm_loss_and_grads returns dE with the others."
        )
    last_only = _last_step_only_grads(inp)
    if all(close(got[k], last_only[k] ** 2, TOL) for k in last_only):
        raise AssertionError(
            "the RNN's gradients come from the last time step only: backpropagate through every step "
            "(rnn_backward, which char_lm_loss_and_grads calls)."
        )
    for k in STEP_NAMES:
        if not close(got[k], want[k], TOL):
            raise AssertionError(
                f"after one update, memory[{k!r}] {describe_mismatch(got[k], want[k], tol=TOL)} (compared with "
                "the squared gradients of PyTorch autograd): are all gradients computed, and added to the memory?"
            )


def _judge_step_returns(inp, out, want: dict, call: int) -> None:
    loss = float(out[f"loss{call}"])
    if not np.isclose(loss, want["loss"], rtol=1e-9):
        from_zeros = _step_oracle({**inp, "h0": np.zeros_like(inp["h0"])})[call - 1]["loss"]
        if np.isclose(loss, from_zeros, rtol=1e-9):
            raise AssertionError(
                f"the loss returned by call {call} is the one from a zero state: pass the h0 train_step is given "
                "on to char_lm_loss_and_grads (it carries the state over from the previous chunk)."
            )
        raise AssertionError(
            f"the loss returned by call {call} is {loss:.6g}, expected {want['loss']:.6g}, the mean cross-entropy "
            "per character that char_lm_loss_and_grads returns."
        )
    assert_shape("the last hidden state", out[f"h{call}"], want["h"].shape)
    if not close(out[f"h{call}"], want["h"], TOL):
        raise AssertionError("the hidden state returned is not the last one, h[:, -1] of this batch.")


def _judge_step_params(out, want: dict, call: int, tol: float, no_clip: dict | None) -> None:
    for k in STEP_NAMES:
        got, ref = out[f"s{call}_p_{k}"], want["p"][k]
        if close(got, ref, tol):
            continue
        if no_clip is not None and close(got, no_clip[k], tol):
            raise AssertionError(
                f"the gradients are not clipped: with clip={STEP_CLIPS[1]} the update must follow "
                "clip_gradients(grads, clip)."
            )
        raise AssertionError(
            f"params[{k!r}] after update {call} {describe_mismatch(got, ref, tol=tol)} (compared with autograd, "
            "clip_grad_norm_ and torch.optim.Adagrad)."
        )


def judge_train_step(inp, out):
    """Two calls from the same start: the first never clips (its memory shows the gradients), the second does."""
    want = _step_oracle(inp)
    _judge_step_returns(inp, out, want[0], 1)
    _judge_step_memory(inp, out, want[0]["m"])
    _judge_step_params(out, want[0], 1, TOL, None)
    _judge_step_returns(inp, out, want[1], 2)
    _judge_step_params(out, want[1], 2, CLIP_TOL, _step_oracle(inp, clips=(np.inf, np.inf))[1]["p"])
    for k in STEP_NAMES:
        if not close(out[f"s2_m_{k}"], want[1]["m"][k], CLIP_TOL):
            raise AssertionError(f"memory[{k!r}] after the second update is not the sum of squared gradients.")
