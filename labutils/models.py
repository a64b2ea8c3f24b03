"""Models built from ``torch.nn`` layers (never the exercise cells: those live in the notebooks).

* ``CharRNN``: Embedding -> ``nn.RNN`` / ``nn.GRU`` / ``nn.LSTM`` -> Linear, for labs 06 and 07.
  ``forward(x, hidden)`` returns the logits and the *detached* new hidden state, so truncated
  BPTT can carry the state across batches without backpropagating into earlier ones.
"""

from __future__ import annotations

import torch
from torch import nn

CELLS = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}


def _detach(hidden):
    return tuple(h.detach() for h in hidden) if isinstance(hidden, tuple) else hidden.detach()


# ============================================================================ CharRNN (labs 06, 07)
class CharRNN(nn.Module):
    """Character-level language model: Embedding -> recurrent layers -> Linear decoder.

    Shapes: ``x`` (B, T) int64 -> logits (B, T, V); hidden (L, B, H), or a pair of them for
    the LSTM.  ``nonlinearity`` ("tanh" or "relu") applies to ``cell="rnn"`` only.
    """

    def __init__(self, vocab_size: int, embed_dim: int = 64, hidden_size: int = 256, num_layers: int = 2,
                 cell: str = "gru", nonlinearity: str = "tanh", dropout: float = 0.0):
        super().__init__()
        cell = cell.lower()
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {sorted(CELLS)}, got {cell!r}")
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.config = dict(vocab_size=vocab_size, embed_dim=embed_dim, hidden_size=hidden_size,
                           num_layers=num_layers, cell=cell, nonlinearity=nonlinearity, dropout=dropout)
        self.embed = nn.Embedding(vocab_size, embed_dim)
        extra = {"nonlinearity": nonlinearity} if cell == "rnn" else {}
        self.rnn = CELLS[cell](embed_dim, hidden_size, num_layers=num_layers, batch_first=True,
                               dropout=dropout if num_layers > 1 else 0.0, **extra)
        self.decoder = nn.Linear(hidden_size, vocab_size)

    def forward(self, x: torch.Tensor, hidden=None):
        """x (B, T) -> (logits (B, T, V), detached hidden)."""
        output, hidden = self.rnn(self.embed(x), hidden)
        return self.decoder(output), _detach(hidden)

    def hidden_states(self, x: torch.Tensor, hidden=None) -> torch.Tensor:
        """The last layer's hidden state at every step: x (B, T) -> (B, T, H)."""
        output, _ = self.rnn(self.embed(x), hidden)
        return output
