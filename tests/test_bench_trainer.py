"""The trainer benchmark's FLOP count and its building blocks (speed itself is measured by the command)."""

import numpy as np
import pytest
import torch

import labutils as lu
from labutils.bench import trainer
from labutils.layers import BF16FastGRU, FastGRU
from labutils.models import CharRNN


def test_flops_formula_matches_the_weight_matrices():
    """Forward MACs per character = number of weights in the matrix products (biases, embedding excluded)."""
    for config in (trainer.ORIGINAL, trainer.LAB07):
        model = CharRNN(65, **config)
        weights = sum(p.numel() for n, p in model.named_parameters() if "weight" in n and "embed" not in n)
        assert trainer.training_flops_per_char(config, 65) == 6 * weights


def counted(model):
    """``model`` with a list of its forward calls (one per training step in these loops)."""
    calls = []
    model.register_forward_hook(lambda *args: calls.append(1))
    return model, calls


def test_loops_time_every_step_but_the_first():
    # 2,001 ids: 4 streams of 500 inputs, 50 full batches of 10 (no short last batch to count apart)
    ids = np.random.default_rng(0).integers(0, 20, 2001)
    small = dict(embed_dim=4, hidden_size=8, num_layers=1, cell="rnn", nonlinearity="relu")
    torch.manual_seed(0)
    model, calls = counted(CharRNN(20, **small))
    original = trainer.original_loop(model, ids, 0.05, seq_len=10)
    assert len(calls) >= 2 and len(original) == len(calls) - 1, "every step but the first, timed"
    assert all(chars == 10 and seconds > 0 for chars, seconds in original)
    model, calls = counted(CharRNN(20, **small))
    ours = trainer.our_trainer(model, ids, 0.05, 4, 10, 1e-3)
    assert len(calls) >= 2 and len(ours) == len(calls) - 1, "every step but the first, timed"
    assert all(chars == 4 * 10 and seconds > 0 for chars, seconds in ours)


def test_matmul_rate_is_flops_over_seconds(monkeypatch):
    assert trainer.matmul_rate(64, 0.01, dtype=torch.bfloat16) > 0
    ticks = iter([0.0, 0.1, 0.2, 0.3, 0.4])
    monkeypatch.setattr(trainer.time, "perf_counter", lambda: next(ticks))
    # start at 0; a first product, then one more after each reading under 0.25 s (0.1, 0.2); the
    # reading 0.3 ends the window and 0.4 is its end: 3 products of 2 n^3 FLOPs in 0.4 s
    assert trainer.matmul_rate(8, 0.25) == pytest.approx(3 * 2 * 8**3 / 0.4)


@pytest.mark.parametrize("products_pay", [True, False])
def test_mfu_is_measured_with_labutils_layers(monkeypatch, products_pay):
    """The bench trains labutils.layers' FastGRU, and BF16FastGRU unless quick or its products are slow."""
    monkeypatch.setattr(trainer, "bfloat16_products_pay", lambda *shape: products_pay)
    assert trainer.gru_layers() == (FastGRU, BF16FastGRU if products_pay else None)
    assert trainer.gru_layers(quick=True) == (FastGRU, None)
    model = CharRNN(20, **trainer.LAB07, layer=FastGRU)
    assert model(torch.zeros(2, 3, dtype=torch.long))[0].shape == (2, 3, 20)


FIGURE_KEYS = [  # what `python -m labutils bench trainer --json` printed before labutils held the layers
    "speedup",
    "mfu",
    "speedup_median",
    "mfu_median",
    "original_chars_per_s",
    "ours_chars_per_s",
    "ours_streams",
    "ours_gflops",
    "original_gflops",
    "gru_layer",
    "gru_chars_per_s",
    "gru_nn_chars_per_s",
    "gru_bf16_chars_per_s",
    "bf16_speedup",
    "mfu_bf16",
    "matmul_bf16_gflops",
    "gru_gflops",
    "gru_config",
    "matmul_gflops",
    "steps_timed",
    "threads",
]


def test_figures_keep_their_keys_and_are_ratios_of_the_best_windows():
    m = trainer.Measurements(matmul=1e11, matmul_bf16=2e11)
    m.window("original", [(50, 0.01), (50, 0.01)])  # 5,000 chars/s
    m.window("original", [(50, 0.02)])  # a slower window: not the best
    m.window("ours", [(6400, 0.05), (6400, 0.15)])  # 64,000 chars/s; steps at 128,000 and 42,667
    m.window("gru", [(3200, 0.2)])  # 16,000 chars/s
    m.window("gru_bf16", [(3200, 0.1)])  # 32,000 chars/s
    figures = trainer.figures(m, FastGRU, 65)
    assert list(figures) == FIGURE_KEYS
    gru_flops = trainer.training_flops_per_char(trainer.LAB07, 65)
    assert figures["speedup"] == pytest.approx(64_000 / 5_000)
    assert figures["speedup_median"] == pytest.approx(np.median([128_000, 128_000 / 3]) / 5_000)
    assert figures["mfu"] == pytest.approx(16_000 * gru_flops / 1e11)
    assert figures["bf16_speedup"] == pytest.approx(2.0)
    assert figures["mfu_bf16"] == pytest.approx(32_000 * gru_flops / 2e11)
    assert figures["gru_layer"] == "FastGRU" and figures["gru_nn_chars_per_s"] == 0.0
    assert figures["steps_timed"] == {"original": 3, "ours": 2, "gru": 1, "gru_bf16": 1}


def test_lab07_config_is_the_solutions(monkeypatch):
    """``trainer.LAB07`` must be the GRU the lab 07 solution trains in the full budget."""
    import types
    from pathlib import Path

    import nbformat

    monkeypatch.setenv("LABUTILS_BUDGET", "full")
    path = Path(__file__).resolve().parents[1] / "solutions" / "07_sherlock_assignment.ipynb"
    cell = next(c for c in nbformat.read(path, 4).cells if "gru_hparams = dict(" in c.source)
    namespace = {"lu": types.SimpleNamespace(budget=lu.budget), "train_ids": range(1000)}
    exec(cell.source, namespace)
    hp = namespace["gru_hparams"]
    chosen = {k: hp[k] for k in ("embed_dim", "hidden_size", "num_layers")}
    assert chosen == {k: trainer.LAB07[k] for k in chosen}, "update labutils/bench/trainer.py's LAB07"
    assert (hp["batch_size"], hp["seq_len"], hp["lr"]) == (
        trainer.LAB07_STREAMS,
        trainer.LAB07_SEQ_LEN,
        trainer.LAB07_LR,
    ), "update labutils/bench/trainer.py's LAB07_STREAMS, LAB07_SEQ_LEN, LAB07_LR"
