"""Judges of lab 06's self-checks: the oracles, the slips they recognise and the advice for each.

* Truncated BPTT: the probe's small model is rebuilt from its initial weights with PyTorch layers
  in float64 and trained by hand -- the right way and in each slip's way -- on the same batches.
* Sampling: frequencies over many draws against ``softmax(logits / temperature)`` restricted to
  the ``top_k`` best: an exact binomial test for each outcome, which a right sampler fails with
  probability ``ALPHA``.
* Generation: the small model decoded one character at a time, greedily and in probability.
"""

from __future__ import annotations

import numpy as np

from ..core import rel_error
from ..lab06 import (
    CLIP,
    DETACH,
    GEN_TEMPERATURE,
    GEN_TEXT,
    GREEDY_LEN,
    LR,
    MODEL_PARAMS,
    N_DRAWS,
    N_GEN,
    PRIME,
    SETTINGS,
    STALE_GRAD,
    B,
    E,
    H,
    K,
    L,
    T,
    V,
)
from .oracle import close, load_weights, param_values, params_of, tensor64

ALPHA = 1e-6  # how often a right sampler's count of one outcome fails the test
TOL = 1e-6  # the student's float64 against ours; a little room for a float32 detour


# ------------------------------------------------------------------------- truncated BPTT
def _layers(out, prefix: str, vocab_size: int = V):
    from torch import nn

    modules = {
        "embed": nn.Embedding(vocab_size, E).double(),
        "rnn": nn.RNN(E, H, num_layers=L, batch_first=True).double(),
        "decoder": nn.Linear(H, vocab_size).double(),
    }
    load_weights(modules, out, MODEL_PARAMS, prefix)
    return modules


def _train(inp, out, batches, hidden, kind: str, stale: bool) -> dict:
    """Train the small model by hand on ``batches`` from ``hidden`` the right way, or as slip ``kind`` does."""
    import torch
    import torch.nn.functional as F

    m = _layers(out, "init_")
    params = params_of(m)
    optimizer = torch.optim.SGD(params.values(), lr=LR)
    if stale:
        for p in params.values():
            p.grad = torch.full_like(p, STALE_GRAD)
    losses = []
    for x, y in batches:
        if kind == "reset":
            hidden = None
        output, new_hidden = m["rnn"](m["embed"](torch.as_tensor(x)), hidden)
        logits = m["decoder"](output)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), torch.as_tensor(y).reshape(-1))
        if kind != "no_zero_grad":
            optimizer.zero_grad()
        loss.backward()
        if kind == "clip_value":
            torch.nn.utils.clip_grad_value_(params.values(), CLIP)
        elif kind not in ("no_clip", "zero_after_backward"):
            torch.nn.utils.clip_grad_norm_(params.values(), CLIP)
        if kind == "zero_after_backward":
            optimizer.zero_grad()
        optimizer.step()
        losses.append(loss.item())
        hidden = new_hidden.detach()
    return {"losses": np.array(losses), "params": {n: p.detach().numpy() for n, p in params.items()}}


UPDATE_SLIPS = {
    "no_clip": "the gradient is not clipped: torch.nn.utils.clip_grad_norm_(model.parameters(), clip), after "
    "backward() and before optimizer.step().",
    "clip_value": "the gradient is clipped elementwise (clip_grad_value_): clip its global norm instead, "
    "torch.nn.utils.clip_grad_norm_(model.parameters(), clip).",
    "no_zero_grad": "the gradients of earlier steps are added to this one: call optimizer.zero_grad() before "
    "loss.backward() (PyTorch accumulates gradients).",
}


def _params_match(got: dict, want: dict) -> bool:
    return all(close(got[k], want[k], 1e-7) for k in want)


