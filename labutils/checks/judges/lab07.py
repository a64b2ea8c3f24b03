"""Judges of lab 07 (the Sherlock Holmes assignment): rebuild the student's models, measure them.

The probes (``labutils.checks.lab07``) hand over plain arrays -- a model's configuration and
weights, the hyperparameter dict, the loss history, the vocabulary, the sampling temperature --
taken from live objects in a notebook or from the saved ``sherlock_rnn.pt`` / ``sherlock_gru.pt``.
Here, in the grader's process, each model is rebuilt as a standard ``CharRNN`` (after caps on
its size), its held-out bits per character measured on the last 5% of the canon, and, when
the probe came from the saved files, a passage sampled from it (seeded, at the student's
temperature) and read like the notebook's own samples.
"""

from __future__ import annotations

import functools
import math
import re

import numpy as np

from ..lab07 import (
    CONFIG_KEYS,
    HPARAM_KEYS,
    OPTIMIZERS,
    bits_per_char_on,
    canon,
    canon_vocab,
    heldout_bits_per_char,
    heldout_text,
)

MAX_PARAMS = 20_000_000  # a model larger than this is not rebuilt (the full budget's are ~3 million)
MAX_SIZES = {"vocab_size": 1024, "embed_dim": 4096, "hidden_size": 4096, "num_layers": 8}
GATES = {"rnn": 1, "gru": 3, "lstm": 4}
MIN_SAMPLE = 200
SAMPLE_LENGTH = 600
SAMPLE_DRAWS = 3  # passages the grader samples from each saved model; the best one counts
#: The training text just before the held-out part, measured beside it: an honest model scores
#: the held-out text no better than that, give or take the tenth of a bit by which slices of the
#: canon differ. One that scores it ``LEAK_MARGIN`` bits better has been trained on it (the
#: solution's margins: docs/GRADING.md).
TRAIN_TAIL_CHARS = 65_536
LEAK_MARGIN = 0.25
MAX_RUN = 30  # a run of one character longer than this (and than twice the canon's longest) is degenerate


# ------------------------------------------------------------------------------- rebuilding
def _config(outputs, prefix: str, name: str) -> dict:
    """The model's configuration from the probe's arrays, checked against the size caps."""
    if f"{prefix}missing_config" in outputs:
        raise AssertionError(
            f"{name} is a {outputs[f'{prefix}missing_config']}, not a labutils.models.CharRNN: build it with "
            "CharRNN(len(vocab), embed_dim, hidden_size, num_layers, cell, nonlinearity)."
        )
    cfg = {k: outputs[f"{prefix}cfg_{k}"].item() for k in CONFIG_KEYS}
    for key, cap in MAX_SIZES.items():
        if not isinstance(cfg[key], (int, np.integer)) or not 1 <= cfg[key] <= cap:
            raise AssertionError(
                f"{name}'s configuration has {key}={cfg[key]!r}: expected a whole number from 1 to {cap}."
            )
    cell = str(cfg["cell"])
    if cell not in GATES:
        raise AssertionError(f"{name}'s configuration has cell={cell!r}: expected 'rnn' or 'gru'.")
    V, E, H, L = (int(cfg[k]) for k in ("vocab_size", "embed_dim", "hidden_size", "num_layers"))
    g = GATES[cell]
    params = V * E + sum(g * H * ((E if k == 0 else H) + H + 2) for k in range(L)) + V * (H + 1)
    if params > MAX_PARAMS:
        raise AssertionError(f"{name} has {params:,} parameters, more than the {MAX_PARAMS:,} the grader rebuilds.")
    return cfg


