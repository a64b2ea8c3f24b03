"""Training and evaluation loops, with the care a student should not have to rewrite each lab.

``fit`` trains any model whose ``forward`` returns logits -- or ``(logits, hidden)`` for a
*stateful* model trained by truncated backpropagation through time -- with:

* a ``tqdm.auto`` progress bar and a ``History`` of losses (per step) and metrics (per epoch);
* gradient clipping (by global norm);
* a stop with advice as soon as the loss is NaN or infinite (``TrainingDiverged``);
* evaluation on held-out batches after every epoch (and every ``eval_every`` steps);
* a ``callback(history)`` after each logged step, e.g. to redraw a live plot, which may raise
  ``StopTraining`` to end early.

``save_checkpoint`` / ``load_checkpoint`` store weights with the vocabulary and configuration and
refuse to load into a model whose vocabulary or shapes differ.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .metrics import accuracy as _accuracy
from .runtime import device as default_device
from .text import n_stream_batches, stream_batches

NAN_ADVICE = (
    "Things to try, in this order:\n"
    "  * lower the learning rate (by 3x to 10x);\n"
    "  * shorten the training sequence length (fewer steps to backpropagate through);\n"
    "  * keep gradient clipping on (clip=5 or less);\n"
    "  * for a vanilla RNN, ReLU tolerates longer sequences than tanh only with a small learning rate -- "
    "try tanh, or a GRU/LSTM;\n"
    "  * fit the data and model size to your machine: more layers cost time and are harder to train."
)


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the message says at which step and what to try."""


class StopTraining(Exception):
    """Raise from a ``fit`` callback to end training early (the history so far is kept)."""


@dataclass
class History:
    """What happened during ``fit``: ``steps``/``train_loss`` per step, ``val`` per evaluation."""

    steps: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    val_steps: list[int] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    epochs: list[dict] = field(default_factory=list)  # one dict of metrics per finished epoch
    tokens_seen: int = 0
    stopped_early: bool = False

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


class StreamBatches:
    """Re-iterable ``stream_batches(ids, batch_size, seq_len)`` with a length (for progress bars).

    ``fit(model, StreamBatches(train_ids, 64, 100), stateful=True, ...)`` trains by truncated
    BPTT over 64 contiguous streams; each epoch starts again at the beginning of every stream.
    """

    def __init__(self, ids, batch_size: int, seq_len: int):
        self.ids, self.batch_size, self.seq_len = ids, batch_size, seq_len
        next(iter(self))  # check the sizes now, with stream_batches' clear message

    def __iter__(self):
        return stream_batches(self.ids, self.batch_size, self.seq_len)

    def __len__(self) -> int:
        return n_stream_batches(len(self.ids), self.batch_size, self.seq_len)

    def __repr__(self) -> str:
        return f"StreamBatches({len(self.ids)} tokens, batch_size={self.batch_size}, seq_len={self.seq_len})"


def _as_batches(data) -> Iterable:
    """``data`` may be re-iterable (a list, a DataLoader) or a function returning an iterator."""
    return data() if callable(data) else data


def _to_device(x, dev):
    if isinstance(x, (tuple, list)):
        return type(x)(_to_device(v, dev) for v in x)
    if isinstance(x, torch.Tensor):
        return x.to(dev)
    return torch.as_tensor(x).to(dev)


def _forward(model, x, hidden, stateful: bool):
    """Run the model; return (logits, new hidden).  Tuples in ``x`` are spread as arguments."""
    args = x if isinstance(x, (tuple, list)) else (x,)
    if stateful:
        logits, hidden = model(*args, hidden)
        hidden = _detach(hidden)
        return logits, hidden
    return model(*args), None


def _detach(hidden):
    if hidden is None:
        return None
    if isinstance(hidden, tuple):  # an LSTM's (h, c)
        return tuple(h.detach() for h in hidden)
    return hidden.detach()


def _reset_streams(hidden, p: float):
    """Zero each stream's carried state with probability ``p``: hidden (L, B, H), or an LSTM's pair.

    Streams are otherwise reset only when an epoch starts, so a long run would hardly ever see a
    zero state -- yet sampling starts from one.  An LSTM's h and c are reset together.
    """
    first = hidden[0] if isinstance(hidden, tuple) else hidden
    keep = (torch.rand(first.shape[1], device=first.device) >= p).to(first.dtype).view(1, -1, 1)
    return tuple(h * keep for h in hidden) if isinstance(hidden, tuple) else hidden * keep


def _loss(logits, y):
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


