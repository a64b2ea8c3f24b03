"""Self-checks of lab 03 (deep RNNs in PyTorch): inputs, probes, and hints for errors.

* ``check_stacked_forward``: a 2-layer RNN stacked from ``nn.RNNCell`` s against
  ``nn.RNN(num_layers=2)`` with the same weights -- outputs, final states and every gradient.
* ``check_windows``: the (5 words -> the 6th) window builder, judged by invariants (each row is
  a contiguous run of the sequence, the target is the word that follows, windows start every
  ``stride`` words, none that fits is left out, the arrays are int64).
* ``check_model_forward``: the next-word model's ``forward`` against ``nn.Embedding`` ->
  ``nn.RNN`` -> ``nn.Linear`` on the last step, rebuilt from the student's own weights.

The judges (``labutils.checks.judges.lab03``) recompute their oracles from PyTorch layers in
float64 and, when an answer is off, compare it with the oracles of the usual slips.
"""

from __future__ import annotations

from .core import Check, as_numpy, given_params, grads_of, param_arrays, param_key, tensor64, unpack

# Sizes of the random problems: all different, so that a swapped axis shows in the shape.
B, T, D, H, L = 3, 5, 4, 6, 2
JUDGES = "labutils.checks.judges.lab03"


# -------------------------------------------------------------------- stacked forward
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


def param_names(l: int) -> dict:
    """Our names of layer ``l``'s weights -> PyTorch's names in ``nn.RNN`` / ``nn.RNNCell``."""
    return {f"W_ih{l}": "weight_ih", f"W_hh{l}": "weight_hh", f"b_ih{l}": "bias_ih", f"b_hh{l}": "bias_hh"}


def _one_tensor(value, name: str, how: str):
    """``value`` as a tensor, or ``AssertionError`` if it is a list of tensors still to be stacked (``how``)."""
    import torch

    if isinstance(value, (list, tuple)):
        raise AssertionError(
            f"stacked_rnn_forward returned {name} as a {type(value).__name__} of {len(value)}: make it one tensor, "
            f"{how}."
        )
    return torch.as_tensor(value)


def _probe_stacked(objs, inp):
    import torch
    from torch import nn

    cells = []
    for l in range(L):
        cell = nn.RNNCell(D if l == 0 else H, H).double()
        with torch.no_grad():
            for ours, theirs in param_names(l).items():
                getattr(cell, theirs).copy_(tensor64(inp[ours]))
        cells.append(cell)
    x, h0 = tensor64(inp["x"], grad=True), tensor64(inp["h0"], grad=True)
    result = objs["stacked_rnn_forward"](x, cells, h0)
    output, h_n = unpack(result, 2, "stacked_rnn_forward must return (output, h_n)")
    output = _one_tensor(output, "output", "torch.stack(outputs, dim=1), (B, T, H)")
    h_n = _one_tensor(h_n, "h_n", "torch.stack(h), (num_layers, B, H)")
    out = {"output": as_numpy(output), "h_n": as_numpy(h_n)}
    loss = torch.zeros((), dtype=torch.float64)
    if tuple(output.shape) == (B, T, H):
        loss = loss + (output * tensor64(inp["G_out"])).sum()
    if tuple(h_n.shape) == (L, B, H):
        loss = loss + (h_n * tensor64(inp["G_hn"])).sum()
    tensors = {"x": x, "h0": h0}
    for l, cell in enumerate(cells):
        tensors.update({ours: getattr(cell, theirs) for ours, theirs in param_names(l).items()})
    out.update(grads_of(loss, tensors))
    return out


check_stacked_forward = Check(
    grade_id="lab03-stacked-forward",
    title="2-layer RNN stacked from cells",
    needs=("stacked_rnn_forward",),
    make_inputs=_stacked_inputs,
    probe=_probe_stacked,
    judge=f"{JUDGES}:judge_stacked",
    success="✔ stacked_rnn_forward equals nn.RNN(num_layers=2): outputs, final states and all gradients match.",
    hints={
        "matmul": "cells[0] reads x[:, t], (B, D); every layer above reads the new state of the layer below it, "
        "(B, H). Pass each layer's output on as the next layer's input within the step. A cell is called as "
        "cell(input, hidden), the input first.",
        "in-place operation": "h0 is a tensor whose gradient is tracked: writing into it (h0[l] = ..., or h = h0 "
        "and then h[l] = ...) is an in-place change autograd refuses. Keep the states in a new list, h = list(h0), "
        "and rebind its entries.",
        "index": "x has T = x.shape[1] steps and h0 one state per layer, h0[l] for l in range(len(cells)).",
        "unpack": "An nn.RNNCell returns one tensor, the new state (B, H).",
        "type": "torch.stack takes a list of tensors: collect the per-step states in a list first.",
    },
)


