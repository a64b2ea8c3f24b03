"""Self-checks of lab 03 (deep RNNs in PyTorch).

* ``check_stacked_forward``: a 2-layer RNN stacked from ``nn.RNNCell`` s against
  ``nn.RNN(num_layers=2)`` with the same weights -- outputs, final states and every gradient.
* ``check_windows``: the (5 words -> the 6th) window builder, judged by invariants (each row is
  a contiguous run of the sequence, the target is the word that follows, windows start every
  ``stride`` words and none that fits is left out).
* ``check_model_forward``: the next-word model's ``forward`` against ``nn.Embedding`` ->
  ``nn.RNN`` -> ``nn.Linear`` on the last step, rebuilt from the student's own weights.

The judges recompute their oracles from PyTorch layers in float64 and, when an answer is off,
compare it with the oracles of the usual slips to say what went wrong.
"""

from __future__ import annotations

import numpy as np

from .core import Check, assert_shape, rel_error

TOL = 1e-9  # float64 against float64: only rounding differs
GRAD_TOL = 1e-7

# Sizes of the random problems: all different, so that a swapped axis shows in the shape.
B, T, D, H, L = 3, 5, 4, 6, 2


def _t(a, grad: bool = False):
    import torch

    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def _np(t) -> np.ndarray:
    return t.detach().numpy()


def _close(a, b, tol: float = TOL) -> bool:
    return np.shape(a) == np.shape(b) and bool(np.all(np.isfinite(a))) and rel_error(a, b) <= tol


def _grads_of(loss, tensors: dict) -> dict:
    """Gradients of ``loss`` with respect to named tensors; zeros where the graph does not reach."""
    import torch

    names = list(tensors)
    if loss.grad_fn is None:  # computed outside autograd (NumPy, .detach(), no_grad)
        return {f"grad_{n}": np.zeros(tuple(tensors[n].shape)) for n in names}
    grads = torch.autograd.grad(loss, [tensors[n] for n in names], allow_unused=True)
    return {
        f"grad_{n}": np.zeros(tuple(tensors[n].shape)) if g is None else g.detach().numpy()
        for n, g in zip(names, grads, strict=True)
    }


def _judge_grads(out: dict, oracle: dict, outputs_ok: bool, what: str) -> None:
    """Compare every ``grad_*`` array with the oracle's; explain a mismatch."""
    for key, want in oracle.items():
        got = out[key]
        assert_shape(key, got, want.shape)
        if rel_error(got, want) <= GRAD_TOL:
            continue
        name = key.removeprefix("grad_")
        if np.allclose(got, 0):
            raise AssertionError(
                f"no gradient reaches {name}: is {what} computed with torch operations on the given tensors "
                "(no NumPy, no .detach(), no .item(), no torch.no_grad())?"
            )
        if outputs_ok:
            raise AssertionError(
                f"the outputs are right but the gradient with respect to {name} is not "
                f"(relative error {rel_error(got, want):.1e}): is the hidden state detached, or copied with "
                ".data, somewhere in the loop? Backpropagation through time needs the whole graph."
            )
        raise AssertionError(f"the gradient with respect to {name} is off (relative error {rel_error(got, want):.1e}).")


# -------------------------------------------------------------------- stacked forward
LAYER_KEYS = ("W_ih", "W_hh", "b_ih", "b_hh")


def _stacked_inputs(rng):
    inp = {"x": rng.normal(size=(B, T, D)), "h0": rng.normal(size=(L, B, H)) * 0.5}
    for l in range(L):
        d_in = D if l == 0 else H
        inp[f"W_ih{l}"] = rng.normal(size=(H, d_in)) * 0.5
        inp[f"W_hh{l}"] = rng.normal(size=(H, H)) * 0.4
        inp[f"b_ih{l}"] = rng.normal(size=H) * 0.2
        inp[f"b_hh{l}"] = rng.normal(size=H) * 0.2
    inp["G_out"] = rng.normal(size=(B, T, H))  # the loss is sum(output * G_out) + sum(h_n * G_hn)
    inp["G_hn"] = rng.normal(size=(L, B, H))
    return inp


