"""``python -m labutils bench trainer``: how fast labutils' stream trainer is, in one run.

Two figures, each a ratio of two rates measured in the same process, interleaved in rounds
(best round kept) because the machines are shared and noisy:

* ``speedup``: characters per second of ``labutils.train.fit`` on ``OURS_STREAMS`` contiguous
  streams, over the original lab's loop (one stream of batch size 1), both training the original
  lab's model (``ORIGINAL``: Embedding 100 -> 3-layer ReLU ``nn.RNN`` of 512 -> Linear; Adam
  0.001; sequence length 50).
* ``mfu``: floating-point operations per second achieved by GRU training at the lab 07
  solution's configuration (``LAB07``), over the float32 matrix-multiply rate of this machine
  (``MATMUL_N``-square ``a @ b``, best of several).

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

import numpy as np
import torch

ORIGINAL = dict(embed_dim=100, hidden_size=512, num_layers=3, cell="rnn", nonlinearity="relu")
ORIGINAL_LR, ORIGINAL_SEQ_LEN = 1e-3, 50
OURS_STREAMS = 128  # streams trained side by side by our trainer (same model, same sequence length)

# The lab 07 solution's GRU (keep in step with solutions/07_*.ipynb).
LAB07 = dict(embed_dim=64, hidden_size=256, num_layers=2, cell="gru", nonlinearity="tanh")
LAB07_STREAMS, LAB07_SEQ_LEN, LAB07_LR = 128, 50, 3e-3
MATMUL_N = 2048
GATES = {"rnn": 1, "gru": 3, "lstm": 4}


def training_flops_per_char(config: dict, vocab_size: int) -> float:
    """Matrix-multiply FLOPs to train on one character (forward + backward), as documented above."""
    G, H, L = GATES[config["cell"]], config["hidden_size"], config["num_layers"]
    macs = sum(G * H * ((config["embed_dim"] if layer == 0 else H) + H) for layer in range(L)) + H * vocab_size
    return 3.0 * 2.0 * macs


def matmul_rate(n: int = MATMUL_N, seconds: float = 1.0) -> float:
    """float32 FLOP/s of an ``n x n`` by ``n x n`` product (best repetition over ``seconds``)."""
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(n, n, generator=g), torch.randn(n, n, generator=g)
    a @ b  # warm-up (thread pool, caches)
    best, start = 0.0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        t = time.perf_counter()
        a @ b
        best = max(best, 2.0 * n**3 / (time.perf_counter() - t))
    return best


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


def original_loop(model, ids: np.ndarray, seconds: float, seq_len: int = ORIGINAL_SEQ_LEN) -> float:
    """The original lab's training loop (one stream, batch size 1); returns characters per second.

    Warm-up: the first step is not timed.
    """
    opt = torch.optim.Adam(model.parameters(), lr=ORIGINAL_LR)
    loss_fn = torch.nn.CrossEntropyLoss()
    data = torch.as_tensor(ids)
    hidden, chars, start, i = None, 0, None, 0
    while start is None or time.perf_counter() - start < seconds:
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
        if start is None:
            start = time.perf_counter()
        else:
            chars += seq_len
    return chars / (time.perf_counter() - start)


def our_trainer(model, ids: np.ndarray, seconds: float, batch_size: int, seq_len: int, lr: float) -> float:
    """``labutils.train.fit`` on ``batch_size`` streams until ``seconds`` pass; characters per second."""
    from ..text import stream_batches
    from ..train import StopTraining, fit

    clock = {}

    def stop_after(history):
        if "start" not in clock:  # the first step is the warm-up
            clock["start"], clock["chars"] = time.perf_counter(), history.tokens_seen
        elif time.perf_counter() - clock["start"] >= seconds:
            clock["end"] = time.perf_counter()
            raise StopTraining

    history = fit(
        model,
        lambda: stream_batches(ids, batch_size, seq_len),
        epochs=10_000,
        lr=lr,
        stateful=True,
        callback=stop_after,
        progress=False,
        device="cpu",
    )
    return (history.tokens_seen - clock["chars"]) / (clock["end"] - clock["start"])


def run(quick: bool = False) -> dict:
    from ..models import CharRNN

    torch.manual_seed(0)
    ids, V = _corpus()
    rounds, secs = (1, 1.5) if quick else (3, 4.0)
    print(f"threads: {torch.get_num_threads()}; {rounds} round(s) of {secs:.1f} s per measurement")
    orig_flops = training_flops_per_char(ORIGINAL, V)
    gru_flops = training_flops_per_char(LAB07, V)
    best = {"matmul": 0.0, "original": 0.0, "ours": 0.0, "gru": 0.0}
    for r in range(rounds):
        best["matmul"] = max(best["matmul"], matmul_rate(seconds=secs / 2))
        torch.manual_seed(0)
        best["original"] = max(best["original"], original_loop(CharRNN(V, **ORIGINAL), ids, secs))
        torch.manual_seed(0)
        best["ours"] = max(
            best["ours"], our_trainer(CharRNN(V, **ORIGINAL), ids, secs, OURS_STREAMS, ORIGINAL_SEQ_LEN, ORIGINAL_LR)
        )
        torch.manual_seed(0)
        best["gru"] = max(
            best["gru"], our_trainer(CharRNN(V, **LAB07), ids, secs, LAB07_STREAMS, LAB07_SEQ_LEN, LAB07_LR)
        )
        print(
            f"round {r + 1}: matmul {best['matmul'] / 1e9:.1f} GFLOP/s, original loop {best['original']:.0f} "
            f"chars/s, ours {best['ours']:.0f} chars/s, GRU {best['gru']:.0f} chars/s (best so far)",
            flush=True,
        )
    return {
        "speedup": best["ours"] / best["original"],
        "mfu": best["gru"] * gru_flops / best["matmul"],
        "original_chars_per_s": best["original"],
        "ours_chars_per_s": best["ours"],
        "ours_streams": OURS_STREAMS,
        "ours_gflops": best["ours"] * orig_flops / 1e9,
        "original_gflops": best["original"] * orig_flops / 1e9,
        "gru_chars_per_s": best["gru"],
        "gru_gflops": best["gru"] * gru_flops / 1e9,
        "gru_config": f"{LAB07['num_layers']}x{LAB07['hidden_size']} GRU, embed {LAB07['embed_dim']}, "
        f"B={LAB07_STREAMS}, T={LAB07_SEQ_LEN}",
        "matmul_gflops": best["matmul"] / 1e9,
        "threads": torch.get_num_threads(),
    }
