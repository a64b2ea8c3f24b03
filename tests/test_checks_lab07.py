"""Lab 07's checks: each diagnosis fails on a seeded wrong answer and passes on a right one.

The "right answers" are tiny models trained here on the canon (a few hundred steps); the checks'
thresholds come in through ``inputs``, so the tests pick values those tiny models can meet.
"""

import math

import numpy as np
import pytest
import torch

from labutils.checks import get_check, lab07
from labutils.models import CharRNN
from labutils.text import CharVocab, stream_batches
from labutils.train import History, fit

pytestmark = pytest.mark.slow

HP = dict(
    train_chars=100_000,
    embed_dim=16,
    hidden_size=48,
    num_layers=1,
    seq_len=32,
    batch_size=32,
    lr=3e-3,  # at 1e-2 the vanilla RNN's samples fill with rare characters (see lab 07's troubleshooting)
    optimizer="adam",
    epochs=1,
)


def _train(cell, vocab, ids, val_ids):
    torch.manual_seed(0)
    model = CharRNN(len(vocab), HP["embed_dim"], HP["hidden_size"], HP["num_layers"], cell, "tanh")
    history = fit(
        model,
        lambda: stream_batches(ids, HP["batch_size"], HP["seq_len"]),
        epochs=2,
        lr=HP["lr"],
        clip=1.0,
        val=lambda: stream_batches(val_ids, 4, 32),
        stateful=True,
        progress=False,
        device="cpu",
    )
    return model, history


@pytest.fixture(scope="module")
def trained(request):
    import os

    if not os.environ.get("LABUTILS_DATA_MIRROR"):
        pytest.skip("needs LABUTILS_DATA_MIRROR (the canon)")
    vocab = lab07.canon_vocab()
    text = lab07.canon()
    ids = vocab.encode(text[: HP["train_chars"]])
    val_ids = vocab.encode(lab07.heldout_text()[:4000])
    rnn, rnn_history = _train("rnn", vocab, ids, val_ids)
    gru, gru_history = _train("gru", vocab, ids, val_ids)
    return dict(
        vocab=vocab,
        rnn=rnn,
        gru=gru,
        rnn_history=rnn_history,
        gru_history=gru_history,
        rnn_hparams=dict(HP, nonlinearity="tanh"),
        gru_hparams=dict(HP),
    )


def _run(check, objects, **inputs):
    """Probe and judge as the grader does, with the given thresholds."""
    outputs = check.run_probe(objects, check.inputs(0))
    check.run_judge({**check.inputs(0), **{k: np.asarray(v) for k, v in inputs.items()}}, outputs)


def test_checks_are_registered_under_their_grade_ids():
    for grade_id in (
        "lab07-rnn-spec",
        "lab07-gru-spec",
        "lab07-losses-fall",
        "lab07-heldout",
        "lab07-samples",
        "lab07-train-model",
    ):
        assert get_check(grade_id).grade_id == grade_id


# --------------------------------------------------------------------------------- spec
def test_spec_passes_on_the_right_models(trained, capsys):
    lab07.check_rnn_spec(trained["rnn"], trained["rnn_hparams"])
    lab07.check_gru_spec(trained["gru"], trained["gru_hparams"])
    assert capsys.readouterr().out.count("all checks passed") == 2


def test_spec_names_a_gru_given_as_the_rnn(trained):
    with pytest.raises(AssertionError, match=r"rnn has cell='gru', expected a vanilla RNN"):
        lab07.check_rnn_spec(trained["gru"], trained["rnn_hparams"])


def test_spec_names_a_vocabulary_built_from_the_training_part_only():
    small = CharVocab(lab07.canon()[:2000]) if _has_mirror() else pytest.skip("no mirror")
    model = CharRNN(len(small), 8, 16, 1, "gru")
    with pytest.raises(AssertionError, match=r"vocab_size=\d+, but the canon has 97 distinct characters"):
        lab07.check_gru_spec(model, dict(HP, embed_dim=8, hidden_size=16))


