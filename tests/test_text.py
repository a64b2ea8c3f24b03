"""labutils.text: vocabularies, windows and contiguous stream batches."""

import numpy as np
import pytest

from labutils.text import UNK, CharVocab, WordVocab, n_stream_batches, stream_batches, windows, words


def test_char_vocab_round_trip_and_sorted_ids():
    vocab = CharVocab("hello world")
    assert vocab.chars == sorted(set("hello world"))
    ids = vocab.encode("hello")
    assert ids.dtype == np.int64 and ids.shape == (5,)
    assert vocab.decode(ids) == "hello"


def test_char_vocab_errors_name_the_problem():
    with pytest.raises(ValueError, match="empty"):
        CharVocab("")
    vocab = CharVocab("abc")
    with pytest.raises(ValueError, match=r"\['x', 'z'\]"):
        vocab.encode("axbz")
    with pytest.raises(ValueError, match="outside the vocabulary"):
        vocab.decode([0, 3])


def test_words_preprocessing():
    assert words("It's 1805, PRINCE!\nWell—") == ["its", "prince", "well"]


def test_word_vocab_min_freq_unk_and_sorting():
    tokens = ["the", "cat", "sat", "on", "the", "mat", "the", "end"]
    vocab = WordVocab(tokens, min_freq=2)
    assert vocab.words == [UNK, "the"]
    assert list(vocab.encode(["the", "dog"])) == [1, 0]
    with pytest.raises(ValueError, match="dog"):
        vocab.encode(["dog"], allow_unknown=False)
    full = WordVocab(tokens)
    assert full.words[1:] == sorted(set(tokens))
    assert full.decode(full.encode(tokens)) == tokens
    with pytest.raises(ValueError):
        WordVocab([])


def test_windows_pair_n_tokens_with_the_next():
    X, y = windows(np.arange(10), 3)
    assert X.shape == (7, 3) and y.shape == (7,)
    assert list(X[0]) == [0, 1, 2] and y[0] == 3 and list(X[-1]) == [6, 7, 8] and y[-1] == 9
    with pytest.raises(ValueError, match="needs more than 3"):
        windows(np.arange(3), 3)


def test_stream_batches_are_contiguous_per_row():
    ids = np.arange(101)
    batches = list(stream_batches(ids, batch_size=4, seq_len=10))
    assert len(batches) == n_stream_batches(len(ids), 4, 10) == 3
    x0, y0 = batches[0]
    assert x0.shape == (4, 10)
    np.testing.assert_array_equal(y0, x0 + 1)  # targets are the next token
    # Row b of batch k+1 starts where row b of batch k stopped: the hidden state can be carried.
    x1, _ = batches[1]
    np.testing.assert_array_equal(x1[:, 0], x0[:, -1] + 1)
    # Every input token appears exactly once.
    seen = np.concatenate([x.ravel() for x, _ in batches])
    assert len(seen) == len(set(seen.tolist())) == 100


def test_stream_batches_errors():
    with pytest.raises(ValueError, match="longer than each"):
        list(stream_batches(np.arange(50), batch_size=4, seq_len=20))
    with pytest.raises(ValueError, match="too few"):
        list(stream_batches(np.arange(3), batch_size=4, seq_len=1))