def _param_names(l: int) -> dict:
    """Our names of layer ``l``'s weights -> PyTorch's names in ``nn.RNN`` / ``nn.RNNCell``."""
    return {f"W_ih{l}": "weight_ih", f"W_hh{l}": "weight_hh", f"b_ih{l}": "bias_ih", f"b_hh{l}": "bias_hh"}


def _probe_stacked(objs, inp):
    import torch
    from torch import nn

    cells = []
    for l in range(L):
        cell = nn.RNNCell(D if l == 0 else H, H).double()
        with torch.no_grad():
            for ours, theirs in _param_names(l).items():
                getattr(cell, theirs).copy_(_t(inp[ours]))
        cells.append(cell)
    x, h0 = _t(inp["x"], grad=True), _t(inp["h0"], grad=True)
    result = objs["stacked_rnn_forward"](x, cells, h0)
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise AssertionError("stacked_rnn_forward must return two things: (output, h_n).")
    output, h_n = (torch.as_tensor(r) for r in result)
    out = {"output": _np(output), "h_n": _np(h_n)}
    loss = 0.0
    if tuple(output.shape) == (B, T, H):
        loss = loss + (output * _t(inp["G_out"])).sum()
    if tuple(h_n.shape) == (L, B, H):
        loss = loss + (h_n * _t(inp["G_hn"])).sum()
    tensors = {"x": x, "h0": h0}
    for l, cell in enumerate(cells):
        tensors.update({ours: getattr(cell, theirs) for ours, theirs in _param_names(l).items()})
    if isinstance(loss, float):
        out.update({f"grad_{n}": np.zeros(tuple(t.shape)) for n, t in tensors.items()})
    else:
        out.update(_grads_of(loss, tensors))
    return out


def _rnn(inp, n_layers: int = L, first: int = 0, d_in: int = D):
    """``nn.RNN`` of ``n_layers`` layers, float64, holding our layers ``first..first+n_layers-1``."""
    import torch
    from torch import nn

    rnn = nn.RNN(d_in, H, num_layers=n_layers, batch_first=True).double()
    with torch.no_grad():
        for k in range(n_layers):
            for ours, theirs in _param_names(first + k).items():
                getattr(rnn, f"{theirs}_l{k}").copy_(_t(inp[ours]))
    return rnn


def _stacked_oracle(inp):
    """nn.RNN(num_layers=2): outputs and the gradients of the same loss."""
    rnn = _rnn(inp)
    x, h0 = _t(inp["x"], grad=True), _t(inp["h0"], grad=True)
    output, h_n = rnn(x, h0)
    loss = (output * _t(inp["G_out"])).sum() + (h_n * _t(inp["G_hn"])).sum()
    tensors = {"x": x, "h0": h0}
    for l in range(L):
        tensors.update({ours: getattr(rnn, f"{theirs}_l{l}") for ours, theirs in _param_names(l).items()})
    return _np(output), _np(h_n), _grads_of(loss, tensors)


def _stacked_slips(inp) -> list[tuple[str, np.ndarray]]:
    """Outputs of the usual slips, each built from single-layer ``nn.RNN`` s."""
    import torch

    x, h0 = _t(inp["x"]), _t(inp["h0"])
    bottom, top = _rnn(inp, 1, 0, D), _rnn(inp, 1, 1, H)
    with torch.no_grad():
        out1, _ = bottom(x, h0[:1])
        zeros = torch.zeros_like(h0)
        lagged = torch.cat([h0[:1].transpose(0, 1), out1[:, :-1]], dim=1)  # h^1_{t-1} instead of h^1_t
        return [
            ("output holds the first layer's states: a stacked RNN outputs the states of its top layer.", _np(out1)),
            (
                "h0 is ignored: each layer l must start from its own initial state h0[l].",
                _np(_rnn(inp)(x, zeros)[0]),
            ),
            (
                "the layers start from each other's initial states: layer l starts from h0[l] "
                "(h0[0] is the bottom layer's).",
                _np(_rnn(inp)(x, h0.flip(0))[0]),
            ),
            (
                "the second layer reads the first layer's previous state h^1_{t-1}; at step t it must read the "
                "new one, h^1_t, computed just before in the same step.",
                _np(top(lagged, h0[1:])[0]),
            ),
        ]


