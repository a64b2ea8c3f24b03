"""Lab 04's self-checks pass the reference cells and name each seeded slip."""

import pytest
import torch
from exercises import check_student_version
from torch import nn

from labutils.checks import StudentCodeError, get_check, lab04


# ------------------------------------------------------------------ reference answers (tests only)
def lstm(kind="ok"):
    def cell(x_t, h_prev, c_prev, W_ih, W_hh, b_ih, b_hh):
        a = x_t @ W_ih.T + b_ih + h_prev @ W_hh.T + (0 if kind == "no_b_hh" else b_hh)
        i, f, g, o = a.chunk(4, dim=0 if kind == "chunk_dim0" else 1)
        if kind == "if_swapped":
            i, f = f, i
        if kind == "fo_swapped":
            f, o = o, f
        candidate = {"g_sigmoid": torch.sigmoid, "g_linear": lambda a: a}.get(kind, torch.tanh)
        i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), candidate(g), torch.sigmoid(o)
        if kind == "no_forget":
            c_t = i * g
        elif kind == "forget_is_one":
            c_t = c_prev + i * g
        else:
            c_t = f * c_prev + i * g
        if kind == "no_tanh":
            h_t = o * c_t
        elif kind == "no_output_gate":
            h_t = torch.tanh(c_t)
        else:
            h_t = o * torch.tanh(c_t)
        if kind == "swapped_return":
            return c_t, h_t
        if kind == "transposed":
            return h_t.T, c_t.T
        if kind == "detached_c":
            return h_t, c_t.detach()
        return h_t, c_t

    return cell


def gru(kind="ok"):
    def cell(x_t, h_prev, W_ih, W_hh, b_ih, b_hh):
        gi = x_t @ W_ih.T + b_ih
        gh = h_prev @ W_hh.T + (0 if kind == "no_b_hh" else b_hh)
        dim = 0 if kind == "chunk_dim0" else 1
        i_r, i_z, i_n = gi.chunk(3, dim=dim)
        h_r, h_z, h_n = gh.chunk(3, dim=dim)
        r = torch.sigmoid(i_r + h_r)
        z = torch.sigmoid(i_z + h_z)
        if kind == "rz_swapped":
            r, z = z, r
        H = h_prev.shape[1]
        W_hn, b_hn = W_hh[2 * H :], b_hh[2 * H :]
        n = {
            "no_reset": lambda: torch.tanh(i_n + h_n),
            "paper": lambda: torch.tanh(i_n + (r * h_prev) @ W_hn.T + b_hn),
            "b_hn_outside": lambda: torch.tanh(i_n + r * (h_prev @ W_hn.T) + b_hn),
            "r_on_input": lambda: torch.tanh(r * i_n + h_n),
            "r_on_both": lambda: torch.tanh(r * (i_n + h_n)),
            "r_after_tanh": lambda: r * torch.tanh(i_n + h_n),
        }.get(kind, lambda: torch.tanh(i_n + r * h_n))()
        if kind == "candidate":
            return n
        if kind == "z_flipped":
            return z * n + (1 - z) * h_prev
        if kind == "pair":
            return (1 - z) * n + z * h_prev, n
        if kind == "numpy":
            return ((1 - z) * n + z * h_prev).detach().numpy()
        if kind == "scaled":
            return -((1 - z) * n + z * h_prev)
        return (1 - z) * n + z * h_prev

    return cell


def test_lstm_passes_reference(capsys):
    lab04.check_lstm_cell(lstm())
    assert "equals nn.LSTMCell" in capsys.readouterr().out


@pytest.mark.parametrize(
    "kind, message",
    [
        ("if_swapped", "gates are swapped.*\\(f, i, g, o\\)"),
        ("fo_swapped", "gates are swapped.*\\(i, o, g, f\\)"),
        ("no_forget", "forget gate is missing"),
        ("forget_is_one", "forget gate f_t is not applied"),
        ("no_tanh", "the tanh is missing"),
        ("no_output_gate", "output gate is missing"),
        ("swapped_return", "h_t and c_t are swapped"),
        ("transposed", "batch-first"),
        ("no_b_hh", "b_hh is not added"),
        ("detached_c", "gradient"),
        ("g_sigmoid", "the candidate g_t goes through a sigmoid"),
        ("g_linear", "the candidate g_t has no activation"),
    ],
)
def test_lstm_names_slip(kind, message):
    with pytest.raises(AssertionError, match=message):
        lab04.check_lstm_cell(lstm(kind))


def test_gru_passes_reference(capsys):
    lab04.check_gru_cell(gru())
    assert "equals nn.GRUCell" in capsys.readouterr().out


