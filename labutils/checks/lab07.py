"""Self-checks of lab 07, the Sherlock Holmes assignment (a vanilla RNN and a GRU, character level).

In the notebook the checks take live objects: ``rnn``, ``gru`` (``labutils.models.CharRNN``),
``rnn_hparams``, ``gru_hparams`` (dicts of the student's choices), ``rnn_history``,
``gru_history`` (``labutils.train.History``) and ``best_rnn_sample``, ``best_gru_sample``.

``check_train_model`` runs the student's ``train_model`` on two tiny configurations (seconds)
right after the exercise, so that a slip shows before the ten minutes of real training.  It has
no points: the grader judges lab 07 from the saved files, and ``train_model`` leaves none.

The grader takes the models the student saved instead (``SAVED``: ``sherlock_rnn.pt`` and
``sherlock_gru.pt`` next to the notebook, written by ``labutils.train.save_checkpoint``) and
does not run the notebook: each check's ``file_probe`` loads the files, in the grader's
sandbox, with ``torch.load(weights_only=True)`` after a size cap, and hands over the same plain
arrays as its live ``probe`` -- configuration, weights, hyperparameters, history, vocabulary and
the temperature of the sample the student liked best.  The judges (``judges/lab07.py``) rebuild
each model in the grader's process and measure it themselves: the held-out bits per character
on the last 5% of ``cano.txt`` exactly as distributed, and, from saved files, a passage they
sample at the student's temperature.  Nothing a notebook prints is trusted.

Thresholds depend on the budget (``make_inputs`` reads it; the grader names it: full for
saved models): the full budget expects the models of a student's full training run; the CI
budget, the tiny ones the test suite trains.
"""

from __future__ import annotations

import contextlib
import functools
import os
import time

import numpy as np

from ..runtime import budget
from .core import Check, MissingFile, unpack

HELDOUT_FRACTION = 0.05
HELDOUT_STREAMS = 16  # the held-out text is read as 16 contiguous streams ...
HELDOUT_CHUNK = 256  # ... 256 characters at a time, the hidden state carried between chunks
CONFIG_KEYS = ("vocab_size", "embed_dim", "hidden_size", "num_layers", "cell", "nonlinearity")
HPARAM_KEYS = ("train_chars", "embed_dim", "hidden_size", "num_layers", "seq_len", "lr", "optimizer", "epochs")
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop", "adagrad")
SAVED = {"rnn": "sherlock_rnn.pt", "gru": "sherlock_gru.pt"}  # the hand-in beside the notebook
MAX_SAVED_MB = 256  # a saved model larger than this is not loaded
MAX_SAVED_PARAMS = 20_000_000
MAX_HISTORY = 1_000_000  # entries of one loss curve
PRIMES = ("Holmes", "Watson", "The ", "It was ", "I ")  # how the grader's samples start


# ------------------------------------------------------------------------------ the corpus
@functools.lru_cache(maxsize=1)
def canon() -> str:
    """``cano.txt`` as distributed (no text removed or normalised)."""
    from ..data import load_text

    return load_text("sherlock_canon", progress=False)


@functools.lru_cache(maxsize=1)
def canon_vocab():
    from ..text import CharVocab

    return CharVocab(canon())


def heldout_text() -> str:
    """The last 5% of the canon: the held-out text of every model in lab 07."""
    text = canon()
    return text[-int(round(len(text) * HELDOUT_FRACTION)) :]


def heldout_bits_per_char(model, vocab=None) -> float:
    """Bits per character of ``model`` on the held-out text (last 5% of ``cano.txt``).

    The text is cut into ``HELDOUT_STREAMS`` contiguous streams read ``HELDOUT_CHUNK``
    characters at a time with the hidden state carried across chunks (as in training), on
    the CPU, in evaluation mode.  ``vocab`` defaults to the canon's characters.
    """
    return bits_per_char_on(model, heldout_text(), vocab)


def bits_per_char_on(model, text: str, vocab=None) -> float:
    """Bits per character of ``model`` on ``text``, read as ``heldout_bits_per_char`` reads the held-out text."""
    from ..metrics import bits_per_char
    from ..text import stream_batches
    from ..train import evaluate

    vocab = vocab or canon_vocab()
    ids = vocab.encode(text)
    model = model.to("cpu")
    loss = evaluate(model, lambda: stream_batches(ids, HELDOUT_STREAMS, HELDOUT_CHUNK), stateful=True, device="cpu")
    return bits_per_char(loss["loss"])


# ------------------------------------------------------------------------ probe helpers
def _model_arrays(model, prefix: str) -> dict:
    """A CharRNN's configuration values and weights as plain arrays (no objects cross over)."""
    config = getattr(model, "config", None)
    if not isinstance(config, dict):
        return {f"{prefix}missing_config": np.asarray(type(model).__name__)}
    return _config_arrays(config, prefix) | _weight_arrays(model.state_dict(), prefix)


