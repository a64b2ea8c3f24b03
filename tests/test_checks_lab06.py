"""Lab 06's self-checks pass the solution's answers and name each seeded slip."""

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from exercises import check_student_version, exercise_cells, run_cells

from labutils.checks import CheckFailed, StudentCodeError, get_check, lab06

SOLUTION = Path(__file__).resolve().parent.parent / "solutions" / "06_char_generation.ipynb"
CODE_IDS = tuple(f"lab06-{name}-code" for name in ("tbptt", "sample-next", "generate"))
PRELUDE = "import torch\nimport torch.nn.functional as F\n"


@pytest.fixture(scope="module")
def solution():
    """The solution's exercise cells, run as the notebook runs them (generate sees sample_next)."""
    cells = exercise_cells(SOLUTION)
    return run_cells([PRELUDE] + [cells[g] for g in CODE_IDS])


# ------------------------------------------------------------------ wrong answers (tests only)
def tbptt(kind="ok"):
    """(tbptt_step, train_streams) that make the slip ``kind``."""

    def step(model, optimizer, x, y, hidden, clip=5.0):
        x, y = torch.as_tensor(x), torch.as_tensor(y)
        logits, new = model(x, None if kind == "step_ignores_hidden" else hidden)
        V = logits.shape[-1]
        if kind == "unshaped_loss":
            loss = F.cross_entropy(logits, y)
        else:
            loss = F.cross_entropy(logits.reshape(-1, V), y.reshape(-1), reduction="sum" if kind == "sum" else "mean")
        if kind != "no_zero_grad":
            optimizer.zero_grad()
        loss.backward(retain_graph=kind == "retain_graph")
        if kind == "clip_value":
            torch.nn.utils.clip_grad_value_(model.parameters(), clip)
        elif kind == "zero_after_backward":
            optimizer.zero_grad()
        elif kind != "no_clip":
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        if kind != "no_step":
            optimizer.step()
        value = loss if kind == "tensor_loss" else loss.item()
        if kind in ("not_detached", "retain_graph"):
            return value, new
        if kind == "returns_output":
            return value, logits.detach()
        return value, new.detach()

    def loop(model, optimizer, batches, clip=5.0):
        hidden, losses = None, []
        for x, y in batches:
            loss, new = step(model, optimizer, x, y, hidden, clip)
            hidden = None if kind == "reset" else new
            if kind == "zeros":
                hidden = torch.zeros_like(new)
            losses.append(loss)
        return losses[:-1] if kind == "drops_last" else losses

    return step, loop


def test_tbptt_passes_the_solution(solution, capsys):
    lab06.check_tbptt(solution["tbptt_step"], solution["train_streams"])
    assert "returns a detached state" in capsys.readouterr().out


#: Slips whose code raises (the advice comes from the check's hints), not returns a wrong result.
#: ``CARRIED``: the loop's backward() reaches into the previous batch through the undetached state.
CARRIED = r"(?s)loop raised RuntimeError in step:.*still holds the previous batch's graph.*hidden.detach\(\)"
TBPTT_RAISES = {"not_detached", "retain_graph", "unshaped_loss", "returns_output"}


@pytest.mark.parametrize(
    "kind, message",
    [
        ("ok", None),
        ("not_detached", CARRIED),
        ("retain_graph", CARRIED),
        ("reset", "the state is reset before batch 2"),
        ("zeros", "the state is reset before batch 2"),
        ("step_ignores_hidden", "did not start from the hidden state it was given"),
        ("sum", "sum over the B\\*T positions"),
        ("unshaped_loss", "cross_entropy wants logits \\(B\\*T, V\\)"),
        ("no_zero_grad", "optimizer.zero_grad\\(\\) before"),
        ("no_clip", "not clipped"),
        ("clip_value", "clipped elementwise"),
        ("zero_after_backward", "weights did not change.*do not zero the gradients between"),
        ("no_step", "weights did not change: call optimizer.step\\(\\)"),
        ("tensor_loss", "return loss.item\\(\\)"),
        ("returns_output", "(?s)Expected hidden size.*must return the state the model returned"),
        ("drops_last", "returned 2 losses for 3 batches"),
    ],
)
def test_tbptt_names_each_slip(kind, message):
    if message is None:
        lab06.check_tbptt(*tbptt(kind))
        return
    with pytest.raises(StudentCodeError if kind in TBPTT_RAISES else CheckFailed, match=message):
        lab06.check_tbptt(*tbptt(kind))


