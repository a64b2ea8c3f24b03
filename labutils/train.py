"""Training and evaluation loops, with the care a student should not have to rewrite each lab.

``fit`` trains any model whose ``forward`` returns logits -- or ``(logits, hidden)`` for a
*stateful* model trained by truncated backpropagation through time.  It reads like a plain
training loop (nanoGPT's is the model): for each batch, stop if a budget ran out, set the
learning rate from the schedule, take one step, log it, evaluate now and then, call back.
What it takes care of:

* budgets: ``epochs`` passes over ``train``, cut short by ``max_steps`` (optimiser steps of this
  call) or ``max_seconds`` (wall-clock seconds of this call), whichever runs out first;
* a learning-rate schedule given as a function of progress, ``lr_schedule(p)`` with ``p`` the
  fraction of the binding budget used, steps or seconds (``labutils.schedules.cosine_lr``);
* a ``tqdm.auto`` progress bar and a ``History`` of losses (per step) and metrics (per epoch);
* gradient clipping (by global norm); a stop with advice as soon as the loss is NaN or
  infinite (``TrainingDiverged``, whose message ends with ``NAN_ADVICE``);
* evaluation on held-out batches after every epoch, every ``eval_every`` steps, and when
  training ends mid-epoch;
* a ``callback(history)`` after every step, e.g. to redraw a live plot, which may raise
  ``StopTraining`` to end training early (the history so far is kept).

``save_checkpoint`` writes one ``torch.save`` of plain data (weights, vocabulary, configuration,
hyperparameters, history, sampling temperature); ``load_checkpoint`` loads the weights into a
given model and ``load_charrnn`` rebuilds a standard ``CharRNN``.  Both load with
``weights_only=True`` and refuse, with a message naming the difference, a checkpoint that does
not fit.
"""

from __future__ import annotations

import math
import pickle
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .metrics import accuracy as _accuracy
from .models import CharRNN, detach_hidden
from .runtime import device as default_device
from .text import CharVocab, n_stream_batches, stream_batches

_clock = time.perf_counter  # the clock of the time budget (tests replace it)

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
    stopped_early: bool = False  # the callback raised StopTraining (a budget running out is no early stop)

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
        hidden = detach_hidden(hidden)
        return logits, hidden
    return model(*args), None


def reset_streams(hidden, p: float):
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
    it exists (float parameters on a CPU or a CUDA GPU): one pass over the weights per step
    instead of one per operation of the update.
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


# ------------------------------------------------------------------------ the training loop
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
    max_seconds: float | None = None,
    lr_schedule: Callable[[float], float] | None = None,
    eval_every: int | None = None,
    callback: Callable[[History], None] | None = None,
    device=None,
    progress: bool = True,
    history: History | None = None,
) -> History:
    """Train ``model`` on batches ``(x, y)`` of ``train`` (evaluating on ``val``); return the ``History``.

    Batches: a list, a DataLoader or a function returning an iterator; a tuple ``x`` is spread as
    arguments; loss: cross-entropy of ``logits (..., C)`` and targets ``y (...)``.  Budgets: ``epochs``,
    ``max_steps``, ``max_seconds``, whichever runs out first; ``lr_schedule(p)`` gives the rate at
    fraction p of it (``_Budget``).  ``stateful``, ``state_reset``: ``_train_step``; ``with_accuracy``:
    ``_end_epoch``; ``callback(history)`` may raise ``StopTraining``; ``history`` is continued.
    """
    run = _Run.setup(model, device, optimizer, lr, clip, val, stateful, state_reset, with_accuracy, eval_every)
    history = _continued(history)
    budget = _Budget.plan(train, epochs, max_steps, max_seconds, lr_schedule)
    with tqdm(total=budget.planned_steps, desc="training", unit="batch", disable=not progress) as bar:
        for epoch in range(epochs):
            model.train()
            hidden, tally = None, _Tally(first=len(history.train_loss))
            for x, y in _as_batches(train):
                if budget.spent():
                    return _end_mid_epoch(run, history)
                if lr_schedule is not None:
                    _set_lr(run.opt, lr_schedule(budget.progress()))
                hidden = _train_step(run, x, y, hidden, history, tally, epoch)
                budget.done += 1
                _show_loss(bar, history.train_loss[-1])
                if val is not None and eval_every and history.steps[-1] % eval_every == 0:
                    _record_val(run, history)
                if callback is not None and _stop_requested(callback, history):
                    return _end_mid_epoch(run, history, stopped_early=True)
            _end_epoch(run, history, tally, epoch)
    return history


