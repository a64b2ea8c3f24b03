"""Judges of lab 03's checks: ``nn.RNN`` oracles in float64, invariants of windows, the slips.

* stacked forward: ``nn.RNN(num_layers=2)`` with the cells' weights copied in; the slips are built
  from single-layer ``nn.RNN`` s (the first layer's states returned, h0 ignored or swapped, the
  second layer reading the first layer's previous state).
* windows: invariants only (no reference implementation).
* model forward: Embedding -> nn.RNN -> Linear rebuilt from the student's own weights; the slips
  read another step, another layer, or apply a softmax.
"""

from __future__ import annotations

import numpy as np

from ..core import assert_shape, grads_of, param_key
from ..lab03 import CASES, MB, ME, MH, ML, MODEL_PARAMS, MT, MV, B, D, H, L, T, param_names
from .oracle import as_numpy, close, describe_mismatch, first_slip, judge_grads, load_weights, params_of, tensor64


# -------------------------------------------------------------------- stacked forward
def _rnn(inp, n_layers: int = L, first: int = 0, d_in: int = D):
    """``nn.RNN`` of ``n_layers`` layers, float64, holding our layers ``first..first+n_layers-1``."""
    import torch
    from torch import nn

    rnn = nn.RNN(d_in, H, num_layers=n_layers, batch_first=True).double()
    with torch.no_grad():
        for k in range(n_layers):
            for ours, theirs in param_names(first + k).items():
                getattr(rnn, f"{theirs}_l{k}").copy_(tensor64(inp[ours]))
    return rnn


def _stacked_oracle(inp):
    """nn.RNN(num_layers=2): outputs and the gradients of the same loss."""
    rnn = _rnn(inp)
    x, h0 = tensor64(inp["x"], grad=True), tensor64(inp["h0"], grad=True)
    output, h_n = rnn(x, h0)
    loss = (output * tensor64(inp["G_out"])).sum() + (h_n * tensor64(inp["G_hn"])).sum()
    tensors = {"x": x, "h0": h0}
    for l in range(L):
        tensors.update({ours: getattr(rnn, f"{theirs}_l{l}") for ours, theirs in param_names(l).items()})
    return as_numpy(output), as_numpy(h_n), grads_of(loss, tensors)


def _stacked_slips(inp) -> list[tuple[str, np.ndarray]]:
    """Outputs of the usual slips, each built from single-layer ``nn.RNN`` s."""
    import torch

    x, h0 = tensor64(inp["x"]), tensor64(inp["h0"])
    bottom, top = _rnn(inp, 1, 0, D), _rnn(inp, 1, 1, H)
    with torch.no_grad():
        out1, _ = bottom(x, h0[:1])
        lagged = torch.cat([h0[:1].transpose(0, 1), out1[:, :-1]], dim=1)  # h^1_{t-1} instead of h^1_t
        return [
            ("output holds the first layer's states: a stacked RNN outputs the states of its top layer.", out1),
            (
                "h0 is ignored: each layer l must start from its own initial state h0[l].",
                _rnn(inp)(x, torch.zeros_like(h0))[0],
            ),
            (
                "the layers start from each other's initial states: layer l starts from h0[l] "
                "(h0[0] is the bottom layer's).",
                _rnn(inp)(x, h0.flip(0))[0],
            ),
            (
                "the second layer reads the first layer's previous state h^1_{t-1}; at step t it must read the "
                "new one, h^1_t, computed just before in the same step.",
                top(lagged, h0[1:])[0],
            ),
        ]


_OUTPUT_HINTS = {
    (T, B, H): "This is time-first: stack the per-step states along dim=1, (B, T, H), as batch_first=True does.",
    (B, H): "That is one step only: output must hold the top layer's state at every step.",
    (B, T - 1, H): "One step short: does the loop over time run over range(T), T = x.shape[1]?",
    (B, T * H): "torch.cat joins the steps along an existing axis: torch.stack(outputs, dim=1) adds the time axis, "
    "(B, T, H).",
}
_HN_HINTS = {
    (B, H): "h_n must hold the final state of *each* layer: torch.stack([h_layer1, h_layer2]), shape (L, B, H).",
    (B, L, H): "Stack the layers' final states along dim=0: h_n is (num_layers, B, H) even with batch_first.",
    (T, B, H): "h_n holds every step's top state: it is each layer's state after the *last* step, (L, B, H).",
    (B, T, H): "h_n holds every step's top state: it is each layer's state after the *last* step, (L, B, H).",
}


