"""Lab 02's self-checks: each diagnosis is triggered by a seeded wrong answer; the solution passes.

The reference answers are the exercise cells of ``solutions/02_bptt_numpy.ipynb``; the wrong
answers are written here.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import numpy as np
import pytest
from exercises import check_student_version

from labutils.checks import StudentCodeError, get_check, lab02

ROOT = Path(__file__).resolve().parent.parent
SOLUTION = ROOT / "solutions" / "02_bptt_numpy.ipynb"
GRADE_IDS = ("lab02-cell-backward", "lab02-backward", "lab02-clip", "lab02-adagrad", "lab02-train-step")


@pytest.fixture(scope="module")
def sol() -> dict:
    """The solution's code cells tagged numpy-lm: the exercises' answers and the given code they use."""
    from labutils.bench.numpy_lm import load_lab02_model

    return load_lab02_model(SOLUTION)


@pytest.mark.parametrize("grade_id", GRADE_IDS)
def test_solution_passes(sol, grade_id, capsys):
    check = get_check(grade_id)
    check(*(sol[name] for name in check.needs))
    assert "passed" in capsys.readouterr().out


# ---------------------------------------------------------------------------- cell backward
def _cell(mode):
    def f(dh_t, x_t, h_prev, h_t, p):
        deriv = {"no_tanh": 1.0, "at_prev": 1 - h_prev**2, "one_minus_h": 1 - h_t, "tanh_of_h": 1 - np.tanh(h_t) ** 2}
        deriv = deriv.get(mode, 1 - h_t**2)
        dz = dh_t * deriv
        g = {
            "dx_t": dz @ (p["W_xh"].T if mode == "dx_matmul" else p["W_xh"]),
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
        ("tanh_of_h", r"derivative of h_t: 1 - np.tanh\(h_t\)\*\*2 is tanh'\(h_t\)"),
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


def test_cell_backward_product_the_wrong_way_round_is_explained():
    with pytest.raises(StudentCodeError, match=r"(?s)raised ValueError: matmul.*dx_t = dz_t @ W_xh is \(B, D\)"):
        lab02.check_cell_backward(_cell("dx_matmul"))


# ------------------------------------------------------------------------ sequence backward
_CARRIED = {}  # a state kept between calls, as a global would


def _seq(sol, mode):
    cell = sol["rnn_cell_backward"]

    def f(dh, x, h0, h, p):
        B, T, _ = x.shape
        g = {"dx": np.zeros_like(x), "dW_xh": 0, "dW_hh": 0, "db_h": 0}
        if mode == "not_reset":
            g = _CARRIED.setdefault("g", g)  # the accumulators survive the call
        dh_next = dh[:, -1].copy() if mode == "dh_init_last" else np.zeros_like(h0)
        steps = {
            "forwards": range(T),
            "skip_last": reversed(range(T - 1)),
            "skip_first": range(T - 1, 0, -1),
            "past_end": reversed(range(T + 1)),
        }.get(mode, reversed(range(T)))
        for t in steps:
            h_prev = h[:, t - 1] if t > 0 or mode == "wrap" else h0
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
            if mode == "accumulate":
                dh_next = dh_next + s["dh_prev"]
            elif mode == "upstream":
                dh_next = upstream
            else:
                dh_next = s["dh_prev"]
        g["dh0"] = np.zeros_like(h0) if mode == "no_dh0" else dh_next
        return dict(g)

    return f


@pytest.mark.parametrize(
    "mode, message",
    [
        ("overwrite", "only the contribution of step 0"),
        ("keep_last", "only the contribution of the last step"),
        ("no_carry", "does not flow back through time"),
        ("last_only", r"Only dh\[:, -1\] is used"),
        ("no_dh0", "dh0 is all zeros"),
        ("forwards", "runs forwards in time"),
        ("skip_last", r"The last step, t = T - 1, is never computed"),
        ("skip_first", "Step 0 is never computed"),
        ("wrap", r"h\[:, -1\], the \*last\* state"),
        ("dh_init_last", "counted twice"),
        ("accumulate", "dh_next adds up the dh_prev of every later step"),
        ("upstream", "not passed back through the cell"),
        ("not_reset", "called twice with the same inputs"),
    ],
)
def test_backward_diagnoses(sol, mode, message):
    _CARRIED.clear()
    with pytest.raises(AssertionError, match=message):
        lab02.check_backward(_seq(sol, mode))


def test_backward_index_past_the_end_is_explained(sol):
    with pytest.raises(StudentCodeError, match=r"(?s)IndexError.*reversed\(range\(T\)\)"):
        lab02.check_backward(_seq(sol, "past_end"))


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
        if mode == "squared":
            return {k: g * min(1, max_norm / total) for k, g in grads.items()}, total**2
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
        ("squared", r"the \*squared\* global norm: take its square root"),
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
            if mode == "no_eps":
                memory[name] += g * g
                p -= lr * g / np.sqrt(memory[name])
                continue
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
        ("no_eps", "0 / 0. That is what eps is for"),
    ],
)
def test_adagrad_diagnoses(mode, message):
    with np.errstate(all="ignore"), pytest.raises(AssertionError, match=message):
        lab02.check_adagrad(_adagrad(mode))


def test_adagrad_memory_rebound_in_a_zip_loop_is_never_updated():
    """The seed tutorial's form: the loop variable is rebound, the memory never changes."""

    def zipped(params, grads, memory, lr, eps=1e-8):
        for (name, p), m in zip(params.items(), memory.values()):
            g = grads["d" + name]
            m = m + g * g
            p -= lr * g / (np.sqrt(m) + eps)

    with pytest.raises(AssertionError, match="memory is still all zeros"):
        lab02.check_adagrad(zipped)