def test_spec_names_hyperparameters_that_disagree_with_the_model(trained):
    with pytest.raises(
        AssertionError,
        match=r"gru_hparams\['hidden_size'\] is 64 but gru was built with "
        r"hidden_size=48",
    ):
        lab07.check_gru_spec(trained["gru"], dict(HP, hidden_size=64))
    with pytest.raises(AssertionError, match="rnn_hparams lacks optimizer, nonlinearity"):
        lab07.check_rnn_spec(trained["rnn"], {k: v for k, v in HP.items() if k != "optimizer"})
    with pytest.raises(AssertionError, match="should be a dict"):
        lab07.check_gru_spec(trained["gru"], [("lr", 1e-3)])


def test_spec_names_a_model_that_is_not_a_charrnn(trained):
    with pytest.raises(AssertionError, match="is a Linear, not a labutils.models.CharRNN"):
        lab07.check_gru_spec(torch.nn.Linear(3, 3), trained["gru_hparams"])


def test_spec_names_weights_that_do_not_fit_the_configuration(trained):
    model = CharRNN(97, 16, 48, 1, "gru")
    model.config["hidden_size"] = 32  # changed after creation
    with pytest.raises(AssertionError, match=r"do not fit its configuration: rnn.weight_ih_l0 has shape \(144, 16\)"):
        lab07.check_gru_spec(model, dict(HP, hidden_size=32))


def test_spec_names_diverged_weights(trained):
    model = CharRNN(97, 16, 48, 1, "gru")
    with torch.no_grad():
        model.decoder.weight[0, 0] = float("nan")
    with pytest.raises(AssertionError, match="decoder.weight holds NaN or infinity: training diverged"):
        lab07.check_gru_spec(model, trained["gru_hparams"])


# ------------------------------------------------------------------------------- losses
def test_losses_fall_passes_on_real_histories(trained):
    _run(
        lab07.check_losses_fall,
        {"rnn_history": trained["rnn_history"], "gru_history": trained["gru_history"]},
        min_drop=0.5,
    )


def _fake(train, val=(3.0,)):
    return History(
        steps=list(range(1, len(train) + 1)),
        train_loss=list(train),
        val_steps=[len(train)] * len(val),
        val_loss=list(val),
    )


def test_losses_fall_judges_a_long_run_by_its_first_steps(trained):
    """A fast machine's run: the loss falls from ln V within 200 of 5,000 steps, then slowly.

    Its first tenth already averages near the end's loss; the first steps show the real drop."""
    steps = np.arange(5000)
    loss = 1.3 + 3.3 * np.exp(-steps / 40) + 0.2 * np.exp(-steps / 2000)
    assert loss[:500].mean() - loss[-500:].mean() < 0.5  # what the old first-tenth rule compared
    _run(lab07.check_losses_fall, {"rnn_history": trained["rnn_history"], "gru_history": _fake(loss)}, min_drop=1.0)


@pytest.mark.parametrize(
    "gru_history, message",
    [
        (_fake(np.full(50, 3.0)), "barely fell"),
        (_fake(np.linspace(2.0, 4.0, 50)), "rose from 2.0"),
        (_fake([4.0] * 20 + [float("nan")] * 5), "NaN or infinite"),
        (_fake(np.linspace(4.0, 1.0, 50), val=()), "no held-out losses"),
        (_fake([4.0, 3.0, 2.0]), "3 training losses"),
    ],
    ids=["flat", "rising", "nan", "no-val", "too-short"],
)
def test_losses_fall_diagnoses(trained, gru_history, message):
    with pytest.raises(AssertionError, match=message):
        _run(lab07.check_losses_fall, {"rnn_history": trained["rnn_history"], "gru_history": gru_history}, min_drop=0.5)


