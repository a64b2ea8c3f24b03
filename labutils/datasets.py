"""Labelled sequence data for many-to-one models (lab 05): authorship passages, padding, IMDb.

* ``authorship(...)`` cuts the course's books into passages of varying length, labelled with
  their author: *which author wrote this passage?*  It needs nothing beyond the course texts.
  The split is deterministic and leak-free: each book's last ``test_fraction`` of words is
  held out, so no test passage shares a sentence with a training passage.  Both splits are
  balanced (the same number of passages per author).
* ``pad_batch`` / ``collate`` / ``make_loader`` turn a list of variable-length id sequences
  into padded ``(B, T_max)`` batches plus their true lengths, as ``pack_padded_sequence`` wants.
* ``load_imdb(path)`` reads the IMDb movie-review set in its standard layout
  (``aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt``), straight from ``aclImdb_v1.tar.gz``
  or from the extracted folder.  It is optional: the course never downloads it.
"""

from __future__ import annotations

import os
import re
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .data import load_text
from .text import words

#: Author -> the course texts written by them (names in ``labutils.data.REGISTRY``).
AUTHORS: dict[str, tuple[str, ...]] = {
    "Tolstoy": ("war_and_peace",),
    "Wells": ("time_machine",),
    "Carroll": ("alice",),
    "Doyle": ("adventures_of_sherlock_holmes", "sign_of_the_four"),
}

IMDB_ENV = "LABUTILS_IMDB"


# ------------------------------------------------------------------------------ authorship
@dataclass
class Passages:
    """Passages (lists of words) and integer labels; ``authors[label]`` names the class."""

    texts: list[list[str]]
    labels: np.ndarray
    authors: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.texts)

    def lengths(self) -> np.ndarray:
        return np.array([len(t) for t in self.texts], dtype=np.int64)

    def counts(self) -> dict[str, int]:
        """How many passages each author has."""
        return {a: int(np.sum(self.labels == i)) for i, a in enumerate(self.authors)}


def cut_passages(tokens: Sequence[str], min_words: int, max_words: int, rng: np.random.Generator) -> list[list[str]]:
    """Cut a word stream into consecutive, non-overlapping passages of random lengths.

    Each length is drawn uniformly from ``[min_words, max_words]``; the leftover tail shorter
    than ``min_words`` is dropped.
    """
    if not 1 <= min_words <= max_words:
        raise ValueError(f"need 1 <= min_words <= max_words, got {min_words} and {max_words}")
    passages, start = [], 0
    while True:
        n = int(rng.integers(min_words, max_words + 1))
        if start + min_words > len(tokens):
            break
        passages.append(list(tokens[start : start + n]))
        start += n
    return passages


def _passage_pools(names, texts, min_words: int, max_words: int, test_fraction: float, rng) -> tuple[list, list]:
    """``(train, test)`` passages of the books ``names``: the last ``test_fraction`` of each book's
    words is held out for the test pool."""
    train_pool, test_pool = [], []
    for name in names:
        tokens = words(texts[name] if texts is not None else load_text(name, progress=False))
        cut = int(round(len(tokens) * (1 - test_fraction)))
        train_pool += cut_passages(tokens[:cut], min_words, max_words, rng)
        test_pool += cut_passages(tokens[cut:], min_words, max_words, rng)
    return train_pool, test_pool