def _config_arrays(config: dict, prefix: str) -> dict:
    return {f"{prefix}cfg_{k}": np.asarray(config.get(k, "")) for k in CONFIG_KEYS}


def _weight_arrays(state_dict, prefix: str) -> dict:
    return {f"{prefix}w_{name}": tensor.detach().cpu().float().numpy() for name, tensor in state_dict.items()}


def _hparam_arrays(hparams, prefix: str) -> dict:
    if not isinstance(hparams, dict):
        return {f"{prefix}hp_not_a_dict": np.asarray(type(hparams).__name__)}
    out = {}
    for key, value in hparams.items():
        if isinstance(value, (bool, int, float, str, np.integer, np.floating)):
            out[f"{prefix}hp_{key}"] = np.asarray(value)
    return out


def _history_arrays(history, prefix: str) -> dict:
    """Loss curves of a ``History`` (live) or of the dict a checkpoint stores."""
    out = {}
    for key in ("steps", "train_loss", "val_steps", "val_loss"):
        values = history.get(key, []) if isinstance(history, dict) else getattr(history, key, [])
        out[f"{prefix}{key}"] = np.asarray(values, dtype=np.float64).reshape(-1)[:MAX_HISTORY]
    return out


# ------------------------------------------------------------------ the saved models (grader)
def load_saved(paths: dict, kind: str) -> dict:
    """The checkpoint a student saved for ``kind`` ("rnn" or "gru"): plain data, size-capped.

    Raises ``MissingFile`` (the item is "not done") when the file was not handed in.
    """
    import torch

    name = SAVED[kind]
    path = paths.get(name)
    if path is None:
        raise MissingFile(f"no saved model: run the save cell and hand in {name} next to the notebook")
    if os.stat(path).st_size > MAX_SAVED_MB * 2**20:
        raise ValueError(f"{name} is larger than {MAX_SAVED_MB} MB")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or not isinstance(payload.get("state_dict"), dict):
        raise ValueError(f"{name} is not a model saved with labutils.train.save_checkpoint (no state_dict)")
    tensors = [t for t in payload["state_dict"].values() if isinstance(t, torch.Tensor)]
    if len(tensors) != len(payload["state_dict"]) or sum(t.numel() for t in tensors) > MAX_SAVED_PARAMS:
        raise ValueError(
            f"{name}'s state_dict holds something other than tensors, or over {MAX_SAVED_PARAMS:,} numbers"
        )
    return payload


def _saved_model_arrays(payload: dict, prefix: str) -> dict:
    """What ``_model_arrays`` gives for a live model, plus the vocabulary, from a checkpoint."""
    config = payload.get("config")
    if not isinstance(config, dict):
        return {f"{prefix}missing_config": np.asarray("checkpoint without a config")}
    vocab = payload.get("vocab")
    chars = [str(c) for c in vocab][:4096] if isinstance(vocab, (list, tuple)) else []
    return (
        _config_arrays(config, prefix)
        | _weight_arrays(payload["state_dict"], prefix)
        | {f"{prefix}vocab": np.asarray(chars, dtype=str)}
    )


def _file_spec_probe(kind: str):
    def probe(paths, inputs):
        payload = load_saved(paths, kind)
        return _saved_model_arrays(payload, "m_") | _hparam_arrays(payload.get("hparams"), "h_")

    return probe


def _file_losses_probe(paths, inputs):
    rnn, gru = load_saved(paths, "rnn"), load_saved(paths, "gru")
    return _history_arrays(rnn.get("history") or {}, "r_") | _history_arrays(gru.get("history") or {}, "g_")


def _file_models_probe(paths, inputs):
    out = {}
    for kind, prefix in (("rnn", "r_"), ("gru", "g_")):
        payload = load_saved(paths, kind)
        out |= _saved_model_arrays(payload, prefix)
        out[f"{prefix}temperature"] = np.asarray(payload.get("sample_temperature", np.nan), dtype=np.float64)
    return out


def _spec_probe(kind: str):
    def probe(objs, inputs):
        return _model_arrays(objs[kind], "m_") | _hparam_arrays(objs[f"{kind}_hparams"], "h_")

    return probe


