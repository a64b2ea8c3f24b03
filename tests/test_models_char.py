"""CharRNN: shapes, detached hidden state, parity with the layers it is built from."""

import pytest
import torch

from labutils.models import CharRNN


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_shapes_and_detached_hidden(cell):
    torch.manual_seed(0)
    model = CharRNN(11, embed_dim=5, hidden_size=7, num_layers=2, cell=cell)
    x = torch.randint(0, 11, (3, 4))
    logits, hidden = model(x)
    assert logits.shape == (3, 4, 11)
    states = hidden if isinstance(hidden, tuple) else (hidden,)
    assert all(h.shape == (2, 3, 7) and not h.requires_grad for h in states)
    assert model.hidden_states(x).shape == (3, 4, 7)


def test_carrying_hidden_equals_one_long_pass():
    torch.manual_seed(0)
    model = CharRNN(11, 5, 7, 2, cell="rnn", nonlinearity="relu")
    x = torch.randint(0, 11, (2, 10))
    whole, _ = model(x)
    first, h = model(x[:, :6])
    second, _ = model(x[:, 6:], h)
    torch.testing.assert_close(torch.cat([first, second], 1), whole)


def test_relu_is_used():
    model = CharRNN(11, 5, 7, 1, cell="rnn", nonlinearity="relu")
    assert model.rnn.nonlinearity == "relu" and model.config["nonlinearity"] == "relu"


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="cell"):
        CharRNN(11, cell="transformer")
    with pytest.raises(ValueError, match="nonlinearity"):
        CharRNN(11, cell="rnn", nonlinearity="sigmoid")