# ------------------------------------------------------------------------------ windows
CASES = ((5, 1), (5, 3), (4, 2), (5, 7))  # (n, stride) pairs tried on the same sequence
N_IDS = 23


def _windows_inputs(rng):
    return {"ids": rng.permutation(1000)[:N_IDS].astype("int64"), "short": rng.permutation(50)[:6].astype("int64")}


def _probe_windows(objs, inp):
    f = objs["make_windows"]
    out = {}
    what = "make_windows must return two arrays, (X, y)"
    for k, (n, stride) in enumerate(CASES):
        out[f"X{k}"], out[f"y{k}"] = unpack(f(inp["ids"].copy(), n, stride), 2, what)
    out["X_short"], out["y_short"] = unpack(f(inp["short"].copy(), 5, 1), 2, what)
    return out


check_windows = Check(
    grade_id="lab03-windows",
    title="window builder",
    needs=("make_windows",),
    make_inputs=_windows_inputs,
    probe=_probe_windows,
    judge=f"{JUDGES}:judge_windows",
    hints={
        "index": "The target of a window starting at p is ids[p + n], which must exist: p + n <= N - 1, so the "
        "starts are range(0, N - n, stride).",
        "broadcast": "Window starts (M,) against offsets (n,): make the starts a column, starts[:, None] + "
        "np.arange(n), to get an (M, n) array of positions.",
    },
)


# -------------------------------------------------------------------------- model forward
MV, ME, MH, ML, MB, MT = 11, 4, 6, 2, 3, 5  # vocabulary, embedding, hidden, layers, batch, window
MODEL_PARAMS = (
    ["embedding.weight"]
    + [f"rnn.{k}_l{l}" for l in range(ML) for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    + ["out.weight", "out.bias"]
)


def _model_inputs(rng):
    return {"x": rng.integers(0, MV, size=(MB, MT)).astype("int64"), "G": rng.normal(size=(MB, MV))}


def _probe_model(objs, inp):
    import torch

    torch.manual_seed(0)
    model = objs["NextWordRNN"](MV, ME, MH, ML).double()
    params = given_params(model, MODEL_PARAMS)
    logits = torch.as_tensor(model(torch.as_tensor(inp["x"])))
    out = {"logits": as_numpy(logits), **param_arrays(params)}
    loss = (logits * tensor64(inp["G"])).sum() if tuple(logits.shape) == (MB, MV) else torch.zeros(())
    out.update(grads_of(loss, {param_key(p): params[p] for p in MODEL_PARAMS}))
    return out


check_model_forward = Check(
    grade_id="lab03-model-forward",
    title="next-word model forward",
    needs=("NextWordRNN",),
    make_inputs=_model_inputs,
    probe=_probe_model,
    judge=f"{JUDGES}:judge_model",
    success="✔ NextWordRNN.forward matches Embedding -> nn.RNN -> Linear on the last step (outputs and gradients).",
    hints={
        "matmul": "self.embedding turns ids (B, n) into vectors (B, n, E) for self.rnn; self.out maps H -> V and "
        "takes the top layer's last state, (B, H): output[:, -1] or h_n[-1].",
        "unpack": "self.rnn returns two things, (output, h_n): output (B, n, H) and h_n (num_layers, B, H).",
        "input dtype (torch.int64)": "self.rnn received the word ids themselves: embed them first, "
        "self.rnn(self.embedding(x)); the RNN reads vectors, (B, n, E).",
        "dtype": "x holds int64 word ids: give it to self.embedding as it is (no .float()).",
        "type": "self.rnn returns a tuple (output, h_n): unpack it before indexing.",
    },
)
