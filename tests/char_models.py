"""A short text and a small CharRNN: what the trainer's tests (test_train.py, test_train_checkpoints.py) train."""

from __future__ import annotations

import torch

from labutils.models import CharRNN
from labutils.text import CharVocab

TEXT = "the quick brown fox jumps over the lazy dog. " * 20


def text_data():
    """``(vocab, ids)``: the character vocabulary of ``TEXT`` and ``TEXT`` encoded."""
    vocab = CharVocab(TEXT)
    return vocab, vocab.encode(TEXT)


def small_model(V, cell="gru", **kw):
    """A seeded one-layer ``CharRNN`` over ``V`` characters (embedding 8, hidden 16)."""
    torch.manual_seed(0)
    return CharRNN(V, embed_dim=8, hidden_size=16, num_layers=1, cell=cell, **kw)
