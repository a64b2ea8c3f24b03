"""A small many-to-one classifier over packed batches, for the tests that need one.

It answers lab 05's exercise (``PassageClassifier.forward``), so it lives here and not in
``labutils`` (principle 1: the package never holds an exercise's answer).
"""

from __future__ import annotations

from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

CELLS = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}


class PackedClassifier(nn.Module):
    """Embedding -> recurrent layers over the packed batch -> the top layer's final state -> Linear.

    ``forward(x, lengths)``: ``x`` (B, T) int64 padded ids, ``lengths`` (B,) -> logits (B, C).
    """

    def __init__(self, vocab_size, n_classes, embed_dim=4, hidden_size=5, num_layers=1, cell="gru"):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.rnn = CELLS[cell](embed_dim, hidden_size, num_layers=num_layers, batch_first=True)
        self.classify = nn.Linear(hidden_size, n_classes)

    def forward(self, x, lengths):
        packed = pack_padded_sequence(self.embed(x), lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, hidden = self.rnn(packed)
        h_n = hidden[0] if isinstance(hidden, tuple) else hidden  # an LSTM returns (h_n, c_n)
        return self.classify(h_n[-1])
