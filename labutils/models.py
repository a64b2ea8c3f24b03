"""Models built from ``torch.nn`` layers (never the exercise cells: those live in the notebooks).

* ``CharRNN``: Embedding -> ``nn.RNN`` / ``nn.GRU`` / ``nn.LSTM`` -> Linear, for labs 06 and 07.
  ``forward(x, hidden)`` returns the logits and the *detached* new hidden state, so truncated
  BPTT can carry the state across batches without backpropagating into earlier ones.  A notebook
  may pass its own recurrent layer class (``layer=``; lab 07's CPU-friendly GRU) as long as it
  has the PyTorch layer's parameters, so the weights always load into the standard model too.
"""

from __future__ import annotations

import torch
from torch import nn

CELLS = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}
GATES = {"rnn": 1, "gru": 3, "lstm": 4}  # gate blocks stacked in each weight matrix (rows G * H)


def _detach(hidden):
    return tuple(h.detach() for h in hidden) if isinstance(hidden, tuple) else hidden.detach()


def _recurrent_layers(
    cell: str, input_size: int, hidden_size: int, num_layers: int, dropout: float = 0.0, nonlinearity: str = "tanh"
) -> nn.Module:
    """``nn.RNN`` / ``nn.GRU`` / ``nn.LSTM`` (batch first), after checking the names a student may mistype.

    ``dropout`` applies between layers, so it is dropped for a single layer (PyTorch warns
    otherwise); ``nonlinearity`` ("tanh" or "relu") applies to ``cell="rnn"`` only.
    """
    if cell not in CELLS:
        raise ValueError(f"cell must be one of {sorted(CELLS)}, got {cell!r}")
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
    extra = {"nonlinearity": nonlinearity} if cell == "rnn" else {}
    return CELLS[cell](
        input_size,
        hidden_size,
        num_layers=num_layers,
        batch_first=True,
        dropout=dropout if num_layers > 1 else 0.0,
        **extra,
    )


def _check_layer_parameters(layer: nn.Module, cell: str, input_size: int, hidden_size: int, num_layers: int):
    """Raise ``ValueError`` unless ``layer`` has the parameter names and shapes of the PyTorch layer.

    That is what lets a model trained with a custom layer be saved, graded and sampled as the
    standard ``CharRNN`` (its ``config`` names only the cell).
    """
    G = GATES[cell]
    wanted = {}
    for k in range(num_layers):
        inputs = input_size if k == 0 else hidden_size
        wanted |= {
            f"weight_ih_l{k}": (G * hidden_size, inputs),
            f"weight_hh_l{k}": (G * hidden_size, hidden_size),
            f"bias_ih_l{k}": (G * hidden_size,),
            f"bias_hh_l{k}": (G * hidden_size,),
        }
    got = {name: tuple(p.shape) for name, p in layer.named_parameters()}
    if got != wanted:
        wrong = sorted(set(wanted.items()) ^ set(got.items()))
        raise ValueError(
            f"layer={type(layer).__name__} must have the parameters of nn.{CELLS[cell].__name__} "
            f"(names and shapes), so that its weights load into the standard model; these differ: {wrong[:4]}"
        )


# ============================================================================ CharRNN (labs 06, 07)
class CharRNN(nn.Module):
    """Character-level language model: Embedding -> recurrent layers -> Linear decoder.

    Shapes: ``x`` (B, T) int64 -> logits (B, T, V); hidden (L, B, H), or a pair of them for
    the LSTM.  ``nonlinearity`` ("tanh" or "relu") applies to ``cell="rnn"`` only.

    ``layer``: a class to use instead of ``nn.RNN`` / ``nn.GRU`` / ``nn.LSTM``, called as
    ``layer(embed_dim, hidden_size, num_layers=..., batch_first=True, dropout=...)``; it must
    compute the same function with the same parameter names and shapes (checked here), so
    ``CharRNN(**model.config)`` rebuilds the model with the standard layer from its weights.
    """

    def __init__(
        self,
        vocab_size: int,
        embed_dim: int = 64,
        hidden_size: int = 256,
        num_layers: int = 2,
        cell: str = "gru",
        nonlinearity: str = "tanh",
        dropout: float = 0.0,
        layer: type[nn.Module] | None = None,
    ):
        super().__init__()
        cell = cell.lower()
        self.config = dict(
            vocab_size=vocab_size,
            embed_dim=embed_dim,
            hidden_size=hidden_size,
            num_layers=num_layers,
            cell=cell,
            nonlinearity=nonlinearity,
            dropout=dropout,
        )
        self.embed = nn.Embedding(vocab_size, embed_dim)
        if layer is None:
            self.rnn = _recurrent_layers(cell, embed_dim, hidden_size, num_layers, dropout, nonlinearity)
        else:
            if cell not in CELLS:
                raise ValueError(f"cell must be one of {sorted(CELLS)}, got {cell!r}")
            if cell == "rnn" and nonlinearity != "tanh":
                raise ValueError("layer= replaces the recurrent layer; leave nonlinearity='tanh' when you pass one")
            dropout = dropout if num_layers > 1 else 0.0
            self.rnn = layer(embed_dim, hidden_size, num_layers=num_layers, batch_first=True, dropout=dropout)
            _check_layer_parameters(self.rnn, cell, embed_dim, hidden_size, num_layers)
        self.decoder = nn.Linear(hidden_size, vocab_size)

    def forward(self, x: torch.Tensor, hidden=None):
        """x (B, T) -> (logits (B, T, V), detached hidden)."""
        output, hidden = self.rnn(self.embed(x), hidden)
        return self.decoder(output), _detach(hidden)

    def hidden_states(self, x: torch.Tensor, hidden=None) -> torch.Tensor:
        """The last layer's hidden state at every step: x (B, T) -> (B, T, H)."""
        output, _ = self.rnn(self.embed(x), hidden)
        return output


