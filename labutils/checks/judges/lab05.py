"""Judges of lab 05's self-checks: the oracles, the slips they recognise and the advice for each.

Both oracles rebuild the student's network from its weights with PyTorch's own layers in
float64 and compute the answer the slow, obvious way: each passage alone and unpadded for the
classifier; one character at a time for free running and for the loss of a continuation.
"""

from __future__ import annotations

import math

import numpy as np

from ..core import assert_shape, rel_error
from ..lab05 import (
    CLASSIFIER_PARAMS,
    CONT_LEN,
    FE,
    FH,
    FV,
    LENGTHS,
    LM_PARAMS,
    N_FREE,
    PAIRS,
    PROMPT_LEN,
    B,
    C,
    E,
    H,
    L,
    T,
    V,
)
from .oracle import close, load_weights

T_MAX = T  # the padded length: the longest passage has no padding
TOL = 1e-6  # the student's float64 against ours; a little room for a float32 detour


# ------------------------------------------------------------------------------ classifier
def _classifier_layers(out):
    from torch import nn

    modules = {
        "embedding": nn.Embedding(V, E).double(),
        "rnn": nn.GRU(E, H, num_layers=L, batch_first=True).double(),
        "classify": nn.Linear(H, C).double(),
    }
    load_weights(modules, out, CLASSIFIER_PARAMS)
    return modules


def _classifier_oracles(inp, out) -> dict:
    """Logits of the right answer and of each slip, as arrays (B, C)."""
    import torch

    m = _classifier_layers(out)
    x, lengths = torch.as_tensor(inp["x"]), inp["lengths"]
    with torch.no_grad():
        alone = [m["rnn"](m["embedding"](x[b : b + 1, : lengths[b]]))[1] for b in range(B)]  # each (L, 1, H)
        top = torch.cat([h[-1] for h in alone])  # (B, H): every passage run alone, unpadded
        bottom = torch.cat([h[0] for h in alone])
        states, h_padded = m["rnn"](m["embedding"](x))  # over the padding
        right = m["classify"](top)
        order = np.argsort(-lengths, kind="stable")
        return {
            "right": right.numpy(),
            "padded": m["classify"](h_padded[-1]).numpy(),
            "bottom": m["classify"](bottom).numpy(),
            "padded_bottom": m["classify"](h_padded[0]).numpy(),
            "sorted": right.numpy()[order],
            "last_column": m["classify"](torch.where(torch.as_tensor(lengths == T_MAX)[:, None], top, 0.0)).numpy(),
            "mean": m["classify"](states.mean(1)).numpy(),
            "softmax": right.softmax(-1).numpy(),
            "log_softmax": right.log_softmax(-1).numpy(),
        }


CLASSIFIER_SLIPS = {
    "padded": (
        "these are the logits of h_n of the *padded* batch: the GRU ran on over the padding, so every passage "
        "shorter than the batch's longest ended on pad tokens. Pack the embedded batch first: "
        "pack_padded_sequence(emb, lengths.cpu(), batch_first=True, enforce_sorted=False)."
    ),
    "bottom": "h_n[0] is the *first* layer's final state; the classifier reads the top layer's, h_n[-1].",
    "padded_bottom": (
        "two slips: h_n of the padded batch (pack it first, enforce_sorted=False) and h_n[0], the first layer "
        "(take the top one, h_n[-1])."
    ),
    "sorted": (
        "the logits are right but in the order of decreasing length, not in the order of the passages: with "
        "enforce_sorted=False PyTorch sorts and unsorts for you; a batch you sort yourself must be put back."
    ),
    "last_column": (
        "these come from the last column of the padded outputs, which is zero (padding) for every passage "
        "shorter than the longest: the state after each passage's own last word is h_n[-1]."
    ),
    "softmax": "softmax was applied: return raw logits (cross_entropy applies log-softmax itself).",
    "log_softmax": "log-softmax was applied: return raw logits (cross_entropy applies it itself).",
    "mean": (
        "these come from the mean of the outputs over every padded step: the classifier reads the state after "
        "each passage's own last word, h_n[-1] of the packed run (padding steps are not words)."
    ),
}


