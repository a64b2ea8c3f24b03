"""Judge of lab 08's optional check: one GRU step's backward pass against autograd.

The oracle is autograd through the same step written as a forward pass in float64, from the
check's raw inputs (the input half of the gates, h_{t-1}, W_hh, b_hh): the loss
``sum(h_t * delta)`` gives dL/dh_t = delta; its gradient with respect to the input half ``gi``
is, block by block, dL/da_r, dL/da_z and dL/da_n (each argument contains its block of ``gi``
once, unscaled); its gradient with respect to h_{t-1} is the whole of dL/dh_{t-1} within the
layer.  The slips are the same gradients with one factor of section 3 wrong.
"""

from __future__ import annotations

import numpy as np

from ..core import assert_shape
from ..lab08 import B, H
from .oracle import close, describe_mismatch, first_slip, tensor64


def _oracle(inp) -> dict:
    """dL/da_r, dL/da_z, dL/da_n and dL/dh_{t-1} by autograd through one GRU step."""
    import torch

    gi, h_prev = tensor64(inp["gi"], grad=True), tensor64(inp["h_prev"], grad=True)
    gh = h_prev @ tensor64(inp["W_hh"]).T + tensor64(inp["b_hh"])
    gi_r, gi_z, gi_n = gi.chunk(3, dim=1)
    gh_r, gh_z, gh_n = gh.chunk(3, dim=1)
    r, z = torch.sigmoid(gi_r + gh_r), torch.sigmoid(gi_z + gh_z)
    n = torch.tanh(gi_n + r * gh_n)
    h = n + z * (h_prev - n)
    d_gi, d_h_prev = torch.autograd.grad((h * tensor64(inp["delta"])).sum(), [gi, h_prev])
    d_ar, d_az, d_an = (g.numpy() for g in d_gi.chunk(3, dim=1))
    return {"d_ar": d_ar, "d_az": d_az, "d_an": d_an, "d_h_prev": d_h_prev.numpy()}


def _slips(inp, want: dict) -> dict:
    """For each output, (advice, result) pairs of the typical slips of section 3's equations."""
    delta, h_prev, r, z, n, gh_n, W_hh = (inp[k] for k in ("delta", "h_prev", "r", "z", "n", "gh_n", "W_hh"))
    d_an, d_ar, d_az = want["d_an"], want["d_ar"], want["d_az"]
    hidden = np.concatenate([d_ar, d_az, r * d_an], axis=1)  # dL/dg^h
    return {
        "d_an": [
            ("The derivative of tanh is 1 - n**2, in terms of its output n, not 1 - n.", delta * (1 - z) * (1 - n)),
            ("The derivative dh_t/dn_t is 1 - z_t, not z_t.", delta * z * (1 - n**2)),
        ],
        "d_az": [
            ("The derivative dh_t/dz_t is h_{t-1} - n_t, not n_t - h_{t-1}.", -d_az),
            ("The derivative of the sigmoid is z * (1 - z), in terms of its output z.", delta * (h_prev - n) * (1 - z)),
        ],
        "d_ar": [
            ("The reset gate r_t multiplies g^h_n inside the candidate, so dL/da_r carries the factor gh_n.",
             d_an * r * (1 - r)),
            ("The reset gate's own derivative r * (1 - r) is missing.", d_an * gh_n),
        ],
        "d_h_prev": [
            ("The direct path is missing: h_t = n_t + z_t * (h_{t-1} - n_t) also uses h_{t-1} itself, "
             "which adds delta * z.", hidden @ W_hh),
            ("The candidate's block of dL/dg^h is r * dL/da_n: g^h_n enters a_n multiplied by r_t.",
             delta * z + np.concatenate([d_ar, d_az, d_an], axis=1) @ W_hh),
        ],
    }  # fmt: skip


def judge_step_backward(inputs, outputs):
    """Each output against autograd, in the order of section 3 (d_ar uses d_an, d_h_prev all three)."""
    want = _oracle(inputs)
    slips = _slips(inputs, want)
    for name in ("d_an", "d_az", "d_ar", "d_h_prev"):
        got = outputs[name]
        assert_shape(name, got, (B, H))
        if close(got, want[name]):
            continue
        advice = first_slip(got, slips[name]) or "Compare it, factor by factor, with section 3's equation."
        raise AssertionError(f"{name} {describe_mismatch(got, want[name])}. {advice}")