# ------------------------------------------------------------- train_model on tiny configurations
#: What ``check_train_model`` trains, (prefix, cell, hp): dicts with every key of the notebook's
#: skeleton, tiny sizes, a few thousand characters.  The vanilla RNN's asks for ReLU, AdamW with
#: its own betas and two epochs (its time budget only guards against a run over all the text);
#: the GRU's has no "nonlinearity" (as in the notebook) and so many epochs that only its time
#: budget can end training.
TRAIN_RUNS = (
    (
        "a_",
        "rnn",
        dict(
            train_chars=3_000, embed_dim=8, hidden_size=16, num_layers=1, nonlinearity="relu", seq_len=16,
            batch_size=8, lr=5e-3, optimizer="adamw", betas=(0.8, 0.95), epochs=2, clip=1.0, time_budget_s=20.0,
            state_reset=0.0,
        ),
    ),
    (
        "b_",
        "gru",
        dict(
            train_chars=3_000, embed_dim=12, hidden_size=20, num_layers=2, seq_len=16, batch_size=8, lr=5e-3,
            optimizer="adam", betas=None, epochs=50, clip=1.0, time_budget_s=0.3, state_reset=0.01,
        ),
    ),
)  # fmt: skip


@contextlib.contextmanager
def _optimizer_steps():
    """Record every optimiser step taken inside the block: (class name, id, lr, betas of its first group)."""
    from torch.optim.optimizer import register_optimizer_step_post_hook

    steps = []

    def record(optimizer, args, kwargs):
        group = optimizer.param_groups[0]
        betas = tuple(float(b) for b in group.get("betas", (np.nan, np.nan)))
        steps.append((type(optimizer).__name__, id(optimizer), float(group["lr"]), betas))

    handle = register_optimizer_step_post_hook(record)
    try:
        yield steps
    finally:
        handle.remove()


@contextlib.contextmanager
def _training_calls():
    """Record, inside the block, what training does beyond the optimiser: the max_norm of every
    gradient clipping, the probability of every state reset (``labutils.train.reset_streams``), and
    the shape of every batch a model reads in training mode."""
    import torch
    from torch.nn.modules.module import register_module_forward_pre_hook

    from .. import train

    calls = {"clips": [], "resets": [], "shapes": set()}
    clip, reset = torch.nn.utils.clip_grad_norm_, train.reset_streams

    def clip_and_record(parameters, max_norm, *args, **kwargs):
        calls["clips"].append(float(max_norm))
        return clip(parameters, max_norm, *args, **kwargs)

    def reset_and_record(hidden, p):
        calls["resets"].append(float(p))
        return reset(hidden, p)

    def record_shape(module, args):
        if module.training and type(module).__name__ == "CharRNN" and args and hasattr(args[0], "shape"):
            calls["shapes"].add(tuple(args[0].shape))

    handle = register_module_forward_pre_hook(record_shape)
    torch.nn.utils.clip_grad_norm_, train.reset_streams = clip_and_record, reset_and_record
    try:
        yield calls
    finally:
        torch.nn.utils.clip_grad_norm_, train.reset_streams = clip, reset
        handle.remove()


def _train_run(train_model, cell: str, hp: dict, prefix: str) -> dict:
    """Call the student's ``train_model(hp, cell)`` once; what it built, recorded and stepped, as arrays."""
    with _optimizer_steps() as steps, _training_calls() as calls:
        start = time.perf_counter()
        result = train_model(dict(hp), cell)
        seconds = time.perf_counter() - start
    call = f"train_model(hp, {cell!r})"
    model, history = unpack(result, 2, f"{call} should return the pair (model, history)")
    out = _model_arrays(model, prefix) | _history_arrays(history, prefix)
    out[f"{prefix}layer"] = np.asarray(type(getattr(model, "rnn", None)).__name__)
    out[f"{prefix}history_type"] = np.asarray(type(history).__name__)
    out[f"{prefix}seconds"] = np.asarray(seconds)
    out[f"{prefix}opt_names"] = np.asarray([name for name, *_ in steps], dtype=str)
    out[f"{prefix}opt_count"] = np.asarray(len({ident for _, ident, *_ in steps}))
    out[f"{prefix}opt_lr"] = np.asarray([lr for *_, lr, _ in steps], dtype=np.float64)
    out[f"{prefix}opt_betas"] = np.asarray([betas for *_, betas in steps], dtype=np.float64).reshape(-1, 2)
    out[f"{prefix}clips"] = np.asarray(calls["clips"], dtype=np.float64)
    out[f"{prefix}resets"] = np.asarray(calls["resets"], dtype=np.float64)
    out[f"{prefix}batch_shapes"] = np.asarray(sorted(calls["shapes"]), dtype=np.int64).reshape(-1, 2)
    return out


def _train_probe(objs, inputs):
    out = {"gru_layer": np.asarray(getattr(objs["GRU_LAYER"], "__name__", str(objs["GRU_LAYER"])))}
    for prefix, cell, hp in TRAIN_RUNS:
        out |= _train_run(objs["train_model"], cell, hp, prefix)
    return out


