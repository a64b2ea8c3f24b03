"""Self-checks of lab 07, the Sherlock Holmes assignment (a vanilla RNN and a GRU, character level).

The notebook names: ``rnn``, ``gru`` (``labutils.models.CharRNN``), ``rnn_hparams``,
``gru_hparams`` (dicts of the student's choices), ``rnn_history``, ``gru_history``
(``labutils.train.History``) and ``best_rnn_sample``, ``best_gru_sample`` (strings).

Every probe only *extracts* raw data from the student's kernel: the model's configuration
values, its ``state_dict`` as arrays, the loss arrays of a history, the sample strings.  The
judges run in the grader's process: they rebuild each model from its configuration with
``CharRNN``, load the weights, and measure what matters themselves -- above all the held-out
loss, computed on the last 5% of ``cano.txt`` exactly as distributed (``heldout_bits_per_char``,
the same text and procedure for every model).  Nothing a notebook prints is trusted.

Thresholds depend on the budget (``make_inputs`` reads it): the full budget expects models a
student trains in minutes; the CI budget, the tiny ones the test suite trains in seconds.
"""

from __future__ import annotations

import functools
import math
import re

import numpy as np

from ..runtime import budget
from .core import Check

HELDOUT_FRACTION = 0.05
HELDOUT_STREAMS = 16  # the held-out text is read as 16 contiguous streams ...
HELDOUT_CHUNK = 256  # ... 256 characters at a time, the hidden state carried between chunks
CONFIG_KEYS = ("vocab_size", "embed_dim", "hidden_size", "num_layers", "cell", "nonlinearity")
HPARAM_KEYS = ("train_chars", "embed_dim", "hidden_size", "num_layers", "seq_len", "lr", "optimizer", "epochs")
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop", "adagrad")
MIN_SAMPLE = 200


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


@functools.lru_cache(maxsize=1)
def _canon_words() -> frozenset:
    """Lower-case words of the canon; of the one-letter ones only "a" and "i" (the book's stray
    initials such as "p" or "k" would let random letters pass for words)."""
    return frozenset(w for w in re.findall(r"[a-z]+", canon().lower()) if len(w) > 1 or w in "ai")


def heldout_bits_per_char(model, vocab=None) -> float:
    """Bits per character of ``model`` on the held-out text (last 5% of ``cano.txt``).

    The text is cut into ``HELDOUT_STREAMS`` contiguous streams read ``HELDOUT_CHUNK``
    characters at a time with the hidden state carried across chunks (as in training), on
    the CPU, in evaluation mode.  ``vocab`` defaults to the canon's characters.
    """
    from ..metrics import bits_per_char
    from ..text import stream_batches
    from ..train import evaluate

    vocab = vocab or canon_vocab()
    ids = vocab.encode(heldout_text())
    model = model.to("cpu")
    loss = evaluate(model, lambda: stream_batches(ids, HELDOUT_STREAMS, HELDOUT_CHUNK), stateful=True, device="cpu")
    return bits_per_char(loss["loss"])


# ------------------------------------------------------------------------ probe helpers
def _model_arrays(model, prefix: str) -> dict:
    """A CharRNN's configuration values and weights as plain arrays (no objects cross over)."""
    config = getattr(model, "config", None)
    if not isinstance(config, dict):
        return {f"{prefix}missing_config": np.asarray(type(model).__name__)}
    out = {f"{prefix}cfg_{k}": np.asarray(config.get(k, "")) for k in CONFIG_KEYS}
    for name, tensor in model.state_dict().items():
        out[f"{prefix}w_{name}"] = tensor.detach().cpu().float().numpy()
    return out


def _hparam_arrays(hparams, prefix: str) -> dict:
    if not isinstance(hparams, dict):
        return {f"{prefix}hp_not_a_dict": np.asarray(type(hparams).__name__)}
    out = {}
    for key, value in hparams.items():
        if isinstance(value, (bool, int, float, str, np.integer, np.floating)):
            out[f"{prefix}hp_{key}"] = np.asarray(value)
    return out


