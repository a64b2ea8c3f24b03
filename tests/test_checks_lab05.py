"""Lab 05's self-checks pass the solution's answers and name each seeded slip."""

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from exercises import check_student_version, exercise_cells, run_cells
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from labutils.checks import CheckFailed, StudentCodeError, get_check, lab05

SOLUTION = Path(__file__).resolve().parent.parent / "solutions" / "05_rnn_configurations.ipynb"
PRELUDE = "import torch\nimport torch.nn.functional as F\nfrom torch import nn\n"
PRELUDE += "from torch.nn.utils.rnn import pack_padded_sequence\n"


@pytest.fixture(scope="module")
def solution():
    """The solution's exercise cells, run as the notebook runs them."""
    cells = exercise_cells(SOLUTION)
    return run_cells([PRELUDE, cells["lab05-classifier-code"], cells["lab05-free-running-code"]])


# ------------------------------------------------------------------ wrong answers (tests only)
class Classifier(nn.Module):
    """The lab's PassageClassifier with a forward that makes the slip ``kind``."""

    def __init__(self, vocab_size, n_classes, embed_dim=64, hidden_size=64, num_layers=1, dropout=0.0, kind="ok"):
        super().__init__()
        self.kind = kind
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        self.rnn = nn.GRU(embed_dim, hidden_size, num_layers=num_layers, batch_first=True)
        self.drop = nn.Dropout(dropout)
        self.classify = nn.Linear(hidden_size, n_classes)

    def forward(self, x, lengths):
        emb, kind = self.embedding(x), self.kind
        if kind == "padded":
            _, h_n = self.rnn(emb)
        elif kind == "sorted_by_hand":
            lengths, order = torch.sort(lengths, descending=True)
            _, h_n = self.rnn(pack_padded_sequence(emb[order], lengths, batch_first=True))
        elif kind == "last_column":
            packed = pack_padded_sequence(emb, lengths, batch_first=True, enforce_sorted=False)
            out, _ = pad_packed_sequence(self.rnn(packed)[0], batch_first=True)
            return self.classify(out[:, -1])
        elif kind == "in_place_sort":
            lengths.copy_(torch.sort(lengths, descending=True).values)
            _, h_n = self.rnn(pack_padded_sequence(emb, lengths, batch_first=True))
        else:
            sort = kind != "enforce_sorted"
            batch_first = kind != "time_first"
            packed = pack_padded_sequence(emb, lengths, batch_first=batch_first, enforce_sorted=not sort)
            _, h_n = self.rnn(packed)
        if kind == "every_layer":
            return self.classify(h_n)
        if kind == "whole_h_n":
            return self.classify(h_n.transpose(0, 1).reshape(len(x), -1))
        logits = self.classify(h_n[0] if kind == "first_layer" else h_n[-1])
        return logits.softmax(-1) if kind == "softmax" else logits


def classifier(kind):
    def make(*args, **kw):
        return Classifier(*args, **kw, kind=kind)

    return make


def test_classifier_passes_the_solution(solution, capsys):
    lab05.check_classifier(solution["PassageClassifier"])
    assert "run alone, unpadded" in capsys.readouterr().out


#: Slips whose forward raises (the advice comes from the check's hints), not returns wrong logits.
RAISES = {"enforce_sorted", "whole_h_n", "time_first"}


@pytest.mark.parametrize(
    "kind, message",
    [
        ("ok", None),
        ("padded", r"h_n of the \*padded\* batch"),
        ("enforce_sorted", r"(?s)Classifier.forward raised RuntimeError.*\n.*Pass enforce_sorted=False"),
        ("first_layer", r"h_n\[0\] is the \*first\* layer"),
        ("sorted_by_hand", "in the order of decreasing length"),
        ("last_column", "last column of the padded outputs"),
        ("every_layer", r"one prediction per layer of h_n"),
        ("whole_h_n", r"\(num_layers, B, H\): take the top layer"),
        ("time_first", "batch_first=True"),
        ("softmax", "softmax was applied"),
        ("in_place_sort", "changed the caller's lengths"),
    ],
)
def test_classifier_names_each_slip(kind, message):
    if message is None:
        lab05.check_classifier(classifier(kind))
        return
    with pytest.raises(StudentCodeError if kind in RAISES else CheckFailed, match=message):
        lab05.check_classifier(classifier(kind))


