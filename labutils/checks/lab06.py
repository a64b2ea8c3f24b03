"""Self-checks of lab 06 (character-level generation).

* ``check_tbptt``: ``tbptt_step(model, optimizer, x, y, hidden, clip) -> (loss, hidden)`` and
  ``train_streams(model, optimizer, batches, clip) -> losses``, run on a small model that
  returns its hidden state *with* its graph (as the lab's ``CharRNN`` does) and that records
  every state it is given.  Judged against the same training done by hand in float64: the loss,
  the weights after each step, the state detached (no graph reaches the previous batch) and
  carried (never reset between batches).
* ``check_sample_next``: ``sample_next(logits, temperature, top_k, rng) -> int``, statistically:
  thousands of draws per setting against ``softmax(logits / temperature)`` restricted to the
  ``top_k`` best; temperature 0 gives the argmax; the same ``rng`` seed gives the same draws.
* ``check_generate``: ``generate(model, vocab, prime, length, temperature, top_k, rng) -> str``
  on a small model: greedy (temperature 0) against a step-by-step oracle; sampled, the joint
  frequencies of the first two characters against the oracle's probabilities.

This module keeps the ``Check`` definitions, the inputs, the probes and the hints for errors the
student's code raises (``Check.hints``); the oracles, the slips and their advice live in
``labutils.checks.judges.lab06``, imported only when a result is judged.
"""

from __future__ import annotations

import numpy as np

from .core import Check, param_arrays, returned_array, unpack

JUDGES = "labutils.checks.judges.lab06"