def _judge_update(got_params: dict, inp, out, batches, hidden, stale: bool, what: str) -> None:
    """Compare the weights after training with the oracle's; name the slip that explains them."""
    want = _train(inp, out, batches, hidden, "right", stale)
    if _params_match(got_params, want["params"]):
        return
    for kind, advice in UPDATE_SLIPS.items():
        if _params_match(got_params, _train(inp, out, batches, hidden, kind, stale)["params"]):
            raise AssertionError(f"{what}: {advice}")
    before = _train(inp, out, [], hidden, "right", stale)["params"]
    if _params_match(got_params, before):
        raise AssertionError(
            f"{what}: the weights did not change: call optimizer.step() after backward() and the clipping, and do "
            "not zero the gradients between backward() and step(). Order: zero_grad, backward, clip, step."
        )
    worst = max(want["params"], key=lambda k: rel_error(got_params[k], want["params"][k]))
    raise AssertionError(
        f"{what}: the weights after the step differ from one SGD step on the clipped gradient of the mean "
        f"cross-entropy (worst: {worst}, relative error {rel_error(got_params[worst], want['params'][worst]):.1e}). "
        "Order: zero_grad, forward, loss, backward, clip_grad_norm_, step."
    )


def _judge_step(inp, out) -> None:

    if out["step_calls"] != 1:
        raise AssertionError(f"tbptt_step called the model {out['step_calls']} times: once per batch is enough.")
    h0 = inp["h0"]
    if out["step_given_none"] or not close(out["step_given"], h0, TOL):
        raise AssertionError(
            "tbptt_step did not start from the hidden state it was given: call model(x, hidden), so that each "
            "batch continues where the previous one stopped."
        )
    batches = [(inp["x0"], inp["y0"])]
    want = _train(inp, out, batches, tensor64(h0), "right", True)
    loss = out["step_loss"]
    if np.shape(loss) != ():
        raise AssertionError(f"tbptt_step's loss has shape {np.shape(loss)}: return one number, the mean.")
    if np.isclose(loss, want["losses"][0] * B * T, rtol=1e-6):
        raise AssertionError("tbptt_step's loss is the sum over the B*T positions: return the mean.")
    if not np.isclose(loss, want["losses"][0], rtol=1e-6):
        fresh = _train(inp, out, batches, None, "right", True)  # trains: it needs autograd
        if np.isclose(loss, fresh["losses"][0], rtol=1e-6):
            raise AssertionError("tbptt_step's loss is computed from a zero state: pass hidden to the model.")
        raise AssertionError(
            f"tbptt_step's loss is {float(loss):.6f}, expected {want['losses'][0]:.6f}: the mean cross-entropy "
            "of the logits (B*T, V) against the targets (B*T,)."
        )
    if out["step_loss_is_tensor"]:
        raise AssertionError(
            "tbptt_step returns the loss as a tensor: return loss.item(), a float (a tensor kept in a list keeps "
            "its whole graph alive)."
        )
    if out["step_hidden_graph"]:
        raise AssertionError(f"tbptt_step returns a hidden state attached to the graph: {DETACH}")
    if out["step_hidden_none"] or not close(out["step_hidden_value"], _forward_state(inp, out), TOL):
        raise AssertionError(
            "tbptt_step must return the state the model returned for this batch, h_n (L, B, H), detached."
        )
    _judge_update(param_values(out, MODEL_PARAMS, "step_"), inp, out, batches, tensor64(h0), True, "tbptt_step")


def _forward_state(inp, out) -> np.ndarray:
    """The state the model returns on batch 0 from h0, before any update."""
    import torch

    m = _layers(out, "init_")
    with torch.no_grad():
        _, h = m["rnn"](m["embed"](torch.as_tensor(inp["x0"])), tensor64(inp["h0"]))
    return h.numpy()