def rebuild(outputs, prefix: str, name: str):
    """Rebuild the student's model from its configuration and weights; raise with advice."""
    import torch

    from ...models import CharRNN

    cfg = _config(outputs, prefix, name)
    try:
        model = CharRNN(*(int(cfg[k]) for k in CONFIG_KEYS[:4]), str(cfg["cell"]), str(cfg["nonlinearity"]))
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
            f"{name}'s weights do not fit its configuration: " + "; ".join(problems[:5])
            + ". Was the model changed after it was created?"
        )  # fmt: skip
    for key, value in weights.items():
        if not np.all(np.isfinite(value)):
            raise AssertionError(
                f"{name}'s weight {key} holds NaN or infinity: training diverged. "
                "Lower the learning rate or the sequence length and train again."
            )
    model.load_state_dict({k: torch.as_tensor(np.asarray(v, dtype=np.float32)) for k, v in weights.items() if k in own})
    model.eval()
    return model, cfg


def check_vocab(outputs, prefix: str, name: str, cfg: dict) -> None:
    """The model's vocabulary (when the probe gives it) and size are the canon's characters."""
    chars = canon_vocab().chars
    if int(cfg["vocab_size"]) != len(chars):
        raise AssertionError(
            f"{name} has vocab_size={cfg['vocab_size']}, but the canon has {len(chars)} distinct characters: "
            "build the vocabulary from the whole text (CharVocab(text)), not from the training part."
        )
    key = f"{prefix}vocab"
    if key in outputs and [str(c) for c in np.asarray(outputs[key]).reshape(-1)] != list(chars):
        raise AssertionError(
            f"{name} was saved with a vocabulary other than the canon's: save it with vocab=CharVocab(text) "
            "built from the whole of cano.txt, so that its character ids mean the same as the grader's."
        )


# ------------------------------------------------------------------------------------- spec
def _hparams(outputs, hp_name: str) -> dict:
    if "h_hp_not_a_dict" in outputs:
        raise AssertionError(f"{hp_name} should be a dict of your choices, got a {outputs['h_hp_not_a_dict']}.")
    return {k[len("h_hp_") :]: v.item() for k, v in outputs.items() if k.startswith("h_hp_")}


def _check_hparams(hp: dict, cfg: dict, kind: str, name: str, hp_name: str) -> None:
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


def _spec_judge(kind: str):
    label = "a vanilla RNN" if kind == "rnn" else "a GRU"

    def judge(inputs, outputs):
        model, cfg = rebuild(outputs, "m_", kind)
        if cfg["cell"] != kind:
            raise AssertionError(f"{kind} has cell={cfg['cell']!r}, expected {label} (cell={kind!r}).")
        check_vocab(outputs, "m_", kind, cfg)
        _check_hparams(_hparams(outputs, f"{kind}_hparams"), cfg, kind, kind, f"{kind}_hparams")

    return judge


judge_rnn_spec = _spec_judge("rnn")
judge_gru_spec = _spec_judge("gru")


# ------------------------------------------------------------------------------ losses fall
def _judge_one_history(name: str, outputs, prefix: str, min_drop: float) -> None:
    train, val = outputs[f"{prefix}train_loss"], outputs[f"{prefix}val_loss"]
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
            f"{name} has no held-out losses: pass val=... to fit so the validation curve can be plotted next to "
            "the training curve."
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


def judge_losses(inputs, outputs):
    drop = float(inputs["min_drop"])
    _judge_one_history("rnn_history", outputs, "r_", drop)
    _judge_one_history("gru_history", outputs, "g_", drop)


# --------------------------------------------------------------------------------- held-out
def judge_heldout(inputs, outputs):
    for name, prefix, key in (("rnn", "r_", "max_rnn_bpc"), ("gru", "g_", "max_gru_bpc")):
        model, cfg = rebuild(outputs, prefix, name)
        check_vocab(outputs, prefix, name, cfg)
        bpc = heldout_bits_per_char(model)
        limit = float(inputs[key])
        if not math.isfinite(bpc) or bpc > limit:
            raise AssertionError(
                f"{name} scores {bpc:.3f} bits per character on the held-out text, above the {limit:g} required. "
                "Train longer or on more text, tune the learning rate, or use a larger model."
            )
        _check_not_trained_on_heldout(model, name, bpc)