@torch.no_grad()
def evaluate(model, data, *, stateful: bool = False, device=None, with_accuracy: bool = False) -> dict:
    """Mean cross-entropy per target (nats) over ``data``; and accuracy if asked.

    Returns ``{"loss": ..., "accuracy": ...}`` (accuracy only with ``with_accuracy=True``).
    """
    dev = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    total, count, correct, hidden = 0.0, 0, 0.0, None
    try:
        for x, y in _as_batches(data):
            x, y = _to_device(x, dev), _to_device(y, dev)
            logits, hidden = _forward(model, x, hidden, stateful)
            n = y.numel()
            total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="sum").item()
            count += n
            if with_accuracy:
                correct += _accuracy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1)) * n
    finally:
        model.train(was_training)
    if count == 0:
        raise ValueError("evaluate() got no batches: is the held-out text shorter than one batch?")
    result = {"loss": total / count}
    if with_accuracy:
        result["accuracy"] = correct / count
    return result


def make_optimizer(model, name: str = "adam", lr: float = 1e-3, betas=None) -> torch.optim.Optimizer:
    """``"adam"``, ``"adamw"``, ``"sgd"`` (momentum 0.9), ``"rmsprop"`` or ``"adagrad"``.

    ``betas``: Adam's and AdamW's decay rates for the running means of the gradient and of its
    square (``None``: PyTorch's (0.9, 0.999)).  Adam and AdamW use PyTorch's fused kernel where
    it exists (float parameters on a CPU or a CUDA GPU): one pass over the weights instead of a
    dozen, about 10 ms less per step for lab 07's GRU on 2 cores.
    """
    name = name.lower()
    params = list(model.parameters())
    if betas is not None and name not in ("adam", "adamw"):
        raise ValueError(f"betas={betas!r} applies to adam and adamw only, not {name!r}: leave it out")
    adam_options = (
        {"fused": True} if all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params) else {}
    )
    if betas is not None:
        adam_options["betas"] = tuple(betas)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, **adam_options)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, **adam_options)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr)
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=lr)
    raise ValueError(f"unknown optimiser {name!r}: use adam, adamw, sgd, rmsprop or adagrad")


def fit(
    model: torch.nn.Module,
    train,
    *,
    epochs: int = 1,
    lr: float = 1e-3,
    optimizer: str | torch.optim.Optimizer = "adam",
    clip: float | None = 5.0,
    val=None,
    stateful: bool = False,
    state_reset: float = 0.0,
    with_accuracy: bool = False,
    max_steps: int | None = None,
    eval_every: int | None = None,
    callback: Callable[[History], None] | None = None,
    device=None,
    progress: bool = True,
    history: History | None = None,
) -> History:
    """Train ``model`` on batches ``(x, y)`` of ``train``; return the ``History``.

    ``train`` / ``val``: a list, a DataLoader, or a function returning an iterator of batches
    (e.g. ``lambda: stream_batches(ids, B, T)``).  ``stateful=True``: ``model(x, hidden)``
    returns ``(logits, hidden)`` and the (detached) hidden state is carried from batch to batch
    within an epoch, as truncated BPTT over contiguous streams requires; ``state_reset=p`` zeroes
    each stream's state before a batch with probability p, so that the model also learns to
    start from nothing, as ``sample`` does.  ``x`` may be a tuple
    (e.g. padded sequences and their lengths) and is then passed as several arguments.
    Loss: cross-entropy between ``logits (..., C)`` and integer targets ``y (...)``.
    ``max_steps`` bounds the optimiser steps of this call; passing ``history`` continues it.
    """
    if not 0 <= state_reset < 1:
        raise ValueError(f"state_reset is a probability per stream and batch, in [0, 1): got {state_reset}")
    dev = device or default_device()
    model.to(dev)
    opt = optimizer if isinstance(optimizer, torch.optim.Optimizer) else make_optimizer(model, optimizer, lr)
    history = history or History()
    step = history.steps[-1] if history.steps else 0
    first_step = step  # max_steps counts the steps of this call (a resumed history continues)
    try:
        total = len(_as_batches(train)) * epochs
    except TypeError:
        total = None
    if max_steps is not None:
        total = min(total, max_steps) if total else max_steps
    bar = tqdm(total=total, desc="training", unit="batch", disable=not progress)
    try:
        for epoch in range(epochs):
            model.train()
            hidden = None
            epoch_start = len(history.train_loss)
            for x, y in _as_batches(train):
                x, y = _to_device(x, dev), _to_device(y, dev)
                if state_reset and hidden is not None:
                    hidden = _reset_streams(hidden, state_reset)
                logits, hidden = _forward(model, x, hidden, stateful)
                loss = _loss(logits, y)
                value = loss.item()  # one synchronisation per step
                if not math.isfinite(value):
                    raise TrainingDiverged(
                        f"The loss became {value} at step {step + 1} (epoch {epoch + 1}): training diverged.\n"
                        + NAN_ADVICE
                    )
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if clip:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
                opt.step()
                step += 1
                history.steps.append(step)
                history.train_loss.append(value)
                history.tokens_seen += y.numel()
                bar.update(1)
                bar.set_postfix(loss=f"{value:.3f}", refresh=False)
                if val is not None and eval_every and step % eval_every == 0:
                    _record_val(model, val, history, step, stateful, dev)
                if callback:
                    callback(history)
                if max_steps is not None and step - first_step >= max_steps:
                    raise StopTraining
            epoch_losses = history.train_loss[epoch_start:]
            metrics = {"epoch": epoch + 1, "train_loss": sum(epoch_losses) / max(len(epoch_losses), 1)}
            if val is not None:
                metrics.update(
                    {
                        f"val_{k}": v
                        for k, v in evaluate(
                            model, val, stateful=stateful, device=dev, with_accuracy=with_accuracy
                        ).items()
                    }
                )
                history.val_steps.append(step)
                history.val_loss.append(metrics["val_loss"])
            if with_accuracy:
                metrics["train_accuracy"] = evaluate(model, train, stateful=stateful, device=dev, with_accuracy=True)[
                    "accuracy"
                ]
            history.epochs.append(metrics)
    except StopTraining:
        history.stopped_early = max_steps is None or step - first_step < max_steps
        if val is not None and (not history.val_steps or history.val_steps[-1] != step):
            _record_val(model, val, history, step, stateful, dev)
    finally:
        bar.close()
    return history