def judge_stacked(inp, out):
    output, h_n = out["output"], out["h_n"]
    assert_shape("output", output, (B, T, H), _OUTPUT_HINTS.get(tuple(np.shape(output)), ""))
    assert_shape("h_n", h_n, (L, B, H), _HN_HINTS.get(tuple(np.shape(h_n)), ""))
    out_ok, hn_ok, grads_ok = _stacked_oracle(inp)
    if not close(output, out_ok):
        slip = first_slip(output, _stacked_slips(inp))
        if slip:
            raise AssertionError(f"output is wrong: {slip}")
        if close(output[:, :-1], out_ok[:, :-1]) and np.allclose(output[:, -1], 0):
            raise AssertionError("output is all zeros at the last step: the last time step is never computed.")
        if close(output[:, 0], out_ok[:, 0]):
            raise AssertionError(
                f"output {describe_mismatch(output, out_ok, time_axis=1)}: right at t = 0, so is each layer's new "
                "state carried to the next step (h[l] = cell(input, h[l]) inside the loop over t)?"
            )
        raise AssertionError(
            f"output {describe_mismatch(output, out_ok, time_axis=1)} (compared with nn.RNN(num_layers=2)). At each "
            "step t: h1 = cells[0](x[:, t], h1), then h2 = cells[1](h1, h2); output[:, t] = h2."
        )
    if not close(h_n, hn_ok):
        if close(h_n, hn_ok[::-1]):
            raise AssertionError("h_n lists the layers top first: h_n[0] must be the bottom layer's final state.")
        if close(h_n, np.broadcast_to(out_ok[:, -1], h_n.shape)):
            raise AssertionError("every row of h_n holds the top layer's final state: h_n[l] is layer l's own.")
        raise AssertionError("output is right but h_n is not: h_n[l] is layer l's state after the last step.")
    judge_grads(out, grads_ok, "output")


# ------------------------------------------------------------------------------ windows
def _judge_dtypes(X, y, label: str) -> None:
    X, y = np.asarray(X), np.asarray(y)
    if not np.issubdtype(X.dtype, np.integer) or not np.issubdtype(y.dtype, np.integer):
        raise AssertionError(
            f"X and y {label} must hold integer ids (int64), got {X.dtype} and {y.dtype}: "
            "nn.Embedding and cross_entropy need integer indices."
        )
    if X.dtype != np.int64 or y.dtype != np.int64:
        raise AssertionError(
            f"X and y {label} must be int64, got {X.dtype} and {y.dtype}: cross_entropy takes its targets as int64 "
            "(torch.long). Build them with dtype=np.int64 (or .astype(np.int64))."
        )


def _window_starts(ids, X, y, n: int, label: str) -> list[int]:
    """The start of each window in ``ids``; raises if a row is not a window or its target is wrong."""
    N = len(ids)
    position = {int(v): i for i, v in enumerate(ids)}  # the ids are distinct: each value names its position
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
    return starts


