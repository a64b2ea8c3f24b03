"""Self-checks of lab 05 (RNN configurations).

* ``check_classifier``: the many-to-one ``PassageClassifier.forward(x, lengths)`` with packing,
  against each passage run *alone*, unpadded, through PyTorch layers holding the student's
  weights.  The judge names the usual slips: ``h_n`` of the padded batch, lengths given unsorted
  without ``enforce_sorted=False``, the wrong layer of ``h_n``, the rows left in sorted order.
* ``check_free_running``: ``free_running(model, prompt, n)`` (greedy generation that feeds the
  model's own predictions back) and ``continuation_loss(model, prefix, continuation)`` (the mean
  cross-entropy of a true continuation after a prefix), against the same computation done step by
  step with PyTorch layers holding the model's weights.

This module keeps the ``Check`` definitions, the inputs, the probes (which run the student's
code and nothing else) and the hints for errors the student's code raises (``Check.hints``); the
oracles, the slips and their advice live in ``labutils.checks.judges.lab05``, imported only when
a result is judged.
"""

from __future__ import annotations

import numpy as np

from .core import Check, given_params, param_arrays, returned_array

JUDGES = "labutils.checks.judges.lab05"

# Sizes of the random problems: all different, so that a swapped axis shows in the shape.
V, C, E, H, L = 13, 3, 4, 5, 2  # vocabulary, classes, embedding, hidden, layers
B, T = 5, 7  # passages per batch, padded length
LENGTHS = (4, 7, 2, 6, 1)  # unsorted on purpose, with the longest not first
CLASSIFIER_PARAMS = (
    ["embedding.weight"]
    + [f"rnn.{k}_l{layer}" for layer in range(L) for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    + ["classify.weight", "classify.bias"]
)


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
    params = given_params(model, CLASSIFIER_PARAMS)
    with torch.no_grad():
        for p in params.values():  # weights large enough that every step matters
            p.mul_(2.5)
    out = param_arrays(params)
    lengths = torch.tensor(inp["lengths"])  # copies: the inputs stay as drawn whatever forward does
    with torch.no_grad():
        logits = model(torch.tensor(inp["x"]), lengths)
    out["logits"] = returned_array(logits, "PassageClassifier.forward must return the logits, a tensor (B, C)")
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
    hints={
        "must be sorted in decreasing order": "pack_padded_sequence refused the lengths: they come in any order "
        f"(here {list(LENGTHS)}), and with the default enforce_sorted=True PyTorch wants them longest first. Pass "
        "enforce_sorted=False: PyTorch then sorts the batch itself and gives h_n back in your order.",
        "1D CPU int64 tensor": "pack_padded_sequence wants the lengths on the CPU as int64: pass lengths.cpu().",
        "exceeds dimension size": "the packed batch does not fit the GRU: the batches are batch-first, so pack "
        "with batch_first=True.",
        "to be equal to batch_size": "pack_padded_sequence read the time axis as the batch axis: the batches are "
        "batch-first, so pass batch_first=True.",
        "PackedSequence": "self.rnn on a PackedSequence returns its outputs packed too: the many-to-one classifier "
        "does not need them; take the final state h_n it returns second.",
        "matmul": "self.classify expects one H-vector per passage, (B, H). h_n is (num_layers, B, H): take the top "
        "layer, h_n[-1].",
        "but got Long and": "self.classify received integers: self.rnn returns (output, h_n), in that order, and on "
        "a PackedSequence its output is packed too (fields of index tensors); take h_n, the second, and h_n[-1].",
        "index": "An index past the end of the padded time axis: passage b's last word is at position "
        "lengths[b] - 1, not lengths[b]. h_n[-1] of the packed run already holds each passage's state after its "
        "own last word.",
    },
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
    out = param_arrays(model.named_parameters())
    ids = "free_running must return the n generated ids, a 1-D tensor"
    with torch.no_grad():
        for i, prompt in enumerate(inp["prompts"]):
            out[f"free{i}"] = returned_array(objs["free_running"](model, torch.tensor(prompt), N_FREE), ids)
            out[f"again{i}"] = returned_array(objs["free_running"](model, torch.tensor(prompt), N_FREE), ids)
        losses = []
        for prefix, cont in zip(inp["prefixes"], inp["continuations"], strict=True):
            loss = objs["continuation_loss"](model, torch.tensor(prefix), torch.tensor(cont))
            losses.append(returned_array(loss, "continuation_loss must return one number, the mean loss"))
    out["losses"] = np.stack(losses)
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
    hints={
        "stack expects a non-empty": "free_running collected no ids: append one per step, n times.",
        "Expected input batch_size": "cross_entropy wants logits (N, V) and targets (N,): select the M positions "
        "that predict the continuation, logits[0, len(prefix) - 1 : -1] or similar, and pass the continuation as "
        "targets.",
        "only one element tensors": "continuation_loss must return one number, the mean over the continuation.",
    },
)