# ================================================================ word-level models (labs 03, 05)
class WordLM(nn.Module):
    """Word-level language model that predicts the next word at *every* position.

    Embedding -> ``num_layers`` recurrent layers (``cell`` = "rnn", "gru" or "lstm") -> Linear.
    Shapes: ``x`` (B, T) int64 -> logits (B, T, V) and the new hidden state (L, B, H) (a pair
    for the LSTM), *not* detached: ``fit(..., stateful=True)`` detaches it between batches.
    Lab 03's exercise model predicts only from the last step of a window; this one is the
    many-to-many form, which learns from every position of a stream.
    """

    def __init__(
        self,
        vocab_size: int,
        embed_dim: int = 64,
        hidden_size: int = 128,
        num_layers: int = 2,
        cell: str = "rnn",
        dropout: float = 0.0,
    ):
        super().__init__()
        cell = cell.lower()
        self.config = dict(
            vocab_size=vocab_size,
            embed_dim=embed_dim,
            hidden_size=hidden_size,
            num_layers=num_layers,
            cell=cell,
            dropout=dropout,
        )
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        self.recurrent = _recurrent_layers(cell, embed_dim, hidden_size, num_layers, dropout)
        self.head = nn.Linear(hidden_size, vocab_size)

    def forward(self, x: torch.Tensor, hidden=None):
        """x (B, T) -> (logits (B, T, V), hidden)."""
        states, hidden = self.recurrent(self.embedding(x), hidden)
        return self.head(states), hidden


class SequenceClassifier(nn.Module):
    """Many-to-one classifier of variable-length sequences (lab 05).

    Embedding -> recurrent layers over the *packed* batch -> the top layer's final hidden state
    -> Linear to ``n_classes`` logits.  ``forward(x, lengths)``: ``x`` (B, T) int64 padded ids,
    ``lengths`` (B,) the true lengths -> logits (B, C).  Packing makes the recurrence stop at
    each sequence's own last word, so the padding never reaches the final state.
    ``pack=False`` runs over the padding instead (to show why packing matters).
    """

    def __init__(
        self,
        vocab_size: int,
        n_classes: int,
        embed_dim: int = 64,
        hidden_size: int = 128,
        num_layers: int = 1,
        cell: str = "gru",
        dropout: float = 0.0,
        pack: bool = True,
    ):
        super().__init__()
        cell = cell.lower()
        self.config = dict(
            vocab_size=vocab_size,
            n_classes=n_classes,
            embed_dim=embed_dim,
            hidden_size=hidden_size,
            num_layers=num_layers,
            cell=cell,
            dropout=dropout,
            pack=pack,
        )
        self.pack = pack
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        self.recurrent = _recurrent_layers(cell, embed_dim, hidden_size, num_layers, dropout)
        self.drop = nn.Dropout(dropout)
        self.classify = nn.Linear(hidden_size, n_classes)

    def final_state(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The top layer's hidden state after each sequence's last real step: (B, H)."""
        emb = self.embedding(x)
        if self.pack:
            # pack_padded_sequence wants the lengths on the CPU, whatever device the data is on
            emb = nn.utils.rnn.pack_padded_sequence(emb, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, hidden = self.recurrent(emb)
        h_n = hidden[0] if isinstance(hidden, tuple) else hidden  # an LSTM returns (h_n, c_n)
        return h_n[-1]

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """x (B, T), lengths (B,) -> logits (B, C)."""
        return self.classify(self.drop(self.final_state(x, lengths)))
