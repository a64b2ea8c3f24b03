"""Lab 03's self-checks pass the reference answers and name each seeded slip."""

import numpy as np
import pytest
import torch
from exercises import check_student_version
from torch import nn

from labutils.checks import StudentCodeError, get_check, lab03


# ------------------------------------------------------------------ reference answers (tests only)
def stacked_ok(x, cells, h0):
    h = list(h0)
    outs = []
    for t in range(x.shape[1]):
        inp = x[:, t]
        for l, cell in enumerate(cells):
            h[l] = cell(inp, h[l])
            inp = h[l]
        outs.append(inp)
    return torch.stack(outs, dim=1), torch.stack(h)


def stacked_variant(kind):
    def f(x, cells, h0):
        h = [torch.zeros_like(h0[0]) for _ in cells] if kind == "no_h0" else list(h0)
        if kind == "h0_swapped":
            h = h[::-1]
        bottom, outs = [], []
        for t in range(x.shape[1] - 1 if kind == "short" else x.shape[1]):
            inp = x[:, t]
            prev = [v for v in h]
            for l, cell in enumerate(cells):
                source = prev[l - 1] if (kind == "lag" and l > 0) else x[:, t] if kind == "x_everywhere" else inp
                h[l] = cell(source, h[l])
                inp = h[l]
                if kind == "detach":  # the state carried to the next step loses its history
                    h[l] = h[l].detach()
            bottom.append(h[0])
            outs.append(inp)
        out = torch.stack(bottom if kind == "bottom" else outs, dim=1)
        hn = torch.stack(h)
        if kind == "time_first":
            out = out.transpose(0, 1)
        if kind == "hn_top_only":
            hn = h[-1]
        if kind == "hn_reversed":
            hn = hn.flip(0)
        if kind == "hn_every_step":
            hn = out.transpose(0, 1)
        if kind == "numpy":
            return out.detach().numpy(), hn.detach().numpy()
        return out, hn

    return f


def test_stacked_forward_passes_reference(capsys):
    lab03.check_stacked_forward(stacked_ok)
    assert "equals nn.RNN" in capsys.readouterr().out


@pytest.mark.parametrize(
    "kind, message",
    [
        ("bottom", "first layer's states"),
        ("no_h0", "h0 is ignored"),
        ("h0_swapped", "each other's initial states"),
        ("lag", "previous state"),
        ("detach", "detached"),
        ("time_first", "time-first"),
        ("hn_top_only", "final state of \\*each\\* layer"),
        ("hn_reversed", "top first"),
        ("numpy", "no gradient reaches"),
        ("short", "One step short: does the loop over time run over range"),
        ("hn_every_step", "h_n holds every step's top state"),
    ],
)
def test_stacked_forward_names_slip(kind, message):
    with pytest.raises(AssertionError, match=message):
        lab03.check_stacked_forward(stacked_variant(kind))


def test_stacked_forward_feeding_x_to_every_layer_is_explained():
    with pytest.raises(StudentCodeError, match="(?s)input_size.*every layer above reads the new state"):
        lab03.check_stacked_forward(stacked_variant("x_everywhere"))


# ---------------------------------------------------------------------------- windows
def windows_ok(ids, n, stride=1):
    starts = range(0, len(ids) - n, stride)
    return np.array([ids[s : s + n] for s in starts], dtype=np.int64), np.array([ids[s + n] for s in starts])


def windows_target_inside(ids, n, stride=1):
    X, _ = windows_ok(ids, n, stride)
    return X, X[:, -1].copy()


def windows_last_missing(ids, n, stride=1):
    starts = range(0, len(ids) - n - 1, stride)
    return np.array([ids[s : s + n] for s in starts]).reshape(-1, n), np.array([ids[s + n] for s in starts])


def windows_no_stride(ids, n, stride=1):
    return windows_ok(ids, n, 1)