# ----------------------------------------------------------------------------- held-out
def test_heldout_bits_per_char_matches_an_independent_computation(trained, monkeypatch):
    """Oracle: one long pass with B=1 (no stream cuts) agrees closely.

    Both run on the first 40,000 held-out characters: the oracle steps one character at a time,
    and the whole text would cost a minute of CI for the same comparison."""
    assert len(lab07.heldout_text()) == round(len(lab07.canon()) * 0.05)
    assert lab07.canon().endswith(lab07.heldout_text())
    prefix = lab07.heldout_text()[:40_000]
    monkeypatch.setattr(lab07, "heldout_text", lambda: prefix)
    model = trained["gru"].eval()
    ids = torch.as_tensor(trained["vocab"].encode(prefix))
    total, hidden = 0.0, None
    with torch.no_grad():
        for start in range(0, len(ids) - 1, 4096):
            x, y = ids[start : start + 4096][None], ids[start + 1 : start + 4097][None]
            x = x[:, : y.shape[1]]
            logits, hidden = model(x, hidden)
            total += torch.nn.functional.cross_entropy(logits[0], y[0], reduction="sum").item()
    oracle = total / (len(ids) - 1) / math.log(2)
    assert abs(lab07.heldout_bits_per_char(model) - oracle) < 0.02


def test_heldout_passes_trained_models_and_fails_untrained_ones(trained):
    _run(lab07.check_heldout, {"rnn": trained["rnn"], "gru": trained["gru"]}, max_rnn_bpc=4.0, max_gru_bpc=4.0)
    untrained = CharRNN(97, 16, 48, 1, "gru")
    with pytest.raises(AssertionError, match=r"gru scores 6\.\d+ bits per character on the held-out text, above"):
        _run(lab07.check_heldout, {"rnn": trained["rnn"], "gru": untrained}, max_rnn_bpc=4.0, max_gru_bpc=4.0)


# ------------------------------------------------------------------------------ samples
def _model_sample(model, vocab):
    from labutils.sampling import sample

    # 0.8: at 0.5 a model this small falls into runs of spaces, which the check rightly calls degenerate
    return sample(model, vocab, "Holmes", 300, temperature=0.8, generator=torch.Generator().manual_seed(0))


def test_samples_pass_on_model_samples(trained):
    objs = {
        "best_rnn_sample": _model_sample(trained["rnn"], trained["vocab"]),
        "best_gru_sample": _model_sample(trained["gru"], trained["vocab"]),
    }
    _run(lab07.check_samples, objs, min_words=0.15)  # models this tiny write about 20% real words


@pytest.mark.parametrize(
    "bad, message",
    [
        ("Holmes said", "has 11 characters; generate at least 200"),
        ("".join(np.random.default_rng(0).choice(list("qxzjvkwbfgp  "), 300)), "does not read like text"),
        (None, "copied verbatim from the canon"),
        ("the " * 20 + "a" * 40 + " and" * 40, "degenerate"),
        ("Holmes \u20ac " * 40, "never uses"),
    ],
    ids=["short", "gibberish", "copied", "repeated", "foreign"],
)
def test_samples_diagnoses(trained, bad, message):
    if bad is None:
        bad = lab07.canon()[100_000:100_300]
    good = _model_sample(trained["gru"], trained["vocab"])
    with pytest.raises(AssertionError, match=message):
        _run(lab07.check_samples, {"best_rnn_sample": bad, "best_gru_sample": good}, min_words=0.15)


def _has_mirror():
    import os

    return bool(os.environ.get("LABUTILS_DATA_MIRROR"))


# ------------------------------------------------------------- the saved models (the grader's path)
def _judge_files(check, folder, budget="full"):
    """What the grader does: the file probe on the saved files, then the judge, full thresholds."""
    paths = {name: folder / name for name in check.files if (folder / name).exists()}
    inputs = check.inputs(0, budget=budget)
    check.run_judge(inputs, check.run_file_probe(paths, inputs))


@pytest.fixture(scope="module")
def saved():
    """Two small saved models that pass the full budget's thresholds (trained once, see sherlock_models)."""
    import os

    if not os.environ.get("LABUTILS_DATA_MIRROR"):
        pytest.skip("needs LABUTILS_DATA_MIRROR (the canon)")
    from sherlock_models import trained_models

    return trained_models()


@pytest.mark.parametrize(
    "grade_id", ["lab07-rnn-spec", "lab07-gru-spec", "lab07-losses-fall", "lab07-heldout", "lab07-samples"]
)
def test_saved_models_pass_every_check_with_the_full_thresholds(saved, grade_id):
    _judge_files(get_check(grade_id), saved)


