"""Lab 08's optional self-check passes the solution's one-step backward pass and names each seeded slip."""

from pathlib import Path

import numpy as np
import pytest
import torch
from exercises import exercise_cells, run_cells

from labutils.checks import StudentCodeError, get_check, lab08

SOLUTION = Path(__file__).resolve().parent.parent / "solutions" / "08_appendix_fast_gru.ipynb"


def _solution():
    """The solution's gru_step_backward, as the notebook defines it."""
    return run_cells([exercise_cells(SOLUTION)["lab08-step-backward-code"]], {"torch": torch})["gru_step_backward"]


def step_backward(kind="ok"):
    """A one-step backward pass with one seeded slip (tests only)."""

    def f(delta, h_prev, r, z, n, gh_n, W_hh):
        tanh_prime = 1 - n if kind == "tanh_of_n" else 1 - n**2
        d_an = delta * (z if kind == "z_for_1_minus_z" else 1 - z) * tanh_prime
        d_az = delta * ((n - h_prev) if kind == "sign_of_dz" else (h_prev - n)) * z * (1 - z)
        d_ar = d_an * (1 if kind == "no_gh_n" else gh_n) * r * (1 - r)
        d_gh = torch.cat([d_ar, d_az, d_an if kind == "no_r_in_dgh" else r * d_an], dim=1)
        through_gh = d_gh @ (W_hh.T if kind == "transposed_W" else W_hh)
        d_h_prev = through_gh if kind == "no_direct" else delta * z + through_gh
        if kind == "three":
            return d_ar, d_az, d_an
        return d_ar, d_az, d_an, d_h_prev

    return f


def test_the_check_is_registered():
    assert get_check("lab08-step-backward") is lab08.check_step_backward


def test_the_solution_and_the_reference_pass(capsys):
    lab08.check_step_backward(_solution())
    lab08.check_step_backward(step_backward())
    assert capsys.readouterr().out.count("all checks passed") == 2


def test_the_forward_step_of_the_inputs_is_a_gru_step():
    """The check's r, z, n, gh_n are nn.GRUCell's: h_t computed from them equals the cell's output."""
    inp = lab08.check_step_backward.inputs(0)
    H = lab08.H
    cell = torch.nn.GRUCell(H, H).double()
    x = torch.randn(lab08.B, H, dtype=torch.float64)
    with torch.no_grad():
        cell.weight_hh.copy_(torch.as_tensor(inp["W_hh"]))
        cell.bias_hh.copy_(torch.as_tensor(inp["b_hh"]))
        inp["gi"] = (x @ cell.weight_ih.T + cell.bias_ih).numpy()
        want = cell(x, torch.as_tensor(inp["h_prev"])).numpy()
    step = lab08.step_forward(inp)
    h_t = step["n"] + step["z"] * (inp["h_prev"] - step["n"])
    np.testing.assert_allclose(h_t, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "kind, message",
    [
        ("tanh_of_n", r"d_an .*The derivative of tanh is 1 - n\*\*2"),
        ("z_for_1_minus_z", r"d_an .*The derivative dh_t/dn_t is 1 - z_t, not z_t"),
        ("sign_of_dz", r"d_az has the wrong sign.*h_\{t-1\} - n_t, not n_t - h_\{t-1\}"),
        ("no_gh_n", r"d_ar .*The reset gate r_t multiplies g\^h_n inside the candidate, so dL/da_r carries .* gh_n"),
        ("no_direct", r"d_h_prev .*The direct path is missing"),
        ("no_r_in_dgh", r"d_h_prev .*The candidate's block of dL/dg\^h is r \* dL/da_n"),
        ("three", r"must return four tensors"),
    ],
)
def test_each_slip_is_named(kind, message):
    with pytest.raises(AssertionError, match=message):
        lab08.check_step_backward(step_backward(kind))


def test_a_product_with_the_transposed_weight_gets_advice():
    with pytest.raises(StudentCodeError, match=r"d_gh @ W_hh, without a transpose"):
        lab08.check_step_backward(step_backward("transposed_W"))


def test_the_stub_is_not_attempted():
    def stub(delta, h_prev, r, z, n, gh_n, W_hh):
        raise NotImplementedError()

    with pytest.raises(NotImplementedError, match="not attempted yet"):
        lab08.check_step_backward(stub)