TRAIN_HINTS = {
    "key": "The check passes dicts with exactly the keys of section 3's skeleton, and the GRU's has no "
    "'nonlinearity' (a GRU has no choice of it): read that key with hp.get('nonlinearity', 'tanh'), "
    "which gives 'tanh' for the GRU, and every other choice with hp[key].",
    "index": "An id past the end of the model's vocabulary: CharRNN's first argument is the vocabulary "
    "size, len(vocab) (the canon's 97 characters), then embed_dim, hidden_size, num_layers, cell, "
    "nonlinearity.",
    "type": "A value of the wrong kind went into CharRNN or fit. The optimiser goes in as "
    "fit(..., optimizer=make_optimizer(model, hp['optimizer'], hp['lr'], hp['betas'])): fit's lr= is "
    "a number. CharRNN takes len(vocab), hp['embed_dim'], hp['hidden_size'], hp['num_layers'], cell, "
    "nonlinearity, in this order.",
    "other": "Check CharRNN's arguments (len(vocab) first; a nonlinearity of 'tanh' or 'relu': "
    "hp.get('nonlinearity', 'tanh')), layer=GRU_LAYER for the GRU only (layer=None for the vanilla "
    "RNN), and fit(..., stateful=True): a CharRNN returns (logits, hidden).",
}

JUDGES = "labutils.checks.judges.lab07"

# ------------------------------------------------------------------------------------ checks
check_rnn_spec = Check(
    grade_id="lab07-rnn-spec",
    title="the vanilla RNN's specification",
    needs=("rnn", "rnn_hparams"),
    probe=_spec_probe("rnn"),
    judge=f"{JUDGES}:judge_rnn_spec",
    files=(SAVED["rnn"],),
    file_probe=_file_spec_probe("rnn"),
)
check_gru_spec = Check(
    grade_id="lab07-gru-spec",
    title="the GRU's specification",
    needs=("gru", "gru_hparams"),
    probe=_spec_probe("gru"),
    judge=f"{JUDGES}:judge_gru_spec",
    files=(SAVED["gru"],),
    file_probe=_file_spec_probe("gru"),
)
check_train_model = Check(
    grade_id="lab07-train-model",
    title="train_model on two tiny configurations",
    needs=("train_model", "GRU_LAYER"),
    probe=_train_probe,
    judge=f"{JUDGES}:judge_train_model",
    hints=TRAIN_HINTS,
    success="✔ train_model: the models, the histories, the optimisers and the budgets are right "
    "on two tiny configurations.",
)
check_losses_fall = Check(
    grade_id="lab07-losses-fall",
    title="both training curves fall",
    needs=("rnn_history", "gru_history"),
    make_inputs=lambda rng: {"min_drop": budget(full=1.0, ci=0.5)},
    probe=lambda objs, inp: _history_arrays(objs["rnn_history"], "r_") | _history_arrays(objs["gru_history"], "g_"),
    judge=f"{JUDGES}:judge_losses",
    files=tuple(SAVED.values()),
    file_probe=_file_losses_probe,
)
check_heldout = Check(
    grade_id="lab07-heldout",
    title="held-out bits per character",
    needs=("rnn", "gru"),
    make_inputs=lambda rng: {"max_rnn_bpc": budget(full=2.8, ci=3.6), "max_gru_bpc": budget(full=2.4, ci=3.6)},
    probe=lambda objs, inp: _model_arrays(objs["rnn"], "r_") | _model_arrays(objs["gru"], "g_"),
    judge=f"{JUDGES}:judge_heldout",
    files=tuple(SAVED.values()),
    file_probe=_file_models_probe,
)


def _samples_inputs(rng) -> dict:
    """Words of the canon a sample needs; the seed and prime of the grader's own samples."""
    return {
        "min_words": budget(full=0.6, ci=0.15),
        "seed": int(rng.integers(2**31)),
        "prime": PRIMES[int(rng.integers(len(PRIMES)))],
    }


check_samples = Check(
    grade_id="lab07-samples",
    title="the best samples",
    needs=("best_rnn_sample", "best_gru_sample"),
    make_inputs=_samples_inputs,
    probe=lambda objs, inp: {"rnn": objs["best_rnn_sample"], "gru": objs["best_gru_sample"]},
    judge=f"{JUDGES}:judge_samples",
    files=tuple(SAVED.values()),
    file_probe=_file_models_probe,
)

__all__ = [
    "SAVED",
    "check_gru_spec",
    "check_heldout",
    "check_losses_fall",
    "check_rnn_spec",
    "check_samples",
    "check_train_model",
    "bits_per_char_on",
    "heldout_bits_per_char",
    "heldout_text",
    "load_saved",
]