def _judge_loop(inp, out) -> None:
    if out["loop_calls"] != K:
        raise AssertionError(
            f"train_streams ran the model {int(out['loop_calls'])} times on {K} batches: one tbptt_step per batch."
        )
    first = out["loop_given0_value"]
    if not (out["loop_given0_none"] or np.allclose(first, 0)):
        raise AssertionError("train_streams must start from hidden=None (a zero state), not from another state.")
    for k in range(1, K):
        if out[f"loop_given{k}_none"] or np.allclose(out[f"loop_given{k}_value"], 0):
            raise AssertionError(
                f"the state is reset before batch {k + 1}: carry the hidden state tbptt_step returns into the next "
                "call, hidden = ..., so that each stream continues where it stopped."
            )
        if out[f"loop_given{k}_graph"]:
            raise AssertionError(f"batch {k + 1}: {DETACH}")
        if not close(out[f"loop_given{k}_value"], out[f"loop_returned{k - 1}"], TOL):
            raise AssertionError(
                f"batch {k + 1} starts from a state that is not the one batch {k} ended with: carry exactly the "
                "hidden state the previous step returned."
            )
    batches = [(inp[f"x{k}"], inp[f"y{k}"]) for k in range(K)]
    want = _train(inp, out, batches, None, "right", False)
    losses = out["loop_losses"]
    if np.shape(losses) != (K,):
        raise AssertionError(f"train_streams returned {np.size(losses)} losses for {K} batches: one per batch.")
    if not close(losses, want["losses"], TOL):
        raise AssertionError(
            f"train_streams' losses {np.round(losses, 4).tolist()} differ from {np.round(want['losses'], 4).tolist()}"
            ": one tbptt_step per batch, in order, each loss appended."
        )
    _judge_update(param_values(out, MODEL_PARAMS, "loop_"), inp, out, batches, None, False, "train_streams")


def judge_tbptt(inp, out):
    _judge_step(inp, out)
    _judge_loop(inp, out)


# ------------------------------------------------------------------------------- sampling
def _expected(logits, temperature, top_k, how="right") -> np.ndarray:
    """Probabilities of each id: softmax(logits / temperature) on the top_k best -- or a slip's."""
    z = np.asarray(logits, dtype=np.float64)
    order = np.argsort(-z)
    keep = np.ones_like(z, dtype=bool)
    k = {"k_plus_one": (top_k or 0) + 1, "k_minus_one": (top_k or 2) - 1}.get(how, top_k)
    if top_k is not None and how != "no_top_k":
        keep[:] = False
        keep[order[-k:] if how == "bottom_k" else order[:k]] = True
    if how == "uniform_top_k":
        return keep / keep.sum()
    scale = {"times": temperature, "no_temperature": 1.0}.get(how, 1.0 / temperature)
    e = np.where(keep, np.exp((z - z[keep].max()) * scale), 0.0)
    return e / e.sum()


SAMPLE_SLIPS = {
    "times": "the logits are multiplied by the temperature: divide them, softmax(logits / temperature).",
    "no_temperature": "the temperature is ignored: the distribution is softmax(logits / temperature).",
    "no_top_k": "top_k is ignored: keep only the k largest logits (set the others to -inf) before the softmax.",
    "k_plus_one": "top-k keeps k + 1 ids: keep exactly the k largest logits.",
    "k_minus_one": "top-k keeps k - 1 ids: keep exactly the k largest logits (those >= the k-th largest).",
    "bottom_k": "top-k keeps the k *smallest* logits: keep the k largest.",
    "uniform_top_k": "the ids are drawn uniformly (among the k best, with top_k): draw them with their softmax "
    "probabilities, rng.choice(V, p=probs).",
}


def _binomial_tails(count: int, n: int, p: float) -> tuple[float, float]:
    """P(X <= count) and P(X >= count) for X ~ Binomial(n, p), from log-factorials (exact, no SciPy)."""
    log_fact = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, n + 1)))])
    j = np.arange(n + 1)
    with np.errstate(divide="ignore"):
        log_pmf = log_fact[n] - log_fact[j] - log_fact[n - j] + j * np.log(p) + (n - j) * np.log1p(-p)
    pmf = np.exp(log_pmf)
    return float(pmf[: count + 1].sum()), float(pmf[count:].sum())


def consistent(counts, p, n: int) -> bool:
    """Whether ``counts`` of ``n`` draws can come from probabilities ``p``.

    An outcome of probability 0 must never be drawn; every other count must pass a two-sided exact
    binomial test at level ``ALPHA`` (a right sampler fails it about once in a million per outcome).
    """
    counts, p = np.asarray(counts, dtype=np.int64), np.asarray(p, dtype=np.float64)
    if np.any((p <= 0) & (counts > 0)):
        return False
    for count, q in zip(counts, p, strict=True):
        if 0 < q < 1 and 2 * min(_binomial_tails(int(count), n, float(q))) < ALPHA:
            return False
    return True


