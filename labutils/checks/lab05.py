"""Self-checks of lab 05 (RNN configurations).

* ``check_classifier``: the many-to-one ``PassageClassifier.forward(x, lengths)`` with packing,
  against each passage run *alone*, unpadded, through PyTorch layers holding the student's
  weights.  The judge names the usual slips: ``h_n`` of the padded batch, lengths given unsorted
  without ``enforce_sorted=False``, the wrong layer of ``h_n``, the rows left in sorted order.
* ``check_free_running``: ``free_running(model, prompt, n)`` (greedy generation that feeds the
  model's own predictions back) and ``continuation_loss(model, prefix, continuation)`` (the mean
  cross-entropy of a true continuation after a prefix), against the same computation done step by
  step with PyTorch layers holding the model's weights.

This module keeps the ``Check`` definitions, the inputs and the probes (which run the student's
code and nothing else); the oracles, the slips and their advice live in
``labutils.checks.judges.lab05``, imported only when a result is judged.
"""

from __future__ import annotations

import re
import traceback
from pathlib import Path

import numpy as np

from .core import Check

JUDGES = "labutils.checks.judges.lab05"
_LABUTILS = str(Path(__file__).resolve().parent.parent)

# Sizes of the random problems: all different, so that a swapped axis shows in the shape.
V, C, E, H, L = 13, 3, 4, 5, 2  # vocabulary, classes, embedding, hidden, layers
B, T = 5, 7  # passages per batch, padded length
LENGTHS = (4, 7, 2, 6, 1)  # unsorted on purpose, with the longest not first
CLASSIFIER_PARAMS = (
    ["embedding.weight"]
    + [f"rnn.{k}_l{layer}" for layer in range(L) for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    + ["classify.weight", "classify.bias"]
)


def key(name: str) -> str:
    """A parameter name as an array name (``rnn.weight_ih_l0`` -> ``rnn__weight_ih_l0``)."""
    return name.replace(".", "__")


# ------------------------------------------------------------------------ student errors
_LIBRARY = re.compile(r"site-packages|/lib/python|\.pyx$|(^|/)(numpy|torch)/")


def _is_student_frame(filename: str) -> bool:
    """Frames of the notebook's code: not labutils, not an installed package or its compiled parts."""
    return not (filename.startswith(_LABUTILS) or _LIBRARY.search(filename))


def student_error(exc: BaseException) -> dict:
    """An exception raised by the student's code, as plain text the judge turns into advice.

    ``NotImplementedError`` (an exercise still a stub) is re-raised, so that the grader records
    the item as not done.  The traceback keeps only the notebook's own frames.
    """
    if isinstance(exc, NotImplementedError):
        raise exc
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if _is_student_frame(f.filename)]
    return {
        "error_type": type(exc).__name__,
        "error": str(exc)[:1500],
        "error_where": "".join(traceback.format_list(frames[-3:]))[:1500],
    }


# ------------------------------------------------------------------------------ classifier
def _classifier_inputs(rng):
    x = np.zeros((B, T), dtype=np.int64)  # padded with 0, as datasets.pad_batch does
    for b, n in enumerate(LENGTHS):
        x[b, :n] = rng.integers(1, V, size=n)
    return {"x": x, "lengths": np.asarray(LENGTHS, dtype=np.int64)}


def _probe_classifier(objs, inp):
    import torch

    torch.manual_seed(0)
    model = objs["PassageClassifier"](V, C, embed_dim=E, hidden_size=H, num_layers=L).double().eval()
    params = dict(model.named_parameters())
    missing = [p for p in CLASSIFIER_PARAMS if p not in params]
    if missing:
        raise AssertionError(
            f"PassageClassifier has no parameter(s) {missing}: keep the given __init__ (self.embedding, "
            "self.rnn, self.classify); only forward is the exercise."
        )
    with torch.no_grad():
        for p in params.values():  # weights large enough that every step matters
            p.mul_(2.5)
    out = {f"param_{key(p)}": params[p].detach().numpy() for p in CLASSIFIER_PARAMS}
    lengths = torch.tensor(inp["lengths"])  # copies: the inputs stay as drawn whatever forward does
    try:
        with torch.no_grad():
            logits = model(torch.tensor(inp["x"]), lengths)
        out["logits"] = torch.as_tensor(logits).detach().double().numpy()
    except Exception as exc:  # noqa: BLE001 -- the judge turns it into advice
        out.update(student_error(exc))
    out["lengths_after"] = lengths.numpy()  # forward must not sort the caller's lengths in place
    return out