def test_the_file_probe_hands_over_what_the_live_probe_does(saved):
    from labutils.models import CharRNN

    payload = lab07.load_saved({"sherlock_gru.pt": saved / "sherlock_gru.pt"}, "gru")
    model = CharRNN(**payload["config"])
    model.load_state_dict(payload["state_dict"])
    live = lab07.check_gru_spec.run_probe({"gru": model, "gru_hparams": payload["hparams"]}, {})
    from_file = lab07.check_gru_spec.run_file_probe({"sherlock_gru.pt": saved / "sherlock_gru.pt"}, {})
    assert set(live) <= set(from_file) and "m_vocab" in from_file
    assert all(np.array_equal(live[k], from_file[k]) for k in live)


def test_a_missing_saved_model_says_what_to_hand_in(saved, tmp_path):
    from labutils.checks.core import MissingFile

    (tmp_path / "sherlock_rnn.pt").write_bytes((saved / "sherlock_rnn.pt").read_bytes())
    with pytest.raises(MissingFile, match="no saved model: run the save cell and hand in sherlock_gru.pt next to"):
        _judge_files(lab07.check_heldout, tmp_path)


def test_a_saved_file_that_would_run_code_is_refused(tmp_path):
    """torch.load(weights_only=True): a pickle that calls a function is rejected, never run."""
    marker = tmp_path / "pwned"

    class Bomb:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    torch.save({"state_dict": {}, "config": Bomb()}, tmp_path / "sherlock_gru.pt")
    with pytest.raises(Exception, match="(?i)weights_only|unpickl|global"):
        lab07.load_saved({"sherlock_gru.pt": tmp_path / "sherlock_gru.pt"}, "gru")
    assert not marker.exists()


def test_saved_files_over_the_caps_are_refused(saved, tmp_path, monkeypatch):
    monkeypatch.setattr(lab07, "MAX_SAVED_MB", 0)
    with pytest.raises(ValueError, match="larger than 0 MB"):
        lab07.load_saved({"sherlock_gru.pt": saved / "sherlock_gru.pt"}, "gru")
    monkeypatch.setattr(lab07, "MAX_SAVED_MB", 256)
    monkeypatch.setattr(lab07, "MAX_SAVED_PARAMS", 1000)
    with pytest.raises(ValueError, match="over 1,000 numbers"):
        lab07.load_saved({"sherlock_gru.pt": saved / "sherlock_gru.pt"}, "gru")


def test_a_configuration_too_large_to_rebuild_is_refused_before_building(saved):
    from labutils.checks.judges import lab07 as judges

    outputs = lab07.check_gru_spec.run_file_probe({"sherlock_gru.pt": saved / "sherlock_gru.pt"}, {})
    outputs["m_cfg_hidden_size"] = np.asarray(4096)
    outputs["m_cfg_num_layers"] = np.asarray(8)
    with pytest.raises(AssertionError, match=r"parameters, more than the 20,000,000 the grader rebuilds"):
        judges.judge_gru_spec({}, outputs)
    outputs["m_cfg_hidden_size"] = np.asarray(10**9)
    with pytest.raises(AssertionError, match="hidden_size=1000000000: expected a whole number from 1 to 4096"):
        judges.judge_gru_spec({}, outputs)


def _resaved(saved, tmp_path, **changes):
    """A copy of the saved GRU (and RNN) with some of its fields changed."""
    payload = torch.load(saved / "sherlock_gru.pt", weights_only=True) | changes
    torch.save(payload, tmp_path / "sherlock_gru.pt")
    (tmp_path / "sherlock_rnn.pt").write_bytes((saved / "sherlock_rnn.pt").read_bytes())
    return tmp_path


def test_a_model_saved_with_another_vocabulary_is_named(saved, tmp_path):
    folder = _resaved(saved, tmp_path, vocab=sorted(lab07.canon_vocab().chars, reverse=True))
    with pytest.raises(AssertionError, match="saved with a vocabulary other than the canon's"):
        _judge_files(lab07.check_heldout, folder)


