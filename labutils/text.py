"""From text to integer arrays: vocabularies, n-token windows and contiguous streams.

* ``CharVocab`` / ``WordVocab`` map tokens to ids and back (``encode`` / ``decode``).
* ``words(text)`` is the word-level preprocessing of lab 03: lower-case, keep letters and
  whitespace, split.
* ``windows(ids, n)`` makes (n tokens -> next token) training pairs.
* ``stream_batches(ids, B, T)`` cuts one long sequence into B parallel streams read T steps at a
  time, the layout of truncated backpropagation through time: batch k+1 continues exactly where
  batch k stopped in every row, so the hidden state can be carried across batches.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence

import numpy as np

UNK = "<unk>"


def _ids_within(ids, size: int) -> np.ndarray:
    """``ids`` as a flat int64 array; ``ValueError`` naming those outside ``[0, size)``."""
    ids = np.asarray(ids, dtype=np.int64).ravel()
    bad = ids[(ids < 0) | (ids >= size)]
    if bad.size:
        raise ValueError(f"ids {sorted(set(bad.tolist()))[:10]} are outside the vocabulary of size {size}")
    return ids


class CharVocab:
    """Characters <-> ids, ids in sorted character order.

    ``CharVocab(text)`` collects the distinct characters; ``CharVocab.from_chars(chars)`` takes
    them as given (e.g. from a checkpoint).  Characters outside the vocabulary are an error:
    a character model has no ``<unk>``.
    """

    def __init__(self, text: str):
        if not text:
            raise ValueError("cannot build a vocabulary from empty text")
        self.chars: list[str] = sorted(set(text))
        self.index = {c: i for i, c in enumerate(self.chars)}

    @classmethod
    def from_chars(cls, chars: Iterable[str]) -> CharVocab:
        return cls("".join(chars))

    def __len__(self) -> int:
        return len(self.chars)

    def __contains__(self, ch) -> bool:
        return ch in self.index

    def __eq__(self, other) -> bool:
        return isinstance(other, CharVocab) and self.chars == other.chars

    def __repr__(self) -> str:
        return f"CharVocab({len(self)} characters)"

    def unknown(self, text: str) -> list[str]:
        """The distinct characters of ``text`` not in the vocabulary, sorted."""
        return sorted(set(text) - set(self.index))

    def encode(self, text: str) -> np.ndarray:
        """``str`` of length N -> int64 array of shape (N,)."""
        missing = self.unknown(text)
        if missing:
            raise ValueError(
                f"{len(missing)} character(s) are not in the vocabulary: {missing!r}. "
                "Remove them, or build the vocabulary from a text that contains them."
            )
        return np.fromiter((self.index[c] for c in text), dtype=np.int64, count=len(text))

    def decode(self, ids) -> str:
        """Sequence of ids -> ``str``; raises naming any id outside ``[0, len(vocab))``."""
        return "".join(self.chars[i] for i in _ids_within(ids, len(self)))


_NOT_LETTER = re.compile(r"[^a-z\s]+")


def words(text: str) -> list[str]:
    """Lab 03's preprocessing: lower-case, keep only letters a-z and whitespace, split.

    >>> words("It's 1805, Prince!")
    ['its', 'prince']
    """
    return _NOT_LETTER.sub("", text.lower()).split()


class WordVocab:
    """Words <-> ids: ``<unk>`` is id 0, then the words seen at least ``min_freq`` times, sorted.

    Encoding maps rarer or unseen words to ``<unk>`` (``allow_unknown=False`` raises instead).
    """

    def __init__(self, tokens: Sequence[str], min_freq: int = 1):
        if not tokens:
            raise ValueError("cannot build a vocabulary from no words")
        if min_freq < 1:
            raise ValueError(f"min_freq must be at least 1, got {min_freq}")
        self.counts = Counter(tokens)
        self.min_freq = min_freq
        self.words: list[str] = [UNK] + sorted(w for w, n in self.counts.items() if n >= min_freq and w != UNK)
        self.index = {w: i for i, w in enumerate(self.words)}

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word) -> bool:
        return word in self.index

    def __eq__(self, other) -> bool:
        return isinstance(other, WordVocab) and self.words == other.words

    def __repr__(self) -> str:
        return f"WordVocab({len(self)} words, min_freq={self.min_freq})"

    @property
    def unk_id(self) -> int:
        return 0

    def encode(self, tokens: Sequence[str], allow_unknown: bool = True) -> np.ndarray:
        """List of N words -> int64 array (N,); unknown words become ``<unk>`` (id 0)."""
        if not allow_unknown:
            missing = sorted({w for w in tokens if w not in self.index})
            if missing:
                raise ValueError(f"{len(missing)} word(s) are not in the vocabulary: {missing[:10]!r}")
        return np.fromiter((self.index.get(w, 0) for w in tokens), dtype=np.int64, count=len(tokens))

    def decode(self, ids) -> list[str]:
        """Sequence of ids -> list of words; raises naming any id outside ``[0, len(vocab))``."""
        return [self.words[i] for i in _ids_within(ids, len(self))]


def windows(ids, n: int) -> tuple[np.ndarray, np.ndarray]:
    """All (n consecutive tokens -> the next token) pairs of a sequence.

    Returns ``X`` of shape (N - n, n) and ``y`` of shape (N - n,), where ``y[i] = ids[i + n]``.
    ``X`` is a read-only strided view: no copy of the text is made.
    """
    ids = np.asarray(ids)
    if n < 1:
        raise ValueError(f"the window length must be at least 1, got {n}")
    if len(ids) <= n:
        raise ValueError(f"a window of {n} tokens needs more than {n} tokens; the sequence has {len(ids)}")
    X = np.lib.stride_tricks.sliding_window_view(ids[:-1], n)
    return X, ids[n:]


def stream_batches(ids, batch_size: int, seq_len: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(x, y)`` pairs of shape (B, T) for truncated BPTT over B contiguous streams.

    The sequence is cut into B equal rows (the remainder is dropped); batch k holds columns
    ``k*T .. k*T+T-1`` of every row and ``y`` is ``x`` shifted one step to the left.  Row b of
    batch k+1 continues row b of batch k, so a model may carry its hidden state across
    batches.  The last batch may be shorter than T.
    """
    ids = np.asarray(ids)
    if batch_size < 1 or seq_len < 1:
        raise ValueError(f"batch_size and seq_len must be positive, got {batch_size} and {seq_len}")
    row_len = (len(ids) - 1) // batch_size  # -1: every input needs a next token as target
    if row_len < 1:
        raise ValueError(f"{len(ids)} tokens are too few for {batch_size} streams: use fewer streams or more text")
    if seq_len > row_len:
        raise ValueError(
            f"seq_len={seq_len} is longer than each of the {batch_size} streams ({row_len} tokens): "
            "use a shorter sequence length, fewer streams or more text"
        )
    inputs = ids[: batch_size * row_len].reshape(batch_size, row_len)
    targets = ids[1 : batch_size * row_len + 1].reshape(batch_size, row_len)
    for start in range(0, row_len, seq_len):
        yield inputs[:, start : start + seq_len], targets[:, start : start + seq_len]


def n_stream_batches(n_tokens: int, batch_size: int, seq_len: int) -> int:
    """How many batches ``stream_batches`` yields for a sequence of ``n_tokens``."""
    row_len = (n_tokens - 1) // batch_size
    return -(-row_len // seq_len)
