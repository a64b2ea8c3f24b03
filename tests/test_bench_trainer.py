"""The trainer benchmark's FLOP count and its building blocks (speed itself is measured by the command)."""

import numpy as np
import pytest
import torch

import labutils as lu
from labutils.bench import trainer
from labutils.models import CharRNN


def test_flops_formula_matches_the_weight_matrices():
    """Forward MACs per character = number of weights in the matrix products (biases, embedding excluded)."""
    for config in (trainer.ORIGINAL, trainer.LAB07):
        model = CharRNN(65, **config)
        weights = sum(p.numel() for n, p in model.named_parameters() if "weight" in n and "embed" not in n)
        assert trainer.training_flops_per_char(config, 65) == 6 * weights


def test_loops_measure_every_step_but_the_first():
    # 2,001 ids: 4 streams of 500 inputs, 50 full batches of 10 (no short last batch to count apart)
    ids = np.random.default_rng(0).integers(0, 20, 2001)
    small = dict(embed_dim=4, hidden_size=8, num_layers=1, cell="rnn", nonlinearity="relu")
    torch.manual_seed(0)
    for steps, chars_per_step in (
        (trainer.original_loop(CharRNN(20, **small), ids, 0.05, seq_len=10), 10),
        (trainer.our_trainer(CharRNN(20, **small), ids, 0.05, 4, 10, 1e-3), 4 * 10),
    ):
        assert len(steps) >= 1, "no step timed"
        assert all(chars == chars_per_step and seconds > 0 for chars, seconds in steps)
    assert trainer.matmul_rate(64, 0.05) > 0
    assert trainer.matmul_rate(64, 0.05, dtype=torch.bfloat16) > 0


def test_mfu_is_measured_with_lab07s_own_gru_layer(tmp_path):
    """On a CPU the bench trains the solution's FastGRU (run from its tagged cells), not nn.GRU."""
    layer = trainer.lab07_gru_layer()
    assert layer.__name__ == ("FastGRU" if lu.device().type == "cpu" else "GRU")
    model = CharRNN(20, **trainer.LAB07, layer=layer)
    assert model(torch.zeros(2, 3, dtype=torch.long))[0].shape == (2, 3, 20)
    bf16 = trainer.lab07_gru_layer(name="BF16FastGRU")
    assert bf16.__name__ == "BF16FastGRU" and bf16.matmul_dtype is torch.bfloat16
    with pytest.raises(FileNotFoundError, match="student release"):
        trainer.lab07_gru_layer(tmp_path / "07_sherlock_assignment.ipynb")


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