def test_a_saved_temperature_out_of_range_is_named(saved, tmp_path):
    folder = _resaved(saved, tmp_path, sample_temperature=0.0)
    with pytest.raises(AssertionError, match="sample_temperature=0.0: save the temperature"):
        _judge_files(lab07.check_samples, folder)


def test_an_untrained_saved_model_fails_the_held_out_and_sample_checks(saved, tmp_path):
    untrained = CharRNN(97, 32, 128, 1, "gru")
    folder = _resaved(saved, tmp_path, state_dict=untrained.state_dict())
    with pytest.raises(
        AssertionError, match=r"gru scores 6\.\d+ bits per character on the held-out text, above the 2.4"
    ):
        _judge_files(lab07.check_heldout, folder)
    with pytest.raises(AssertionError, match="sampled from gru at its sample_temperature does not read like text"):
        _judge_files(lab07.check_samples, folder)


def test_a_gru_saved_as_the_rnn_is_named(saved, tmp_path):
    (tmp_path / "sherlock_rnn.pt").write_bytes((saved / "sherlock_gru.pt").read_bytes())
    with pytest.raises(AssertionError, match="rnn has cell='gru', expected a vanilla RNN"):
        _judge_files(lab07.check_rnn_spec, tmp_path)


# --------------------------------------------------------------- train_model on tiny configurations
def _train_model_source() -> str:
    """The solution's exercise cell: VAL_CURVE_CHARS, EVAL_EVERY and train_model."""
    from pathlib import Path

    from exercises import exercise_cells

    path = Path(__file__).resolve().parent.parent / "solutions" / "07_sherlock_assignment.ipynb"
    return exercise_cells(path)["lab07-train-code"]


@pytest.fixture(scope="module")
def notebook_names():
    """What the notebook has defined when its train_model runs (a short slice of the canon)."""
    if not _has_mirror():
        pytest.skip("needs LABUTILS_DATA_MIRROR (the canon)")
    import labutils as lu
    from labutils.layers import FastGRU
    from labutils.schedules import cosine_lr
    from labutils.train import StreamBatches, make_optimizer

    vocab = lab07.canon_vocab()
    train_text, val_text = lu.train_val_split(lab07.canon(), 0.05)
    return dict(
        lu=lu,
        CharRNN=CharRNN,
        fit=fit,
        StreamBatches=StreamBatches,
        make_optimizer=make_optimizer,
        cosine_lr=cosine_lr,
        vocab=vocab,
        train_ids=vocab.encode(train_text[:20_000]),
        val_ids=vocab.encode(val_text[:20_000]),
        GRU_LAYER=FastGRU,
    )


def _check_train_model(names, source):
    namespace = dict(names)
    exec(compile(source, "<notebook cell>", "exec"), namespace)
    namespace["EVAL_EVERY"] = 300  # the full budget's: a slipped run evaluates less often
    lab07.check_train_model(namespace["train_model"], namespace["GRU_LAYER"])


def test_train_model_check_passes_on_the_solution(notebook_names, capsys):
    _check_train_model(notebook_names, _train_model_source())
    assert "✔ train_model" in capsys.readouterr().out


def _slipped(old: str, new: str) -> str:
    source = _train_model_source()
    assert old in source, f"the solution no longer contains {old!r}: update this mutant"
    return source.replace(old, new)