@dataclass
class _Run:
    """What every step of one ``fit`` call needs: its arguments, resolved."""

    model: torch.nn.Module
    opt: torch.optim.Optimizer
    dev: torch.device | str
    clip: float | None
    val: object
    stateful: bool
    state_reset: float
    with_accuracy: bool
    eval_every: int | None

    @classmethod
    def setup(cls, model, device, optimizer, lr, clip, val, stateful, state_reset, with_accuracy, eval_every):
        """Check the options; move ``model`` to ``device`` (None: ``labutils.device()``); make the optimiser."""
        _check_options(state_reset, eval_every)
        dev = device or default_device()
        model.to(dev)
        opt = optimizer if isinstance(optimizer, torch.optim.Optimizer) else make_optimizer(model, optimizer, lr)
        return cls(model, opt, dev, clip, val, stateful, state_reset, with_accuracy, eval_every)


@dataclass
class _Budget:
    """How far one ``fit`` call has got, against its budgets.

    ``planned_steps``: the steps of all its epochs, or ``max_steps`` if fewer (None: unknown, for
    batches without a length).  ``max_seconds``: wall-clock seconds from the start of the call.
    The progress ``p`` handed to ``lr_schedule(p)`` before each step is the larger of the steps
    done over ``planned_steps`` and the seconds passed over ``max_seconds``, at most 1: the
    fraction of the budget that will run out first, so the schedule ends when training does.
    """

    planned_steps: int | None
    max_steps: int | None
    max_seconds: float | None
    done: int = 0
    start: float = field(default_factory=lambda: _clock())

    @classmethod
    def plan(cls, train, epochs: int, max_steps, max_seconds, lr_schedule) -> _Budget:
        """The budget of a ``fit`` call, started now; refuses bad budgets and a schedule of unknown length."""
        _check_steps("max_steps", max_steps)
        if max_seconds is not None and not max_seconds > 0:
            raise ValueError(f"max_seconds is a time budget in seconds, > 0 (or None for none): got {max_seconds!r}")
        try:
            planned = len(_as_batches(train)) * epochs
        except TypeError:  # an iterator without a length
            planned = None
        if max_steps is not None:
            planned = max_steps if planned is None else min(planned, max_steps)
        if lr_schedule is not None and planned is None and max_seconds is None:
            raise ValueError(
                "lr_schedule needs to know how long training will be: give max_steps or max_seconds, "
                "or batches with a length (a list, a DataLoader, StreamBatches)"
            )
        return cls(planned, max_steps, max_seconds)

    def progress(self) -> float:
        """The fraction of training done, in [0, 1]."""
        p = self.done / self.planned_steps if self.planned_steps else 0.0
        if self.max_seconds is not None:
            p = max(p, (_clock() - self.start) / self.max_seconds)
        return min(p, 1.0)

    def spent(self) -> bool:
        """True once ``max_steps`` steps are done or ``max_seconds`` have passed."""
        if self.max_steps is not None and self.done >= self.max_steps:
            return True
        return self.max_seconds is not None and _clock() - self.start >= self.max_seconds


@dataclass
class _Tally:
    """One epoch's running record: where its losses start in the history, its right predictions."""

    first: int
    correct: torch.Tensor | int = 0
    targets: int = 0

    def count(self, logits: torch.Tensor, y: torch.Tensor) -> None:
        """Add the predictions of one batch: logits (..., C), y (...) -- on the device, no sync."""
        self.correct = self.correct + (logits.detach().argmax(-1) == y).sum()
        self.targets += y.numel()


def _check_options(state_reset: float, eval_every: int | None) -> None:
    if not 0 <= state_reset < 1:
        raise ValueError(f"state_reset is a probability per stream and batch, in [0, 1): got {state_reset}")
    _check_steps("eval_every", eval_every)


def _check_steps(name: str, value) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f"{name} is a number of steps, a positive int (or None): got {value!r}")


def _show_loss(bar, loss: float) -> None:
    """Advance the progress bar by one step and show the step's loss."""
    bar.update(1)
    bar.set_postfix(loss=f"{loss:.3f}", refresh=False)


def _continued(history: History | None) -> History:
    """The history to append to: a new one, or the caller's, continued (``stopped_early`` reset)."""
    history = history or History()
    history.stopped_early = False
    return history


def _set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    for group in opt.param_groups:
        group["lr"] = lr