# ------------------------------------------------------------------------- truncated BPTT
V, E, H, L = 7, 4, 6, 2  # vocabulary, embedding, hidden, layers of the small model
B, T, K = 3, 4, 3  # streams, steps per batch, batches
LR, CLIP = 0.5, 0.05  # plain SGD; a clip the gradient (and some of its elements) always exceed
STALE_GRAD = 0.1  # gradients left over from an earlier step, which a step must clear first
MODEL_PARAMS = (
    ["embed.weight"]
    + [f"rnn.{k}_l{layer}" for layer in range(L) for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    + ["decoder.weight", "decoder.bias"]
)


DETACH = (
    "the state carried into this batch still holds the previous batch's graph, so backward() tries to go back "
    "through it. Return hidden.detach() from tbptt_step: truncated BPTT cuts the graph at every batch boundary."
)
TBPTT_HINTS = {
    "backward through the graph a second time": DETACH,
    "modified by an inplace operation": DETACH,
    "Expected hidden size": "the model was given a hidden state of the wrong shape: tbptt_step must return the "
    "state the model returned for this batch, h_n (L, B, H), detached -- not its output.",
    "Expected input batch_size": "cross_entropy wants logits (N, V) and targets (N,): reshape the logits (B, T, V) "
    "to (B*T, V) and the targets (B, T) to (B*T,).",
    "Expected target size": "cross_entropy wants logits (B*T, V) and targets (B*T,): reshape both before the loss.",
    "only one element tensors": "the loss must be one number: the mean over all B*T positions.",
    "scalar outputs": "the loss must be one number (the mean over all B*T positions) before backward().",
    "does not require grad": "the loss has no graph: compute it from the model's logits with torch operations (no "
    ".item(), no NumPy, no torch.no_grad()) before calling backward().",
    "Long": "the targets must be int64 class indices: torch.as_tensor(y) keeps NumPy's int64.",
    "class probabilities": "the targets must be int64 class indices, not floats.",
    "'numpy.ndarray' object has no attribute": "a NumPy array reached the model: x and y arrive as NumPy arrays "
    "(turn them into tensors on the model's device first, as the given lines do), and the hidden state tbptt_step "
    "returns must stay a tensor (hidden.detach(), not .numpy()).",
    "'float' object has no attribute 'backward'": "loss.item() turned the loss into a Python float, which has no "
    "graph: call loss.backward() on the tensor, and .item() only for the value you return.",
}


def small_model(vocab_size: int = V):
    """Embedding -> 2-layer tanh ``nn.RNN`` -> Linear, in float64, seeded; like the lab's CharRNN, its
    ``forward(x, hidden)`` returns the new hidden state *with* its graph.  It records the state it
    was given (``calls``) and the one it returned (``returned``) at every call."""
    import torch
    from torch import nn

    class RecordingCharRNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(vocab_size, E)
            self.rnn = nn.RNN(E, H, num_layers=L, batch_first=True)
            self.decoder = nn.Linear(H, vocab_size)
            self.calls, self.returned = [], []

        def forward(self, x, hidden=None):
            self.calls.append(hidden)
            output, hidden = self.rnn(self.embed(torch.as_tensor(x)), hidden)
            self.returned.append(hidden)
            return self.decoder(output), hidden

    torch.manual_seed(0)
    model = RecordingCharRNN().double()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(2.0)  # far from uniform predictions, and gradients that clipping cuts
    return model


def _tbptt_inputs(rng):
    stream = rng.integers(0, V, size=B * K * T + 1)
    rows_x = stream[:-1].reshape(B, K * T)
    rows_y = stream[1:].reshape(B, K * T)
    inp = {"h0": rng.normal(size=(L, B, H)) * 0.5}
    for k in range(K):  # contiguous streams: row b of batch k + 1 continues row b of batch k
        inp[f"x{k}"] = rows_x[:, k * T : (k + 1) * T].astype(np.int64)
        inp[f"y{k}"] = rows_y[:, k * T : (k + 1) * T].astype(np.int64)
    return inp


def _state(h) -> dict:
    """A hidden state a model was given or returned: its values and whether a graph hangs on it."""
    if h is None:
        return {"none": True, "graph": False, "value": np.zeros((L, B, H))}
    graph = bool(getattr(h, "requires_grad", False) or getattr(h, "grad_fn", None) is not None)
    value = returned_array(h, "a hidden state must be a tensor (L, B, H)").astype(np.float64)
    return {"none": False, "graph": graph, "value": value}


def _loss_value(loss, prefix: str) -> dict:
    import torch

    if isinstance(loss, torch.Tensor):
        return {f"{prefix}loss_is_tensor": True, f"{prefix}loss": loss.detach().double().numpy()}
    return {f"{prefix}loss_is_tensor": False, f"{prefix}loss": np.asarray(loss, dtype=np.float64)}


def _probe_step(objs, inp) -> dict:
    import torch

    model = small_model()
    out = param_arrays(model.named_parameters(), "init_")
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    for p in model.parameters():
        p.grad = torch.full_like(p, STALE_GRAD)
    result = objs["tbptt_step"](model, optimizer, inp["x0"].copy(), inp["y0"].copy(), _h0(inp), CLIP)
    loss, hidden = unpack(result, 2, "tbptt_step must return two things, (loss, hidden)")
    out |= _loss_value(loss, "step_") | param_arrays(model.named_parameters(), "step_")
    out |= {f"step_hidden_{k}": v for k, v in _state(hidden).items()}
    given = _state(model.calls[0]) if model.calls else {"none": True, "graph": False, "value": np.zeros(0)}
    out |= {"step_calls": len(model.calls), "step_given_none": given["none"], "step_given": given["value"]}
    return out


def _h0(inp):
    import torch

    return torch.tensor(inp["h0"])


def _one_loss(loss, k: int) -> float:
    """Loss ``k`` of the list train_streams returned, as a float, or ``AssertionError`` if it is not one number."""
    what = f"train_streams must return a list of losses, one number per batch; its item {k} is not a number"
    value = returned_array(loss, what)
    if value.size != 1:
        raise AssertionError(
            f"train_streams must return a list of losses, one number per batch; its item {k} has shape "
            f"{value.shape}: append the loss tbptt_step returns, not the hidden state."
        )
    return float(value)


def _probe_loop(objs, inp) -> dict:
    import torch

    model = small_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    batches = [(inp[f"x{k}"].copy(), inp[f"y{k}"].copy()) for k in range(K)]  # as StreamBatches yields them
    losses = objs["train_streams"](model, optimizer, batches, CLIP)
    if not isinstance(losses, (list, tuple)):
        raise AssertionError(
            f"train_streams must return a list of losses, one per batch; it returned a {type(losses).__name__}."
        )
    losses = [_one_loss(loss, k) for k, loss in enumerate(losses)]
    out = {"loop_losses": np.asarray(losses, dtype=np.float64), "loop_calls": len(model.calls)}
    out |= param_arrays(model.named_parameters(), "loop_")
    for k, (given, returned) in enumerate(zip(model.calls, model.returned, strict=True)):
        out |= {f"loop_given{k}_{name}": v for name, v in _state(given).items()}
        out[f"loop_returned{k}"] = _state(returned)["value"]
    return out


def _probe_tbptt(objs, inp):
    return _probe_step(objs, inp) | _probe_loop(objs, inp)


check_tbptt = Check(
    grade_id="lab06-tbptt",
    title="truncated BPTT: the step and the loop",
    needs=("tbptt_step", "train_streams"),
    make_inputs=_tbptt_inputs,
    probe=_probe_tbptt,
    judge=f"{JUDGES}:judge_tbptt",
    success="✔ tbptt_step takes the right optimiser step and returns a detached state; train_streams carries "
    "it from batch to batch.",
    hints=TBPTT_HINTS,
)


# ------------------------------------------------------------------------------- sampling
SV = 6  # logits of the sampling check
#: (temperature, top_k) settings drawn from statistically, N_DRAWS times each
SETTINGS = ((1.0, None), (0.5, None), (2.0, None), (1.0, 3), (0.7, 2))
N_DRAWS = 3000
N_REPEAT = 30


def _sample_inputs(rng):
    return {
        "logits": rng.normal(size=SV) * 1.5,
        "greedy_logits": rng.normal(size=(4, SV)) * 2.0,
        "seeds": rng.integers(0, 2**31, size=len(SETTINGS) + 1),
    }


def _probe_sample_next(objs, inp):
    import torch

    sample_next = objs["sample_next"]
    logits = torch.tensor(inp["logits"], dtype=torch.float32)
    seeds = [int(s) for s in inp["seeds"]]
    given = logits.clone()
    first = sample_next(given, 0.5, None, np.random.default_rng(seeds[0]))
    out = {"mutated": not torch.equal(given, logits), "type": np.asarray(type(first).__name__)}
    if isinstance(first, torch.Tensor) or not isinstance(first, (int, np.integer)):
        return out
    for c, (temperature, top_k) in enumerate(SETTINGS):
        rng = np.random.default_rng(seeds[c])
        out[f"draws{c}"] = np.array([sample_next(logits.clone(), temperature, top_k, rng) for _ in range(N_DRAWS)])
    greedy = [torch.tensor(g, dtype=torch.float32) for g in inp["greedy_logits"]]
    out["greedy"] = np.array([sample_next(g, 0.0, None, np.random.default_rng(0)) for g in greedy])
    out["greedy_top2"] = np.array([sample_next(g, 0.0, 2, np.random.default_rng(0)) for g in greedy])
    for name in ("repeat_a", "repeat_b"):  # two generators seeded alike
        rng = np.random.default_rng(seeds[-1])
        out[name] = np.array([sample_next(logits.clone(), 1.0, None, rng) for _ in range(N_REPEAT)])
    return out


check_sample_next = Check(
    grade_id="lab06-sample-next",
    title="sample_next with temperature and top-k",
    needs=("sample_next",),
    make_inputs=_sample_inputs,
    probe=_probe_sample_next,
    judge=f"{JUDGES}:judge_sample_next",
    success=f"✔ sample_next: over {N_DRAWS} draws per setting its frequencies agree with softmax(logits / "
    "temperature), top-k never leaves the k best, temperature 0 gives the argmax, and a seeded rng reproduces "
    "its draws.",
    hints={
        "do not sum to 1": "rng.choice checks in float64 that the probabilities sum to 1: divide the *logits* by the "
        "temperature before the softmax (probabilities divided afterwards no longer sum to 1); compute them in "
        "float64 (.double()) and, after top-k, from the filtered logits (softmax renormalises).",
        "contain NaN": "the probabilities hold NaN: at temperature 0 logits / temperature divides by zero. Return "
        "the argmax there, before dividing; and never take the softmax of logits that are all -inf.",
        "division by zero": "temperature 0 means the argmax: return it before dividing by the temperature.",
        "NoneType": "top_k=None means no filtering: test `if top_k is not None` before using it.",
        "non-negative": "the probabilities must be non-negative: take the softmax of the (filtered) logits.",
        "has no attribute 'choice'": "rng is a NumPy Generator: draw with rng.choice(V, p=probs).",
    },
)


# ---------------------------------------------------------------------------- generation
GEN_TEXT = "abcde \n"  # the small vocabulary of the generation check
PRIME = "ab c"
GREEDY_LEN, N_GEN, GEN_TEMPERATURE = 12, 1000, 0.7


def _generate_inputs(rng):
    return {"seeds": rng.integers(0, 2**31, size=4)}


def _text(result):
    """The string generate returned, or the name of what it returned instead."""
    return np.asarray(result if isinstance(result, str) else f"<{type(result).__name__}>")


def _probe_generate(objs, inp):
    import torch

    from ..text import CharVocab

    generate = objs["generate"]
    vocab = CharVocab(GEN_TEXT)
    model = small_model(len(vocab)).eval()
    seeds = [int(s) for s in inp["seeds"]]
    out = param_arrays(model.named_parameters())
    with torch.no_grad():
        out["greedy"] = _text(generate(model, vocab, PRIME, GREEDY_LEN, 0.0, None, np.random.default_rng(0)))
        out["greedy2"] = _text(generate(model, vocab, PRIME, GREEDY_LEN, 0.0, None, np.random.default_rng(1)))
        out["top1"] = _text(generate(model, vocab, PRIME, GREEDY_LEN, 1.3, 1, np.random.default_rng(0)))
        rng = np.random.default_rng(seeds[0])
        pairs = [_text(generate(model, vocab, PRIME, 2, GEN_TEMPERATURE, None, rng)) for _ in range(N_GEN)]
        out["pairs"] = np.asarray(pairs)
        for name, seed in (("repeat_a", seeds[1]), ("repeat_b", seeds[1]), ("repeat_c", seeds[2])):
            out[name] = _text(generate(model, vocab, PRIME, 20, 1.0, None, np.random.default_rng(seed)))
    return out


check_generate = Check(
    grade_id="lab06-generate",
    title="the generation loop",
    needs=("generate",),
    make_inputs=_generate_inputs,
    probe=_probe_generate,
    judge=f"{JUDGES}:judge_generate",
    success="✔ generate reads the prime, then feeds each sampled character back with the hidden state: greedy "
    "text matches step-by-step decoding, and sampled characters have the model's probabilities.",
    hints={
        "not in the vocabulary": "the vocabulary encodes characters: vocab.encode(prime); decode the ids you drew.",
        "outside": "vocab.decode takes ids in 0..V-1: decode the ids sample_next returned.",
        "Expected tensor for argument": "the model reads int64 ids shaped (1, T): torch.tensor([[token]]).",
        "unbatched": "the model reads a batch of sequences: feed one id as a (1, 1) tensor, torch.tensor([[token]]), "
        "not torch.tensor([token]).",
        "must be a str": "generate returns a string: prime + vocab.decode(ids).",
    },
)
