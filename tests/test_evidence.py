"""The solutions show the evidence (COURSE.md, principle 10), read from their stored outputs.

1. The outputs come from one clean full-budget run: ``metadata.labutils.budget`` is ``"full"``
   (written by ``python -m labutils execute``), every code cell ran once, in order, without error,
   and the budget a lab prints agrees.
2. They hold no absolute path of the machine that ran them and no Python warning.
3. The claims each lab's prose makes about its results hold in them: ``CLAIMS`` below, one entry
   per claim, each reading the lines the lab prints with simple patterns.

Nothing here runs a notebook: to refresh the outputs, run
``python -m labutils execute solutions/NN_name.ipynb --budget full``.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from lab_status import UNVERIFIED_LABS

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))
# Written independently of labutils.scrub: what a path of a machine and a warning look like.
PATH_MARKERS = ("/root/", "/home/", "/Users/", "/work/", "/tmp/", "site-packages", "C:\\")
WARNING = re.compile(r"\b[A-Z]\w*Warning: ")
NUMBER = r"[\d,]*\.?\d+"


def _read(path: Path) -> nbformat.NotebookNode:
    if path.name in UNVERIFIED_LABS:
        pytest.skip(f"{path.name} is not yet verified (tests/lab_status.py)")
    return nbformat.read(path, as_version=4)


def _code_cells(nb):
    return [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code"]


def _texts(cell) -> list[str]:
    """Every text a code cell shows: streams, ``text/*`` data, errors."""
    texts = []
    for out in cell.get("outputs", []):
        if out.output_type == "stream":
            texts.append(out.text)
        elif out.output_type == "error":
            texts.append("\n".join([f"{out.ename}: {out.evalue}", *out.traceback]))
        else:
            texts += [v for k, v in out.get("data", {}).items() if k.startswith("text/") and isinstance(v, str)]
    return texts


def _stored_text(nb) -> str:
    return "\n".join(text for _, cell in _code_cells(nb) for text in _texts(cell))


# --- 1. one clean run in the full budget ----------------------------------------------------------


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.stem)
def test_stored_outputs_come_from_one_full_budget_run(path):
    nb = _read(path)
    run = nb.metadata.get("labutils", {})
    fix = f"store them with `python -m labutils execute solutions/{path.name} --budget full`"
    assert run.get("budget") == "full", (
        f"{path.name}: the stored outputs come from the {run.get('budget') or 'unrecorded'} budget "
        f"(metadata.labutils = {dict(run)}); {fix}"
    )
    assert isinstance(run.get("seconds"), int | float) and run["seconds"] > 0, f"{path.name}: no run time; {fix}"
    counts = [cell.execution_count for _, cell in _code_cells(nb) if cell.source.strip()]
    assert counts == list(range(1, len(counts) + 1)), (
        f"{path.name}: the code cells were not all run once, top to bottom (execution counts {counts}); {fix}"
    )
    errors = [
        (i, out.ename)
        for i, cell in _code_cells(nb)
        for out in cell.outputs
        if out.output_type == "error" and "raises-exception" not in cell.metadata.get("tags", [])
    ]
    assert not errors, f"{path.name}: cells stored errors {errors}; a solution runs clean"
    printed = set(re.findall(r"\bbudget: (\w+)", _stored_text(nb)))
    assert printed <= {"full"}, f"{path.name}: the metadata says full, the notebook printed budget: {printed}"


# --- 2. no paths, no warnings ---------------------------------------------------------------------


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.stem)
def test_stored_outputs_hold_no_machine_path_and_no_warning(path):
    nb = _read(path)
    found = []
    for index, cell in _code_cells(nb):
        text = "\n".join(_texts(cell))
        found += [f"cell {index}: {marker!r}" for marker in PATH_MARKERS if marker in text]
        found += [f"cell {index}: {m.group(0).strip()!r}" for m in WARNING.finditer(text)]
    widgets = str(nb.metadata.get("widgets", ""))
    found += [f"saved widget state: {marker!r}" for marker in PATH_MARKERS if marker in widgets]
    assert not found, (
        f"{path.name}: stored outputs show a path of the machine that ran them or a Python warning: "
        f"{'; '.join(found)}. Print paths relative (or just a name) and silence the warning at its source, "
        "then run `python -m labutils execute` again (it also scrubs what it can)."
    )


# --- 3. the claims of the prose -------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """A claim of a lab's prose, read from the lines the lab prints.

    Each pattern names the numbers it reads (``(?P<name>...)``) and is searched in all the stored
    text outputs of the notebook; where it matches more than once, the last match counts (the
    final result is printed last).  ``example`` is a printed text for which the claim holds and
    ``counter`` one for which it does not: they document the lines read and prove the check.
    """

    id: str
    lab: str
    says: str
    patterns: tuple[str, ...]
    holds: Callable[[dict[str, float]], bool]
    example: str
    counter: str


CLAIMS = [
    Claim(
        "02-small-start-ends-lower",
        "02_bptt_numpy.ipynb",
        "the small random start of W_hh ends with a lower smoothed loss than the scaled identity",
        (rf"final smoothed loss: small random (?P<small>{NUMBER}), scaled identity (?P<identity>{NUMBER})",),
        lambda v: v["small"] < v["identity"],
        "final smoothed loss: small random 1.604, scaled identity 1.670\n",
        "final smoothed loss: small random 1.704, scaled identity 1.670\n",
    ),
    Claim(
        "03-rnn-beats-unigram-on-real-words",
        "03_deep_rnns.ipynb",
        "the RNN beats the unigram baseline also on real-word targets alone (<unk> does not make the difference)",
        (
            rf"unigram baseline, real-word targets only\s*:\s*perplexity\s+(?P<unigram>{NUMBER})",
            rf"next-word RNN, real-word targets only\s*:\s*perplexity\s+(?P<rnn>{NUMBER})",
        ),
        lambda v: v["rnn"] < v["unigram"],
        "unigram baseline, real-word targets only : perplexity    440.3\n"
        "next-word RNN, real-word targets only    : perplexity    184.0\n",
        "unigram baseline, real-word targets only : perplexity    440.3\n"
        "next-word RNN, real-word targets only    : perplexity    484.0\n",
    ),
    Claim(
        "03-rnn-beats-unigram",
        "03_deep_rnns.ipynb",
        "the RNN's held-out perplexity is below the unigram baseline's",
        (
            rf"unigram baseline\s*:\s*perplexity\s+(?P<unigram>{NUMBER})",
            rf"next-word RNN\s*:\s*perplexity\s+(?P<rnn>{NUMBER})",
        ),
        lambda v: v["rnn"] < v["unigram"],
        "unigram baseline : perplexity    162.8\nnext-word RNN    : perplexity    121.4\n",
        "unigram baseline : perplexity    162.8\nnext-word RNN    : perplexity    163.2\n",
    ),
    Claim(
        "04-rnn-near-chance",
        "04_gru_lstm.ipynb",
        "on the memory task the vanilla RNN stays near chance (at most 0.1 above it)",
        (
            rf"final held-out accuracy:.*'RNN': (?P<rnn>{NUMBER})",
            rf"final held-out accuracy:.*chance: (?P<chance>{NUMBER})",
        ),
        lambda v: v["rnn"] <= v["chance"] + 0.1,
        "final held-out accuracy: {'RNN': 0.131, 'GRU': 0.998, 'LSTM': 1.0} | chance: 0.125\n",
        "final held-out accuracy: {'RNN': 0.6, 'GRU': 0.998, 'LSTM': 1.0} | chance: 0.125\n",
    ),
    Claim(
        "04-gated-cells-learn",
        "04_gru_lstm.ipynb",
        "on the memory task the GRU and the LSTM reach at least 0.9",
        (
            rf"final held-out accuracy:.*'GRU': (?P<gru>{NUMBER})",
            rf"final held-out accuracy:.*'LSTM': (?P<lstm>{NUMBER})",
        ),
        lambda v: v["gru"] >= 0.9 and v["lstm"] >= 0.9,
        "final held-out accuracy: {'RNN': 0.131, 'GRU': 0.998, 'LSTM': 0.9} | chance: 0.125\n",
        "final held-out accuracy: {'RNN': 0.196, 'GRU': 0.257, 'LSTM': 0.852} | chance: 0.125\n",
    ),
    Claim(
        "05-accuracy-above-chance",
        "05_rnn_configurations.ipynb",
        "the author classifier's test accuracy is well above chance (at least twice chance)",
        (rf"final test accuracy (?P<accuracy>{NUMBER})% \(chance: (?P<chance>{NUMBER})%\)",),
        lambda v: v["accuracy"] >= 2 * v["chance"],
        "final test accuracy 81.7% (chance: 25%)\n",
        "final test accuracy 30.0% (chance: 25%)\n",
    ),
    Claim(
        "06-reference-memorises",
        "06_char_generation.ipynb",
        "the reference configuration memorises its 10,000 characters: its held-out loss ends at least 1 nat above "
        "its training loss",
        (rf"reference: training (?P<training>{NUMBER}), held-out (?P<heldout>{NUMBER})",),
        lambda v: v["heldout"] - v["training"] >= 1.0,
        "reference: training 0.31, held-out 2.95 (best 1.98) nats = 4.26 bits/char\n",
        "reference: training 3.05, held-out 3.27 (best 3.27) nats = 4.71 bits/char\n",
    ),
    Claim(
        "07-gru-under-1.65-bits",
        "07_sherlock_assignment.ipynb",
        "the solution's GRU reaches at most 1.65 bits per character on held-out text",
        (rf"GRU: (?P<bits>{NUMBER}) bits per character on the held-out text",),
        lambda v: v["bits"] <= 1.65,
        "RNN: 1.880 bits per character on the held-out text\nGRU: 1.632 bits per character on the held-out text\n",
        "RNN: 3.470 bits per character on the held-out text\nGRU: 2.931 bits per character on the held-out text\n",
    ),
]


def read_claim(claim: Claim, text: str) -> tuple[dict[str, float], list[str]]:
    """The numbers a claim reads from ``text`` and the lines they came from; AssertionError if absent."""
    values, lines = {}, []
    for pattern in claim.patterns:
        matches = list(re.finditer(pattern, text))
        if not matches:
            raise AssertionError(
                f"{claim.lab}: no stored output matches {pattern!r} (the claim: {claim.says}). Has the printed "
                "line changed? Then update this claim's pattern in tests/test_evidence.py."
            )
        last = matches[-1]
        values.update({name: float(value.replace(",", "")) for name, value in last.groupdict().items()})
        start, end = text.rfind("\n", 0, last.start()) + 1, text.find("\n", last.end())
        lines.append(text[start : end if end >= 0 else len(text)].strip())
    return values, lines


def check_claim(claim: Claim, text: str) -> None:
    """Raise AssertionError naming the lab, the claim and the values found, unless the claim holds."""
    values, lines = read_claim(claim, text)
    if not claim.holds(values):
        found = ", ".join(f"{name} = {value:g}" for name, value in values.items())
        where = " / ".join(map(repr, dict.fromkeys(lines)))
        raise AssertionError(
            f"{claim.lab}: the prose says {claim.says}, but the stored outputs show {found} (from {where})"
        )


@pytest.mark.parametrize("claim", CLAIMS, ids=lambda c: c.id)
def test_each_claim_of_the_prose_holds_in_the_stored_outputs(claim):
    check_claim(claim, _stored_text(_read(ROOT / "solutions" / claim.lab)))


@pytest.mark.parametrize("claim", CLAIMS, ids=lambda c: c.id)
def test_each_claim_check_reads_its_line_and_can_fail(claim):
    check_claim(claim, "some other output\n" + claim.example)
    with pytest.raises(AssertionError, match=re.escape(claim.says)) as failed:
        check_claim(claim, claim.counter)
    assert claim.lab in str(failed.value) and " = " in str(failed.value)
    with pytest.raises(AssertionError, match="no stored output matches"):
        check_claim(claim, "nothing printed here\n")