def _train_step(run: _Run, x, y, hidden, history: History, tally: _Tally, epoch: int):
    """One optimiser step on the batch ``(x, y)``, logged in ``history``; returns the state to carry.

    Stateful models (``run.stateful``): ``model(x, hidden)`` returns ``(logits, hidden)``; the
    state, detached, is carried to the next batch of the epoch (truncated BPTT over contiguous
    streams), and with ``state_reset=p`` each stream's state is first zeroed with probability p,
    so that the model also learns to start from nothing, as sampling does.
    """
    x, y = _to_device(x, run.dev), _to_device(y, run.dev)
    if run.state_reset and hidden is not None:
        hidden = reset_streams(hidden, run.state_reset)
    logits, hidden = _forward(run.model, x, hidden, run.stateful)
    loss = _loss(logits, y)
    value = loss.item()  # one synchronisation per step
    step = (history.steps[-1] if history.steps else 0) + 1
    if not math.isfinite(value):
        raise TrainingDiverged(
            f"The loss became {value} at step {step} (epoch {epoch + 1}): training diverged.\n" + NAN_ADVICE
        )
    run.opt.zero_grad(set_to_none=True)
    loss.backward()
    if run.clip:
        torch.nn.utils.clip_grad_norm_(run.model.parameters(), run.clip)
    run.opt.step()
    history.steps.append(step)
    history.train_loss.append(value)
    history.tokens_seen += y.numel()
    if run.with_accuracy:
        tally.count(logits, y)
    return hidden


def _stop_requested(callback, history: History) -> bool:
    """Call ``callback(history)``; True if it raised ``StopTraining``."""
    try:
        callback(history)
    except StopTraining:
        return True
    return False


def _record_val(run: _Run, history: History, with_accuracy: bool = False) -> dict:
    """Evaluate on ``run.val`` now; record the loss at the current step; return ``evaluate``'s dict."""
    result = evaluate(run.model, run.val, stateful=run.stateful, device=run.dev, with_accuracy=with_accuracy)
    history.val_steps.append(history.steps[-1] if history.steps else 0)
    history.val_loss.append(result["loss"])
    return result


def _end_epoch(run: _Run, history: History, tally: _Tally, epoch: int) -> None:
    """Summarise the epoch that just ended in ``history.epochs``.

    ``train_loss``: the mean of the epoch's step losses; with ``val``, ``val_loss`` (and with
    ``with_accuracy``, ``val_accuracy``) evaluated now; with ``with_accuracy``, ``train_accuracy``:
    the fraction of right predictions over the epoch's training batches as they were trained
    (like ``train_loss``, no extra pass over the training set).
    """
    losses = history.train_loss[tally.first :]
    if not losses:
        raise ValueError(
            f"epoch {epoch + 1} got no training batches: pass a list, a DataLoader or a function that "
            "returns a new iterator each time (a generator is used up after one epoch)"
        )
    metrics = {"epoch": epoch + 1, "train_loss": sum(losses) / len(losses)}
    if run.val is not None:
        metrics |= {f"val_{k}": v for k, v in _record_val(run, history, run.with_accuracy).items()}
    if run.with_accuracy:
        metrics["train_accuracy"] = float(tally.correct) / tally.targets
    history.epochs.append(metrics)


def _end_mid_epoch(run: _Run, history: History, stopped_early: bool = False) -> History:
    """End training before the epoch is over: evaluate at the last step (unless just done)."""
    history.stopped_early = stopped_early
    step = history.steps[-1] if history.steps else 0
    if run.val is not None and (not history.val_steps or history.val_steps[-1] != step):
        _record_val(run, history)
    return history


# ------------------------------------------------------------------------ checkpoints
HISTORY_KEYS = ("steps", "train_loss", "val_steps", "val_loss")  # the lists a checkpoint's history holds


def save_checkpoint(
    path,
    model: torch.nn.Module,
    *,
    vocab=None,
    config: dict | None = None,
    hparams: dict | None = None,
    history: History | dict | None = None,
    sample_temperature: float | None = None,
) -> Path:
    """Save ``model`` and what it takes to rebuild and judge it, as one ``torch.save`` of plain data.

    The file holds a dict: ``"state_dict"`` (the weights, on the CPU); ``"vocab"`` (the list of
    tokens, or None); ``"config"`` (``config``, by default ``model.config``); ``"hparams"`` (a dict
    of ints, floats, strings, bools, None, and lists, tuples and dicts of them); ``"history"``
    (from a ``History`` or its dict: lists ``steps``, ``train_loss``, ``val_steps``, ``val_loss``
    and the int ``tokens_seen``); ``"sample_temperature"`` (a float).  Unset ones are None.  It
    loads with ``torch.load(path, weights_only=True)``.  The write is atomic.  Returns the path.
    """
    path = Path(path)
    config = getattr(model, "config", {}) if config is None else config
    payload = {
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "vocab": None if vocab is None else _tokens(vocab),
        "config": _plain(dict(config), "config"),
        "hparams": None if hparams is None else _plain(_as_dict(hparams, "hparams"), "hparams"),
        "history": None if history is None else _plain_history(history),
        "sample_temperature": None if sample_temperature is None else _temperature(sample_temperature),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)  # atomic: a crash mid-save never leaves a half-written checkpoint
    return path