def _judge_draws(inp, out) -> None:
    logits = inp["logits"]
    for c, (temperature, top_k) in enumerate(SETTINGS):
        draws = out[f"draws{c}"]
        setting = f"temperature={temperature}, top_k={top_k}"
        if draws.min() < 0 or draws.max() >= len(logits):
            raise AssertionError(f"sample_next({setting}) returned ids outside 0..{len(logits) - 1}.")
        counts = np.bincount(draws, minlength=len(logits))
        p = _expected(logits, temperature, top_k)
        if consistent(counts, p, N_DRAWS):
            continue
        if len(np.unique(draws)) == 1:
            raise AssertionError(
                f"sample_next({setting}) returned {draws[0]} every time: draw at random with rng, "
                "rng.choice(V, p=probs); only temperature 0 means the argmax."
            )
        for how, advice in SAMPLE_SLIPS.items():
            if consistent(counts, _expected(logits, temperature, top_k, how), N_DRAWS):
                raise AssertionError(f"sample_next({setting}): {advice}")
        outside = [i for i in range(len(p)) if p[i] == 0 and counts[i] > 0]
        if outside:
            raise AssertionError(
                f"sample_next({setting}) emitted ids {outside}, which are not among the {top_k} most likely: "
                "keep only the k largest logits."
            )
        raise AssertionError(
            f"sample_next({setting}): over {N_DRAWS} draws the frequencies {np.round(counts / N_DRAWS, 3).tolist()} "
            f"are not those of softmax(logits / temperature) on the top-k, {np.round(p, 3).tolist()} "
            f"(an exact binomial test per id, which a right sampler fails about once in {1 / ALPHA:,.0f})."
        )


def judge_sample_next(inp, out):
    kind = str(out["type"])
    if kind not in ("int",) and not kind.startswith(("int", "uint")):
        drawn = " (rng.choice(probs) draws one of the probabilities themselves)" if kind.startswith("float") else ""
        raise AssertionError(
            f"sample_next returned a {kind}: return a Python int, the id drawn, int(rng.choice(V, p=probs)){drawn}."
        )
    if out["mutated"]:
        raise AssertionError(
            "sample_next changed the logits it was given (an in-place division such as logits /= temperature?): "
            "compute new tensors, the caller's logits must stay as they were."
        )
    _judge_draws(inp, out)
    want = np.argmax(inp["greedy_logits"], axis=1)
    for name in ("greedy", "greedy_top2"):
        if not np.array_equal(out[name], want):
            raise AssertionError(
                f"at temperature 0 sample_next returned {out[name].tolist()}, expected the argmax {want.tolist()}."
            )
    if not np.array_equal(out["repeat_a"], out["repeat_b"]):
        raise AssertionError(
            "two rngs seeded alike gave different draws: draw with the rng you are given (rng.choice), not with "
            "np.random or torch's global generator, so that a seed reproduces a sample."
        )


# ---------------------------------------------------------------------------- generation
def _gen_layers(out):
    return _layers(out, "param_", len(GEN_TEXT))


def _probs_after(m, ids, hidden, temperature):
    """Feed ids one at a time from ``hidden``; return (probabilities of the next id, hidden)."""
    import torch

    for i in ids:
        output, hidden = m["rnn"](m["embed"](torch.tensor([[int(i)]])), hidden)
    logits = m["decoder"](output)[0, -1].numpy()
    if temperature == 0:
        return np.eye(len(logits))[np.argmax(logits)], hidden
    e = np.exp((logits - logits.max()) / temperature)
    return e / e.sum(), hidden


def _greedy(m, kind: str = "right") -> str:
    chars = sorted(set(GEN_TEXT))
    prime = [chars.index(c) for c in PRIME]
    p, hidden = _probs_after(m, prime[-1:] if kind == "prime_last" else prime, None, 0.0)
    if kind == "first_position":  # the state after the prime, but the logits after its first character
        p, _ = _probs_after(m, prime[:1], None, 0.0)
    text = PRIME
    for _ in range(GREEDY_LEN):
        token = int(np.argmax(p))
        text += chars[token]
        feed = prime[-1] if kind == "stale" else token
        p, hidden = _probs_after(m, [feed], None if kind == "reset" else hidden, 0.0)
    return text