check_classifier = Check(
    grade_id="lab05-classifier",
    title="many-to-one classifier with packing",
    needs=("PassageClassifier",),
    make_inputs=_classifier_inputs,
    probe=_probe_classifier,
    judge=f"{JUDGES}:judge_classifier",
    success="✔ PassageClassifier.forward gives every passage the logits it gets when run alone, unpadded.",
)


# ---------------------------------------------------------------- free running vs forcing
FV, FE, FH = 6, 3, 8  # the small character model of the check: vocabulary, embedding, hidden
PROMPTS, PROMPT_LEN, N_FREE = 3, 5, 6
PAIRS, PREFIX_LEN, CONT_LEN = 3, 4, 5
LM_PARAMS = (
    "embed.weight",
    "rnn.weight_ih_l0",
    "rnn.weight_hh_l0",
    "rnn.bias_ih_l0",
    "rnn.bias_hh_l0",
    "decoder.weight",
    "decoder.bias",
)


def _free_inputs(rng):
    return {
        "prompts": rng.integers(0, FV, size=(PROMPTS, PROMPT_LEN)).astype(np.int64),
        "prefixes": rng.integers(0, FV, size=(PAIRS, PREFIX_LEN)).astype(np.int64),
        "continuations": rng.integers(0, FV, size=(PAIRS, CONT_LEN)).astype(np.int64),
    }


def small_char_model():
    """The character model the check runs the student's functions on: ``labutils.models.CharRNN``
    (a GRU, as in the lab) with seeded weights, scaled so that its predictions are far from uniform."""
    import torch

    from ..models import CharRNN

    torch.manual_seed(0)
    model = CharRNN(FV, embed_dim=FE, hidden_size=FH, num_layers=1, cell="gru").double().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3.0)
    return model


def _probe_free(objs, inp):
    import torch

    model = small_char_model()
    out = {f"param_{key(n)}": p.detach().numpy() for n, p in model.named_parameters()}
    try:
        for i, prompt in enumerate(inp["prompts"]):
            with torch.no_grad():
                first = objs["free_running"](model, torch.tensor(prompt), N_FREE)
                again = objs["free_running"](model, torch.tensor(prompt), N_FREE)
            out[f"free{i}"] = torch.as_tensor(first).detach().cpu().numpy()
            out[f"again{i}"] = torch.as_tensor(again).detach().cpu().numpy()
    except Exception as exc:  # noqa: BLE001
        out.update({f"free_{k}": v for k, v in student_error(exc).items()})
    try:
        losses = []
        for prefix, cont in zip(inp["prefixes"], inp["continuations"], strict=True):
            with torch.no_grad():
                loss = objs["continuation_loss"](model, torch.tensor(prefix), torch.tensor(cont))
            losses.append(torch.as_tensor(loss).detach().double().numpy())
        out["losses"] = np.stack(losses)
    except Exception as exc:  # noqa: BLE001
        out.update({f"loss_{k}": v for k, v in student_error(exc).items()})
    return out


check_free_running = Check(
    grade_id="lab05-free-running",
    title="free running and the loss of a true continuation",
    needs=("free_running", "continuation_loss"),
    make_inputs=_free_inputs,
    probe=_probe_free,
    judge=f"{JUDGES}:judge_free_running",
    success="✔ free_running feeds back the model's own argmax, and continuation_loss scores the true "
    "continuation after its prefix.",
)