def judge_classifier(inp, out):
    if not np.array_equal(out["lengths_after"], inp["lengths"]):
        raise AssertionError(
            "forward changed the caller's lengths tensor in place (sorted it?): leave it as it is and pass "
            "enforce_sorted=False to pack_padded_sequence."
        )
    logits = out["logits"]
    hints = {
        (L, B, C): "That is one prediction per layer of h_n: the classifier reads the top layer only, h_n[-1].",
        (B, T, C): "That is one prediction per step (many-to-many); a passage gets one, from its final state.",
        (B, H): "That is the hidden state: pass it through self.classify to get one logit per class.",
        (B,): "That is one number per passage (an argmax?): return the logits (B, C); cross_entropy takes them.",
    }
    assert_shape("logits", logits, (B, C), hints.get(tuple(np.shape(logits)), ""))
    oracles = _classifier_oracles(inp, out)
    if close(logits, oracles["right"], TOL):
        return
    for name, advice in CLASSIFIER_SLIPS.items():
        if close(logits, oracles[name], TOL):
            raise AssertionError(f"logits are wrong: {advice}")
    rows = [b for b in range(B) if not close(logits[b], oracles["right"][b], TOL)]
    raise AssertionError(
        f"logits differ from each passage run alone (relative error {rel_error(logits, oracles['right']):.1e}; "
        f"wrong for the passages of lengths {[LENGTHS[b] for b in rows]}). Embed x, pack it with its lengths "
        "(batch_first=True, enforce_sorted=False), run self.rnn, classify the top layer's final state h_n[-1]."
    )


# ---------------------------------------------------------------- free running vs forcing
def _lm_layers(out):
    from torch import nn

    modules = {
        "embed": nn.Embedding(FV, FE).double(),
        "rnn": nn.GRU(FE, FH, batch_first=True).double(),
        "decoder": nn.Linear(FH, FV).double(),
    }
    load_weights(modules, out, LM_PARAMS)
    return modules


def _step(m, ids, hidden=None):
    """Feed ``ids`` (1-D) one at a time from ``hidden``: (logits after each, final hidden)."""
    import torch

    logits = []
    for i in ids:
        state, hidden = m["rnn"](m["embed"](torch.tensor([[int(i)]])), hidden)
        logits.append(m["decoder"](state[0, -1]))
    return torch.stack(logits), hidden


def _greedy(m, prompt, n: int, kind: str = "right") -> np.ndarray:
    """The model's own n next ids after ``prompt`` -- or what a slip of ``kind`` produces."""
    import torch

    logits, hidden = _step(m, prompt[:1] if kind == "first_position" else prompt)
    if kind == "fed_twice":
        logits, hidden = _step(m, prompt[-1:], hidden)
    token, ids = int(torch.argmax(logits[0 if kind == "first_logits" else -1])), []
    for _ in range(n):
        ids.append(token)
        if kind == "reset":
            logits, hidden = _step(m, [token])
        elif kind == "stale":
            logits, hidden = _step(m, prompt[-1:], hidden)
        else:
            logits, hidden = _step(m, [token], hidden)
        token = int(torch.argmax(logits[-1]))
    return np.asarray(ids)


FREE_SLIPS = {
    "reset": (
        "each step starts from a fresh hidden state: pass the hidden state the model returned on to the next call, "
        "model(token, hidden), so that the state keeps what was read."
    ),
    "stale": (
        "every step feeds the prompt's last character again: feed back the id just predicted (free running "
        "reads its own output)."
    ),
    "fed_twice": (
        "the prompt's last character is read twice: the logits after reading the prompt already predict the first "
        "new id."
    ),
    "first_position": (
        "the first prediction comes from the first position of the prompt: the next id follows the prompt's "
        "*last* position, logits[:, -1]."
    ),
    "first_logits": (
        "the first new id is the argmax of the logits at the prompt's *first* position: after reading the prompt, "
        "the next id is predicted by the logits at its last position, logits[:, -1]."
    ),
}