def test_tbptt_step_alone_is_judged_before_the_loop():
    """A step that returns its state attached fails on its own, even where the loop never reuses the state."""
    step, _ = tbptt("not_detached")

    def loop(model, optimizer, batches, clip=5.0):
        return [step(model, optimizer, x, y, None, clip)[0] for x, y in batches]

    with pytest.raises(CheckFailed, match="attached to the graph.*detach"):
        lab06.check_tbptt(step, loop)


def test_tbptt_sees_a_graph_carried_into_the_next_batch():
    """A loop that carries the undetached state fails in backward(); the advice is to detach."""
    step, _ = tbptt("not_detached")

    def loop(model, optimizer, batches, clip=5.0):
        hidden, losses = None, []
        for x, y in batches:
            loss, hidden = step(model, optimizer, x, y, hidden, clip)
            losses.append(loss)
        return losses

    with pytest.raises(StudentCodeError, match="(?s)RuntimeError.*still holds the previous batch's graph"):
        lab06.check_tbptt(tbptt()[0], loop)


# ---------------------------------------------------------------------------- sample_next
def sample_next(kind="ok"):
    def sample(logits, temperature=1.0, top_k=None, rng=None):
        z = logits.detach().double()
        if kind == "in_place":
            logits /= max(temperature, 1e-3)
        if top_k is not None and kind != "no_top_k":
            k = top_k + (kind == "k_plus_one")
            order = torch.argsort(z, descending=kind != "bottom_k")
            mask = torch.full_like(z, float("-inf"))
            mask[order[:k]] = 0.0
            z = z + mask
        if temperature == 0 or kind == "argmax":
            return int(z.argmax())
        if kind == "times":
            z = z * temperature
        elif kind != "no_temperature":
            z = z / temperature
        p = torch.softmax(z, -1).numpy()
        if kind == "float32":
            p = torch.softmax(z.float(), -1).numpy() * 1.001
        if kind == "global_rng":
            return int(np.random.choice(len(p), p=p))
        if kind == "own_rng":
            rng = np.random.default_rng(12345) if not hasattr(sample, "rng") else sample.rng
            sample.rng = rng
        if kind == "tensor":
            return torch.tensor(rng.choice(len(p), p=p))
        return int(rng.choice(len(p), p=p))

    return sample


def naive_zero_temperature(logits, temperature=1.0, top_k=None, rng=None):
    p = torch.softmax(logits.double() / temperature, -1).numpy()
    return int(rng.choice(len(p), p=p))


def test_sample_next_passes_the_solution(solution, capsys):
    lab06.check_sample_next(solution["sample_next"])
    assert "frequencies agree with softmax" in capsys.readouterr().out


@pytest.mark.parametrize(
    "kind, message",
    [
        ("ok", None),
        ("times", "multiplied by the temperature"),
        ("no_temperature", "temperature is ignored"),
        ("no_top_k", "top_k is ignored"),
        ("k_plus_one", "keeps k \\+ 1 ids"),
        ("bottom_k", "\\*smallest\\* logits"),
        ("argmax", "every time: draw at random"),
        ("global_rng", "seeded alike gave different draws"),
        ("own_rng", "seeded alike gave different draws"),
        ("in_place", "changed the logits it was given"),
        ("tensor", "returned a Tensor"),
        ("float32", "sum to 1"),
    ],
)
def test_sample_next_names_each_slip(kind, message):
    if message is None:
        lab06.check_sample_next(sample_next(kind))
        return
    with pytest.raises(StudentCodeError if kind == "float32" else CheckFailed, match=message):
        lab06.check_sample_next(sample_next(kind))