def _tokens(vocab) -> list:
    """The vocabulary as a list of tokens: a CharVocab's ``chars``, a WordVocab's ``words``, or a list."""
    return list(getattr(vocab, "chars", None) or getattr(vocab, "words", vocab))


def _as_dict(value, where: str) -> dict:
    if not isinstance(value, dict):
        raise ValueError(f"{where} must be a dict (e.g. the dict of your hyperparameters), got {type(value).__name__}")
    return value


def _plain(value, where: str):
    """``value`` as plain data, or a ``ValueError`` naming ``where`` it is not (NumPy scalars become numbers)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        items = [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: _plain(v, f"{where}[{k!r}]") for k, v in value.items()}
    raise ValueError(
        f"{where} is a {type(value).__name__}: a checkpoint stores plain data only (int, float, str, bool, "
        "None, and lists, tuples and dicts with string keys of them); convert it, e.g. with float() or list()"
    )


def _plain_history(history) -> dict:
    """A ``History`` (or its dict) as the plain dict a checkpoint stores (see ``save_checkpoint``)."""
    record = history.as_dict() if isinstance(history, History) else history
    if not isinstance(record, dict) or any(k not in record for k in HISTORY_KEYS):
        raise ValueError(
            f"history must be the History fit returned, or a dict with the lists {', '.join(HISTORY_KEYS)}; "
            f"got {type(record).__name__}" + (f" with keys {sorted(record)}" if isinstance(record, dict) else "")
        )
    return {
        "steps": [int(s) for s in record["steps"]],
        "train_loss": [float(v) for v in record["train_loss"]],
        "val_steps": [int(s) for s in record["val_steps"]],
        "val_loss": [float(v) for v in record["val_loss"]],
        "tokens_seen": int(record.get("tokens_seen", 0)),
    }


def _temperature(value) -> float:
    t = float(value)
    if not (math.isfinite(t) and t > 0):
        raise ValueError(
            f"sample_temperature must be a positive number (the temperature of your sample), got {value!r}"
        )
    return t


class CheckpointError(ValueError):
    """The file is not a checkpoint labutils can load (not one at all, not safely, or not of this kind)."""


class CheckpointMismatch(CheckpointError):
    """The checkpoint was trained with another vocabulary or model shape."""


def _read_checkpoint(path) -> dict:
    """The dict a checkpoint holds, loaded with ``weights_only=True`` (a checkpoint cannot run code)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}: check the file name and folder (save_checkpoint writes one)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        reason = str(err).strip().splitlines()[-1][:200]
        raise CheckpointError(
            f"{path} holds more than tensors and plain data, so it cannot be loaded with weights_only=True "
            f"(which stops a file from running code): {reason}"
        ) from None
    except Exception as err:  # torch.load raises KeyError, EOFError, RuntimeError ... on a foreign file
        raise CheckpointError(
            f"{path} is not a PyTorch checkpoint ({type(err).__name__}: {err}): was it written by save_checkpoint, "
            "and completely?"
        ) from None
    if not isinstance(payload, dict) or not isinstance(payload.get("state_dict"), dict):
        raise CheckpointError(
            f"{path} is a PyTorch file but not a labutils checkpoint: expected a dict with a 'state_dict', "
            f"got {type(payload).__name__}; save models with labutils.train.save_checkpoint"
        )
    return payload


def _weights_problems(own: dict, saved: dict) -> list[str]:
    """How the tensors of ``saved`` differ from a model's state dict ``own`` (empty when they fit)."""
    problems = [
        f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in saved.items()
        if k in own and own[k].shape != v.shape
    ]
    problems += [f"{k}: missing from the checkpoint" for k in own if k not in saved]
    problems += [f"{k}: not in this model" for k in saved if k not in own]
    return problems