def _rebuild(outputs, prefix: str, name: str):
    """Rebuild the student's model from its configuration and weights; raise with advice."""
    import torch

    from ..models import CharRNN

    if f"{prefix}missing_config" in outputs:
        raise AssertionError(
            f"{name} is a {outputs[f'{prefix}missing_config']}, not a labutils.models.CharRNN: build it with "
            "CharRNN(len(vocab), embed_dim, hidden_size, num_layers, cell, nonlinearity)."
        )
    cfg = {k: outputs[f"{prefix}cfg_{k}"].item() for k in CONFIG_KEYS}
    try:
        model = CharRNN(
            int(cfg["vocab_size"]),
            int(cfg["embed_dim"]),
            int(cfg["hidden_size"]),
            int(cfg["num_layers"]),
            str(cfg["cell"]),
            str(cfg["nonlinearity"]),
        )
    except (ValueError, TypeError) as exc:
        raise AssertionError(f"{name}'s configuration {cfg} does not describe a CharRNN: {exc}") from None
    weights = {k[len(prefix) + 2 :]: v for k, v in outputs.items() if k.startswith(f"{prefix}w_")}
    own = model.state_dict()
    problems = [
        f"{k} has shape {tuple(v.shape)}, expected {tuple(own[k].shape)}"
        for k, v in weights.items()
        if k in own and tuple(own[k].shape) != v.shape
    ]
    problems += [f"{k} is missing" for k in own if k not in weights]
    if problems:
        raise AssertionError(
            f"{name}'s weights do not fit its configuration: "
            + "; ".join(problems[:5])
            + ". Was the model changed after it was created?"
        )
    for key, value in weights.items():
        if not np.all(np.isfinite(value)):
            raise AssertionError(
                f"{name}'s weight {key} holds NaN or infinity: training diverged. "
                "Lower the learning rate or the sequence length and train again."
            )
    model.load_state_dict({k: torch.as_tensor(v) for k, v in weights.items()})
    model.eval()
    return model, cfg


# ----------------------------------------------------------------------------- model spec
def _spec_judge(kind: str):
    name, hp_name = f"{kind}", f"{kind}_hparams"
    expected_cell = "rnn" if kind == "rnn" else "gru"
    label = "a vanilla RNN" if kind == "rnn" else "a GRU"

    def judge(inputs, outputs):
        model, cfg = _rebuild(outputs, "m_", name)
        if cfg["cell"] != expected_cell:
            raise AssertionError(f"{name} has cell={cfg['cell']!r}, expected {label} (cell={expected_cell!r}).")
        n_chars = len(canon_vocab())
        if int(cfg["vocab_size"]) != n_chars:
            raise AssertionError(
                f"{name} has vocab_size={cfg['vocab_size']}, but the canon has {n_chars} distinct characters: "
                "build the vocabulary from the whole text (CharVocab(text)), not from the training part."
            )
        if "h_hp_not_a_dict" in outputs:
            raise AssertionError(f"{hp_name} should be a dict of your choices, got a {outputs['h_hp_not_a_dict']}.")
        hp = {k[len("h_hp_") :]: v.item() for k, v in outputs.items() if k.startswith("h_hp_")}
        needed = HPARAM_KEYS + (("nonlinearity",) if kind == "rnn" else ())
        missing = [k for k in needed if k not in hp]
        if missing:
            raise AssertionError(f"{hp_name} lacks {', '.join(missing)}: record every choice you made.")
        for key in ("embed_dim", "hidden_size", "num_layers") + (("nonlinearity",) if kind == "rnn" else ()):
            if hp[key] != cfg[key]:
                raise AssertionError(
                    f"{hp_name}[{key!r}] is {hp[key]!r} but {name} was built with {key}="
                    f"{cfg[key]!r}: build the model from the hyperparameters."
                )
        for key in ("train_chars", "seq_len", "epochs"):
            if not (isinstance(hp[key], (int, np.integer)) and hp[key] >= 1):
                raise AssertionError(f"{hp_name}[{key!r}] should be a positive whole number, got {hp[key]!r}.")
        if not (isinstance(hp["lr"], (int, float)) and 0 < hp["lr"] < 1):
            raise AssertionError(f"{hp_name}['lr'] should be a learning rate between 0 and 1, got {hp['lr']!r}.")
        if str(hp["optimizer"]).lower() not in OPTIMIZERS:
            raise AssertionError(f"{hp_name}['optimizer'] is {hp['optimizer']!r}; use one of {', '.join(OPTIMIZERS)}.")

    return judge