def _judge_one_window_set(ids, X, y, n: int, stride: int, label: str) -> None:
    expected_m = (len(ids) - n - 1) // stride + 1  # windows start at 0, stride, ... while a target follows
    if np.asarray(X).ndim == 2 and np.shape(X) == (n, expected_m) and n != expected_m:
        raise AssertionError(f"X {label} has shape {np.shape(X)}, expected {(expected_m, n)}: one window per *row*.")
    _judge_dtypes(X, y, label)
    assert_shape(f"y {label}", y, (np.shape(X)[0] if np.ndim(X) else None,), "one target per window.")
    if np.ndim(X) != 2 or np.shape(X)[1] != n:
        raise AssertionError(f"X {label} has shape {np.shape(X)}, expected (number of windows, {n}).")
    starts = _window_starts(ids, X, y, n, label)
    if not starts:
        raise AssertionError(f"there are no windows {label}; expected {expected_m}.")
    if starts[0] != 0:
        raise AssertionError(f"the first window {label} starts at position {starts[0]}; it should start at 0.")
    steps = np.diff(starts)
    if len(steps) and np.any(steps != stride):
        if np.all(steps == 1) and stride != 1:
            raise AssertionError(f"windows {label} start every word: the stride ({stride}) is ignored.")
        raise AssertionError(
            f"windows {label} should start every {stride} words, got steps {sorted(set(steps.tolist()))}."
        )
    if len(starts) < expected_m:
        raise AssertionError(
            f"{len(starts)} windows {label}, expected {expected_m}: the last window(s) are missing. A window may "
            f"start at any position p with p + n <= N - 1 (its target ids[p + n] must exist), p = 0, stride, ..."
        )


def judge_windows(inp, out):
    for k, (n, stride) in enumerate(CASES):
        _judge_one_window_set(inp["ids"], out[f"X{k}"], out[f"y{k}"], n, stride, f"for n={n}, stride={stride}")
    _judge_one_window_set(inp["short"], out["X_short"], out["y_short"], 5, 1, "for a sequence of 6 ids")


# -------------------------------------------------------------------------- model forward
def _model_oracle(inp, out):
    """Embedding -> nn.RNN -> Linear with the student's weights; every step's states too."""
    import torch
    from torch import nn

    emb, rnn = nn.Embedding(MV, ME).double(), nn.RNN(ME, MH, ML, batch_first=True).double()
    lin = nn.Linear(MH, MV).double()
    modules = {"embedding": emb, "rnn": rnn, "out": lin}
    load_weights(modules, out, MODEL_PARAMS)
    states, h_n = rnn(emb(torch.as_tensor(inp["x"])))
    logits = lin(states[:, -1])
    loss = (logits * tensor64(inp["G"])).sum()
    params = params_of(modules)
    grads = grads_of(loss, {param_key(p): params[p] for p in MODEL_PARAMS})
    return logits, states, h_n, lin, grads


_LOGIT_HINTS = {
    (MB, MT, MV): "That is a prediction at every step (many-to-many). The next word is predicted from the "
    "last step only: output[:, -1] (or h_n[-1]).",
    (MB, MH): "That is the hidden state: pass it through self.out to get one logit per vocabulary word.",
    (MT, MB, MV): "Time-first: self.rnn is batch_first, so its output is (B, T, H).",
    (MB * MT, MV): "Flattened steps: keep only the last step of each window.",
    (ML, MB, MV): "That is a prediction from every layer's final state, self.out(h_n): the next word is predicted "
    "from the top layer's only, h_n[-1] (the same as output[:, -1]).",
    (MT, MV): "That is one prediction per step of the last window: states[-1] indexes the batch axis. With "
    "batch_first=True the steps are axis 1: states[:, -1].",
    (ML, MV): "That is one prediction per layer: self.rnn returns (output, h_n), in that order, and output[:, -1] "
    "(or h_n[-1]) is (B, H).",
    (
        MB,
    ): "That is one number per window (an argmax?): return the logits (B, V); cross_entropy takes them as they are.",
}


def judge_model(inp, out):
    import torch

    logits = out["logits"]
    assert_shape("logits", logits, (MB, MV), _LOGIT_HINTS.get(tuple(np.shape(logits)), ""))
    ok, states, h_n, lin, grads = _model_oracle(inp, out)
    ok_np = as_numpy(ok)
    if not close(logits, ok_np):
        with torch.no_grad():
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
            slip = first_slip(logits, slips)
        if slip:
            raise AssertionError(f"logits are wrong: {slip}")
        raise AssertionError(
            f"logits {describe_mismatch(logits, ok_np)} (compared with Embedding -> nn.RNN -> Linear on the last "
            "step): embed x, run self.rnn, apply self.out to the top layer's last state."
        )
    judge_grads(out, grads, "forward")
