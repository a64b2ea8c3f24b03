"""Lab 01's self-checks: each diagnosis is triggered by a seeded wrong answer; the solution passes.

The reference answers are extracted from ``solutions/01_rnn_forward_numpy.ipynb`` (never kept in
labutils); the wrong answers are written here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from exercises import check_student_version, exercise_cells, run_cells

from labutils.checks import StudentCodeError, get_check, lab01

ROOT = Path(__file__).resolve().parent.parent
SOLUTION = ROOT / "solutions" / "01_rnn_forward_numpy.ipynb"


@pytest.fixture(scope="module")
def sol() -> dict:
    return run_cells(exercise_cells(SOLUTION).values())


# --------------------------------------------------------------------------------- softmax
def test_softmax_solution_passes(sol, capsys):
    lab01.check_softmax(sol["softmax"])
    assert "passed" in capsys.readouterr().out


def _naive(z):
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _axis0(z):
    e = np.exp(z - z.max(axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)


def _whole(z):
    e = np.exp(z - z.max())
    return e / e.sum()


def _no_keepdims_flat(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return (e / e.sum(axis=-1, keepdims=True)).reshape(len(z), -1)[:, :3]


@pytest.mark.parametrize(
    "wrong, message",
    [
        (_naive, "overflowed"),
        (_axis0, "down axis 0"),
        (_whole, "whole array"),
        (_no_keepdims_flat, "has shape"),
    ],
)
def test_softmax_diagnoses(wrong, message):
    with np.errstate(all="ignore"), pytest.raises(AssertionError, match=message):
        lab01.check_softmax(wrong)


def test_softmax_without_keepdims_raises_and_is_told_why():
    def no_keepdims(z):
        e = np.exp(z - z.max(axis=-1))
        return e / e.sum(axis=-1)

    with pytest.raises(StudentCodeError, match=r"(?s)no_keepdims raised ValueError.*keepdims=True.*z \(2, 7\)"):
        lab01.check_softmax(no_keepdims)


# ---------------------------------------------------------------------------- cell forward
def test_cell_forward_solution_passes(sol):
    lab01.check_cell_forward(sol["rnn_cell_forward"])


def _cell(
    sol, *, act=np.tanh, bias=True, hh_t=False, out_bias=True, apply_softmax=True, from_prev=False, transpose=False
):
    softmax = sol["softmax"]

    def f(x_t, h_prev, p):
        W_hh = p["W_hh"] if hh_t else p["W_hh"].T
        z = x_t @ p["W_xh"].T + h_prev @ W_hh + (p["b_h"] if bias else 0)
        h = act(z)
        src = h_prev if from_prev else h
        logits = src @ p["W_hy"].T + (p["b_y"] if out_bias else 0)
        y = softmax(logits) if apply_softmax else logits
        return (h.T, y.T) if transpose else (h, y)

    return f


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"bias": False}, "add the bias b_h"),
        ({"act": lambda z: np.maximum(z, 0)}, "ReLU"),
        ({"act": lambda z: 1 / (1 + np.exp(-z))}, "sigmoid"),
        ({"act": lambda z: z}, "apply np.tanh"),
        ({"hh_t": True}, r"W_hh transposed"),
        ({"out_bias": False}, "output bias b_y"),
        ({"apply_softmax": False}, "apply your softmax"),
        ({"from_prev": True}, "new\\* hidden state"),
        ({"transpose": True}, "column convention"),
    ],
)
def test_cell_forward_diagnoses(sol, kwargs, message):
    with pytest.raises(AssertionError, match=message):
        lab01.check_cell_forward(_cell(sol, **kwargs))


def test_cell_forward_result_wrong_everywhere_is_described(sol):
    with pytest.raises(AssertionError, match="h_next is the expected values times 2"):
        lab01.check_cell_forward(_cell(sol, act=lambda z: 2 * np.tanh(z)))


def test_cell_forward_product_the_wrong_way_round_is_explained(sol):
    def no_transpose(x_t, h_prev, p):
        z = x_t @ p["W_xh"] + h_prev @ p["W_hh"].T + p["b_h"]
        return np.tanh(z), sol["softmax"](np.tanh(z) @ p["W_hy"].T + p["b_y"])

    pattern = r"(?s)no_transpose raised ValueError: matmul.*x_t \(B, D\) @ W_xh.T \(D, H\) gives \(B, H\)"
    with pytest.raises(StudentCodeError, match=pattern) as info:
        lab01.check_cell_forward(no_transpose)
    assert "p {W_xh (5, 6)" in str(info.value)  # the shapes where it was raised


# ------------------------------------------------------------------------ sequence forward
def test_forward_solution_passes(sol):
    lab01.check_forward(sol["rnn_forward"])


def _forward(sol, mode):
    cell = sol["rnn_cell_forward"]

    def f(x, h0, p):
        B, T, _ = x.shape
        H, V = p["W_hh"].shape[0], p["W_hy"].shape[0]
        h = np.zeros((B, T + 1 if mode == "with_h0" else T, H))
        y = np.zeros((B, T, V))
        h_t = h0
        if mode == "with_h0":
            h[:, 0] = h0
        for t in range(T):
            if mode == "short" and t == T - 1:
                break
            h_new, y_t = cell(x[:, t + 1 if mode == "past_end" else t], h_t if mode != "stale" else h0, p)
            h_t = h_new
            h[:, t + 1 if mode == "with_h0" else t] = h_new
            if mode == "forgot_y":
                continue
            if mode == "last_only":
                y[:, -1] = y_t
            else:
                y[:, t] = y_t
        if mode == "columns":
            return h.transpose(2, 0, 1), y.transpose(2, 0, 1)
        return h, y

    return f


@pytest.mark.parametrize(
    "mode, message",
    [
        ("forgot_y", "never stored"),
        ("last_only", "only the last step"),
        ("with_h0", "not h0"),
        ("stale", "every step starts from h0"),
        ("columns", "column convention"),
        ("short", "the last time step is never computed"),
    ],
)
def test_forward_diagnoses(sol, mode, message):
    with pytest.raises(AssertionError, match=message):
        lab01.check_forward(_forward(sol, mode))


def test_forward_index_past_the_end_is_explained(sol):
    with pytest.raises(StudentCodeError, match=r"(?s)IndexError: index 4 is out of bounds.*loop over range\(T\)"):
        lab01.check_forward(_forward(sol, "past_end"))


def test_forward_uses_the_cell_checks(sol):
    """A sequence loop around a wrong cell is caught too (nn.RNN is the oracle, not the cell)."""
    sol2 = dict(sol, rnn_cell_forward=_cell(sol, bias=False))
    with pytest.raises(AssertionError, match="does check_cell_forward pass.*add the bias b_h"):
        lab01.check_forward(_forward(sol2, "ok"))


def test_grade_ids_are_registered():
    for gid in ("lab01-softmax", "lab01-cell-forward", "lab01-forward"):
        assert get_check(gid).grade_id == gid


# ------------------------------------------------------------------ the student's notebook
def test_student_stubs_fail_and_pasted_solutions_pass():
    check_student_version("01_rnn_forward_numpy")


# ------------------------------------------------ slips written into the solution's own cells
SOFTMAX, CELL, FORWARD = "lab01-softmax-code", "lab01-cell-forward-code", "lab01-forward-code"
LOOP = "        h_t, y_hat[:, t] = rnn_cell_forward(x[:, t], h_t, params)\n        h[:, t] = h_t"
BUFFERS = "    h = np.zeros((B, T, H))\n    y_hat = np.zeros((B, T, V))\n    h_t = h0\n    for t in range(T):\n" + LOOP
AS_LISTS = (
    "    h, y_hat = [], []\n    h_t = h0\n    for t in range(T):\n"
    "        h_t, y_t = rnn_cell_forward(x[:, t], h_t, params)\n        h.append(h_t)\n        y_hat.append(y_t)"
)
#: name: (exercise cell, text of the solution, the slip written instead, what the message must say; None: passes)
SLIPS = {
    "softmax-sum-over-axis-1": (SOFTMAX, "e.sum(axis=-1,", "e.sum(axis=1,", "sums to 1 down axis 1"),
    "softmax-log-probabilities": (
        SOFTMAX,
        "return e / e.sum(axis=-1, keepdims=True)",
        "return shifted - np.log(e.sum(axis=-1, keepdims=True))",
        r"log-probabilities \(a log-softmax\)",
    ),
    "softmax-divided-by-max": (SOFTMAX, "e / e.sum(", "e / e.max(", r"divide exp\(\) by the \*sum\*"),
    "softmax-float32": (SOFTMAX, "np.exp(shifted)", "np.exp(shifted.astype(np.float32))", "float32 precision"),
    "softmax-shift-by-min": (SOFTMAX, "z.max(axis=-1,", "z.min(axis=-1,", "exp\\(\\) overflowed"),
    "softmax-in-place-shift-is-fine": (
        SOFTMAX,
        "shifted = z - z.max(axis=-1, keepdims=True)",
        "z -= z.max(axis=-1, keepdims=True)\n    shifted = z",
        None,
    ),
    "cell-no-recurrent-term": (CELL, ' + h_prev @ params["W_hh"].T', "", "without the recurrent term"),
    "cell-bias-twice": (CELL, '+ params["b_h"]', '+ 2 * params["b_h"]', "b_h added twice"),
    "cell-y-from-pre-activation": (CELL, "softmax(h_next @", "softmax(z_t @", "from the pre-activation z_t"),
    "cell-softmax-over-batch": (
        CELL,
        'y_hat_t = softmax(h_next @ params["W_hy"].T + params["b_y"])',
        'logits = h_next @ params["W_hy"].T + params["b_y"]\n'
        "    y_hat_t = np.exp(logits) / np.exp(logits).sum(axis=0, keepdims=True)",
        r"softmax over axis 0 \(the batch\)",
    ),
    "cell-returns-swapped": (CELL, "return h_next, y_hat_t", "return y_hat_t, h_next", r"returned \(y_hat_t, h_next\)"),
    "cell-writes-into-h_prev": (
        CELL,
        "h_next = np.tanh(z_t)",
        "h_prev[:] = np.tanh(z_t)\n    h_next = h_prev",
        "changed the array\\(s\\) it was given, h_prev, in place",
    ),
    "forward-stores-before-the-step": (
        FORWARD,
        LOOP,
        "        h[:, t] = h_t\n        h_t, y_hat[:, t] = rnn_cell_forward(x[:, t], h_t, params)",
        "one step late",
    ),
    "forward-stacks-time-first": (
        FORWARD,
        BUFFERS,
        AS_LISTS + "\n    h, y_hat = np.stack(h), np.stack(y_hat)",
        r"time-first.*np.stack\(states, axis=1\)",
    ),
    "forward-returns-lists": (FORWARD, BUFFERS, AS_LISTS, "time-first"),
    "forward-skips-step-0": (FORWARD, "for t in range(T):", "for t in range(1, T):", "step 0 is never computed"),
    "forward-writes-into-h0": (
        FORWARD,
        LOOP,
        "        new, y_hat[:, t] = rnn_cell_forward(x[:, t], h_t, params)\n"
        "        h_t[:] = new\n"
        "        h[:, t] = h_t",
        "changed the array\\(s\\) it was given, h0, in place",
    ),
    "forward-float32-buffers": (
        FORWARD,
        "np.zeros((B, T, H))",
        "np.zeros((B, T, H), dtype=np.float32)",
        "only to float32 precision",
    ),
}


@pytest.mark.parametrize("slip", SLIPS, ids=list(SLIPS))
def test_slips_in_the_solutions_cells(slip):
    from exercises import with_slip

    from labutils.checks import CheckFailed

    grade_id, old, new, message = SLIPS[slip]
    ns = run_cells(with_slip(exercise_cells(SOLUTION), grade_id, old, new).values())
    check = get_check(grade_id.removesuffix("-code"))
    if message is None:
        check(*(ns[name] for name in check.needs))
        return
    with np.errstate(all="ignore"), pytest.raises(CheckFailed, match=message):
        check(*(ns[name] for name in check.needs))


def test_a_step_read_time_first_points_at_the_arguments(sol):
    from exercises import with_slip

    cells = with_slip(exercise_cells(SOLUTION), FORWARD, "rnn_cell_forward(x[:, t],", "rnn_cell_forward(x[t],")
    ns = run_cells(cells.values())
    with pytest.raises(StudentCodeError, match=r"(?s)look at the arguments rnn_forward passes to it.*x_t \(4, 6\)"):
        lab01.check_forward(ns["rnn_forward"])