def test_adagrad_gradient_names_without_the_d_are_explained():
    def bare_names(params, grads, memory, lr, eps=1e-8):
        for name, p in params.items():
            memory[name] += grads[name] ** 2
            p -= lr * grads[name] / (np.sqrt(memory[name]) + eps)

    with pytest.raises(StudentCodeError, match=r'(?s)KeyError: .W_xh.*grads\["dW_hh"\].*dW_xh \(6, 4\)'):
        lab02.check_adagrad(bare_names)


# ----------------------------------------------------------------------- the training step
def _train_step(sol, mode):
    loss_and_grads, clip, adagrad = sol["char_lm_loss_and_grads"], sol["clip_gradients"], sol["adagrad_update"]

    def f(params, memory, inputs, targets, h0, lr, max_norm=5.0):
        loss, grads, h_last = loss_and_grads(params, inputs, targets, h0)
        if mode == "no_dE":
            grads["dE"] = np.zeros_like(params["E"])
        if mode == "last_step_only":  # the seed tutorial's partial backward pass
            x = params["E"][inputs]
            h = sol["rnn_forward"](x, h0, params)
            _, dh, _, _ = sol["output_loss_and_grads"](h, targets, params["W_hy"], params["b_y"])
            last = sol["rnn_cell_backward"](dh[:, -1], x[:, -1], h[:, -2], h[:, -1], params)
            grads.update(dW_xh=last["dW_xh"], dW_hh=last["dW_hh"], db_h=last["db_h"])
        if mode != "no_clip":
            grads, _ = clip(grads, max_norm)
        if mode == "memory_never_updated":
            adagrad(params, grads, {k: np.zeros_like(v) for k, v in memory.items()}, lr)
        else:
            adagrad(params, grads, memory, lr)
        return loss, h_last

    return f


@pytest.mark.parametrize(
    "mode, message",
    [
        ("no_dE", "no gradient reaches the embedding E"),
        ("last_step_only", "the RNN's gradients come from the last time step only"),
        ("memory_never_updated", "memory is still all zeros after a step: it is never updated"),
        ("no_clip", "the gradients are not clipped"),
    ],
)
def test_train_step_diagnoses(sol, mode, message):
    with pytest.raises(AssertionError, match=message):
        lab02.check_train_step(_train_step(sol, mode))


def test_the_buggy_step_of_the_lab_fails_its_fix_check(sol):
    """The notebook's spot-the-bug code, run through the check, is caught (both bugs named first)."""
    nb = nbformat.read(SOLUTION, as_version=4)
    source = next(c.source for c in nb.cells if c.source.startswith("def train_step_buggy"))
    ns = dict(sol)
    exec(compile(source, "<notebook cell>", "exec"), ns)
    with pytest.raises(AssertionError, match="never updated"):
        lab02.check_train_step(ns["train_step_buggy"])


# ------------------------------------------------------------------ the student's notebook
def test_student_stubs_fail_and_pasted_solutions_pass(sol):
    given = {k: v for k, v in sol.items() if k not in ("rnn_cell_backward", "rnn_backward", "clip_gradients")}
    check_student_version("02_bptt_numpy", given=given)


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
        "train_step",
        "train_char_lm",
    ):
        assert callable(ns[name]), name


def test_bench_refuses_without_solutions(tmp_path):
    from labutils.bench.numpy_lm import load_lab02_model

    with pytest.raises(FileNotFoundError, match="student release"):
        load_lab02_model(tmp_path / "02_bptt_numpy.ipynb")


