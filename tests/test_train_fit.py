"""labutils.train.fit as the labs 03-05 use it: history, accuracy, NaN stop, checkpoints that refuse a mismatch."""

import math

import pytest
import torch
from packed_classifier import PackedClassifier
from torch import nn

import labutils as lu
from labutils import datasets, models, train


def toy_batches(n=8, seed=0):
    """Two classes told apart by the sign of the first feature."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        x = torch.randn(16, 3, generator=g)
        out.append((x, (x[:, 0] > 0).long()))
    return out


def test_fit_records_history_and_accuracy():
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    history = train.fit(
        model,
        toy_batches(),
        epochs=3,
        lr=0.1,
        val=toy_batches(4, seed=1),
        with_accuracy=True,
        progress=False,
        device="cpu",
    )
    assert history.steps == list(range(1, 25)) and len(history.train_loss) == 24
    assert [e["epoch"] for e in history.epochs] == [1, 2, 3]
    assert len(history.val_loss) == 3
    last = history.epochs[-1]
    assert 0.0 <= last["train_accuracy"] <= 1.0 and last["val_accuracy"] > 0.8
    assert history.epochs[-1]["train_loss"] < history.epochs[0]["train_loss"]


def test_fit_passes_padded_pairs_to_a_classifier():
    """A batch ``((padded, lengths), y)`` reaches ``forward(padded, lengths)``; the accuracy is the unpadded one."""
    torch.manual_seed(0)
    seqs = [[1, 2, 3], [4, 5], [1], [4, 4, 4, 4]] * 4  # the class is told by the first word
    labels = [0, 1, 0, 1] * 4
    model = PackedClassifier(6, n_classes=2, embed_dim=4, hidden_size=4)
    calls = []
    model.register_forward_pre_hook(lambda _module, args: calls.append(args))
    loader = datasets.make_loader(seqs, labels, batch_size=4)  # pads with id 0, which no sequence uses
    history = train.fit(model, loader, epochs=15, lr=0.05, val=loader, with_accuracy=True, progress=False, device="cpu")
    assert calls and all(len(args) == 2 for args in calls), "forward(padded, lengths): two arguments"
    for padded, lengths in calls:
        assert torch.equal(lengths, (padded != 0).sum(1)) and padded.shape[1] == lengths.max()
    # Oracle: each sequence run alone, unpadded, through the trained model.
    with torch.no_grad():
        alone = [int(model.eval()(torch.tensor([s]), torch.tensor([len(s)])).argmax()) for s in seqs]
    expected = sum(p == y for p, y in zip(alone, labels, strict=True)) / len(seqs)
    assert history.epochs[-1]["val_accuracy"] == pytest.approx(expected)
    assert expected == 1.0, "the classifier should learn to read the first word"


class Poisoned(nn.Module):
    """A linear model whose first logit is multiplied by ``factor``: NaN or infinity reaches the loss."""

    def __init__(self, factor: float):
        super().__init__()
        self.lin = nn.Linear(3, 2)
        self.factor = factor

    def forward(self, x):
        out = self.lin(x)
        return torch.stack([out[:, 0] * self.factor, out[:, 1]], 1)


@pytest.mark.parametrize(
    "factor, message",
    [(math.nan, "(?s)loss became nan at step 1.*lower the learning rate"), (math.inf, "diverged")],
    ids=["nan", "inf"],
)
def test_fit_stops_on_nan_or_inf_with_advice(factor, message):
    with pytest.raises(train.TrainingDiverged, match=message):
        train.fit(Poisoned(factor), toy_batches(), epochs=1, progress=False, device="cpu")


def test_checkpoint_round_trip_and_refusals(tmp_path):
    words = ["the", "cat", "sat", "on", "the", "mat"]
    vocab = lu.WordVocab(words)
    model = models.WordLM(len(vocab), embed_dim=4, hidden_size=5, num_layers=1)
    path = train.save_checkpoint(tmp_path / "lm.pt", model, vocab=vocab, config=model.config)

    same = models.WordLM(len(vocab), embed_dim=4, hidden_size=5, num_layers=1)
    payload = train.load_checkpoint(path, same, vocab=vocab)
    assert payload["config"] == model.config
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), same.state_dict().values(), strict=True))

    other_vocab = lu.WordVocab(["the", "dog", "sat", "on", "the", "rug"])
    with pytest.raises(train.CheckpointMismatch, match="different vocabulary.*Only in the checkpoint: \\['cat'"):
        train.load_checkpoint(path, same, vocab=other_vocab)

    wider = models.WordLM(len(vocab), embed_dim=4, hidden_size=7, num_layers=1)
    with pytest.raises(train.CheckpointMismatch, match="does not fit this model.*hidden_size"):
        train.load_checkpoint(path, wider)

    deeper = models.WordLM(len(vocab), embed_dim=4, hidden_size=5, num_layers=2)
    with pytest.raises(train.CheckpointMismatch, match="missing from the checkpoint"):
        train.load_checkpoint(path, deeper)