@pytest.mark.parametrize(
    "kind, message",
    [
        ("rz_swapped", "gates are swapped.*\\(z, r, n\\)"),
        ("no_reset", "reset gate is missing"),
        ("candidate", "h_t is the candidate"),
        ("z_flipped", "z_t and 1 - z_t are swapped"),
        ("no_b_hh", "b_hh is not added"),
        ("pair", "must return one tensor"),
        ("numpy", "no gradient reaches"),
        ("paper", "that is the original paper's GRU"),
        ("b_hn_outside", "r_t multiplies h_prev @ W_hn.T but not b_hn"),
        ("r_on_input", "r_t scales the input part"),
        ("r_on_both", "r_t scales the whole pre-activation"),
        ("r_after_tanh", "r_t multiplies the candidate after the tanh"),
        ("scaled", "wrong sign"),
    ],
)
def test_gru_names_slip(kind, message):
    with pytest.raises(AssertionError, match=message):
        lab04.check_gru_cell(gru(kind))


def test_checks_registered_under_grade_ids():
    for gid in ("lab04-lstm-cell", "lab04-gru-cell"):
        assert get_check(gid).grade_id == gid


def test_lstm_gates_split_along_the_batch_are_explained():
    with pytest.raises(StudentCodeError, match=r"(?s)not enough values to unpack.*\.chunk\(4, dim=1\)"):
        lab04.check_lstm_cell(lstm("chunk_dim0"))


def test_gru_gates_split_along_the_batch_are_explained():
    with pytest.raises(StudentCodeError, match=r"(?s)must match the size.*\.chunk\(3, dim=1\)"):
        lab04.check_gru_cell(gru("chunk_dim0"))


# ------------------------------------------------------------------ the student's notebook
def test_student_stubs_are_not_attempted_and_pasted_solutions_pass():
    check_student_version("04_gru_lstm", given={"torch": torch, "nn": nn})


# ------------------------------------------------ slips written into the solution's own cells
SOLUTION = __import__("pathlib").Path(__file__).resolve().parent.parent / "solutions" / "04_gru_lstm.ipynb"
LSTM, GRU = "lab04-lstm-cell-code", "lab04-gru-cell-code"
#: name: (exercise cell, text of the solution, the slip written instead, what the message must say; None: passes)
SLIPS = {
    "lstm-h-from-c_prev": (LSTM, "o * torch.tanh(c_t)", "o * torch.tanh(c_prev)", "h_t reads the previous cell state"),
    "lstm-forget-h_prev": (LSTM, "f * c_prev", "f * h_prev", r"the previous \*cell\* state"),
    "lstm-input-gate-tanh": (
        LSTM,
        "i, f, g, o = torch.sigmoid(i)",
        "i, f, g, o = torch.tanh(i)",
        "gate i_t goes through",
    ),
    "lstm-forget-bias-one": (LSTM, "torch.sigmoid(f)", "torch.sigmoid(f + 1.0)", "has 1 added"),
    "lstm-writes-into-c_prev": (
        LSTM,
        "c_t = f * c_prev + i * g",
        "c_prev *= f\n    c_t = c_prev + i * g",
        r"(?s)in-place operation.*do not write into them",
    ),
    "lstm-column-convention": (LSTM, "x_t @ W_ih.T", "W_ih @ x_t.T", r"column convention W_ih @ x_t.T"),
    "lstm-float32": (LSTM, "gates = x_t @ W_ih.T", "gates = (x_t.float() @ W_ih.float().T).double()", "float32"),
    "lstm-chunk-last-dim-is-fine": (LSTM, "gates.chunk(4, dim=1)", "gates.chunk(4, dim=-1)", None),
    "gru-candidate-sigmoid": (GRU, "n = torch.tanh(", "n = torch.sigmoid(", "candidate n_t goes through a sigmoid"),
    "gru-update-gate-tanh": (GRU, "z = torch.sigmoid(", "z = torch.tanh(", "update gate z_t goes through a tanh"),
    "gru-z-for-r": (GRU, "x_n + r * h_n", "x_n + z * h_n", "scaled by z_t where the reset gate belongs"),
}


@pytest.mark.parametrize("slip", SLIPS, ids=list(SLIPS))
def test_slips_in_the_solutions_cells(slip):
    from exercises import exercise_cells, run_cells, with_slip

    from labutils.checks import CheckFailed

    grade_id, old, new, message = SLIPS[slip]
    ns = run_cells(["import torch\n", *with_slip(exercise_cells(SOLUTION), grade_id, old, new).values()])
    check = get_check(grade_id.removesuffix("-code"))
    if message is None:
        check(*(ns[name] for name in check.needs))
        return
    with pytest.raises((CheckFailed, StudentCodeError), match=message):
        check(*(ns[name] for name in check.needs))