GREEDY_SLIPS = {
    "reset": "each character is predicted from a fresh state: pass the hidden state on, model(x, hidden).",
    "prime_last": "only the prime's last character was read: run the whole prime through the model first.",
    "stale": "the prime's last character is fed again at every step: feed back the character just drawn.",
    "first_position": "the first character is drawn from the logits at the prime's *first* position, logits[0, 0]: "
    "the next character follows the prime's last position, logits[0, -1].",
}


def _joint(m, temperature) -> np.ndarray:
    """P(first two generated characters) = p(c1) p(c2 | c1) after the prime."""
    chars = sorted(set(GEN_TEXT))
    p1, hidden = _probs_after(m, [chars.index(c) for c in PRIME], None, temperature)
    rows = [p1[c] * _probs_after(m, [c], hidden, temperature)[0] for c in range(len(chars))]
    return np.array(rows)


def _judge_greedy(out, m) -> None:
    want, got = _greedy(m), str(out["greedy"])
    if got.startswith("<") and got.endswith(">"):
        raise AssertionError(f"generate returned a {got[1:-1]}: return a string, the prime and what follows.")
    foreign = sorted(set(got) - set(GEN_TEXT))
    if foreign:
        raise AssertionError(
            f"generate returned characters that are not in the vocabulary, {foreign}: turn the ids drawn back into "
            "text with vocab.decode(ids)."
        )
    if got != str(out["greedy2"]):
        raise AssertionError(
            "at temperature 0 generate gave different texts for different seeds, so it still samples: pass the "
            "temperature on to sample_next."
        )
    if got == want:
        if str(out["top1"]) != want:
            raise AssertionError(
                "with top_k=1 only the most likely character can be drawn, whatever the temperature, yet the text "
                "differs from the greedy one: pass top_k on to sample_next."
            )
        return
    if got == want[len(PRIME) :]:
        raise AssertionError("generate must return the prime followed by the generated characters.")
    if len(got) != len(want):
        raise AssertionError(
            f"generate(..., prime={PRIME!r}, length={GREEDY_LEN}) returned {len(got)} characters, expected "
            f"len(prime) + length = {len(want)}."
        )
    for kind, advice in GREEDY_SLIPS.items():
        if got == _greedy(m, kind):
            raise AssertionError(f"generate is wrong: {advice}")
    raise AssertionError(
        f"at temperature 0 generate gave {got!r}, expected {want!r}: read the prime, then repeatedly draw with "
        "sample_next from the last logits and feed the character drawn back in, with the hidden state."
    )


def _judge_pairs(out, m) -> None:
    chars = sorted(set(GEN_TEXT))
    pairs = [str(s) for s in out["pairs"]]
    if any(len(s) != len(PRIME) + 2 or not s.startswith(PRIME) for s in pairs):
        raise AssertionError("generate(..., length=2) must return the prime followed by 2 characters.")
    counts = np.zeros((len(chars), len(chars)))
    for s in pairs:
        counts[chars.index(s[-2]), chars.index(s[-1])] += 1
    p = _joint(m, GEN_TEMPERATURE)
    if consistent(counts.ravel(), p.ravel(), N_GEN):
        return
    if consistent(counts.ravel(), _joint(m, 1.0).ravel(), N_GEN):
        raise AssertionError("generate ignores its temperature: pass the temperature on to sample_next.")
    raise AssertionError(
        f"over {N_GEN} samples of two characters at temperature {GEN_TEMPERATURE}, the pairs are not drawn with "
        "the model's probabilities (an exact binomial test per pair): draw each character with "
        "sample_next(logits[0, -1], temperature, top_k, rng) and feed it back with the hidden state."
    )


def judge_generate(inp, out):
    import torch

    m = _gen_layers(out)
    with torch.no_grad():
        _judge_greedy(out, m)
        if str(out["repeat_a"]) != str(out["repeat_b"]):
            raise AssertionError("two rngs seeded alike gave different texts: pass rng on to sample_next.")
        if str(out["repeat_a"]) == str(out["repeat_c"]):
            raise AssertionError(
                "two rngs seeded differently gave the same text: does generate sample at all? Draw each character "
                "with sample_next(logits[0, -1], temperature, top_k, rng) (not an argmax), passing rng on."
            )
        _judge_pairs(out, m)
