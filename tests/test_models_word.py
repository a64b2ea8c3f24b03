"""labutils.models: the word-level language model and the sequence classifier."""

import pytest
import torch
from torch import nn

from labutils import datasets, models


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_word_lm_shapes_and_state(cell):
    torch.manual_seed(0)
    model = models.WordLM(20, embed_dim=4, hidden_size=6, num_layers=2, cell=cell)
    x = torch.randint(0, 20, (3, 7))
    logits, hidden = model(x)
    assert logits.shape == (3, 7, 20)
    states = hidden if cell == "lstm" else (hidden,)
    assert all(h.shape == (2, 3, 6) and not h.requires_grad for h in states)  # detached, as CharRNN's
    # carrying the state over two halves equals one pass over the whole sequence
    first, hidden = model(x[:, :4])
    second, _ = model(x[:, 4:], hidden)
    assert torch.allclose(torch.cat([first, second], 1), logits, atol=1e-6)


def test_word_lm_rejects_unknown_cell():
    with pytest.raises(ValueError, match="cell must be one of"):
        models.WordLM(10, cell="transformer")


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_classifier_ignores_padding(cell):
    torch.manual_seed(0)
    model = models.SequenceClassifier(12, n_classes=3, embed_dim=4, hidden_size=5, num_layers=2, cell=cell).eval()
    seqs = [[1, 2, 3, 4, 5], [6, 7], [8, 9, 10]]
    x, lengths = datasets.pad_batch(seqs, pad_value=0)
    logits = model(x, lengths)
    assert logits.shape == (3, 3)
    other_pad, _ = datasets.pad_batch(seqs, pad_value=11)
    assert torch.allclose(model(other_pad, lengths), logits, atol=1e-6)  # the pad value never matters
    alone = torch.cat([model(torch.tensor([s]), torch.tensor([len(s)])) for s in seqs])
    assert torch.allclose(alone, logits, atol=1e-6)  # each sequence as if it were alone


def test_classifier_final_state_is_the_top_layer_at_each_own_end():
    torch.manual_seed(0)
    model = models.SequenceClassifier(12, n_classes=2, embed_dim=4, hidden_size=5, num_layers=2, cell="gru")
    x, lengths = datasets.pad_batch([[1, 2, 3], [4]])
    states, _ = model.rnn(model.embed(x))
    expected = states[torch.arange(2), lengths - 1]
    assert torch.allclose(model.final_state(x, lengths), expected, atol=1e-6)


def test_classifier_without_packing_reads_the_padding():
    torch.manual_seed(0)
    model = models.SequenceClassifier(12, n_classes=2, embed_dim=4, hidden_size=5, pack=False).eval()
    a, lengths = datasets.pad_batch([[1, 2, 3], [4]], pad_value=0)
    b, _ = datasets.pad_batch([[1, 2, 3], [4]], pad_value=7)
    assert not torch.allclose(model(a, lengths)[1], model(b, lengths)[1])
    assert torch.allclose(model(a, lengths)[0], model(b, lengths)[0])  # the full-length row is unaffected


def test_classifier_learns_a_separable_task():
    torch.manual_seed(0)
    seqs = [[1 + (k % 3)] * (2 + k % 4) for k in range(60)] + [[5 + (k % 3)] * (2 + k % 5) for k in range(60)]
    labels = [0] * 60 + [1] * 60
    loader = datasets.make_loader(seqs, labels, batch_size=16, shuffle=True)
    model = models.SequenceClassifier(9, n_classes=2, embed_dim=4, hidden_size=8)
    opt = torch.optim.Adam(model.parameters(), lr=0.03)
    for _ in range(15):
        for (x, lengths), y in loader:
            loss = nn.functional.cross_entropy(model(x, lengths), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    (x, lengths), y = next(iter(datasets.make_loader(seqs, labels, batch_size=120)))
    assert (model(x, lengths).argmax(-1) == y).float().mean() > 0.95


@pytest.mark.parametrize(
    "build",
    [
        lambda: models.CharRNN(11, 5, 7, 2, cell="RNN", nonlinearity="relu", dropout=0.1),
        lambda: models.WordLM(11, embed_dim=5, hidden_size=7, num_layers=1, cell="lstm"),
        lambda: models.SequenceClassifier(11, 3, embed_dim=5, hidden_size=7, cell="gru", pack=False),
    ],
    ids=["CharRNN", "WordLM", "SequenceClassifier"],
)
def test_config_is_the_arguments_and_rebuilds_the_model(build):
    """``config``: every constructor argument (cell lower-cased), enough to rebuild the same model."""
    import inspect

    model = build()
    arguments = [p for p in inspect.signature(type(model)).parameters if p != "layer"]
    assert list(model.config) == arguments
    assert model.config["cell"] == model.config["cell"].lower()
    twin = type(model)(**model.config)
    assert {k: v.shape for k, v in twin.state_dict().items()} == {k: v.shape for k, v in model.state_dict().items()}
    assert [name for name, _ in model.named_children()][:2] == ["embed", "rnn"]


def test_charrnn_config_is_the_checkpoint_contract():
    model = models.CharRNN(11, 5, 7, 2, cell="rnn", nonlinearity="relu", dropout=0.1)
    assert model.config == dict(
        vocab_size=11, embed_dim=5, hidden_size=7, num_layers=2, cell="rnn", nonlinearity="relu", dropout=0.1
    )
