"""Self-check of lab 08, the optional appendix on a fast GRU layer: one step of its backward pass.

* ``check_step_backward``: ``gru_step_backward(delta, h_prev, r, z, n, gh_n, W_hh)`` ->
  ``(d_ar, d_az, d_an, d_h_prev)``, the gradients of section 3 for one time step, against
  autograd through the same step written as a forward pass (the judge is in
  ``labutils.checks.judges.lab08``).

It carries no points: the appendix is optional and ungraded; the check only tells the student
whether their derivation is right.
"""

from __future__ import annotations

import numpy as np

from .core import Check, as_numpy, tensor64, unpack

B, H = 3, 4
JUDGES = "labutils.checks.judges.lab08"
OUTPUTS = ("d_ar", "d_az", "d_an", "d_h_prev")


def _sigmoid(a):
    return 1 / (1 + np.exp(-a))


def step_forward(inp: dict) -> dict:
    """One GRU step from its inputs: the gates, the candidate and the hidden half of its argument.

    ``gi`` (B, 3H) is the input half of the gates' arguments, x_t W_ih^T + b_ih; ``W_hh`` (3H, H),
    ``b_hh`` (3H,) and ``h_prev`` (B, H) give the hidden half, h_{t-1} W_hh^T + b_hh.
    """
    gh = inp["h_prev"] @ inp["W_hh"].T + inp["b_hh"]
    gi_r, gi_z, gi_n = np.split(inp["gi"], 3, axis=1)
    gh_r, gh_z, gh_n = np.split(gh, 3, axis=1)
    r, z = _sigmoid(gi_r + gh_r), _sigmoid(gi_z + gh_z)
    n = np.tanh(gi_n + r * gh_n)
    return {"r": r, "z": z, "n": n, "gh_n": gh_n}


def _inputs(rng) -> dict:
    inp = {
        "gi": rng.normal(size=(B, 3 * H)),
        "h_prev": rng.normal(size=(B, H)) * 0.8,
        "W_hh": rng.normal(size=(3 * H, H)) * 0.6,
        "b_hh": rng.normal(size=3 * H) * 0.5,
        "delta": rng.normal(size=(B, H)),  # dL/dh_t: the loss is sum(h_t * delta)
    }
    return inp | step_forward(inp)


def _probe(objs, inp):
    names = ("delta", "h_prev", "r", "z", "n", "gh_n", "W_hh")
    result = objs["gru_step_backward"](*(tensor64(inp[k]) for k in names))
    arrays = unpack(result, 4, "gru_step_backward must return four tensors, (d_ar, d_az, d_an, d_h_prev)")
    return {name: as_numpy(a) for name, a in zip(OUTPUTS, arrays, strict=True)}


check_step_backward = Check(
    grade_id="lab08-step-backward",
    title="gru_step_backward",
    needs=("gru_step_backward",),
    make_inputs=_inputs,
    probe=_probe,
    judge=f"{JUDGES}:judge_step_backward",
    hints={
        "matmul": "d_h_prev's last term is a row of dL/dg^h, (B, 3H), times W_hh, (3H, H): d_gh @ W_hh, "
        "without a transpose.",
        "broadcast": "Every argument but W_hh is (B, H): the gate gradients are element-wise products of them; "
        "dL/dg^h stacks three of them side by side, (B, 3H), with torch.cat(..., dim=1).",
        "unpack": "gru_step_backward returns four tensors: d_ar, d_az, d_an, d_h_prev.",
    },
)

__all__ = ["check_step_backward", "step_forward"]
