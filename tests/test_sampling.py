"""Sampling: temperature, top-k, primes outside the vocabulary."""

import pytest
import torch
from torch import nn

from labutils.models import CharRNN
from labutils.sampling import next_token_distribution, sample
from labutils.text import CharVocab

VOCAB = CharVocab("abcdefgh")


class Fixed(nn.Module):
    """Always predicts the same logits, whatever it is given (so the statistics are known)."""

    def __init__(self, logits):
        super().__init__()
        self.logits = nn.Parameter(torch.as_tensor(logits, dtype=torch.float32))

    def forward(self, x, hidden=None):
        return self.logits.expand(x.shape[0], x.shape[1], -1), hidden


LOGITS = [0.5, 2.0, -1.0, 1.9, 0.0, 1.0, -3.0, 0.3]


def test_temperature_zero_gives_argmax():
    text = sample(Fixed(LOGITS), VOCAB, prime="a", length=50, temperature=0)
    assert text == "a" + "b" * 50


def test_low_temperature_concentrates_on_argmax():
    probs = next_token_distribution(torch.tensor(LOGITS), temperature=0.01)
    assert probs.argmax() == 1 and probs[1] > 0.99


def test_top_k_never_emits_outside_the_k_best():
    g = torch.Generator().manual_seed(0)
    text = sample(Fixed(LOGITS), VOCAB, prime="a", length=3000, temperature=2.0, top_k=3, generator=g)[1:]
    best3 = {VOCAB.chars[i] for i in torch.topk(torch.tensor(LOGITS), 3).indices.tolist()}
    assert set(text) == best3  # all three appear, nothing else


def test_sampling_frequencies_follow_softmax():
    g = torch.Generator().manual_seed(1)
    n = 4000
    text = sample(Fixed(LOGITS), VOCAB, prime="a", length=n, temperature=1.0, generator=g)[1:]
    expected = torch.softmax(torch.tensor(LOGITS), -1)
    observed = torch.tensor([text.count(c) / n for c in VOCAB.chars])
    assert (observed - expected).abs().max() < 0.03


def test_temperature_flattens():
    p_cold = next_token_distribution(torch.tensor(LOGITS), temperature=0.5)
    p_hot = next_token_distribution(torch.tensor(LOGITS), temperature=2.0)
    entropy = lambda p: -(p * p.clamp_min(1e-12).log()).sum()  # noqa: E731
    assert entropy(p_hot) > entropy(p_cold)
    torch.testing.assert_close(p_hot.sum(), torch.tensor(1.0))


def test_prime_outside_vocabulary_names_the_characters():
    with pytest.raises(ValueError, match=r"\['X', 'Z'\]"):
        sample(Fixed(LOGITS), VOCAB, prime="aXbZX")


def test_bad_arguments():
    with pytest.raises(ValueError, match="empty"):
        sample(Fixed(LOGITS), VOCAB, prime="")
    with pytest.raises(ValueError, match="top_k"):
        next_token_distribution(torch.tensor(LOGITS), top_k=0)
    with pytest.raises(ValueError, match="temperature"):
        next_token_distribution(torch.tensor(LOGITS), temperature=-1)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_sample_from_charrnn_restores_training_mode(cell):
    torch.manual_seed(0)
    model = CharRNN(len(VOCAB), 4, 8, 2, cell=cell).train()
    g = torch.Generator().manual_seed(0)
    text = sample(model, VOCAB, prime="abc", length=20, generator=g)
    assert text.startswith("abc") and len(text) == 23 and set(text) <= set(VOCAB.chars)
    assert model.training
    g = torch.Generator().manual_seed(0)
    assert sample(model, VOCAB, prime="abc", length=20, generator=g) == text  # seeded: reproducible


def test_onednn_is_restored_after_sampling():
    before = torch.backends.mkldnn.enabled
    sample(Fixed(LOGITS), VOCAB, prime="a", length=3)
    assert torch.backends.mkldnn.enabled == before