# ------------------------------------------------ slips written into the solution's own cells
CB, BW, CL, AD, TS = (f"lab02-{name}-code" for name in ("cell-backward", "backward", "clip", "adagrad", "train-step"))
#: name: (exercise cell, text of the solution, the slip written instead, what the message must say; None: passes)
SLIPS = {
    "cell-sigmoid-derivative": (CB, "dh_t * (1.0 - h_t**2)", "dh_t * h_t * (1.0 - h_t)", "the sigmoid's derivative"),
    "cell-dW_xh-from-h_prev": (CB, '"dW_xh": dz.T @ x_t', '"dW_xh": dz.T @ h_prev', r"dz_t.T @ x_t \(x_t is what"),
    "cell-dx-through-W_hh": (CB, '"dx_t": dz @ params["W_xh"]', '"dx_t": dz @ params["W_hh"]', r"dx_t has the shape"),
    "cell-dh_prev-without-W_hh": (CB, '"dh_prev": dz @ params["W_hh"]', '"dh_prev": dz', "leaves out W_hh"),
    "cell-dW_hh-from-h_t": (CB, '"dW_hh": dz.T @ h_prev', '"dW_hh": dz.T @ h_t', "dW_hh uses h_t"),
    "cell-in-place-dz-is-fine": (CB, "dz = dh_t * (1.0 - h_t**2)", "dh_t *= 1.0 - h_t**2\n    dz = dh_t", None),
    "bptt-h_prev-is-h_t": (
        BW,
        "h_prev = h[:, t - 1] if t > 0 else h0",
        "h_prev = h[:, t]",
        r"the state \*after\* step t",
    ),
    "bptt-zeros-before-step-0": (
        BW,
        "else h0\n",
        "else np.zeros_like(h0)\n",
        "At t = 0 you used zeros",
    ),
    "bptt-dx-never-written": (BW, '        grads["dx"][:, t] = step["dx_t"]\n', "", "np.empty_like holds whatever"),
    "bptt-dx-one-step-early": (BW, 'grads["dx"][:, t] =', 'grads["dx"][:, t - 1] =', "dx is one step early"),
    "clip-upside-down": (
        CL,
        "scale = min(1.0, max_norm / (norm + 1e-12))",
        "scale = norm / max_norm if norm > max_norm else 1.0",
        "norm / max_norm, upside down",
    ),
    "clip-in-place-is-fine": (
        CL,
        "return {name: g * scale for name, g in grads.items()}, norm",
        "for g in grads.values():\n        g *= scale\n    return grads, norm",
        None,
    ),
    "adagrad-memory-of-gradients": (AD, "memory[name] += g * g", "memory[name] += g", r"adds their \*squares\*"),
    "adagrad-eps-inside-the-root": (
        AD,
        "(np.sqrt(memory[name]) + eps)",
        "np.sqrt(memory[name] + eps)",
        "eps is inside the square root",
    ),
    "adagrad-params-rebound-in-the-dict-is-fine": (
        AD,
        "        p -= lr * g / (np.sqrt(memory[name]) + eps)",
        "        params[name] = p - lr * g / (np.sqrt(memory[name]) + eps)",
        None,
    ),
    "step-from-a-zero-state": (
        TS,
        "char_lm_loss_and_grads(params, inputs, targets, h0)",
        "char_lm_loss_and_grads(params, inputs, targets, np.zeros_like(h0))",
        "the one from a zero state: pass the h0",
    ),
}


@pytest.mark.parametrize("slip", SLIPS, ids=list(SLIPS))
def test_slips_in_the_solutions_cells(sol, slip):
    from exercises import exercise_cells, with_slip

    from labutils.checks import CheckFailed

    grade_id, old, new, message = SLIPS[slip]
    ns = dict(sol)
    exec(compile(with_slip(exercise_cells(SOLUTION), grade_id, old, new)[grade_id], "<notebook cell>", "exec"), ns)
    check = get_check(grade_id.removesuffix("-code"))
    if message is None:
        check(*(ns[name] for name in check.needs))
        return
    with np.errstate(all="ignore"), pytest.raises(CheckFailed, match=message):
        check(*(ns[name] for name in check.needs))


def test_clip_norm_of_a_list_of_arrays_is_explained():
    def linalg_list(grads, max_norm):
        norm = np.linalg.norm(list(grads.values()))
        return {k: g * min(1, max_norm / norm) for k, g in grads.items()}, norm

    with pytest.raises(StudentCodeError, match=r"(?s)inhomogeneous.*sum\(np.sum\(g\*\*2\) for g in grads.values\(\)\)"):
        lab02.check_clip(linalg_list)