def windows_float(ids, n, stride=1):
    X, y = windows_ok(ids, n, stride)
    return X.astype(float), y.astype(float)


def windows_int32(ids, n, stride=1):
    X, y = windows_ok(ids, n, stride)
    return X.astype(np.int32), y.astype(np.int32)


def windows_past_end(ids, n, stride=1):
    starts = range(0, len(ids) - n + 1, stride)  # the last start has no target
    return np.array([ids[s : s + n] for s in starts]), np.array([ids[s + n] for s in starts])


def windows_transposed(ids, n, stride=1):
    X, y = windows_ok(ids, n, stride)
    return X.T, y


def test_windows_pass_reference(capsys):
    lab03.check_windows(windows_ok)
    assert "passed" in capsys.readouterr().out


def test_windows_accept_tensors():
    lab03.check_windows(lambda ids, n, stride=1: tuple(torch.as_tensor(a) for a in windows_ok(ids, n, stride)))


@pytest.mark.parametrize(
    "f, message",
    [
        (windows_target_inside, "inside"),
        (windows_last_missing, "missing"),
        (windows_no_stride, "stride .* is ignored"),
        (windows_float, "integer ids"),
        (windows_int32, "must be int64, got int32"),
        (windows_transposed, "one window per \\*row\\*"),
    ],
)
def test_windows_name_slip(f, message):
    with pytest.raises(AssertionError, match=message):
        lab03.check_windows(f)


def test_windows_index_past_the_end_is_explained():
    with pytest.raises(StudentCodeError, match=r"(?s)IndexError.*range\(0, N - n, stride\)"):
        lab03.check_windows(windows_past_end)


# -------------------------------------------------------------------------- the model
def make_model(kind="ok"):
    class NextWordRNN(nn.Module):
        def __init__(self, vocab_size, embed_dim, hidden_size, num_layers):
            super().__init__()
            self.embedding = nn.Embedding(vocab_size, embed_dim)
            self.rnn = nn.RNN(embed_dim, hidden_size, num_layers=num_layers, batch_first=True)
            self.out = nn.Linear(hidden_size, vocab_size)

        def forward(self, x):
            states, h_n = self.rnn(self.embedding(x))
            if kind == "ok":
                return self.out(states[:, -1])
            if kind == "ok_hn":
                return self.out(h_n[-1])
            if kind == "all_steps":
                return self.out(states)
            if kind == "first_step":
                return self.out(states[:, 0])
            if kind == "first_layer":
                return self.out(h_n[0])
            if kind == "every_layer":
                return self.out(h_n)
            if kind == "scaled":
                return 2 * self.out(states[:, -1])
            if kind == "softmax":
                return self.out(states[:, -1]).softmax(-1)
            if kind == "hidden":
                return states[:, -1]
            if kind == "detached":
                return self.out(states[:, -1].detach())
            raise ValueError(kind)

    return NextWordRNN


@pytest.mark.parametrize("kind", ["ok", "ok_hn"])
def test_model_forward_passes_reference(kind):
    lab03.check_model_forward(make_model(kind))


@pytest.mark.parametrize(
    "kind, message",
    [
        ("all_steps", "every step"),
        ("first_step", "first step"),
        ("first_layer", "h_n\\[0\\]"),
        ("softmax", "softmax was applied"),
        ("hidden", "pass it through self.out"),
        ("detached", "no gradient reaches"),
        ("every_layer", "every layer's final state, self.out\\(h_n\\)"),
        ("scaled", "expected values times 2"),
    ],
)
def test_model_forward_names_slip(kind, message):
    with pytest.raises(AssertionError, match=message):
        lab03.check_model_forward(make_model(kind))


def test_model_forward_needs_given_init():
    class Renamed(nn.Module):
        def __init__(self, v, e, h, l):
            super().__init__()
            self.emb = nn.Embedding(v, e)
            self.rnn = nn.RNN(e, h, l, batch_first=True)
            self.out = nn.Linear(h, v)

        def forward(self, x):
            return self.out(self.rnn(self.emb(x))[0][:, -1])

    with pytest.raises(AssertionError, match="keep the given __init__"):
        lab03.check_model_forward(Renamed)


