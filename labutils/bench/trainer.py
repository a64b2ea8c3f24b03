"""``python -m labutils bench trainer``: how fast labutils' stream trainer is, in one run, on the CPU.

The figures, each a ratio of two rates measured in the same process, interleaved in rounds:

* ``speedup``: characters per second of ``labutils.train.fit`` on ``OURS_STREAMS`` contiguous
  streams, over the original lab's loop (one stream of batch size 1), both training the original
  lab's model (``ORIGINAL``: Embedding 100 -> 3-layer ReLU ``nn.RNN`` of 512 -> Linear; Adam
  0.001; sequence length 50).
* ``mfu``: floating-point operations per second achieved by GRU training at the lab 07
  solution's configuration (``LAB07``, with the float32 GRU layer a lab trains with on a CPU,
  ``labutils.layers.FastGRU``), over the float32 matrix-multiply rate of this machine
  (``MATMUL_N``-square ``a @ b``, best of several).
  ``gru_nn_chars_per_s`` is the same training with ``nn.GRU``, for comparison.
* ``bf16_speedup``: characters per second of the same training with
  ``labutils.layers.BF16FastGRU`` (matrix products in bfloat16, which ``pick_gru_layer`` picks
  where they are clearly faster), over ``FastGRU``'s; ``mfu_bf16`` is its FLOP/s over the
  bfloat16 matrix-multiply rate.  Both are 0 where bfloat16 products are slower than float32
  ones (``gru_layers``: not timed).

Every rate is an average over a window of a few seconds (the first training step of each window
untimed), and the windows of the contenders take turns in rounds: shared cloud machines slow
down for seconds at a time, and taking turns lets such a spell fall on all of them alike.  The
best window of each contender is kept.  The matrix-multiply rate is measured the same way (the
mean over its window, not its luckiest product).  The medians of the single steps are reported
beside (``speedup_median``, ``mfu_median``) to show how much the machine's neighbours cost.

FLOPs are counted from the matrix products only (element-wise work is ignored), per character:

    forward MACs = sum over layers l of  G * H * (D_l + H)   +   H * V
    training FLOPs = 3 * 2 * forward MACs

with G the number of gate blocks (1 for an RNN, 3 for a GRU, 4 for an LSTM), D_l the layer's
input width (the embedding for l = 1, H above), V the vocabulary.  2 FLOPs per multiply-add;
the backward pass costs two products (gradient of the input and of the weights) for each
forward one, hence the factor 3.  The embedding lookup costs no FLOPs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from ..layers import BF16FastGRU, FastGRU, bfloat16_products_pay
from ..models import GATES, CharRNN
from ..text import stream_batches
from ..train import StopTraining, fit

ORIGINAL = dict(embed_dim=100, hidden_size=512, num_layers=3, cell="rnn", nonlinearity="relu")
ORIGINAL_LR, ORIGINAL_SEQ_LEN = 1e-3, 50
OURS_STREAMS = 128  # streams trained side by side by our trainer (same model, same sequence length)

# The lab 07 solution's GRU (keep in step with solutions/07_*.ipynb: a test compares them).
LAB07 = dict(embed_dim=64, hidden_size=384, num_layers=2, cell="gru", nonlinearity="tanh")
LAB07_STREAMS, LAB07_SEQ_LEN, LAB07_LR = 32, 50, 3e-3
MATMUL_N = 2048
CONTENDERS = ("original", "ours", "gru", "gru_nn", "gru_bf16")  # the training loops timed, in turn


def training_flops_per_char(config: dict, vocab_size: int) -> float:
    """Matrix-multiply FLOPs to train on one character (forward + backward), as documented above."""
    G, H, L = GATES[config["cell"]], config["hidden_size"], config["num_layers"]
    macs = sum(G * H * ((config["embed_dim"] if layer == 0 else H) + H) for layer in range(L)) + H * vocab_size
    return 3.0 * 2.0 * macs


def matmul_rate(n: int = MATMUL_N, seconds: float = 1.0, dtype=torch.float32) -> float:
    """FLOP/s of ``n x n`` by ``n x n`` products in ``dtype``, the mean over ``seconds`` (after a warm-up)."""
    g = torch.Generator().manual_seed(0)
    a, b = (torch.randn(n, n, generator=g).to(dtype) for _ in range(2))
    a @ b  # warm-up (thread pool, caches)
    count, start = 0, time.perf_counter()
    while count == 0 or time.perf_counter() - start < seconds:
        a @ b
        count += 1
    return count * 2.0 * n**3 / (time.perf_counter() - start)


def gru_layers(quick: bool = False) -> tuple[type, type | None]:
    """The float32 GRU layer the MFU is measured with, and the bfloat16 one (or None).

    ``BF16FastGRU`` is left out of a quick run, and where bfloat16 products are slower than float32
    ones (a CPU without bfloat16 instructions emulates them, many times slower):
    ``bf16_speedup`` and ``mfu_bf16`` are then 0.
    """
    if quick:
        return FastGRU, None
    H = LAB07["hidden_size"]
    if not bfloat16_products_pay(LAB07_STREAMS, H, 3 * H):
        print("BF16FastGRU not timed: bfloat16 matrix products are slower than float32 ones on this CPU")
        return FastGRU, None
    return FastGRU, BF16FastGRU


def _corpus(n: int = 200_000) -> tuple[np.ndarray, int]:
    """Ids of Tiny Shakespeare (or random ids of the same vocabulary size when it is unavailable)."""
    try:
        from ..data import load_text
        from ..text import CharVocab

        text = load_text("tiny_shakespeare", progress=False)[:n]
        vocab = CharVocab(text)
        return vocab.encode(text), len(vocab)
    except Exception:  # offline without a mirror: speed does not depend on the text
        return np.random.default_rng(0).integers(0, 65, n), 65


def original_loop(model, ids: np.ndarray, seconds: float, seq_len: int = ORIGINAL_SEQ_LEN) -> list[tuple]:
    """The original lab's training loop (one stream, batch size 1) for ``seconds``.

    Returns ``(characters, seconds)`` of every step but the first (the warm-up).
    """
    opt = torch.optim.Adam(model.parameters(), lr=ORIGINAL_LR)
    loss_fn = torch.nn.CrossEntropyLoss()
    data = torch.as_tensor(ids)
    hidden, i, marks = None, 0, []
    while not marks or time.perf_counter() - marks[0] < seconds:
        if i + seq_len + 1 > len(data):
            i, hidden = 0, None
        x = data[i : i + seq_len].unsqueeze(0)  # (1, T)
        y = data[i + 1 : i + seq_len + 1].unsqueeze(0)
        output, hidden = model(x, hidden)
        loss = loss_fn(output.squeeze(0), y.squeeze(0))
        opt.zero_grad()
        loss.backward()
        opt.step()
        i += seq_len
        marks.append(time.perf_counter())
    return [(seq_len, t1 - t0) for t0, t1 in zip(marks, marks[1:])]


def our_trainer(model, ids: np.ndarray, seconds: float, batch_size: int, seq_len: int, lr: float) -> list[tuple]:
    """``labutils.train.fit`` on ``batch_size`` streams for ``seconds``.

    Returns ``(characters, seconds)`` of every step but the first (the warm-up).
    """
    marks = []  # (time, characters seen) after every step

    def after_step(history):
        marks.append((time.perf_counter(), history.tokens_seen))
        if time.perf_counter() - marks[0][0] >= seconds:
            raise StopTraining

    fit(
        model,
        lambda: stream_batches(ids, batch_size, seq_len),
        epochs=10_000,
        lr=lr,
        stateful=True,
        callback=after_step,
        progress=False,
        device="cpu",
    )
    return [(c1 - c0, t1 - t0) for (t0, c0), (t1, c1) in zip(marks, marks[1:])]


@dataclass
class Measurements:
    """The best window's characters per second of each contender, every step's rate, the matmul rates."""

    best: dict = field(default_factory=lambda: dict.fromkeys(CONTENDERS, 0.0))
    steps: dict = field(default_factory=dict)
    matmul: float = 0.0
    matmul_bf16: float = 0.0

    def window(self, key: str, measured: list[tuple]) -> None:
        """Keep the best window's chars/s and every step's chars/s; ``measured``: (characters, seconds)."""
        rate = sum(c for c, _ in measured) / sum(s for _, s in measured)
        self.best[key] = max(self.best[key], rate)
        self.steps.setdefault(key, []).extend(c / s for c, s in measured)

    def median(self, key: str) -> float:
        return float(np.median(self.steps[key])) if key in self.steps else 0.0


def measure_round(m: Measurements, ids, V: int, secs: float, layer, bf16_layer, with_nn: bool) -> None:
    """One window of each contender, in turn, each model built from seed 0."""
    gru_args = (ids, secs, LAB07_STREAMS, LAB07_SEQ_LEN, LAB07_LR)
    m.matmul = max(m.matmul, matmul_rate(seconds=secs / 2))
    torch.manual_seed(0)
    m.window("original", original_loop(CharRNN(V, **ORIGINAL), ids, secs))
    torch.manual_seed(0)
    m.window("ours", our_trainer(CharRNN(V, **ORIGINAL), ids, secs, OURS_STREAMS, ORIGINAL_SEQ_LEN, ORIGINAL_LR))
    torch.manual_seed(0)
    m.window("gru", our_trainer(CharRNN(V, **LAB07, layer=layer), *gru_args))
    if with_nn:
        torch.manual_seed(0)
        m.window("gru_nn", our_trainer(CharRNN(V, **LAB07), *gru_args))
    if bf16_layer is not None:
        m.matmul_bf16 = max(m.matmul_bf16, matmul_rate(seconds=secs / 2, dtype=torch.bfloat16))
        torch.manual_seed(0)
        m.window("gru_bf16", our_trainer(CharRNN(V, **LAB07, layer=bf16_layer), *gru_args))


def round_summary(r: int, m: Measurements) -> str:
    best = m.best
    return (
        f"round {r + 1}: matmul {m.matmul / 1e9:.1f} GFLOP/s, original loop {best['original']:.0f} "
        f"chars/s, ours {best['ours']:.0f} chars/s, GRU {best['gru']:.0f} chars/s "
        f"(nn.GRU {best['gru_nn']:.0f}, BF16FastGRU {best['gru_bf16']:.0f}; bfloat16 matmul "
        f"{m.matmul_bf16 / 1e9:.1f} GFLOP/s) (best windows so far)"
    )


def figures(m: Measurements, layer, V: int) -> dict:
    """The benchmark's figures from the measurements (the keys ``python -m labutils bench trainer`` prints)."""
    orig_flops, gru_flops, best = training_flops_per_char(ORIGINAL, V), training_flops_per_char(LAB07, V), m.best
    return {
        "speedup": best["ours"] / best["original"],
        "mfu": best["gru"] * gru_flops / m.matmul,
        "speedup_median": m.median("ours") / m.median("original"),
        "mfu_median": m.median("gru") * gru_flops / m.matmul,
        "original_chars_per_s": best["original"],
        "ours_chars_per_s": best["ours"],
        "ours_streams": OURS_STREAMS,
        "ours_gflops": best["ours"] * orig_flops / 1e9,
        "original_gflops": best["original"] * orig_flops / 1e9,
        "gru_layer": layer.__name__,
        "gru_chars_per_s": best["gru"],
        "gru_nn_chars_per_s": best["gru_nn"],
        "gru_bf16_chars_per_s": best["gru_bf16"],
        "bf16_speedup": best["gru_bf16"] / best["gru"],
        "mfu_bf16": best["gru_bf16"] * gru_flops / m.matmul_bf16 if m.matmul_bf16 else 0.0,
        "matmul_bf16_gflops": m.matmul_bf16 / 1e9,
        "gru_gflops": best["gru"] * gru_flops / 1e9,
        "gru_config": f"{LAB07['num_layers']}x{LAB07['hidden_size']} GRU, embed {LAB07['embed_dim']}, "
        f"B={LAB07_STREAMS}, T={LAB07_SEQ_LEN}",
        "matmul_gflops": m.matmul / 1e9,
        "steps_timed": {k: len(v) for k, v in m.steps.items()},
        "threads": torch.get_num_threads(),
    }


def run(quick: bool = False) -> dict:
    """Measure in rounds (1 short one with ``quick``); print each round; return ``figures``."""
    torch.manual_seed(0)
    ids, V = _corpus()
    layer, bf16_layer = gru_layers(quick)
    rounds, secs = (1, 1.5) if quick else (3, 4.0)
    print(f"threads: {torch.get_num_threads()}; {rounds} round(s) of {secs:.1f} s per measurement")
    m = Measurements()
    for r in range(rounds):
        measure_round(m, ids, V, secs, layer, bf16_layer, with_nn=not quick)
        print(round_summary(r, m), flush=True)
    return figures(m, layer, V)