def test_classifier_shows_the_line_of_the_students_code():
    def make(*args, **kw):
        model = Classifier(*args, **kw)
        model.forward = lambda x, lengths: model.classify(torch.zeros(len(x), 99).double())  # noqa: ARG005
        return model

    with pytest.raises(StudentCodeError, match=r"(?s)mat1 and mat2.*take the top layer, h_n\[-1\]") as raised:
        lab05.check_classifier(make)
    shown = "\n".join(raised.value._render_traceback_())
    assert shown.index("take the top layer") < shown.index("Your code, where it failed:")  # advice first
    assert "test_checks_lab05.py" in shown and "torch.zeros(len(x), 99)" in shown
    assert "site-packages" not in shown and "labutils" not in shown  # the student's frames only


def test_forward_that_returns_nothing_is_told_what_to_return():
    class Nothing(Classifier):
        def forward(self, x, lengths):
            self.rnn(self.embedding(x))

    with pytest.raises(CheckFailed, match=r"must return the logits, a tensor \(B, C\); it returned a NoneType"):
        lab05.check_classifier(Nothing)


def test_a_stub_stays_not_implemented():
    class Stub(Classifier):
        def forward(self, x, lengths):
            raise NotImplementedError()

    with pytest.raises(NotImplementedError):
        lab05.check_classifier(Stub)


# ------------------------------------------------------------------------- free running
def free_running(kind="ok"):
    @torch.no_grad()
    def run(model, prompt, n):
        logits, hidden = model(prompt[None, :1] if kind == "first_position" else prompt[None])
        if kind == "fed_twice":
            logits, hidden = model(prompt[None, -1:], hidden)
        ids = []
        for _ in range(n):
            if kind == "sampled":
                token = torch.multinomial(logits[0, -1].softmax(-1), 1)[None]
            else:
                token = logits[:, -1].argmax(-1, keepdim=True)
            ids.append(token)
            if kind == "reset":
                logits, hidden = model(token)
            elif kind == "stale":
                logits, hidden = model(prompt[None, -1:], hidden)
            else:
                logits, hidden = model(token, hidden)
        ids = torch.cat(ids, 1)[0]
        return torch.cat([prompt, ids]) if kind == "with_prompt" else ids

    return run


def continuation_loss(kind="ok"):
    @torch.no_grad()
    def loss(model, prefix, cont):
        P = len(prefix)
        if kind == "no_prefix":
            logits, _ = model(cont[None, :-1])
            return F.cross_entropy(logits[0], cont[1:]).item()
        x = torch.cat([prefix, cont])[None]
        logits = model(x)[0][0]
        if kind == "same_position":
            return F.cross_entropy(logits[P:], cont).item()
        if kind == "skip_first":
            return F.cross_entropy(logits[P:-1], cont[1:]).item()
        if kind == "with_prefix":
            return F.cross_entropy(logits[:-1], x[0, 1:]).item()
        if kind == "per_position":
            return F.cross_entropy(logits[P - 1 : -1], cont, reduction="none")
        value = F.cross_entropy(logits[P - 1 : -1], cont, reduction="sum" if kind == "sum" else "mean").item()
        return value / 0.6931471805599453 if kind == "bits" else value

    return loss


def test_free_running_passes_the_solution(solution, capsys):
    lab05.check_free_running(solution["free_running"], solution["continuation_loss"])
    assert "feeds back the model's own argmax" in capsys.readouterr().out


@pytest.mark.parametrize(
    "kind, message",
    [
        ("ok", None),
        ("reset", "fresh hidden state"),
        ("stale", "feeds the prompt's last character again"),
        ("fed_twice", "read twice"),
        ("first_position", "first position of the prompt"),
        ("with_prompt", "return only the n new ones"),
        ("sampled", "it samples"),
    ],
)
def test_free_running_names_each_slip(kind, message):
    if message is None:
        lab05.check_free_running(free_running(kind), continuation_loss())
        return
    with pytest.raises(CheckFailed, match=message):
        lab05.check_free_running(free_running(kind), continuation_loss())