def _check_not_trained_on_heldout(model, name: str, heldout_bpc: float) -> None:
    """A model that knows the held-out text better than training text has seen the held-out text."""
    text = canon()
    end = len(text) - len(heldout_text())
    train_bpc = bits_per_char_on(model, text[end - TRAIN_TAIL_CHARS : end])
    if heldout_bpc < train_bpc - LEAK_MARGIN:
        raise AssertionError(
            f"{name} scores {heldout_bpc:.3f} bits per character on the held-out text but {train_bpc:.3f} on the "
            f"{TRAIN_TAIL_CHARS:,} characters of training text just before it: a model does not predict text it "
            "never saw that much better than text it trained on, so it was trained on the held-out text. "
            "Train on train_ids only (the first 95% of the canon) and measure on the rest."
        )


# ---------------------------------------------------------------------------------- samples
@functools.lru_cache(maxsize=1)
def _canon_words() -> frozenset:
    """Lower-case words of the canon; of the one-letter ones only "a" and "i" (the book's stray
    initials such as "p" or "k" would let random letters pass for words)."""
    return frozenset(w for w in re.findall(r"[a-z]+", canon().lower()) if len(w) > 1 or w in "ai")


def _longest_runs(text: str) -> dict[str, int]:
    """The longest run of each character in ``text``: ``{" ": 41, "-": 12, ...}``."""
    runs: dict[str, int] = {}
    for m in re.finditer(r"(.)\1*", text, flags=re.S):
        runs[m.group(1)] = max(runs.get(m.group(1), 0), len(m.group(0)))
    return runs


@functools.lru_cache(maxsize=1)
def _canon_runs() -> dict[str, int]:
    return _longest_runs(canon())


def _check_characters(name: str, text: str) -> None:
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
        char, n = max((too_long or runs).items(), key=lambda item: item[1])
        raise AssertionError(
            f"{name} is degenerate ({char!r} repeated {n} times, {len(set(text))} "
            "distinct characters): sample at a higher temperature or train longer."
        )


def judge_text(name: str, text: str, min_words: float) -> None:
    """A sample reads like the canon: long enough, its characters, real words, not copied."""
    if len(text) < MIN_SAMPLE:
        raise AssertionError(f"{name} has {len(text)} characters; generate at least {MIN_SAMPLE}.")
    _check_characters(name, text)
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


def _sample_saved(outputs, prefix: str, name: str, inputs, draw: int = 0) -> str:
    """Passage ``draw`` sampled here from the saved model, at the temperature the student chose."""
    import torch

    from ...sampling import sample

    model, cfg = rebuild(outputs, prefix, name)
    check_vocab(outputs, prefix, name, cfg)
    temperature = float(np.asarray(outputs[f"{prefix}temperature"]).reshape(-1)[0])
    if not (math.isfinite(temperature) and 0.05 <= temperature <= 3.0):
        raise AssertionError(
            f"{name} was saved with sample_temperature={temperature!r}: save the temperature of the sample you "
            "liked best, a number between 0.05 and 3."
        )
    generator = torch.Generator().manual_seed(int(inputs["seed"]) + draw)
    text = sample(
        model, canon_vocab(), str(inputs["prime"]), SAMPLE_LENGTH, temperature=temperature, generator=generator
    )
    return text[len(str(inputs["prime"])) :]


def judge_samples(inputs, outputs):
    """Judge the notebook's sample strings or, from saved models, passages sampled here."""
    min_words = float(inputs["min_words"])
    for kind, prefix in (("rnn", "r_"), ("gru", "g_")):
        if kind in outputs:  # a notebook's own best sample
            text = outputs[kind]
            if text.dtype.kind != "U" or text.ndim != 0:
                raise AssertionError(
                    f"best_{kind}_sample should be one string of generated text, got an array of {text.dtype}."
                )
            judge_text(f"best_{kind}_sample", str(text), min_words)
        else:
            _judge_best_of(kind, prefix, outputs, inputs, min_words)


