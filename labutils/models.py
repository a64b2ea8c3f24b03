"""Models built from ``torch.nn`` layers (never the exercise cells: those live in the notebooks).

Every model has the same parts under the same names: ``embed`` (Embedding), ``rnn`` (the
recurrent layers) and its head (``decoder`` for a language model, ``classify`` for a classifier);
each keeps its constructor's arguments in ``config``.

* ``CharRNN``: Embedding -> ``nn.RNN`` / ``nn.GRU`` / ``nn.LSTM`` -> Linear, for labs 05 to 07.
  ``forward(x, hidden)`` returns the logits and the *detached* new hidden state, so truncated
  BPTT can carry the state across batches without backpropagating into earlier ones.  It may take
  another recurrent layer class (``layer=``; lab 07 passes ``labutils.layers.FastGRU``, a GRU
  layer that is fast on a CPU) as long as it has the PyTorch layer's parameters, so the weights
  always load into the standard model too.
* ``WordLM``: the same for words (many-to-many).
* ``detach_hidden(hidden)``: the one function that cuts a carried state from its graph.

Lab 05's many-to-one classifier over packed batches is an exercise: it lives in the notebook.
"""

from __future__ import annotations

import torch
from torch import nn

CELLS = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}
GATES = {"rnn": 1, "gru": 3, "lstm": 4}  # gate blocks stacked in each weight matrix (rows G * H)


def detach_hidden(hidden):
    """The recurrent state cut from the graph that made it, so backpropagation stops here.

    ``hidden`` (L, B, H), an LSTM's pair ``(h, c)`` of them, or ``None`` (returned as is).
    The one way the package detaches a carried state: truncated BPTT in ``CharRNN.forward``,
    ``WordLM.forward`` and ``labutils.train.fit(stateful=True)``.
    """
    if hidden is None:
        return None
    if isinstance(hidden, tuple):
        return tuple(h.detach() for h in hidden)
    return hidden.detach()


def _check_names(cell: str, nonlinearity: str) -> None:
    """Raise ``ValueError`` naming the choices for a mistyped cell or nonlinearity."""
    if cell not in CELLS:
        raise ValueError(f"cell must be one of {sorted(CELLS)}, got {cell!r}")
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")


def _recurrent_layers(config: dict, layer: type[nn.Module] | None = None) -> nn.Module:
    """The batch-first recurrent layers that ``config`` describes (cell, sizes, dropout, nonlinearity).

    ``layer=None``: ``nn.RNN`` / ``nn.GRU`` / ``nn.LSTM``.  Otherwise ``layer`` is called as
    ``layer(input_size, hidden_size, num_layers=..., batch_first=True, dropout=...)`` and must
    have that PyTorch layer's parameters (checked).  ``dropout`` applies between layers, so it
    is dropped for a single layer (PyTorch warns otherwise); ``nonlinearity`` ("tanh" or
    "relu", default tanh) applies to ``cell="rnn"`` only.
    """
    cell, nonlinearity = config["cell"], config.get("nonlinearity", "tanh")
    _check_names(cell, nonlinearity)
    sizes = (config["embed_dim"], config["hidden_size"])
    options = dict(num_layers=config["num_layers"], batch_first=True)
    options["dropout"] = config["dropout"] if config["num_layers"] > 1 else 0.0
    if layer is None:
        extra = {"nonlinearity": nonlinearity} if cell == "rnn" else {}
        return CELLS[cell](*sizes, **options, **extra)
    if cell == "rnn" and nonlinearity != "tanh":
        raise ValueError("layer= replaces the recurrent layer; leave nonlinearity='tanh' when you pass one")
    custom = layer(*sizes, **options)
    _check_layer_parameters(custom, cell, *sizes, config["num_layers"])
    return custom


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


def _arguments(local_names: dict, *left_out: str) -> dict:
    """A constructor's arguments by name, in order: ``locals()`` taken first thing in ``__init__``."""
    return {k: v for k, v in local_names.items() if k not in ("self", "__class__", *left_out)}


class _EmbedRNN(nn.Module):
    """The front every model here shares: ``embed`` (Embedding) -> ``rnn`` (recurrent layers).

    ``config``, the subclass's constructor arguments (``layer`` aside), is kept as
    ``self.config``: plain data that a checkpoint stores and ``type(model)(**config)`` rebuilds
    the model from; ``cell`` is lower-cased first.
    """

    def __init__(self, config: dict, layer: type[nn.Module] | None = None):
        super().__init__()
        config["cell"] = config["cell"].lower()
        self.config = config
        self.embed = nn.Embedding(config["vocab_size"], config["embed_dim"])
        self.rnn = _recurrent_layers(config, layer)


# ============================================================================ CharRNN (labs 06, 07)
class CharRNN(_EmbedRNN):
    """Character-level language model: Embedding -> recurrent layers -> Linear decoder.

    Shapes: ``x`` (B, T) int64 -> logits (B, T, V); hidden (L, B, H), or a pair of them for
    the LSTM.  ``nonlinearity`` ("tanh" or "relu") applies to ``cell="rnn"`` only.  The
    parameter names (``embed.*``, ``rnn.*``, ``decoder.*``) are what checkpoints and the grader
    read: keep them.

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
        super().__init__(_arguments(locals(), "layer"), layer)
        self.decoder = nn.Linear(hidden_size, vocab_size)

    def forward(self, x: torch.Tensor, hidden=None):
        """x (B, T) -> (logits (B, T, V), detached hidden)."""
        output, hidden = self.rnn(self.embed(x), hidden)
        return self.decoder(output), detach_hidden(hidden)

    def hidden_states(self, x: torch.Tensor, hidden=None) -> torch.Tensor:
        """The last layer's hidden state at every step: x (B, T) -> (B, T, H)."""
        output, _ = self.rnn(self.embed(x), hidden)
        return output


# ======================================================================= word-level models
class WordLM(_EmbedRNN):
    """Word-level language model that predicts the next word at *every* position.

    ``embed`` (Embedding) -> ``rnn`` (``num_layers`` recurrent layers, ``cell`` = "rnn", "gru" or
    "lstm") -> ``decoder`` (Linear), the parts and names of ``CharRNN``.  Shapes: ``x`` (B, T)
    int64 -> logits (B, T, V) and the new hidden state (L, B, H) (a pair for the LSTM),
    detached as ``CharRNN``'s is.  Lab 03's exercise model predicts only from the last step of
    a window; this one is the many-to-many form, which learns from every position of a stream.
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
        super().__init__(_arguments(locals()))
        self.decoder = nn.Linear(hidden_size, vocab_size)

    def forward(self, x: torch.Tensor, hidden=None):
        """x (B, T) -> (logits (B, T, V), detached hidden)."""
        states, hidden = self.rnn(self.embed(x), hidden)
        return self.decoder(states), detach_hidden(hidden)