def authorship(
    per_author: int | None = None,
    *,
    min_words: int = 10,
    max_words: int = 60,
    test_fraction: float = 0.2,
    seed: int = 0,
    authors: dict[str, tuple[str, ...]] | None = None,
    texts: dict[str, str] | None = None,
) -> tuple[Passages, Passages]:
    """The authorship task: ``(train, test)`` passages of ``min_words..max_words`` words.

    ``per_author`` caps the training passages per author (default: as many as the author with
    the least text allows); the test split gets ``test_fraction / (1 - test_fraction)`` times as
    many, so both splits are balanced.  Words come from ``labutils.words`` (lower-case, letters
    only).  ``texts`` maps text names to their contents, to run without the course texts
    (tests do); otherwise ``load_text`` provides them.  Deterministic for a given ``seed``.
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be between 0 and 1, got {test_fraction}")
    authors = dict(authors or AUTHORS)
    rng = np.random.default_rng(seed)
    pools = {
        author: _passage_pools(names, texts, min_words, max_words, test_fraction, rng)
        for author, names in authors.items()
    }
    n_train = min(len(p[0]) for p in pools.values())
    n_test = min(len(p[1]) for p in pools.values())
    if per_author is not None:
        n_train = min(n_train, per_author)
        n_test = min(n_test, max(1, int(round(per_author * test_fraction / (1 - test_fraction)))))
    if n_train == 0 or n_test == 0:
        raise ValueError("the texts are too short for passages of this length: lower min_words")

    def pick(which: int, n: int) -> Passages:
        texts_, labels = [], []
        for label, (train_pool, test_pool) in enumerate(pools.values()):
            pool = (train_pool, test_pool)[which]
            chosen = np.sort(rng.choice(len(pool), size=n, replace=False))
            texts_ += [pool[i] for i in chosen]
            labels += [label] * n
        order = rng.permutation(len(texts_))  # mix the authors
        return Passages([texts_[i] for i in order], np.asarray(labels, dtype=np.int64)[order], list(authors))

    return pick(0, n_train), pick(1, n_test)


# --------------------------------------------------------------------------------- padding
def pad_batch(sequences: Sequence, pad_value: int = 0):
    """Variable-length id sequences -> ``(padded (B, T_max) int64 tensor, lengths (B,) int64)``.

    Sequences keep their order (``pack_padded_sequence(..., enforce_sorted=False)`` sorts
    internally).  Every sequence must hold at least one id: an empty one has no last step.
    """
    import torch

    if len(sequences) == 0:
        raise ValueError("cannot pad an empty batch")
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.int64)
    if int(lengths.min()) < 1:
        raise ValueError("a sequence of length 0 cannot be packed: drop empty sequences first")
    padded = torch.full((len(sequences), int(lengths.max())), pad_value, dtype=torch.int64)
    for i, s in enumerate(sequences):
        padded[i, : len(s)] = torch.as_tensor(np.asarray(s, dtype=np.int64))
    return padded, lengths


def collate(batch, pad_value: int = 0):
    """DataLoader ``collate_fn``: ``[(ids, label), ...]`` -> ``((padded, lengths), labels)``.

    The input is a tuple, so ``labutils.train.fit`` passes it to ``model(padded, lengths)``.
    """
    import torch

    sequences, labels = zip(*batch, strict=True)
    padded, lengths = pad_batch(sequences, pad_value)
    return (padded, lengths), torch.as_tensor(np.asarray(labels, dtype=np.int64))


def make_loader(
    sequences: Sequence, labels, batch_size: int = 32, *, shuffle: bool = False, seed: int = 0, pad_value: int = 0
):
    """A DataLoader of padded batches; ``shuffle=True`` reshuffles each epoch, reproducibly from ``seed``."""
    import torch
    from torch.utils.data import DataLoader

    labels = np.asarray(labels, dtype=np.int64)
    if len(sequences) != len(labels):
        raise ValueError(f"{len(sequences)} sequences but {len(labels)} labels")
    pairs = list(zip(sequences, labels.tolist(), strict=True))
    generator = torch.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(
        pairs, batch_size=batch_size, shuffle=shuffle, generator=generator, collate_fn=lambda b: collate(b, pad_value)
    )


# ------------------------------------------------------------------------------------ IMDb
@dataclass
class Reviews:
    """IMDb reviews: ``texts``, ``labels`` (1 positive, 0 negative) and ``ratings`` (1-10)."""

    texts: list[str]
    labels: np.ndarray
    ratings: np.ndarray

    def __len__(self) -> int:
        return len(self.texts)


_IMDB_NAME = re.compile(r"(?:^|/)aclImdb/(train|test)/(pos|neg)/(\d+)_(\d+)\.txt$")
_BREAK = re.compile(r"<br\s*/?>", re.I)


def find_imdb(path=None) -> Path | None:
    """Where the IMDb data is: ``path``, else ``$LABUTILS_IMDB``, else ``data/aclImdb_v1.tar.gz``
    or ``data/aclImdb`` in the course folder; ``None`` when there is none."""
    root = Path(__file__).resolve().parent.parent / "data"
    candidates = [path, os.environ.get(IMDB_ENV), root / "aclImdb_v1.tar.gz", root / "aclImdb"]
    for c in candidates:
        if c and Path(c).exists():
            return Path(c)
    return None


def load_imdb(path, split: str = "train", max_per_class: int | None = None) -> Reviews:
    """Read one split of the IMDb review set from ``aclImdb_v1.tar.gz`` or its extracted folder.

    ``path`` may be the archive, the ``aclImdb`` folder or the folder that contains it.  Reviews
    come sorted by class (negative, then positive) and by file id, so the result does not depend
    on the order of the archive; ``max_per_class`` keeps the first ones of each class.  HTML line
    breaks (``<br />``) become spaces.  The unlabelled ``unsup`` reviews are skipped.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    path = Path(path)
    found: list[tuple[int, int, int, str]] = []  # (label, id, rating, text)

    def add(name: str, read) -> None:
        m = _IMDB_NAME.search(name.replace(os.sep, "/"))
        if m and m.group(1) == split:
            label = int(m.group(2) == "pos")
            text = _BREAK.sub(" ", read().decode("utf-8", errors="replace"))
            found.append((label, int(m.group(3)), int(m.group(4)), text))

    if path.is_file():
        with tarfile.open(path, "r:*") as tar:  # read members in place: nothing is extracted
            for member in tar:
                if member.isfile() and member.name.endswith(".txt"):
                    add(member.name, tar.extractfile(member).read)
    elif path.is_dir():
        base = path / "aclImdb" if (path / "aclImdb").is_dir() else path
        if base.name != "aclImdb":
            raise FileNotFoundError(f"{path} holds no aclImdb folder")
        for file in sorted((base / split).glob("*/*.txt")):
            add(str(file.relative_to(base.parent)), file.read_bytes)
    else:
        raise FileNotFoundError(
            f"no IMDb data at {path}: pass aclImdb_v1.tar.gz or its extracted aclImdb folder (or set {IMDB_ENV})"
        )
    if not found:
        raise ValueError(f"{path} has no aclImdb/{split}/pos or neg reviews: is it the IMDb archive?")
    found.sort(key=lambda r: (r[0], r[1]))
    if max_per_class is not None:
        found = [r for label in (0, 1) for r in [f for f in found if f[0] == label][:max_per_class]]
    return Reviews(
        [r[3] for r in found],
        np.array([r[0] for r in found], dtype=np.int64),
        np.array([r[2] for r in found], dtype=np.int64),
    )