def test_an_error_shows_the_students_line_and_no_library_frame():
    with pytest.raises(StudentCodeError) as failed:
        lab06.check_sample_next(sample_next("float32"))
    assert str(failed.value).startswith("sample raised ValueError")  # the student's function, not NumPy's
    shown = "\n".join(failed.value._render_traceback_())
    assert shown.index("rng.choice checks") < shown.index("Your code, where it failed:")  # the advice comes first
    assert "test_checks_lab06.py" in shown and ".pyx" not in shown and "site-packages" not in shown


def test_sample_next_at_temperature_zero_must_not_divide():
    with pytest.raises(StudentCodeError, match="(?s)argmax.*before dividing"):
        lab06.check_sample_next(naive_zero_temperature)


def test_sample_next_frequencies_are_judged_with_the_stated_tolerance():
    """The judge's test itself: fair draws pass, a shift of 0.05 in one probability fails, an impossible
    id fails, and the exact binomial tails are those of the textbook."""
    from labutils.checks.judges.lab06 import _binomial_tails, consistent

    lower, upper = _binomial_tails(3, 10, 0.5)
    assert np.isclose(lower, 176 / 1024) and np.isclose(upper, 968 / 1024)
    rng = np.random.default_rng(0)
    p = np.array([0.5, 0.3, 0.2, 0.0])
    fair = [np.bincount(rng.choice(4, size=3000, p=p), minlength=4) for _ in range(50)]
    assert all(consistent(counts, p, 3000) for counts in fair)
    assert not consistent(fair[0], np.array([0.45, 0.35, 0.2, 0.0]), 3000)
    assert not consistent(fair[0] + np.array([0, 0, 0, 1]), p, 3001)  # an id of probability 0 was drawn


# ------------------------------------------------------------------------------- generate
def generate(kind="ok", sampler=None):
    sampler = sampler or sample_next()

    @torch.no_grad()
    def gen(model, vocab, prime, length, temperature=0.8, top_k=None, rng=None):
        x = torch.as_tensor(vocab.encode(prime[-1:] if kind == "prime_last" else prime))[None]
        logits, hidden = model(x)
        ids = []
        for _ in range(length + (kind == "one_more")):
            token = sampler(
                logits[0, -1],
                1.0 if kind == "no_temperature" else temperature,
                None if kind == "no_top_k" else top_k,
                {"fresh_rng": np.random.default_rng(), "fixed_rng": np.random.default_rng(0)}.get(kind, rng),
            )
            ids.append(token)
            feed = int(vocab.encode(prime[-1])[0]) if kind == "stale" else token
            logits, hidden = model(torch.tensor([[feed]]), None if kind == "reset" else hidden)
        text = vocab.decode(ids)
        if kind == "list":
            return list(prime + text)
        return text if kind == "no_prime" else prime + text

    return gen


def test_generate_passes_the_solution(solution, capsys):
    lab06.check_generate(solution["generate"])
    assert "greedy text matches" in capsys.readouterr().out


@pytest.mark.parametrize(
    "kind, message",
    [
        ("ok", None),
        ("reset", "fresh state"),
        ("prime_last", "only the prime's last character"),
        ("stale", "fed again at every step"),
        ("no_prime", "prime followed by"),
        ("one_more", "expected len\\(prime\\) \\+ length"),
        ("no_top_k", "pass top_k on"),
        ("no_temperature", "pass the temperature on to sample_next"),
        ("fixed_rng", "seeded differently gave the same text"),
        ("fresh_rng", "seeded alike gave different texts"),
        ("list", "returned a list"),
    ],
)
def test_generate_names_each_slip(kind, message):
    if message is None:
        lab06.check_generate(generate(kind))
        return
    with pytest.raises(CheckFailed, match=message):
        lab06.check_generate(generate(kind))