TRAIN_SLIPS = {
    "nonlinearity-of-the-gru": (
        ('hp.get("nonlinearity", "tanh")', 'hp["nonlinearity"]'),
        r"KeyError: 'nonlinearity'\n.*the GRU's has no 'nonlinearity'.*hp.get\('nonlinearity', 'tanh'\)",
    ),
    "nonlinearity-fixed": (
        ('hp.get("nonlinearity", "tanh")', '"tanh"'),
        r"vanilla RNN with nonlinearity='tanh', but hp\['nonlinearity'\] is 'relu'",
    ),
    "no-val": (
        ('        val=StreamBatches(val_ids[:VAL_CURVE_CHARS], 32, hp["seq_len"]),\n', ""),
        r"train_model\(hp, 'rnn'\)'s history holds no held-out evaluations: pass val=StreamBatches",
    ),
    "optimiser-as-lr": (
        ("optimizer=make_optimizer(", "lr=make_optimizer("),
        r"raised TypeError.*\n.*fit\(\.\.\., optimizer=make_optimizer\(model, .*fit's lr= is a number",
    ),
    "no-vocab-size": (
        ("        len(vocab),\n", ""),
        r"raised ValueError.*\n.*CharRNN's arguments \(len\(vocab\) first",
    ),
    "vocab-of-the-training-ids": (
        ("        len(vocab),\n", "        len(train_ids[: hp['train_chars']]),\n"),
        r"vocab_size=3000, but the canon has 97 characters: pass len\(vocab\)",
    ),
    "no-gru-layer": (
        ('layer=GRU_LAYER if cell == "gru" else None', "layer=None"),
        r"train_model\(hp, 'gru'\) built its GRU with GRU, not with GRU_LAYER \(FastGRU\): pass layer=GRU_LAYER",
    ),
    "no-epochs": (
        ('        epochs=hp["epochs"],\n', ""),
        r"train_model\(hp, 'rnn'\) trained one epoch \(24 steps\), but hp\['epochs'\] is 2: pass epochs=hp\['epochs'\]",
    ),
    "all-the-text": (
        ('train_ids[: hp["train_chars"]]', "train_ids"),
        r"trained 314 steps, where .* give 48: train on StreamBatches\(train_ids\[: hp\['train_chars'\]\]",
    ),
    "no-time-budget": (
        ('        max_seconds=hp["time_budget_s"],\n', ""),
        r"train_model\(hp, 'gru'\) ran all 50 epochs \(1,200 steps, .* s\) although hp\['time_budget_s'\] is 0.3 s",
    ),
    "no-schedule": (
        ('        lr_schedule=lambda p: cosine_lr(p, hp["lr"]),\n', ""),
        r"the learning rate stayed at 0.005 all through training: pass lr_schedule=lambda p: cosine_lr",
    ),
    "schedule-of-another-peak": (
        ('cosine_lr(p, hp["lr"])', "cosine_lr(p, 1e-3)"),
        r"the learning rate peaked at 0.001, but hp\['lr'\] is 0.005",
    ),
    "no-betas": (
        ('hp["lr"], hp["betas"])', 'hp["lr"])'),
        r"trained with betas \(0.9, 0.999\), but hp\['betas'\] is \(0.8, 0.95\)",
    ),
    "adam-always": (
        ('make_optimizer(model, hp["optimizer"]', 'make_optimizer(model, "adam"'),
        r"train_model\(hp, 'rnn'\) trained with Adam, but hp\['optimizer'\] is 'adamw': pass optimizer=make_optimizer",
    ),
    "not-stateful": (
        ("        stateful=True,\n", ""),
        r"raised AttributeError.*\n.*fit\(\.\.\., stateful=True\): a CharRNN returns \(logits, hidden\)",
    ),
    "pair-swapped": (
        ("return model, history", "return history, model"),
        r"train_model\(hp, 'rnn'\) returned a History as its model, not a labutils.models.CharRNN",
    ),
    "model-only": (
        ("return model, history", "return model"),
        r"train_model\(hp, 'rnn'\) should return the pair \(model, history\); it returned a CharRNN",
    ),
    "no-clip": (
        ('        clip=hp["clip"],\n', ""),
        r"train_model\(hp, 'rnn'\) clipped the gradient norm at 5 \(fit's default\), but hp\['clip'\] is 1: pass clip=",
    ),
    "no-state-reset": (
        ('        state_reset=hp["state_reset"],\n', ""),
        r"train_model\(hp, 'gru'\) trained with no state resets, but hp\['state_reset'\] is 0.01: pass state_reset=",
    ),
    "streams-and-steps-swapped": (
        ('hp["batch_size"], hp["seq_len"])', 'hp["seq_len"], hp["batch_size"])'),
        r"trained on batches of shape \(16, 8\) \(streams, steps\), but hp\['batch_size'\] is 8 and hp\['seq_len'\] 16",
    ),
}


