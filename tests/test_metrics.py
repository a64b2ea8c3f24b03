"""Bits per character, perplexity, accuracy, smoothing."""

import math

import numpy as np
import pytest

from labutils.metrics import accuracy, bits_per_char, perplexity, smooth, unigram_loss


def test_bits_per_char_of_uniform_choice():
    assert bits_per_char(math.log(65)) == pytest.approx(math.log2(65))
    assert bits_per_char(math.log(2)) == pytest.approx(1.0)


def test_perplexity_is_exp_and_does_not_overflow():
    assert perplexity(math.log(97)) == pytest.approx(97)
    assert math.isfinite(perplexity(1e6))


def test_accuracy():
    logits = np.array([[1.0, 2.0], [3.0, 0.0], [0.0, 1.0]])
    assert accuracy(logits, np.array([1, 0, 0])) == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        accuracy(np.zeros((0, 2)), np.zeros(0, dtype=int))


def test_unigram_loss_of_uniform_text():
    ids = np.arange(10).repeat(3)
    assert unigram_loss(ids, ids, 10, smoothing=0) == pytest.approx(math.log(10))


def test_smooth_is_bias_corrected():
    out = smooth([4.0] * 10, 0.9)
    np.testing.assert_allclose(out, 4.0)
    step = smooth([0.0] * 5 + [1.0] * 200, 0.9)
    assert step[4] == 0 and 0 < step[6] < 1 and step[-1] == pytest.approx(1.0, abs=1e-6)


def test_rolling_mean():
    from labutils.metrics import rolling_mean

    np.testing.assert_allclose(rolling_mean([1, 2, 3, 4, 5], 2), [1, 1.5, 2.5, 3.5, 4.5])
    np.testing.assert_allclose(rolling_mean([3.0, 1.0], 10), [3.0, 2.0])
    with pytest.raises(ValueError):
        rolling_mean([1.0], 0)