def _judge_best_of(kind: str, prefix: str, outputs, inputs, min_words: float) -> None:
    """The best of ``SAMPLE_DRAWS`` passages sampled from a saved model must read like the canon.

    The student, too, kept the passage they liked best: one unlucky draw (at a low temperature a
    good model can fall into a run of spaces) should not cost the item.
    """
    failures = []
    for draw in range(SAMPLE_DRAWS):
        name = f"passage {draw + 1} of {SAMPLE_DRAWS} sampled from {kind} at its sample_temperature"
        try:
            judge_text(name, _sample_saved(outputs, prefix, kind, inputs, draw), min_words)
            return
        except AssertionError as exc:
            failures.append(str(exc))
    raise AssertionError(f"none of the {SAMPLE_DRAWS} passages sampled from {kind} passes; " + " ".join(failures))


# ------------------------------------------------------------------------------ train_model
OPTIMIZER_CLASSES = {"adam": "Adam", "adamw": "AdamW", "sgd": "SGD", "rmsprop": "RMSprop", "adagrad": "Adagrad"}
ADAM_BETAS = (0.9, 0.999)  # PyTorch's default, what betas=None gives
SCHEDULE = "lr_schedule=lambda p: cosine_lr(p, hp['lr'])"


def _judge_built(outputs, prefix: str, cell: str, hp: dict) -> None:
    """The model is a CharRNN built from ``hp``, over the canon's characters, with GRU_LAYER for the GRU."""
    call = f"train_model(hp, {cell!r})"
    if f"{prefix}missing_config" in outputs:
        raise AssertionError(
            f"{call} returned a {outputs[f'{prefix}missing_config']} as its model, not a labutils.models.CharRNN: "
            "build it with CharRNN(len(vocab), hp['embed_dim'], hp['hidden_size'], hp['num_layers'], cell, ...)."
        )
    cfg = {k: outputs[f"{prefix}cfg_{k}"].item() for k in CONFIG_KEYS}
    if cfg["cell"] != cell:
        raise AssertionError(f"{call} built a CharRNN with cell={cfg['cell']!r}: pass the argument cell on to CharRNN.")
    if cfg["vocab_size"] != len(canon_vocab()):
        raise AssertionError(
            f"{call} built a CharRNN with vocab_size={cfg['vocab_size']!r}, but the canon has {len(canon_vocab())} "
            "characters: pass len(vocab) as CharRNN's first argument."
        )
    for key in ("embed_dim", "hidden_size", "num_layers"):
        if cfg[key] != hp[key]:
            raise AssertionError(
                f"{call} built a CharRNN with {key}={cfg[key]!r}, but the check's hp[{key!r}] is {hp[key]!r}: "
                "build the model from the dict hp it is given (not from rnn_hparams or gru_hparams, nor from "
                "fixed numbers)."
            )
    if cell == "rnn" and cfg["nonlinearity"] != hp["nonlinearity"]:
        raise AssertionError(
            f"{call} built a vanilla RNN with nonlinearity={cfg['nonlinearity']!r}, but hp['nonlinearity'] is "
            f"{hp['nonlinearity']!r}: pass hp.get('nonlinearity', 'tanh') to CharRNN (the GRU's dict has no such "
            "key, and gets 'tanh')."
        )
    layer, wanted = str(outputs[f"{prefix}layer"]), str(outputs["gru_layer"])
    if cell == "gru" and layer != wanted:
        raise AssertionError(
            f"{call} built its GRU with {layer}, not with GRU_LAYER ({wanted}): pass layer=GRU_LAYER to CharRNN "
            "for the GRU (and layer=None for the vanilla RNN)."
        )


