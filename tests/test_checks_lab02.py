"""Lab 02's self-checks: each diagnosis is triggered by a seeded wrong answer; the solution passes.

The reference answers are the exercise cells of ``solutions/02_bptt_numpy.ipynb``; the wrong
answers are written here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from exercises import exercise_cells, run_cells

from labutils.checks import get_check, lab02

ROOT = Path(__file__).resolve().parent.parent
SOLUTION = ROOT / "solutions" / "02_bptt_numpy.ipynb"
STUDENT = ROOT / "notebooks" / "02_bptt_numpy.ipynb"
GRADE_IDS = ("lab02-cell-backward", "lab02-backward", "lab02-clip", "lab02-adagrad")


@pytest.fixture(scope="module")
def sol() -> dict:
    return run_cells(exercise_cells(SOLUTION).values())


@pytest.mark.parametrize("grade_id", GRADE_IDS)
def test_solution_passes(sol, grade_id, capsys):
    check = get_check(grade_id)
    check(*(sol[name] for name in check.needs))
    assert "passed" in capsys.readouterr().out


# ---------------------------------------------------------------------------- cell backward
def _cell(mode):
    def f(dh_t, x_t, h_prev, h_t, p):
        deriv = {"no_tanh": 1.0, "at_prev": 1 - h_prev**2, "one_minus_h": 1 - h_t}.get(mode, 1 - h_t**2)
        dz = dh_t * deriv
        g = {
            "dx_t": dz @ p["W_xh"],
            "dh_prev": dz @ (p["W_hh"].T if mode == "hh_not_t" else p["W_hh"]),
            "dW_xh": x_t.T @ dz if mode == "xh_transposed" else dz.T @ x_t,
            "dW_hh": h_prev.T @ dz if mode == "hh_transposed" else dz.T @ h_prev,
            "db_h": dz if mode == "db_unsummed" else dz.mean(axis=0) if mode == "db_mean" else dz.sum(axis=0),
        }
        if mode == "missing_key":
            del g["db_h"]
        return g

    return f


@pytest.mark.parametrize(
    "mode, message",
    [
        ("no_tanh", "without tanh's derivative"),
        ("at_prev", "at h_prev"),
        ("one_minus_h", "squared"),
        ("hh_not_t", r"dz_t @ W_hh \(no \.T\)"),
        ("xh_transposed", "transposed"),
        ("hh_transposed", "transpose"),
        ("db_unsummed", "sum dz_t over the batch"),
        ("db_mean", "must be the sum"),
        ("missing_key", "has no"),
    ],
)
def test_cell_backward_diagnoses(mode, message):
    with pytest.raises(AssertionError, match=message):
        lab02.check_cell_backward(_cell(mode))


# ------------------------------------------------------------------------ sequence backward
def _seq(sol, mode):
    cell = sol["rnn_cell_backward"]

    def f(dh, x, h0, h, p):
        B, T, _ = x.shape
        g = {"dx": np.zeros_like(x), "dW_xh": 0, "dW_hh": 0, "db_h": 0}
        dh_next = np.zeros_like(h0)
        for t in reversed(range(T)):
            h_prev = h[:, t - 1] if t > 0 else h0
            upstream = dh[:, t] if mode != "last_only" or t == T - 1 else 0 * dh[:, t]
            if mode != "no_carry":
                upstream = upstream + dh_next
            s = cell(upstream, x[:, t], h_prev, h[:, t], p)
            g["dx"][:, t] = s["dx_t"]
            for k in ("dW_xh", "dW_hh", "db_h"):
                if mode == "overwrite":  # ends up holding step 0's contribution only
                    g[k] = s[k]
                elif mode == "keep_last":  # holds the last step's contribution only
                    g[k] = s[k] if t == T - 1 else g[k]
                else:
                    g[k] = g[k] + s[k]
            dh_next = s["dh_prev"]
        g["dh0"] = np.zeros_like(h0) if mode == "no_dh0" else dh_next
        return g

    return f


@pytest.mark.parametrize(
    "mode, message",
    [
        ("overwrite", "only the contribution of step 0"),
        ("keep_last", "only the contribution of the last step"),
        ("no_carry", "does not flow back through time"),
        ("last_only", r"Only dh\[:, -1\] is used"),
        ("no_dh0", "dh0 is all zeros"),
    ],
)
def test_backward_diagnoses(sol, mode, message):
    with pytest.raises(AssertionError, match=message):
        lab02.check_backward(_seq(sol, mode))


def test_backward_catches_a_wrong_cell(sol):
    sol2 = dict(sol, rnn_cell_backward=_cell("no_tanh"))
    with pytest.raises(AssertionError):
        lab02.check_backward(_seq(sol2, "ok"))


# ---------------------------------------------------------------------------------- clipping
def _clip(mode):
    def f(grads, max_norm):
        norms = {k: np.linalg.norm(g) for k, g in grads.items()}
        total = np.sqrt(sum(n**2 for n in norms.values()))
        if mode == "value":
            return {k: np.clip(g, -max_norm, max_norm) for k, g in grads.items()}, total
        if mode == "per_array":
            return {k: g * min(1, max_norm / norms[k]) for k, g in grads.items()}, total
        if mode == "always":
            return {k: g * max_norm / total for k, g in grads.items()}, total
        if mode == "sum_of_norms":
            s = sum(norms.values())
            return {k: g * min(1, max_norm / total) for k, g in grads.items()}, s
        raise ValueError(mode)

    return f


@pytest.mark.parametrize(
    "mode, message",
    [
        ("value", "clipping by value"),
        ("per_array", "its own norm"),
        ("always", "only scale gradients"),
        ("sum_of_norms", "sum of the arrays' norms"),
    ],
)
def test_clip_diagnoses(mode, message):
    with pytest.raises(AssertionError, match=message):
        lab02.check_clip(_clip(mode))


# ----------------------------------------------------------------------------------- Adagrad
def _adagrad(mode):
    def f(params, grads, memory, lr, eps=1e-8):
        for name, p in params.items():
            g = grads["d" + name]
            if mode == "rebind":
                m = memory[name] + g * g
                p -= lr * g / (np.sqrt(m) + eps)
                continue
            if mode == "not_in_place":
                memory[name] += g * g
                p = p - lr * g / (np.sqrt(memory[name]) + eps)
                continue
            if mode == "late_memory":
                p -= lr * g / (np.sqrt(memory[name]) + eps)
                memory[name] += g * g
                continue
            if mode == "no_accumulate":
                memory[name][...] = g * g
            else:
                memory[name] += g * g
            if mode == "uphill":
                p += lr * g / (np.sqrt(memory[name]) + eps)
            elif mode == "no_sqrt":
                p -= lr * g / (memory[name] + eps)
            else:
                p -= lr * g / (np.sqrt(memory[name]) + eps)

    return f


@pytest.mark.parametrize(
    "mode, message",
    [
        ("rebind", "memory is still all zeros"),
        ("not_in_place", "did not change"),
        ("late_memory", "before"),
        ("no_accumulate", "accumulates"),
        ("uphill", "uphill"),
        ("no_sqrt", "square root"),
    ],
)
def test_adagrad_diagnoses(mode, message):
    with np.errstate(all="ignore"), pytest.raises(AssertionError, match=message):
        lab02.check_adagrad(_adagrad(mode))


# ------------------------------------------------------------------ the student's notebook
def test_student_stubs_fail_and_pasted_solutions_pass():
    if not STUDENT.exists():
        pytest.skip("notebooks/ not generated (python -m labutils generate)")
    student, solution = exercise_cells(STUDENT), exercise_cells(SOLUTION)
    assert student.keys() == solution.keys()
    ns = run_cells(student.values())
    for gid in GRADE_IDS:
        check = get_check(gid)
        with pytest.raises(NotImplementedError):
            check(*(ns[name] for name in check.needs))
    ns = run_cells(solution[gid] for gid in student)
    for gid in GRADE_IDS:
        check = get_check(gid)
        check(*(ns[name] for name in check.needs))


def test_numpy_lm_cells_are_tagged():
    """The benchmark runs the model from these cells: they must define the model and its training."""
    from labutils.bench.numpy_lm import load_lab02_model

    ns = load_lab02_model(SOLUTION)
    for name in (
        "rnn_forward",
        "rnn_backward",
        "clip_gradients",
        "adagrad_update",
        "init_char_lm",
        "char_lm_loss_and_grads",
        "train_char_lm",
    ):
        assert callable(ns[name]), name


def test_bench_refuses_without_solutions(tmp_path):
    from labutils.bench.numpy_lm import load_lab02_model

    with pytest.raises(FileNotFoundError, match="student release"):
        load_lab02_model(tmp_path / "02_bptt_numpy.ipynb")