def test_checks_registered_under_grade_ids():
    for gid in ("lab03-stacked-forward", "lab03-windows", "lab03-model-forward"):
        assert get_check(gid).grade_id == gid


# ------------------------------------------------------------------ the student's notebook
def test_student_stubs_are_not_attempted_and_pasted_solutions_pass():
    check_student_version("03_deep_rnns", given={"torch": torch, "nn": nn})


# ------------------------------------------------ slips written into the solution's own cells
SOLUTION = __import__("pathlib").Path(__file__).resolve().parent.parent / "solutions" / "03_deep_rnns.ipynb"
PRELUDE = "import numpy as np\nimport torch\nfrom torch import nn\n"
SF, MF = "lab03-stacked-forward-code", "lab03-model-forward-code"
#: name: (exercise cell, text of the solution, the slip written instead, what the message must say; None: passes)
SLIPS = {
    "stacked-h_n-a-list": (SF, "torch.stack(h)", "h", r"returned h_n as a list of 2: make it one tensor, torch.stack"),
    "stacked-output-a-list": (SF, "torch.stack(outputs, dim=1)", "outputs", "returned output as a list of 5"),
    "stacked-output-concatenated": (SF, "torch.stack(outputs, dim=1)", "torch.cat(outputs, dim=1)", "torch.cat joins"),
    "stacked-cell-arguments-swapped": (
        SF,
        "cell(layer_input, h[l])",
        "cell(h[l], layer_input)",
        r"cell\(input, hidden\)",
    ),
    "stacked-writes-into-h0": (SF, "h = list(h0)", "h = h0", r"h0 is a tensor whose gradient is tracked"),
    "stacked-layer-by-layer-is-fine": (
        SF,
        "    h = list(h0)",
        "    seq, h_n = [x[:, t] for t in range(x.shape[1])], []\n"
        "    for l, cell in enumerate(cells):\n"
        "        h, out = h0[l], []\n"
        "        for inp in seq:\n"
        "            h = cell(inp, h)\n"
        "            out.append(h)\n"
        "        seq = out\n"
        "        h_n.append(h)\n"
        "    return torch.stack(seq, dim=1), torch.stack(h_n)\n"
        "    h = list(h0)",
        None,
    ),
    "model-last-of-the-batch": (
        MF,
        "self.out(states[:, -1])",
        "self.out(states[-1])",
        r"states\[-1\] indexes the batch",
    ),
    "model-no-embedding": (MF, "self.rnn(self.embedding(x))", "self.rnn(x)", r"embed them first"),
    "model-h_n-for-the-outputs": (MF, "states, _ = self.rnn", "_, states = self.rnn", r"returns \(output, h_n\), in"),
    "model-argmax": (MF, "return self.out(states[:, -1])", "return self.out(states[:, -1]).argmax(-1)", "an argmax"),
    "model-every-step-then-the-last-is-fine": (MF, "self.out(states[:, -1])", "self.out(states)[:, -1]", None),
}


@pytest.mark.parametrize("slip", SLIPS, ids=list(SLIPS))
def test_slips_in_the_solutions_cells(slip):
    from exercises import exercise_cells, run_cells, with_slip

    from labutils.checks import CheckFailed

    grade_id, old, new, message = SLIPS[slip]
    ns = run_cells([PRELUDE, *with_slip(exercise_cells(SOLUTION), grade_id, old, new).values()])
    check = get_check(grade_id.removesuffix("-code"))
    if message is None:
        check(*(ns[name] for name in check.needs))
        return
    with pytest.raises((CheckFailed, StudentCodeError), match=message):
        check(*(ns[name] for name in check.needs))