def _planned_steps(hp: dict) -> int:
    from ...text import n_stream_batches

    return hp["epochs"] * n_stream_batches(hp["train_chars"], hp["batch_size"], hp["seq_len"])


def _judge_history(outputs, prefix: str, cell: str, hp: dict, by_epochs: bool) -> None:
    """A History of finite training losses with held-out evaluations; ``by_epochs``: all the epochs."""
    call = f"train_model(hp, {cell!r})"
    train, val = outputs[f"{prefix}train_loss"], outputs[f"{prefix}val_loss"]
    if train.size == 0:
        raise AssertionError(
            f"{call} returned a {outputs[f'{prefix}history_type']} with no training losses as its history: return "
            "the History that fit returns."
        )
    if not np.all(np.isfinite(train)):
        raise AssertionError(f"{call}: the training loss became NaN or infinite on a tiny model. Is clip passed?")
    if val.size == 0:
        raise AssertionError(
            f"{call}'s history holds no held-out evaluations: pass val=StreamBatches(val_ids[:VAL_CURVE_CHARS], 32, "
            "hp['seq_len']) and eval_every=EVAL_EVERY to fit."
        )
    if not np.all(np.isfinite(val)):
        raise AssertionError(f"{call}: the held-out loss is NaN or infinite.")
    if by_epochs:
        planned, per_epoch = _planned_steps(hp), _planned_steps(hp | {"epochs": 1})
        if train.size == per_epoch:
            raise AssertionError(
                f"{call} trained one epoch ({per_epoch} steps), but hp['epochs'] is {hp['epochs']}: pass "
                "epochs=hp['epochs'] to fit."
            )
        if train.size != planned:
            raise AssertionError(
                f"{call} trained {train.size:,} steps, where hp['epochs'] = {hp['epochs']} passes over the first "
                f"hp['train_chars'] = {hp['train_chars']:,} characters give {planned}: train on "
                "StreamBatches(train_ids[: hp['train_chars']], hp['batch_size'], hp['seq_len'])."
            )


def _judge_optimiser(outputs, prefix: str, cell: str, hp: dict, by_epochs: bool) -> None:
    """The optimiser of hp (class and betas); ``by_epochs``: the cosine schedule from hp['lr'] down to ~0.

    (Where the clock ends training, the last step's progress depends on how long the steps took.)
    """
    call = f"train_model(hp, {cell!r})"
    names, lrs, betas = outputs[f"{prefix}opt_names"], outputs[f"{prefix}opt_lr"], outputs[f"{prefix}opt_betas"]
    wanted = OPTIMIZER_CLASSES[hp["optimizer"]]
    make = "optimizer=make_optimizer(model, hp['optimizer'], hp['lr'], hp['betas'])"
    if names.size == 0 or set(names.tolist()) != {wanted}:
        got = ", ".join(sorted(set(names.tolist()))) or "no optimiser at all"
        raise AssertionError(
            f"{call} trained with {got}, but hp['optimizer'] is {hp['optimizer']!r}: pass {make} to fit "
            "(fit's lr= is only a number, for when no optimiser is given)."
        )
    want_betas = hp["betas"] or ADAM_BETAS
    if wanted in ("Adam", "AdamW") and not np.allclose(betas, want_betas):
        raise AssertionError(
            f"{call} trained with betas {tuple(float(b) for b in betas[-1])}, but hp['betas'] is {hp['betas']!r}: "
            f"pass {make} to fit."
        )
    if not by_epochs:
        return
    peak, last = float(lrs.max()), float(lrs[-1])
    if np.ptp(lrs) <= 1e-9 * peak:
        default = " (fit's default: hp['lr'] was not used)" if peak == 1e-3 != hp["lr"] else ""
        raise AssertionError(
            f"{call}: the learning rate stayed at {peak:.3g}{default} all through training: pass {SCHEDULE} to "
            "fit, so that it decays to zero."
        )
    if not abs(peak - hp["lr"]) <= 0.02 * hp["lr"]:
        raise AssertionError(
            f"{call}: the learning rate peaked at {peak:.3g}, but hp['lr'] is {hp['lr']:g}: the schedule's peak is "
            f"hp['lr'], {SCHEDULE}."
        )
    if last > 0.02 * peak:
        raise AssertionError(
            f"{call}: the learning rate ended at {last:.3g}, {last / peak:.0%} of its peak, where the cosine schedule "
            f"ends near zero: pass {SCHEDULE} to fit."
        )