def _judge_stacked(inp, out):
    output, h_n = out["output"], out["h_n"]
    hints = {
        (T, B, H): "This is time-first: stack the per-step states along dim=1, (B, T, H), as batch_first=True does.",
        (B, H): "That is one step only: output must hold the top layer's state at every step.",
    }
    assert_shape("output", output, (B, T, H), hints.get(tuple(np.shape(output)), ""))
    hn_hints = {
        (B, H): "h_n must hold the final state of *each* layer: torch.stack([h_layer1, h_layer2]), shape (L, B, H).",
        (B, L, H): "Stack the layers' final states along dim=0: h_n is (num_layers, B, H) even with batch_first.",
    }
    assert_shape("h_n", h_n, (L, B, H), hn_hints.get(tuple(np.shape(h_n)), ""))
    out_ok, hn_ok, grads_ok = _stacked_oracle(inp)
    if not _close(output, out_ok):
        for hint, slip in _stacked_slips(inp):
            if _close(output, slip):
                raise AssertionError(f"output is wrong: {hint}")
        if _close(output[:, 0], out_ok[:, 0]):
            raise AssertionError(
                "output is right at t = 0 but not later: is each layer's new state carried to the next step "
                "(h[l] = cell(input, h[l]) inside the loop over t)?"
            )
        raise AssertionError(
            f"output differs from nn.RNN(num_layers=2) (relative error {rel_error(output, out_ok):.1e}). At each step "
            "t: h1 = cells[0](x[:, t], h1), then h2 = cells[1](h1, h2); output[:, t] = h2."
        )
    if not _close(h_n, hn_ok):
        if _close(h_n, hn_ok[::-1]):
            raise AssertionError("h_n lists the layers top first: h_n[0] must be the bottom layer's final state.")
        if _close(h_n, np.broadcast_to(out_ok[:, -1], h_n.shape)):
            raise AssertionError("every row of h_n holds the top layer's final state: h_n[l] is layer l's own.")
        raise AssertionError("output is right but h_n is not: h_n[l] is layer l's state after the last step.")
    _judge_grads(out, grads_ok, True, "output")


check_stacked_forward = Check(
    grade_id="lab03-stacked-forward",
    title="2-layer RNN stacked from cells",
    needs=("stacked_rnn_forward",),
    make_inputs=_stacked_inputs,
    probe=_probe_stacked,
    judge=_judge_stacked,
    success="✔ stacked_rnn_forward equals nn.RNN(num_layers=2): outputs, final states and all gradients match.",
)


# ------------------------------------------------------------------------------ windows
CASES = ((5, 1), (5, 3), (4, 2), (5, 7))  # (n, stride) pairs tried on the same sequence
N_IDS = 23


def _windows_inputs(rng):
    return {"ids": rng.permutation(1000)[:N_IDS].astype(np.int64), "short": rng.permutation(50)[:6].astype(np.int64)}


def _probe_windows(objs, inp):
    f = objs["make_windows"]
    out = {}
    for k, (n, stride) in enumerate(CASES):
        X, y = f(inp["ids"].copy(), n, stride)
        out[f"X{k}"], out[f"y{k}"] = X, y
    X, y = f(inp["short"].copy(), 5, 1)
    out["X_short"], out["y_short"] = X, y
    return out