@pytest.mark.parametrize(
    "kind, message",
    [
        ("sum", "the sum over the continuation"),
        ("bits", "in bits"),
        ("skip_first", "first character of the continuation is not scored"),
        ("same_position", "at its own position"),
        ("no_prefix", "never read the prefix"),
        ("with_prefix", "includes the prefix's own characters"),
        ("per_position", "one loss per character"),
    ],
)
def test_continuation_loss_names_each_slip(kind, message):
    with pytest.raises(CheckFailed, match=message):
        lab05.check_free_running(free_running(), continuation_loss(kind))


def test_the_student_version_fails_each_check_with_its_stub_and_passes_with_the_answer_pasted_in():
    check_student_version("05_rnn_configurations", PRELUDE)


def test_checks_registered_under_grade_ids():
    for grade_id in ("lab05-classifier", "lab05-free-running"):
        assert get_check(grade_id).grade_id == grade_id


# ------------------------------------------------ slips written into the solution's own cells
CF, FR = "lab05-classifier-code", "lab05-free-running-code"
FINAL_STATE = (
    "        _, h_n = self.rnn(packed)  # (num_layers, B, H): each passage's state after its own last word\n"
    "        return self.classify(self.drop(h_n[-1]))"
)
PADDED_OUT = "        out, _ = pad_packed_sequence(self.rnn(packed)[0], batch_first=True)\n"
#: name: (exercise cell, text of the solution, the slip written instead, what the message must say; None: passes)
SLIPS = {
    "classifier-gathers-each-last-word-is-fine": (
        CF,
        FINAL_STATE,
        PADDED_OUT + "        return self.classify(out[torch.arange(len(x)), lengths - 1])",
        None,
    ),
    "classifier-gathers-one-past-the-last-word": (
        CF,
        FINAL_STATE,
        PADDED_OUT + "        return self.classify(out[torch.arange(len(x)), lengths])",
        r"(?s)IndexError.*lengths\[b\] - 1, not lengths\[b\]",
    ),
    "classifier-mean-over-padded-steps": (
        CF,
        FINAL_STATE,
        "        out, _ = self.rnn(emb)\n        return self.classify(out.mean(1))",
        "mean of the outputs over every padded step",
    ),
    "classifier-outputs-for-h_n": (CF, "_, h_n = self.rnn(packed)", "h_n, _ = self.rnn(packed)", "received integers"),
    "classifier-argmax": (CF, "self.classify(self.drop(h_n[-1]))", "self.classify(h_n[-1]).argmax(-1)", "an argmax"),
    "free-running-one-short": (FR, "for _ in range(n):", "for _ in range(n - 1):", "One id short"),
    "free-running-first-logits": (
        FR,
        "token = logits[:, -1].argmax(",
        "token = logits[:, 0].argmax(",
        r"logits at the prompt's \*first\* position",
    ),
    "free-running-rereads-everything-is-fine": (
        FR,
        "        logits, hidden = model(token, hidden)  # its own prediction is the next input",
        "        logits, hidden = model(torch.cat([prompt[None], *ids], dim=1))",
        None,
    ),
    "loss-of-probabilities": (
        FR,
        "F.cross_entropy(logits[0, len(prefix) - 1 :]",
        "F.cross_entropy(logits[0, len(prefix) - 1 :].softmax(-1)",
        "given probabilities",
    ),
    "loss-nll-of-logits": (FR, "F.cross_entropy(logits[0,", "F.nll_loss(logits[0,", "nll_loss was given raw logits"),
}


@pytest.mark.parametrize("slip", SLIPS, ids=list(SLIPS))
def test_slips_in_the_solutions_cells(slip):
    from exercises import with_slip

    grade_id, old, new, message = SLIPS[slip]
    prelude = PRELUDE + "from torch.nn.utils.rnn import pad_packed_sequence\n"
    cells = with_slip(exercise_cells(SOLUTION), grade_id, old, new)
    ns = run_cells([prelude, cells[CF], cells[FR]])
    check = get_check(grade_id.removesuffix("-code"))
    if message is None:
        check(*(ns[name] for name in check.needs))
        return
    with pytest.raises((CheckFailed, StudentCodeError), match=message):
        check(*(ns[name] for name in check.needs))
