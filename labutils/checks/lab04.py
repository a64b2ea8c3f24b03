"""Self-checks of lab 04 (GRU and LSTM cells written with tensor operations): inputs, probes, hints.

* ``check_lstm_cell``: ``lstm_cell(x_t, h_prev, c_prev, W_ih, W_hh, b_ih, b_hh) -> (h_t, c_t)``
  against ``nn.LSTMCell`` with the same weights (gate blocks in PyTorch's order i, f, g, o).
* ``check_gru_cell``: ``gru_cell(x_t, h_prev, W_ih, W_hh, b_ih, b_hh) -> h_t`` against
  ``nn.GRUCell`` (gate blocks r, z, n).

Both compare the outputs and the gradients of a random linear loss with respect to every input
and weight (the judges are in ``labutils.checks.judges.lab04``).
"""

from __future__ import annotations

from .core import Check, as_numpy, grads_of, tensor64, unpack

B, D, H = 3, 4, 5
WEIGHTS = ("W_ih", "W_hh", "b_ih", "b_hh")
JUDGES = "labutils.checks.judges.lab04"


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


def _loss_term(t, g):
    """sum(t * g) when ``t`` has the expected shape (B, H), else nothing (the judge reports the shape)."""
    import torch

    return (t * g).sum() if tuple(t.shape) == (B, H) else torch.zeros((), dtype=torch.float64)


def _probe_lstm(objs, inp):
    import torch

    names = ["x_t", "h_prev", "c_prev", *WEIGHTS]
    tensors = {n: tensor64(inp[n], grad=True) for n in names}
    result = objs["lstm_cell"](*tensors.values())
    h, c = (torch.as_tensor(r) for r in unpack(result, 2, "lstm_cell must return two tensors, (h_t, c_t)"))
    loss = _loss_term(h, tensor64(inp["G_h"])) + _loss_term(c, tensor64(inp["G_c"]))
    return {"h_t": as_numpy(h), "c_t": as_numpy(c), **grads_of(loss, tensors)}


def _probe_gru(objs, inp):
    import torch

    names = ["x_t", "h_prev", *WEIGHTS]
    tensors = {n: tensor64(inp[n], grad=True) for n in names}
    result = objs["gru_cell"](*tensors.values())
    if isinstance(result, (tuple, list)):
        raise AssertionError("gru_cell must return one tensor, h_t (a GRU has no separate cell state).")
    h = torch.as_tensor(result)
    return {"h_t": as_numpy(h), **grads_of(_loss_term(h, tensor64(inp["G_h"])), tensors)}


def _hints(n_gates: int, names: str) -> dict:
    split = (
        f"The pre-activations x_t @ W_ih.T + b_ih (and h_prev @ W_hh.T + b_hh) are (B, {n_gates}H): the {n_gates} "
        f"gate blocks ({names}) lie side by side along dim 1. Split them with .chunk({n_gates}, dim=1); along "
        "dim 0 you would split the batch."
    )
    return {
        "matmul": f"W_ih is ({n_gates}H, D) and x_t is (B, D): x_t @ W_ih.T is (B, {n_gates}H); W_hh is "
        f"({n_gates}H, H) and h_prev @ W_hh.T is (B, {n_gates}H).",
        "unpack": split,
        "broadcast": f"A gate {n_gates} times too wide, or split across the batch? {split} A term of shape "
        f"({n_gates}H, B) comes from the column convention W_ih @ x_t.T: the labs are batch-first, x_t @ W_ih.T.",
        "dtype": "Keep every tensor as it is given (float64): no .float(), no NumPy.",
        "in-place operation": "The inputs are tensors whose gradients are tracked: do not write into them "
        "(c_prev *= f, h_prev += ..., x[...] = ...); compute new tensors, such as c_t = f * c_prev + i * g.",
    }


check_lstm_cell = Check(
    grade_id="lab04-lstm-cell",
    title="LSTM cell",
    needs=("lstm_cell",),
    make_inputs=lambda rng: _cell_inputs(rng, 4, True),
    probe=_probe_lstm,
    judge=f"{JUDGES}:judge_lstm",
    success="✔ lstm_cell equals nn.LSTMCell: h_t, c_t and the gradients with respect to every input match.",
    hints=_hints(4, "i, f, g, o"),
)

check_gru_cell = Check(
    grade_id="lab04-gru-cell",
    title="GRU cell",
    needs=("gru_cell",),
    make_inputs=lambda rng: _cell_inputs(rng, 3, False),
    probe=_probe_gru,
    judge=f"{JUDGES}:judge_gru",
    success="✔ gru_cell equals nn.GRUCell: h_t and the gradients with respect to every input match.",
    hints=_hints(3, "r, z, n"),
)