def _judge_fit_options(outputs, prefix: str, cell: str, hp: dict) -> None:
    """The batches are hp's (batch_size, seq_len), the clipping hp['clip'], the state resets hp['state_reset']."""
    call = f"train_model(hp, {cell!r})"
    shapes = [tuple(int(n) for n in s) for s in outputs[f"{prefix}batch_shapes"]]
    if shapes and ({b for b, _ in shapes} != {hp["batch_size"]} or max(t for _, t in shapes) != hp["seq_len"]):
        longest = max(shapes, key=lambda s: s[1])
        raise AssertionError(
            f"{call} trained on batches of shape {longest} (streams, steps), but hp['batch_size'] is "
            f"{hp['batch_size']} and hp['seq_len'] {hp['seq_len']}: StreamBatches(train_ids[: hp['train_chars']], "
            "hp['batch_size'], hp['seq_len']), in that order."
        )
    clips = sorted(set(outputs[f"{prefix}clips"].tolist()))
    if hp["clip"] is not None and clips != [hp["clip"]]:
        got = f"at {', '.join(f'{c:g}' for c in clips)}" if clips else "never"
        default = " (fit's default)" if clips == [5.0] else ""
        raise AssertionError(
            f"{call} clipped the gradient norm {got}{default}, but hp['clip'] is {hp['clip']:g}: pass clip=hp['clip'] "
            "to fit."
        )
    resets = sorted(set(outputs[f"{prefix}resets"].tolist()))
    steps = outputs[f"{prefix}train_loss"].size
    if (resets and resets != [hp["state_reset"]]) or (hp["state_reset"] and steps > 2 and not resets):
        got = f"state_reset={resets[0]:g}" if resets else "no state resets"
        raise AssertionError(
            f"{call} trained with {got}, but hp['state_reset'] is {hp['state_reset']:g}: pass "
            "state_reset=hp['state_reset'] to fit."
        )


def _judge_clock(outputs, prefix: str, cell: str, hp: dict) -> None:
    """The time budget, not the many epochs, ended training (unless the machine did them all in time)."""
    steps, seconds = outputs[f"{prefix}train_loss"].size, float(outputs[f"{prefix}seconds"])
    planned, budget_s = _planned_steps(hp), hp["time_budget_s"]
    if steps >= planned and seconds > budget_s + 0.7:
        raise AssertionError(
            f"train_model(hp, {cell!r}) ran all {hp['epochs']} epochs ({planned:,} steps, {seconds:.1f} s) although "
            f"hp['time_budget_s'] is {budget_s} s: pass max_seconds=hp['time_budget_s'] to fit."
        )


def judge_train_model(inputs, outputs):
    """The student's train_model on lab07.TRAIN_RUNS: what it built, how it trained, what it returned.

    The first run's epochs end its training (steps and schedule are exact); the second's clock does.
    """
    from ..lab07 import TRAIN_RUNS

    for prefix, cell, hp in TRAIN_RUNS:
        _judge_built(outputs, prefix, cell, hp)
    for k, (prefix, cell, hp) in enumerate(TRAIN_RUNS):
        _judge_history(outputs, prefix, cell, hp, by_epochs=k == 0)
        _judge_optimiser(outputs, prefix, cell, hp, by_epochs=k == 0)
        _judge_fit_options(outputs, prefix, cell, hp)
        if k > 0:
            _judge_clock(outputs, prefix, cell, hp)