def _judge_one_window_set(ids, X, y, n: int, stride: int, label: str) -> None:
    N = len(ids)
    expected_m = (N - n - 1) // stride + 1  # windows start at 0, stride, ... while a target follows
    if np.asarray(X).ndim == 2 and np.shape(X) == (n, expected_m) and n != expected_m:
        raise AssertionError(f"X {label} has shape {np.shape(X)}, expected {(expected_m, n)}: one window per *row*.")
    if not np.issubdtype(np.asarray(X).dtype, np.integer) or not np.issubdtype(np.asarray(y).dtype, np.integer):
        raise AssertionError(
            f"X and y {label} must hold integer ids (int64), got {np.asarray(X).dtype} and {np.asarray(y).dtype}: "
            "nn.Embedding and cross_entropy need integer indices."
        )
    assert_shape(f"y {label}", y, (np.shape(X)[0] if np.ndim(X) else None,), "one target per window.")
    position = {int(v): i for i, v in enumerate(ids)}  # the ids are distinct: each value names its position
    if np.ndim(X) != 2 or np.shape(X)[1] != n:
        raise AssertionError(f"X {label} has shape {np.shape(X)}, expected (number of windows, {n}).")
    starts = []
    for i, (row, target) in enumerate(zip(np.asarray(X), np.asarray(y), strict=True)):
        p = position.get(int(row[0]), -1)
        if p < 0 or p + n > N or not np.array_equal(row, ids[p : p + n]):
            raise AssertionError(f"X[{i}] {label} is not {n} consecutive ids of the sequence.")
        if p + n < N and target == ids[p + n]:
            starts.append(p)
            continue
        if target == ids[p + n - 1]:
            raise AssertionError(
                f"y[{i}] {label} is the last word *inside* the window; the target is the word that follows it: "
                "y[i] = ids[start + n]."
            )
        raise AssertionError(f"y[{i}] {label} is not the word that follows window X[{i}].")
    if not starts:
        raise AssertionError(f"there are no windows {label}; expected {expected_m}.")
    if starts[0] != 0:
        raise AssertionError(f"the first window {label} starts at position {starts[0]}; it should start at 0.")
    steps = np.diff(starts)
    if len(steps) and np.any(steps != stride):
        if np.all(steps == 1) and stride != 1:
            raise AssertionError(f"windows {label} start every word: the stride ({stride}) is ignored.")
        raise AssertionError(f"windows {label} should start every {stride} words, got steps {sorted(set(steps))}.")
    if len(starts) < expected_m:
        raise AssertionError(
            f"{len(starts)} windows {label}, expected {expected_m}: the last window(s) are missing. A window may "
            f"start at any position p with p + n <= N - 1 (its target ids[p + n] must exist), p = 0, stride, ..."
        )
    if len(starts) > expected_m:  # cannot happen for valid windows, kept as a guard
        raise AssertionError(f"{len(starts)} windows {label}, expected {expected_m}.")


def _judge_windows(inp, out):
    for k, (n, stride) in enumerate(CASES):
        _judge_one_window_set(inp["ids"], out[f"X{k}"], out[f"y{k}"], n, stride, f"for n={n}, stride={stride}")
    _judge_one_window_set(inp["short"], out["X_short"], out["y_short"], 5, 1, "for a sequence of 6 ids")


check_windows = Check(
    grade_id="lab03-windows",
    title="window builder",
    needs=("make_windows",),
    make_inputs=_windows_inputs,
    probe=_probe_windows,
    judge=_judge_windows,
)