def test_the_student_version_fails_each_check_with_its_stub_and_passes_with_the_answers_pasted_in():
    check_student_version("06_char_generation", PRELUDE)


def test_checks_registered_under_grade_ids():
    for grade_id in ("lab06-tbptt", "lab06-sample-next", "lab06-generate"):
        assert get_check(grade_id).grade_id == grade_id


# ------------------------------------------------ slips written into the solution's own cells
TB, SN, GE = CODE_IDS
LOSS = "F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))"
PROBS = "probs = torch.softmax(logits / temperature, dim=-1).numpy()"
#: name: (exercise cell, text of the solution, the slip written instead, what the message must say; None: passes)
SLIPS = {
    "tbptt-item-before-backward": (TB, LOSS, LOSS + ".item()", r"loss.item\(\) turned the loss into a Python float"),
    "tbptt-loop-keeps-the-states": (TB, "losses.append(loss)", "losses.append(hidden)", "not the hidden state"),
    "tbptt-targets-are-the-inputs": (TB, "y.reshape(-1))", "x.reshape(-1))", "tbptt_step's loss is .*, expected"),
    "tbptt-numpy-state": (TB, "hidden.detach()  #", "hidden.detach().numpy()  #", r"hidden.detach\(\), not .numpy\(\)"),
    "tbptt-class-axis-second-is-fine": (TB, LOSS, "F.cross_entropy(logits.transpose(1, 2), y)", None),
    "sample-temperature-after-softmax": (
        SN,
        PROBS,
        "probs = (torch.softmax(logits, dim=-1) / temperature).numpy()",
        r"divide the \*logits\* by the temperature",
    ),
    "sample-sharpened-probabilities-are-fine": (
        SN,
        PROBS,
        "probs = torch.softmax(logits, dim=-1) ** (1 / temperature)\n    probs = (probs / probs.sum()).numpy()",
        None,
    ),
    "sample-top-k-strict": (SN, "logits < kth", "logits <= kth", "top-k keeps k - 1 ids"),
    "sample-choice-of-probabilities": (
        SN,
        "return int(rng.choice(len(probs), p=probs))",
        "return rng.choice(probs)",
        r"rng.choice\(probs\) draws one of the probabilities",
    ),
    "sample-uniform": (SN, "int(rng.choice(len(probs), p=probs))", "int(rng.integers(len(probs)))", "drawn uniformly"),
    "generate-first-position": (GE, "sample_next(logits[0, -1]", "sample_next(logits[0, 0]", r"\*first\* position"),
    "generate-one-dimensional-id": (GE, "torch.tensor([[token]]", "torch.tensor([token]", r"a \(1, 1\) tensor"),
    "generate-ids-as-digits": (GE, "prime + vocab.decode(ids)", "prime + ''.join(map(str, ids))", "vocab.decode"),
    "generate-argmax": (
        GE,
        "token = sample_next(logits[0, -1], temperature, top_k, rng)",
        "token = int(logits[0, -1].argmax())",
        "does generate sample at all",
    ),
    "generate-rereads-everything-is-fine": (
        GE,
        "model(torch.tensor([[token]], device=device), hidden)",
        "model(torch.as_tensor(list(vocab.encode(prime)) + ids, device=device)[None])",
        None,
    ),
}


@pytest.mark.parametrize("slip", SLIPS, ids=list(SLIPS))
def test_slips_in_the_solutions_cells(slip):
    from exercises import with_slip

    grade_id, old, new, message = SLIPS[slip]
    cells = with_slip(exercise_cells(SOLUTION), grade_id, old, new)
    ns = run_cells([PRELUDE] + [cells[g] for g in CODE_IDS])
    check = get_check(grade_id.removesuffix("-code"))
    if message is None:
        check(*(ns[name] for name in check.needs))
        return
    with pytest.raises((CheckFailed, StudentCodeError), match=message):
        check(*(ns[name] for name in check.needs))