def load_checkpoint(path, model: torch.nn.Module, *, vocab=None) -> dict:
    """Load weights saved by ``save_checkpoint`` into ``model``; return the payload.

    Uses ``torch.load(weights_only=True)``: a checkpoint cannot run code.  Refuses, with a
    message naming the difference, a checkpoint whose vocabulary differs from ``vocab`` or whose
    tensors do not fit ``model``.
    """
    payload = _read_checkpoint(path)
    if vocab is not None:
        tokens, saved = _tokens(vocab), payload.get("vocab")
        if saved != tokens:
            saved = saved or []
            extra, missing = sorted(set(saved) - set(tokens))[:10], sorted(set(tokens) - set(saved))[:10]
            raise CheckpointMismatch(
                f"{path} was trained with a different vocabulary ({len(saved)} tokens; this model has "
                f"{len(tokens)}). Only in the checkpoint: {extra!r}; only here: {missing!r}. "
                "Build the vocabulary from the same text as when training, or train a new model."
            )
    _load_weights(
        model,
        payload["state_dict"],
        f"{path} does not fit this model (saved config: {payload.get('config')})",
        "Create the model with the configuration the checkpoint was saved with.",
    )
    return payload


def load_charrnn(path) -> tuple[CharRNN, CharVocab, dict]:
    """Rebuild the ``CharRNN`` a checkpoint holds: returns ``(model, vocab, extras)``.

    Loads with ``weights_only=True``.  The model is built from the stored ``config`` with
    PyTorch's own layers (a model trained with ``labutils.layers.FastGRU`` has ``nn.GRU``'s
    parameters), on the CPU, in eval mode; ``vocab`` is a ``CharVocab`` of the stored characters;
    ``extras`` holds the stored ``config``, ``hparams``, ``history`` and ``sample_temperature``
    (None where not saved).  Raises ``FileNotFoundError``, ``CheckpointError`` (not a checkpoint,
    or not a CharRNN's) or ``CheckpointMismatch`` (the config does not fit the weights).
    """
    payload = _read_checkpoint(path)
    model = _charrnn_from_config(payload.get("config"), path)
    vocab = _char_vocab(payload.get("vocab"), model.config["vocab_size"], path)
    _load_weights(
        model,
        payload["state_dict"],
        f"{path}: the stored config {payload['config']} does not fit the stored weights",
        "Was the config passed to save_checkpoint the model's own (model.config)?",
    )
    model.eval()
    extras = {k: payload.get(k) for k in ("config", "hparams", "history", "sample_temperature")}
    return model, vocab, extras


def _load_weights(model: torch.nn.Module, state_dict: dict, what: str, advice: str) -> None:
    """Load ``state_dict`` into ``model``, or raise ``CheckpointMismatch``: ``what`` is wrong, the
    differences (``_weights_problems``), then ``advice``."""
    problems = _weights_problems(model.state_dict(), state_dict)
    if problems:
        raise CheckpointMismatch(f"{what}:\n  " + "\n  ".join(problems[:10]) + f"\n{advice}")
    model.load_state_dict(state_dict)


CHARRNN_CONFIG_KEYS = ("vocab_size", "embed_dim", "hidden_size", "num_layers", "cell", "nonlinearity", "dropout")


def _charrnn_from_config(config, path) -> CharRNN:
    """A standard ``CharRNN(**config)``, or a ``CheckpointError`` saying why the config is not one."""
    if not isinstance(config, dict) or "vocab_size" not in config:
        raise CheckpointError(
            f"{path} holds no CharRNN configuration (config={config!r}): save the model with "
            "save_checkpoint(path, model, vocab=vocab), which stores model.config"
        )
    unknown = sorted(set(config) - set(CHARRNN_CONFIG_KEYS))
    if unknown:
        raise CheckpointError(f"{path}'s config is not a CharRNN's: unknown keys {unknown} in {config}")
    try:
        return CharRNN(**config)
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{path}'s config {config} does not describe a CharRNN: {err}") from None


def _char_vocab(chars, vocab_size: int, path) -> CharVocab:
    """The ``CharVocab`` of the stored characters, checked against the config's ``vocab_size``."""
    if not isinstance(chars, list) or not chars or not all(isinstance(c, str) and len(c) == 1 for c in chars):
        raise CheckpointError(
            f"{path} holds no character vocabulary (vocab={str(chars)[:80]}): pass vocab= to save_checkpoint"
        )
    vocab = CharVocab.from_chars(chars)
    if vocab.chars != chars:
        raise CheckpointError(f"{path}'s vocabulary is not a CharVocab's (distinct characters in sorted order)")
    if len(vocab) != vocab_size:
        raise CheckpointMismatch(
            f"{path}: the vocabulary has {len(vocab)} characters but the config's vocab_size is {vocab_size}"
        )
    return vocab