def _spec_probe(kind: str):
    def probe(objs, inputs):
        return _model_arrays(objs[kind], "m_") | _hparam_arrays(objs[f"{kind}_hparams"], "h_")

    return probe


check_rnn_spec = Check(
    grade_id="lab07-rnn-spec",
    title="the vanilla RNN's specification",
    needs=("rnn", "rnn_hparams"),
    probe=_spec_probe("rnn"),
    judge=_spec_judge("rnn"),
)
check_gru_spec = Check(
    grade_id="lab07-gru-spec",
    title="the GRU's specification",
    needs=("gru", "gru_hparams"),
    probe=_spec_probe("gru"),
    judge=_spec_judge("gru"),
)


# ------------------------------------------------------------------------------ losses fall
def _history_arrays(history, prefix: str) -> dict:
    out = {}
    for key in ("steps", "train_loss", "val_steps", "val_loss"):
        out[f"{prefix}{key}"] = np.asarray(getattr(history, key, []), dtype=np.float64).reshape(-1)
    return out


def _judge_one_history(name: str, outputs, prefix: str, min_drop: float) -> None:
    train = outputs[f"{prefix}train_loss"]
    val = outputs[f"{prefix}val_loss"]
    if train.size < 10:
        raise AssertionError(
            f"{name} has {train.size} training losses; train for at least 10 steps "
            "(pass the History that fit returned)."
        )
    if not np.all(np.isfinite(train)):
        raise AssertionError(
            f"{name}'s training loss became NaN or infinite: lower the learning rate or the "
            "sequence length (see the troubleshooting section)."
        )
    if val.size == 0:
        raise AssertionError(
            f"{name} has no held-out losses: pass val=... to fit so the validation curve "
            "can be plotted next to the training curve."
        )
    if not np.all(np.isfinite(val)):
        raise AssertionError(f"{name}'s held-out loss is NaN or infinite.")
    # The start is the first few steps, never a tenth of them: on a fast machine a long run has
    # already learnt most of what it will in its first tenth, and would look as if it barely fell.
    start, end = max(1, min(train.size // 10, 10)), max(1, train.size // 10)
    first, last = float(np.mean(train[:start])), float(np.mean(train[-end:]))
    if last > first:
        raise AssertionError(
            f"{name}: the training loss rose from {first:.3f} to {last:.3f} nats. The learning "
            "rate is probably too large: lower it by 3x to 10x."
        )
    if first - last < min_drop:
        raise AssertionError(
            f"{name}: the training loss barely fell ({first:.3f} -> {last:.3f} nats, want a "
            f"drop of at least {min_drop}). Raise the learning rate or train for more steps."
        )


def _judge_losses(inputs, outputs):
    drop = float(inputs["min_drop"])
    _judge_one_history("rnn_history", outputs, "r_", drop)
    _judge_one_history("gru_history", outputs, "g_", drop)


check_losses_fall = Check(
    grade_id="lab07-losses-fall",
    title="both training curves fall",
    needs=("rnn_history", "gru_history"),
    make_inputs=lambda rng: {"min_drop": budget(full=1.0, ci=0.5)},
    probe=lambda objs, inp: _history_arrays(objs["rnn_history"], "r_") | _history_arrays(objs["gru_history"], "g_"),
    judge=_judge_losses,
)


# ------------------------------------------------------------------------------- held-out
def _judge_heldout(inputs, outputs):
    for name, prefix, key in (("rnn", "r_", "max_rnn_bpc"), ("gru", "g_", "max_gru_bpc")):
        model, cfg = _rebuild(outputs, prefix, name)
        if int(cfg["vocab_size"]) != len(canon_vocab()):
            raise AssertionError(f"{name} has vocab_size={cfg['vocab_size']}, not the canon's {len(canon_vocab())}.")
        bpc = heldout_bits_per_char(model)
        limit = float(inputs[key])
        if not math.isfinite(bpc) or bpc > limit:
            raise AssertionError(
                f"{name} scores {bpc:.3f} bits per character on the held-out text, above the {limit} required. "
                "Train longer or on more text, tune the learning rate, or use a larger model."
            )


check_heldout = Check(
    grade_id="lab07-heldout",
    title="held-out bits per character",
    needs=("rnn", "gru"),
    make_inputs=lambda rng: {"max_rnn_bpc": budget(full=2.8, ci=3.6), "max_gru_bpc": budget(full=2.4, ci=3.6)},
    probe=lambda objs, inp: _model_arrays(objs["rnn"], "r_") | _model_arrays(objs["gru"], "g_"),
    judge=_judge_heldout,
)


# -------------------------------------------------------------------------------- samples
MAX_RUN = 30  # a run of one character longer than this (and than twice the canon's longest) is degenerate


def _longest_runs(text: str) -> dict[str, int]:
    """The longest run of each character in ``text``: ``{" ": 41, "-": 12, ...}``."""
    runs: dict[str, int] = {}
    for m in re.finditer(r"(.)\1*", text, flags=re.S):
        runs[m.group(1)] = max(runs.get(m.group(1), 0), len(m.group(0)))
    return runs


@functools.lru_cache(maxsize=1)
def _canon_runs() -> dict[str, int]:
    return _longest_runs(canon())


def _judge_one_sample(name: str, text, min_words: float) -> None:
    if text.dtype.kind != "U" or text.ndim != 0:
        raise AssertionError(f"{name} should be one string of generated text, got an array of {text.dtype}.")
    text = str(text)
    if len(text) < MIN_SAMPLE:
        raise AssertionError(f"{name} has {len(text)} characters; generate at least {MIN_SAMPLE}.")
    foreign = sorted(set(text) - set(canon_vocab().chars))
    if foreign:
        raise AssertionError(
            f"{name} contains characters the canon never uses: {foreign[:10]!r}. "
            "Is this really sampled from your model?"
        )
    runs = _longest_runs(text)
    # The canon itself centres its titles with up to 41 spaces: a run is degenerate only when it
    # is much longer than any run of that character in the book.
    too_long = {c: n for c, n in runs.items() if n > max(MAX_RUN, 2 * _canon_runs().get(c, 0))}
    if too_long or len(set(text)) < 10:
        char, n = max(too_long.items(), key=lambda item: item[1]) if too_long else max(runs.items(), key=lambda i: i[1])
        raise AssertionError(
            f"{name} is degenerate ({char!r} repeated {n} times, {len(set(text))} "
            "distinct characters): sample at a higher temperature or train longer."
        )
    words = re.findall(r"[a-z]+", text.lower())
    known = sum(w in _canon_words() for w in words) / max(len(words), 1)
    if len(words) < 10 or known < min_words:
        raise AssertionError(
            f"{name} does not read like text yet: {known:.0%} of its {len(words)} words are words "
            f"of the canon (want {min_words:.0%}). Train longer or sample at a lower temperature."
        )
    body = canon()
    for start in range(0, len(text) - 80, 20):
        if text[start : start + 80] in body:
            raise AssertionError(
                f"{name} contains 80 characters copied verbatim from the canon "
                f"({text[start : start + 40]!r}...): show text your model generated."
            )


def _judge_samples(inputs, outputs):
    _judge_one_sample("best_rnn_sample", outputs["rnn"], float(inputs["min_words"]))
    _judge_one_sample("best_gru_sample", outputs["gru"], float(inputs["min_words"]))


check_samples = Check(
    grade_id="lab07-samples",
    title="the best samples",
    needs=("best_rnn_sample", "best_gru_sample"),
    make_inputs=lambda rng: {"min_words": budget(full=0.6, ci=0.15)},
    probe=lambda objs, inp: {"rnn": objs["best_rnn_sample"], "gru": objs["best_gru_sample"]},
    judge=_judge_samples,
)

__all__ = [
    "check_gru_spec",
    "check_heldout",
    "check_losses_fall",
    "check_rnn_spec",
    "check_samples",
    "heldout_bits_per_char",
    "heldout_text",
]