# -------------------------------------------------------------------------- model forward
MV, ME, MH, ML, MB, MT = 11, 4, 6, 2, 3, 5  # vocabulary, embedding, hidden, layers, batch, window
MODEL_PARAMS = (
    ["embedding.weight"]
    + [f"rnn.{k}_l{l}" for l in range(ML) for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    + ["out.weight", "out.bias"]
)


def _key(name: str) -> str:
    return name.replace(".", "__")


def _model_inputs(rng):
    return {"x": rng.integers(0, MV, size=(MB, MT)).astype(np.int64), "G": rng.normal(size=(MB, MV))}


def _probe_model(objs, inp):
    import torch

    torch.manual_seed(0)
    model = objs["NextWordRNN"](MV, ME, MH, ML).double()
    params = dict(model.named_parameters())
    missing = [p for p in MODEL_PARAMS if p not in params]
    if missing:
        raise AssertionError(
            f"NextWordRNN has no parameter(s) {missing}: keep the given __init__ (self.embedding, self.rnn, self.out); "
            "only forward is the exercise."
        )
    logits = torch.as_tensor(model(torch.as_tensor(inp["x"])))
    out = {"logits": _np(logits)}
    out.update({f"param_{_key(p)}": _np(params[p]) for p in MODEL_PARAMS})
    loss = (logits * _t(inp["G"])).sum() if tuple(logits.shape) == (MB, MV) else torch.zeros(())
    out.update(_grads_of(loss, {_key(p): params[p] for p in MODEL_PARAMS}))
    return out


def _model_oracle(inp, out):
    """Embedding -> nn.RNN -> Linear with the student's weights; every step's states too."""
    import torch
    from torch import nn

    emb, rnn, lin = nn.Embedding(MV, ME).double(), nn.RNN(ME, MH, ML, batch_first=True).double(), nn.Linear(MH, MV)
    lin = lin.double()
    modules = {"embedding": emb, "rnn": rnn, "out": lin}
    with torch.no_grad():
        for p in MODEL_PARAMS:
            owner, name = p.split(".")
            getattr(modules[owner], name).copy_(_t(out[f"param_{_key(p)}"]))
    states, h_n = rnn(emb(torch.as_tensor(inp["x"])))
    logits = lin(states[:, -1])
    loss = (logits * _t(inp["G"])).sum()
    grads = _grads_of(loss, {_key(p): getattr(modules[p.split(".")[0]], p.split(".")[1]) for p in MODEL_PARAMS})
    return logits, states, h_n, lin, grads


def _judge_model(inp, out):
    import torch

    logits = out["logits"]
    ok, states, h_n, lin, grads = _model_oracle(inp, out)
    hints = {
        (MB, MT, MV): "That is a prediction at every step (many-to-many). The next word is predicted from the "
        "last step only: output[:, -1] (or h_n[-1]).",
        (MB, MH): "That is the hidden state: pass it through self.out to get one logit per vocabulary word.",
        (MT, MB, MV): "Time-first: self.rnn is batch_first, so its output is (B, T, H).",
        (MB * MT, MV): "Flattened steps: keep only the last step of each window.",
    }
    assert_shape("logits", logits, (MB, MV), hints.get(tuple(np.shape(logits)), ""))
    with torch.no_grad():
        ok_np = _np(ok)
        slips = [
            ("logits come from the first step of the window: use the last one, output[:, -1].", lin(states[:, 0])),
            (
                "logits come from h_n[0], the *first* layer's final state; the top layer's is h_n[-1] "
                "(the same as output[:, -1]).",
                lin(h_n[0]),
            ),
            (
                "logits come from the mean over time; the next word is predicted from the last step.",
                lin(states.mean(1)),
            ),
            ("softmax was applied: return raw logits (cross_entropy applies log-softmax itself).", ok.softmax(-1)),
            ("log-softmax was applied: return raw logits (cross_entropy applies it itself).", ok.log_softmax(-1)),
        ]
    if not _close(logits, ok_np):
        for hint, slip in slips:
            if _close(logits, _np(slip)):
                raise AssertionError(f"logits are wrong: {hint}")
        raise AssertionError(
            f"logits differ from Embedding -> nn.RNN -> Linear on the last step (relative error "
            f"{rel_error(logits, ok_np):.1e}): embed x, run self.rnn, apply self.out to the top layer's last state."
        )
    _judge_grads(out, grads, True, "forward")


check_model_forward = Check(
    grade_id="lab03-model-forward",
    title="next-word model forward",
    needs=("NextWordRNN",),
    make_inputs=_model_inputs,
    probe=_probe_model,
    judge=_judge_model,
    success="✔ NextWordRNN.forward matches Embedding -> nn.RNN -> Linear on the last step (outputs and gradients).",
)
