"""``python -m labutils bench numpy-lm``: lab 02's NumPy character model against a tutorial-style loop.

Two from-scratch NumPy character language models train on the same text (The Time Machine), with
the same hidden size and sequence length, for the same number of characters:

* **ours**: lab 02's model, loaded at run time from the cells of ``solutions/02_bptt_numpy.ipynb``
  tagged ``numpy-lm`` (labutils holds no answer to lab 02's exercises). It is batched
  (many streams at once), looks embeddings up by index and has no Python loop over the batch;
* **baseline**: a re-creation of the popular batch-size-1 style (written for this benchmark): one
  stream, one-hot column vectors, the forward and backward passes kept in dictionaries of arrays
  keyed by time step, Adagrad and element-wise clipping at 5.

Ours trains in float32 (as in the lab); the baseline in float64, as the tutorials do. Both train
with NumPy's BLAS on one thread (``threadpoolctl``): their matrices are at most 64 x 100, too small
for threads to pay, and on a 2-core machine shared with other work extra BLAS threads only wait
on each other.  The two train in turns (a sixth of ours' updates, then as many characters of
the baseline, and so on), so that a slow spell of a shared machine falls on both alike.  It reports
characters per second of each and their ratio (``speedup``), and the loss per character of each
on held-out text after training (``ours_loss``, ``baseline_loss``), both measured by the same
evaluator: ``torch.nn.RNN`` in float64 with the trained weights copied in.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "solutions" / "02_bptt_numpy.ipynb"
TAG = "numpy-lm"

HIDDEN, SEQ_LEN = 100, 25  # equal for both models
EMBED, BATCH, LR = 32, 64, 0.1  # ours
BASE_LR = 0.1  # the tutorial's Adagrad learning rate
ROUNDS = 6  # turns each model takes


# ------------------------------------------------------------------------------- ours
def load_lab02_model(notebook: Path = NOTEBOOK) -> dict:
    """Execute the code cells of lab 02's solution tagged ``numpy-lm``; return their namespace.

    Raises ``FileNotFoundError`` with advice when the solutions are not there (a student release
    ships notebooks/ only) and ``LookupError`` when no cell carries the tag.
    """
    import labutils
    from labutils.notebooks import run_tagged_cells

    return run_tagged_cells(notebook, TAG, ("init_char_lm", "train_char_lm"), {"np": np, "lu": labutils})


# ---------------------------------------------------------------- the tutorial-style baseline
class TutorialRNN:
    """A batch-size-1 character RNN in the style of many tutorials (one-hot columns, dicts per step)."""

    def __init__(self, vocab_size: int, hidden: int, rng: np.random.Generator):
        self.V, self.H = vocab_size, hidden
        self.Wxh = rng.normal(size=(hidden, vocab_size)) * 0.01
        self.Whh = rng.normal(size=(hidden, hidden)) * 0.01
        self.Why = rng.normal(size=(vocab_size, hidden)) * 0.01
        self.bh = np.zeros((hidden, 1))
        self.by = np.zeros((vocab_size, 1))
        self.names = ("Wxh", "Whh", "Why", "bh", "by")
        self.mem = {n: np.zeros_like(getattr(self, n)) for n in self.names}
        self.pos, self.hprev = 0, np.zeros((hidden, 1))  # where train() goes on reading

    def loss_and_grads(self, inputs, targets, hprev):
        """Loss summed over the chunk, gradients by name, last hidden state (H, 1)."""
        xs, hs, ps = {}, {-1: np.copy(hprev)}, {}
        loss = 0.0
        for t in range(len(inputs)):
            xs[t] = np.zeros((self.V, 1))
            xs[t][inputs[t]] = 1.0
            hs[t] = np.tanh(self.Wxh @ xs[t] + self.Whh @ hs[t - 1] + self.bh)
            scores = self.Why @ hs[t] + self.by
            ps[t] = np.exp(scores) / np.sum(np.exp(scores))
            loss += -np.log(ps[t][targets[t], 0])
        grads = {n: np.zeros_like(getattr(self, n)) for n in self.names}
        dh_future = np.zeros((self.H, 1))
        for t in reversed(range(len(inputs))):
            dy = np.copy(ps[t])
            dy[targets[t]] -= 1.0
            grads["Why"] += dy @ hs[t].T
            grads["by"] += dy
            dh = self.Why.T @ dy + dh_future
            draw = (1.0 - hs[t] * hs[t]) * dh
            grads["bh"] += draw
            grads["Wxh"] += draw @ xs[t].T
            grads["Whh"] += draw @ hs[t - 1].T
            dh_future = self.Whh.T @ draw
        for g in grads.values():
            np.clip(g, -5, 5, out=g)
        return loss, grads, hs[len(inputs) - 1]

    def train(self, ids, n_chars: int, seq_len: int, lr: float) -> list[float]:
        """Read ``ids`` in chunks of seq_len until n_chars more characters were seen.

        The reading position and hidden state persist between calls (the race trains in turns).
        """
        losses, seen = [], 0
        while seen < n_chars:
            if self.pos + seq_len + 1 >= len(ids):
                self.pos, self.hprev = 0, np.zeros((self.H, 1))
            inputs, targets = ids[self.pos : self.pos + seq_len], ids[self.pos + 1 : self.pos + seq_len + 1]
            loss, grads, self.hprev = self.loss_and_grads(inputs, targets, self.hprev)
            for n in self.names:
                self.mem[n] += grads[n] * grads[n]
                getattr(self, n)[...] -= lr * grads[n] / np.sqrt(self.mem[n] + 1e-8)
            losses.append(loss / seq_len)
            self.pos += seq_len
            seen += seq_len
        return losses


# --------------------------------------------------------------------------- the evaluator
def heldout_loss(W_in, W_hh, b_h, W_hy, b_y, ids) -> float:
    """Mean cross-entropy per character of ``ids`` (one stream), by ``torch.nn.RNN`` in float64.

    ``W_in`` (H, V) is the input weight for one-hot characters (for an embedding model,
    ``W_xh @ E.T``), so both models go through the very same code.
    """
    import torch

    W_in, W_hh, b_h, W_hy, b_y = (np.asarray(a, dtype=np.float64) for a in (W_in, W_hh, b_h, W_hy, b_y))
    H, V = W_in.shape
    rnn = torch.nn.RNN(V, H, batch_first=True).double()
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(torch.as_tensor(W_in))
        rnn.weight_hh_l0.copy_(torch.as_tensor(W_hh))
        rnn.bias_ih_l0.copy_(torch.as_tensor(np.ravel(b_h)))
        rnn.bias_hh_l0.zero_()
        x = torch.nn.functional.one_hot(torch.as_tensor(ids[:-1]), V).double()[None]
        h, _ = rnn(x)
        logits = h[0] @ torch.as_tensor(W_hy).T + torch.as_tensor(np.ravel(b_y))
        loss = torch.nn.functional.cross_entropy(logits, torch.as_tensor(ids[1:]))
    return float(loss)


# ---------------------------------------------------------------------------------- run
def run(quick: bool = False) -> dict:
    import labutils as lu

    lab = load_lab02_model()
    text = lu.load_text("time_machine", progress=False)
    vocab = lu.CharVocab(text)
    train_text, val_text = lu.train_val_split(text, 0.1)
    train_ids, val_ids = vocab.encode(train_text), vocab.encode(val_text)
    val_ids = val_ids[: 2_000 if quick else 17_000]
    V = len(vocab)
    n_chars = 10_000 if quick else 600_000  # quick: proves it runs (the tests), no figure to quote
    print(
        f"The Time Machine: {len(train_ids)} training characters, {V} distinct; hidden {HIDDEN}, "
        f"sequence length {SEQ_LEN}; both models read {n_chars} characters"
    )

    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return _race(lab, train_ids, val_ids, V, n_chars) | {"quick": bool(quick)}


def _race(lab: dict, train_ids, val_ids, V: int, n_chars: int) -> dict:
    """Train both models on the same characters, in turns; time each; measure both on held-out text.

    Ours (batched streams, embedding lookup) calls back after each update; the callback, a
    ``_Turns``, trains the baseline every ``1/ROUNDS`` of ours' updates (see there).
    """
    params = lab["init_char_lm"](V, HIDDEN, EMBED, np.random.default_rng(0), dtype=np.float32)
    base = TutorialRNN(V, HIDDEN, np.random.default_rng(0))
    n_steps = max(2, n_chars // (BATCH * SEQ_LEN))
    turns = _Turns(base, train_ids, n_steps, turn=max(2, n_steps // ROUNDS))  # starts the clock
    ours_train = lab["train_char_lm"](
        params,
        train_ids,
        batch_size=BATCH,
        seq_len=SEQ_LEN,
        n_steps=n_steps,
        lr=LR,
        clip=5.0,
        on_step=turns,
        progress=False,
    )
    base_train = turns.base_losses
    print(f"ours:     batch {BATCH} x {SEQ_LEN} chars, float32, {n_steps} updates, {turns.rate('ours'):,.0f} chars/s")
    print(f"baseline: batch 1 x {SEQ_LEN} chars, float64, {len(base_train)} updates, {turns.rate('base'):,.0f} chars/s")
    ours_loss = heldout_loss(
        params["W_xh"] @ params["E"].T, params["W_hh"], params["b_h"], params["W_hy"], params["b_y"], val_ids
    )
    base_loss = heldout_loss(base.Wxh, base.Whh, base.bh, base.Why, base.by, val_ids)
    return {
        "speedup": turns.rate("ours") / turns.rate("base"),
        "ours_chars_per_s": turns.rate("ours"),
        "baseline_chars_per_s": turns.rate("base"),
        "ours_loss": ours_loss,
        "baseline_loss": base_loss,
        "ours_train_loss_last": _tail_mean(ours_train),
        "baseline_train_loss_last": _tail_mean(base_train),
        "chars": int(min(n_steps * BATCH * SEQ_LEN, len(base_train) * SEQ_LEN)),
        "hidden": HIDDEN,
        "seq_len": SEQ_LEN,
        "batch": BATCH,
    }


class _Turns:
    """Ours' ``on_step(step, loss, params)`` callback: the clock of both models and the baseline's turns.

    Ours takes turns of ``turn`` updates; after the last update of each turn the baseline
    trains on as many characters (one ``SEQ_LEN`` chunk per stream and update).  The first
    update of every turn, ours or the baseline's, is a warm-up and is not timed: a virtual
    machine may have paged out the memory that the other model's turn left alone, and that is
    not the model's cost.
    """

    def __init__(self, base: TutorialRNN, train_ids, n_steps: int, turn: int):
        self.base, self.train_ids, self.n_steps, self.turn = base, train_ids, n_steps, turn
        self.base_losses: list[float] = []
        self.seconds = {"ours": 0.0, "base": 0.0}
        self.chars = {"ours": 0, "base": 0}
        self.mark = time.perf_counter()  # the end of the last thing timed or skipped

    def __call__(self, step: int, loss, params) -> None:
        now = time.perf_counter()
        if step % self.turn:  # not the first update of ours' turn
            self.seconds["ours"] += now - self.mark
            self.chars["ours"] += BATCH * SEQ_LEN
        if (step + 1) % self.turn == 0 or step == self.n_steps - 1:
            self._baseline_turn(chunks=(step % self.turn + 1) * BATCH)
        self.mark = time.perf_counter()

    def _baseline_turn(self, chunks: int) -> None:
        for chunk in range(chunks):
            start = time.perf_counter()
            self.base_losses.extend(self.base.train(self.train_ids, SEQ_LEN, SEQ_LEN, BASE_LR))
            if chunk:
                self.seconds["base"] += time.perf_counter() - start
                self.chars["base"] += SEQ_LEN

    def rate(self, who: str) -> float:
        """Characters per second of ``"ours"`` or ``"base"`` over their timed updates."""
        return self.chars[who] / max(self.seconds[who], 1e-9)


def _tail_mean(losses) -> float:
    """The mean of the last twentieth of a loss curve (at least its last value)."""
    return float(np.mean(losses[-max(1, len(losses) // 20) :]))
