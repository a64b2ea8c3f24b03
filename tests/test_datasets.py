"""labutils.datasets: authorship passages, padding helpers and the IMDb loader."""

import io
import tarfile

import numpy as np
import pytest
import torch
from packed_classifier import PackedClassifier

from labutils import datasets


def fake_texts():
    """Four small 'books' with distinct vocabularies, so labels are easy to verify."""
    rng = np.random.default_rng(0)
    books = {}
    for name, letter, n in (("a", "x", 900), ("b", "y", 700), ("c1", "z", 300), ("c2", "w", 400)):
        books[name] = " ".join(letter + "abcdefghij"[k % 10] * (1 + k // 10) for k in rng.integers(0, 50, size=n))
    return books


AUTHORS = {"A": ("a",), "B": ("b",), "C": ("c1", "c2")}


def test_authorship_is_balanced_labelled_and_deterministic():
    train, test = datasets.authorship(min_words=5, max_words=15, authors=AUTHORS, texts=fake_texts(), seed=3)
    assert train.authors == ["A", "B", "C"]
    assert len(set(train.counts().values())) == 1 and len(set(test.counts().values())) == 1
    assert len(train) > len(test) > 0
    prefix = {0: ("x",), 1: ("y",), 2: ("z", "w")}
    for split in (train, test):
        assert split.lengths().min() >= 5 and split.lengths().max() <= 15
        for words, label in zip(split.texts, split.labels, strict=True):
            assert all(w[0] in prefix[int(label)] for w in words)
    again, _ = datasets.authorship(min_words=5, max_words=15, authors=AUTHORS, texts=fake_texts(), seed=3)
    assert again.texts == train.texts and np.array_equal(again.labels, train.labels)
    other, _ = datasets.authorship(min_words=5, max_words=15, authors=AUTHORS, texts=fake_texts(), seed=4)
    assert other.texts != train.texts


def test_authorship_holds_out_the_end_of_each_book():
    def spell(k):  # the preprocessing keeps letters only: write positions in letters
        return "".join(chr(ord("a") + int(d)) for d in f"{k:04d}")

    books = {"a": " ".join("a" + spell(k) for k in range(1000)), "b": " ".join("b" + spell(k) for k in range(1000))}
    train, test = datasets.authorship(min_words=4, max_words=8, authors={"A": ("a",), "B": ("b",)}, texts=books)
    position = {w: int("".join(str(ord(c) - ord("a")) for c in w[1:])) for w in books["a"].split() + books["b"].split()}
    assert max(position[w] for t in train.texts for w in t) < 800
    assert min(position[w] for t in test.texts for w in t) >= 800


def test_authorship_per_author_caps_both_splits():
    train, test = datasets.authorship(10, min_words=5, max_words=15, authors=AUTHORS, texts=fake_texts())
    assert set(train.counts().values()) == {10}
    assert set(test.counts().values()) == {round(10 * 0.2 / 0.8)}


def test_authorship_rejects_bad_arguments():
    with pytest.raises(ValueError, match="test_fraction"):
        datasets.authorship(test_fraction=1.5, authors=AUTHORS, texts=fake_texts())
    with pytest.raises(ValueError, match="too short"):
        datasets.authorship(min_words=5000, max_words=6000, authors=AUTHORS, texts=fake_texts())


def test_authorship_on_the_course_books(mirror, monkeypatch):
    monkeypatch.setenv("LABUTILS_DATA_MIRROR", str(mirror))
    train, test = datasets.authorship(50)
    assert train.authors == list(datasets.AUTHORS)
    assert set(train.counts().values()) == {50}


def test_pad_batch_keeps_order_and_lengths():
    padded, lengths = datasets.pad_batch([[1, 2, 3], [4], [5, 6]], pad_value=9)
    assert padded.tolist() == [[1, 2, 3], [4, 9, 9], [5, 6, 9]]
    assert lengths.tolist() == [3, 1, 2] and padded.dtype == torch.int64
    with pytest.raises(ValueError, match="length 0"):
        datasets.pad_batch([[1], []])
    with pytest.raises(ValueError, match="empty batch"):
        datasets.pad_batch([])


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_pad_batch_is_what_a_packed_classifier_reads(cell):
    """Padded ids and true lengths: packed, the pad value never matters and each sequence gets what it
    gets alone, unpadded."""
    torch.manual_seed(0)
    model = PackedClassifier(12, n_classes=3, embed_dim=4, hidden_size=5, num_layers=2, cell=cell).eval()
    seqs = [[1, 2, 3, 4, 5], [6, 7], [8, 9, 10]]
    x, lengths = datasets.pad_batch(seqs, pad_value=0)
    logits = model(x, lengths)
    assert logits.shape == (3, 3)
    other_pad, _ = datasets.pad_batch(seqs, pad_value=11)
    assert torch.allclose(model(other_pad, lengths), logits, atol=1e-6)
    alone = torch.cat([model(torch.tensor([s]), torch.tensor([len(s)])) for s in seqs])
    assert torch.allclose(alone, logits, atol=1e-6)


def test_make_loader_batches_and_is_reproducible():
    seqs = [list(range(1, n + 1)) for n in (3, 1, 4, 2, 5)]
    labels = [0, 1, 0, 1, 0]
    loader = datasets.make_loader(seqs, labels, batch_size=2, shuffle=True, seed=7)
    batches = list(loader)
    (x, lengths), y = batches[0]
    assert x.shape[0] == 2 and x.shape[1] == int(lengths.max()) and y.dtype == torch.int64
    seen = sorted(int(n) for (_, ls), _ in batches for n in ls)
    assert seen == [1, 2, 3, 4, 5]
    again = list(datasets.make_loader(seqs, labels, batch_size=2, shuffle=True, seed=7))
    assert all(torch.equal(a[0][0], b[0][0]) for a, b in zip(batches, again, strict=True))
    with pytest.raises(ValueError, match="labels"):
        datasets.make_loader(seqs, labels[:2])


# ----------------------------------------------------------------------------------- IMDb
REVIEWS = {
    "aclImdb/train/pos/3_9.txt": "Great film.<br /><br />Loved it.",
    "aclImdb/train/pos/10_8.txt": "Fine acting.",
    "aclImdb/train/neg/2_1.txt": "Dull.",
    "aclImdb/train/neg/11_3.txt": "Too long.",
    "aclImdb/train/unsup/5_0.txt": "No label.",
    "aclImdb/test/pos/0_10.txt": "Superb.",
    "aclImdb/test/neg/1_2.txt": "Awful.",
    "aclImdb/README": "not a review",
}


def build_archive(tmp_path):
    path = tmp_path / "aclImdb_v1.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, text in reversed(list(REVIEWS.items())):  # archive order must not matter
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def check_train_split(reviews):
    assert reviews.texts == ["Dull.", "Too long.", "Great film.  Loved it.", "Fine acting."]
    assert reviews.labels.tolist() == [0, 0, 1, 1]
    assert reviews.ratings.tolist() == [1, 3, 9, 8]


def test_load_imdb_from_archive(tmp_path):
    path = build_archive(tmp_path)
    check_train_split(datasets.load_imdb(path))
    test = datasets.load_imdb(path, split="test")
    assert test.texts == ["Awful.", "Superb."] and len(test) == 2
    capped = datasets.load_imdb(path, max_per_class=1)
    assert capped.labels.tolist() == [0, 1] and capped.texts == ["Dull.", "Great film.  Loved it."]


def test_load_imdb_from_extracted_folder(tmp_path):
    with tarfile.open(build_archive(tmp_path)) as tar:
        tar.extractall(tmp_path / "x", filter="data")
    check_train_split(datasets.load_imdb(tmp_path / "x"))
    check_train_split(datasets.load_imdb(tmp_path / "x" / "aclImdb"))


def test_load_imdb_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no IMDb data"):
        datasets.load_imdb(tmp_path / "missing.tar.gz")
    with pytest.raises(ValueError, match="split"):
        datasets.load_imdb(tmp_path, split="unsup")
    empty = tmp_path / "empty.tar.gz"
    with tarfile.open(empty, "w:gz"):
        pass
    with pytest.raises(ValueError, match="no aclImdb/train"):
        datasets.load_imdb(empty)


def test_find_imdb(tmp_path, monkeypatch):
    monkeypatch.delenv(datasets.IMDB_ENV, raising=False)
    path = build_archive(tmp_path)
    assert datasets.find_imdb(path) == path
    monkeypatch.setenv(datasets.IMDB_ENV, str(path))
    assert datasets.find_imdb() == path
    monkeypatch.setenv(datasets.IMDB_ENV, str(tmp_path / "nothing"))
    found = datasets.find_imdb()
    assert found is None or found.name in ("aclImdb_v1.tar.gz", "aclImdb")  # unless the course folder has one