def _record_val(model, val, history, step, stateful, dev):
    history.val_steps.append(step)
    history.val_loss.append(evaluate(model, val, stateful=stateful, device=dev)["loss"])


# ------------------------------------------------------------------------ checkpoints
def save_checkpoint(path, model: torch.nn.Module, *, vocab=None, config: dict | None = None) -> Path:
    """Save weights, the vocabulary (as a list of tokens) and the model's configuration."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tokens = None if vocab is None else list(getattr(vocab, "chars", None) or getattr(vocab, "words", vocab))
    payload = {"state_dict": model.state_dict(), "vocab": tokens, "config": dict(config or {})}
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)  # atomic: a crash mid-save never leaves a half-written checkpoint
    return path


class CheckpointMismatch(ValueError):
    """The checkpoint was trained with another vocabulary or model shape."""


def load_checkpoint(path, model: torch.nn.Module, *, vocab=None) -> dict:
    """Load weights saved by ``save_checkpoint`` into ``model``; return the payload.

    Uses ``torch.load(weights_only=True)``: a checkpoint cannot run code.  Refuses, with a
    message naming the difference, a checkpoint whose vocabulary differs from ``vocab`` or whose
    tensors do not fit ``model``.
    """
    payload = torch.load(Path(path), map_location="cpu", weights_only=True)
    if vocab is not None:
        tokens = list(getattr(vocab, "chars", None) or getattr(vocab, "words", vocab))
        saved = payload.get("vocab")
        if saved != tokens:
            saved = saved or []
            extra, missing = sorted(set(saved) - set(tokens))[:10], sorted(set(tokens) - set(saved))[:10]
            raise CheckpointMismatch(
                f"{path} was trained with a different vocabulary ({len(saved)} tokens; this model has "
                f"{len(tokens)}). Only in the checkpoint: {extra!r}; only here: {missing!r}. "
                "Build the vocabulary from the same text as when training, or train a new model."
            )
    own = model.state_dict()
    problems = [
        f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in payload["state_dict"].items()
        if k in own and own[k].shape != v.shape
    ]
    problems += [f"{k}: missing from the checkpoint" for k in own if k not in payload["state_dict"]]
    problems += [f"{k}: not in this model" for k in payload["state_dict"] if k not in own]
    if problems:
        raise CheckpointMismatch(
            f"{path} does not fit this model (saved config: {payload.get('config')}):\n  "
            + "\n  ".join(problems[:10])
            + "\nCreate the model with the configuration the checkpoint was saved with."
        )
    model.load_state_dict(payload["state_dict"])
    return payload