def _judge_free(inp, out, m) -> None:
    import torch

    with torch.no_grad():
        for i, prompt in enumerate(inp["prompts"]):
            got, again, want = out[f"free{i}"], out[f"again{i}"], _greedy(m, prompt, N_FREE)
            hints = {
                (PROMPT_LEN + N_FREE,): "That is the prompt and the new ids: return only the n new ones.",
                (1, N_FREE): "Drop the batch axis: return a 1-D tensor of n ids.",
                (N_FREE - 1,): "One id short: take n ids, one per pass of a loop over range(n).",
            }
            assert_shape(f"free_running(model, prompt, n={N_FREE})", got, (N_FREE,), hints.get(np.shape(got), ""))
            if not np.array_equal(got, again):
                raise AssertionError(
                    "free_running gave two different answers for the same prompt: it samples. Here the model runs "
                    "free *greedily*: each next id is the argmax of the logits."
                )
            if np.array_equal(got, want):
                continue
            for kind, advice in FREE_SLIPS.items():
                if np.array_equal(got, _greedy(m, prompt, N_FREE, kind)):
                    raise AssertionError(f"free_running is wrong: {advice}")
            raise AssertionError(
                f"free_running(model, prompt={prompt.tolist()}, n={N_FREE}) gave {got.tolist()}, expected "
                f"{want.tolist()}: read the prompt, then n times take the argmax of the last logits, keep it and "
                "feed it back with the hidden state."
            )


def _continuation_losses(m, prefix, cont) -> dict:
    """The right loss of ``cont`` after ``prefix``, and what the usual slips compute."""
    import torch
    import torch.nn.functional as F

    seq = np.concatenate([prefix, cont])
    logits, _ = _step(m, seq)  # logits[j] predicts seq[j + 1]
    target = torch.as_tensor(seq)
    P = len(prefix)
    right = F.cross_entropy(logits[P - 1 : -1], target[P:])
    alone, _ = _step(m, cont)
    return {
        "right": float(right),
        "sum": float(right) * len(cont),
        "bits": float(right) / math.log(2),
        "skip_first": float(F.cross_entropy(logits[P:-1], target[P + 1 :])),
        "same_position": float(F.cross_entropy(logits[P:], target[P:])),
        "no_prefix": float(F.cross_entropy(alone[:-1], target[P + 1 :])),
        "with_prefix": float(F.cross_entropy(logits[:-1], target[1:])),
        "softmax_first": float(F.cross_entropy(logits[P - 1 : -1].softmax(-1), target[P:])),
        "nll_of_logits": float(F.nll_loss(logits[P - 1 : -1], target[P:])),
    }


LOSS_SLIPS = {
    "sum": "it is the sum over the continuation: return the mean (cross_entropy's default reduction).",
    "bits": "it is in bits: keep nats (natural logarithm), as cross_entropy gives them.",
    "skip_first": (
        "the first character of the continuation is not scored: it is predicted by the logits at the prefix's "
        "last position, logits[0, len(prefix) - 1]."
    ),
    "same_position": (
        "each character is scored by the logits at its own position, after the model has read it: the logits "
        "at position j predict position j + 1."
    ),
    "no_prefix": (
        "the model never read the prefix: run it on the prefix followed by the continuation, so the state "
        "that predicts the continuation comes from the prefix."
    ),
    "with_prefix": "the loss includes the prefix's own characters: score the continuation only.",
    "softmax_first": (
        "cross_entropy was given probabilities (a softmax applied first): give it the raw logits, it applies "
        "log-softmax itself."
    ),
    "nll_of_logits": (
        "nll_loss was given raw logits: it expects log-probabilities. Use F.cross_entropy on the logits (or "
        "nll_loss on their log_softmax)."
    ),
}


def _judge_loss(inp, out, m) -> None:
    import torch

    losses = out["losses"]
    hints = {(PAIRS, CONT_LEN): "That is one loss per character: return their mean, one number."}
    assert_shape("continuation_loss(...) for each test pair", losses, (PAIRS,), hints.get(np.shape(losses), ""))
    with torch.no_grad():
        oracles = [_continuation_losses(m, p, c) for p, c in zip(inp["prefixes"], inp["continuations"], strict=True)]
    want = np.array([o["right"] for o in oracles])
    if close(losses, want, TOL):
        return
    for kind, advice in LOSS_SLIPS.items():
        if close(losses, np.array([o[kind] for o in oracles]), TOL):
            raise AssertionError(f"continuation_loss is wrong: {advice}")
    raise AssertionError(
        f"continuation_loss gave {np.round(losses, 4).tolist()}, expected {np.round(want, 4).tolist()} (nats): run "
        "the model on prefix + continuation[:-1] and take the mean cross-entropy of the continuation's characters, "
        "each predicted by the logits one position before it."
    )


def judge_free_running(inp, out):
    m = _lm_layers(out)
    _judge_free(inp, out, m)
    _judge_loss(inp, out, m)
