"""labutils.models: the word-level language model, and the config every model keeps."""

import pytest
import torch

from labutils import models


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


@pytest.mark.parametrize(
    "build",
    [
        lambda: models.CharRNN(11, 5, 7, 2, cell="RNN", nonlinearity="relu", dropout=0.1),
        lambda: models.WordLM(11, embed_dim=5, hidden_size=7, num_layers=1, cell="lstm"),
    ],
    ids=["CharRNN", "WordLM"],
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