@pytest.mark.parametrize("slip", TRAIN_SLIPS, ids=list(TRAIN_SLIPS))
def test_train_model_check_names_each_slip(notebook_names, slip):
    from labutils.checks import StudentCodeError

    (old, new), message = TRAIN_SLIPS[slip]
    with pytest.raises((AssertionError, StudentCodeError), match=message):
        _check_train_model(notebook_names, _slipped(old, new))


def test_train_model_check_says_when_the_stub_is_not_attempted(notebook_names):
    stub = "def train_model(hp, cell):\n    raise NotImplementedError()\n"
    with pytest.raises(NotImplementedError, match="train_model is not attempted yet"):
        _check_train_model(notebook_names, stub)


def test_train_model_check_removes_its_optimiser_hook(notebook_names):
    """The hook that records the optimiser's steps is gone after the check, passed or failed."""
    from torch.optim import optimizer as optimizer_module

    hooks = optimizer_module._global_optimizer_post_hooks
    before = dict(hooks)
    _check_train_model(notebook_names, _train_model_source())
    with pytest.raises(AssertionError):
        _check_train_model(notebook_names, _slipped("return model, history", "return model"))
    assert dict(hooks) == before


def test_the_best_of_the_graders_passages_counts(monkeypatch):
    """One unlucky draw (a run of spaces) does not fail a model whose other passages read well."""
    import random

    from labutils.checks.judges import lab07 as judges

    words, rng = sorted(judges._canon_words()), random.Random(0)
    prose = " ".join(rng.choice(words) for _ in range(150))[:600]
    degenerate = "Holmes said" + " " * 200 + prose[:300]
    draws = []

    def fake_sample(outputs, prefix, name, inputs, draw=0):
        draws.append(draw)
        return degenerate if draw == 0 else prose

    monkeypatch.setattr(judges, "_sample_saved", fake_sample)
    judges._judge_best_of("gru", "g_", {}, {}, 0.6)
    assert draws == [0, 1]
    monkeypatch.setattr(judges, "_sample_saved", lambda *a, **k: degenerate)
    with pytest.raises(AssertionError, match=r"none of the 3 passages sampled from gru passes.*repeated 200 times"):
        judges._judge_best_of("gru", "g_", {}, {}, 0.6)


def test_a_model_trained_on_the_held_out_text_is_named(monkeypatch):
    """Held-out bits far below the bits on training text mean the held-out text was trained on.

    On a short canon (held-out: its last 5,000 characters) a small GRU learns the held-out text
    by heart; one trained on the text before it, as the assignment asks, passes."""
    import os

    if not os.environ.get("LABUTILS_DATA_MIRROR"):
        pytest.skip("needs LABUTILS_DATA_MIRROR (the canon)")
    from labutils.checks.judges import lab07 as judges
    from labutils.models import CharRNN
    from labutils.text import stream_batches
    from labutils.train import fit, make_optimizer

    short = lab07.canon()[:100_000]
    for module in (lab07, judges):
        monkeypatch.setattr(module, "canon", lambda: short)
    monkeypatch.setattr(judges, "TRAIN_TAIL_CHARS", 5_000)
    vocab = lab07.canon_vocab()
    held = lab07.heldout_text()
    assert len(held) == 5_000

    def trained_on(text):
        torch.manual_seed(0)
        model = CharRNN(len(vocab), 16, 128, 1, "gru")
        ids = vocab.encode(text)
        fit(model, lambda: stream_batches(ids, 8, 50), epochs=40, optimizer=make_optimizer(model, "adam", 1e-2),
            clip=1.0, stateful=True, progress=False, device="cpu")  # fmt: skip
        return model

    honest = trained_on(short[: -len(held)][-10_000:])
    judges._check_not_trained_on_heldout(honest, "gru", lab07.heldout_bits_per_char(honest))
    cheat = trained_on(held)
    with pytest.raises(AssertionError, match="it was trained on the held-out text"):
        judges._check_not_trained_on_heldout(cheat, "gru", lab07.heldout_bits_per_char(cheat))
