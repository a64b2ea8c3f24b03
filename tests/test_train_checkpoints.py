"""Checkpoints: save_checkpoint's plain-data dict (contract 2), load_checkpoint into a given model,
load_charrnn rebuilding the standard CharRNN, all with weights_only=True, and their refusals."""

import numpy as np
import pytest
import torch
from char_models import TEXT, small_model, text_data
from torch import nn

from labutils.layers import FastGRU
from labutils.models import CharRNN
from labutils.text import CharVocab
from labutils.train import (
    CheckpointError,
    CheckpointMismatch,
    History,
    StreamBatches,
    fit,
    load_charrnn,
    load_checkpoint,
    save_checkpoint,
)


@pytest.fixture
def data():
    return text_data()


def test_checkpoint_round_trip(tmp_path, data):
    vocab, ids = data
    model = small_model(len(vocab))
    fit(model, StreamBatches(ids, 4, 20), epochs=1, stateful=True, progress=False, device="cpu")
    path = save_checkpoint(tmp_path / "m.pt", model, vocab=vocab, config=model.config)
    fresh = CharRNN(**model.config)
    payload = load_checkpoint(path, fresh, vocab=vocab)
    assert payload["config"] == model.config and payload["vocab"] == vocab.chars
    x = torch.as_tensor(ids[:30]).view(1, -1)
    torch.testing.assert_close(fresh(x)[0], model(x)[0])
    assert not list(tmp_path.glob("*.tmp"))


def test_checkpoint_refuses_other_vocab_and_shapes(tmp_path, data):
    vocab, _ = data
    model = small_model(len(vocab))
    path = save_checkpoint(tmp_path / "m.pt", model, vocab=vocab, config=model.config)
    other = CharVocab(TEXT + "Z")
    with pytest.raises(CheckpointMismatch, match=r"different vocabulary.*'Z'"):
        load_checkpoint(path, small_model(len(other)), vocab=other)
    bigger = CharRNN(len(vocab), embed_dim=8, hidden_size=32, num_layers=1, cell="gru")
    with pytest.raises(CheckpointMismatch, match=r"weight_hh_l0: checkpoint \(48, 16\) vs model \(96, 32\)"):
        load_checkpoint(path, bigger, vocab=vocab)
    deeper = CharRNN(len(vocab), embed_dim=8, hidden_size=16, num_layers=2, cell="gru")
    with pytest.raises(CheckpointMismatch, match="missing from the checkpoint"):
        load_checkpoint(path, deeper)


def test_checkpoint_loads_with_weights_only(tmp_path, data):
    vocab, _ = data
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": {}, "vocab": None, "config": {}, "code": np.random.default_rng(0)}, path)
    with pytest.raises(Exception, match="(?i)weights.only|unsupported|global"):
        load_checkpoint(path, small_model(len(vocab)))


HPARAMS = dict(
    train_chars=np.int64(200_000),  # NumPy scalars become plain numbers
    embed_dim=16,
    lr=3e-3,
    optimizer="adam",
    betas=(0.9, 0.99),
    nonlinearity=None,
    time_budget_s=None,
    fused=True,
    layers=[1, 2],
)


@pytest.fixture
def trained(data):
    """A 2-layer GRU CharRNN trained a few steps with FastGRU, and its history."""
    vocab, ids = data
    torch.manual_seed(0)
    model = CharRNN(len(vocab), embed_dim=8, hidden_size=16, num_layers=2, cell="gru", layer=FastGRU)
    val = StreamBatches(ids[:200], 2, 20)
    history = fit(model, StreamBatches(ids, 4, 20), epochs=1, max_steps=5, val=val, stateful=True, progress=False)
    return vocab, model, history


def test_saved_file_is_plain_data_that_loads_with_weights_only(tmp_path, trained):
    vocab, model, history = trained
    path = save_checkpoint(
        tmp_path / "gru.pt", model, vocab=vocab, hparams=HPARAMS, history=history, sample_temperature=0.8
    )
    payload = torch.load(path, weights_only=True)
    assert list(payload) == ["state_dict", "vocab", "config", "hparams", "history", "sample_temperature"]
    assert payload["vocab"] == vocab.chars and payload["config"] == model.config
    assert sorted(payload["state_dict"]) == sorted(CharRNN(**model.config).state_dict())  # embed.*, rnn.*, decoder.*
    assert payload["hparams"] == {**HPARAMS, "train_chars": 200_000}
    assert type(payload["hparams"]["train_chars"]) is int and payload["hparams"]["betas"] == (0.9, 0.99)
    assert payload["history"] == {
        "steps": history.steps,
        "train_loss": history.train_loss,
        "val_steps": history.val_steps,
        "val_loss": history.val_loss,
        "tokens_seen": history.tokens_seen,
    }
    assert payload["sample_temperature"] == 0.8 and type(payload["sample_temperature"]) is float


def test_load_charrnn_rebuilds_the_standard_model_with_the_same_outputs(tmp_path, trained):
    vocab, model, history = trained
    path = save_checkpoint(
        tmp_path / "gru.pt", model, vocab=vocab, hparams=HPARAMS, history=history, sample_temperature=0.5
    )
    loaded, loaded_vocab, extras = load_charrnn(path)
    assert isinstance(loaded, CharRNN) and isinstance(loaded.rnn, nn.GRU) and not loaded.training
    assert loaded_vocab == vocab and loaded.config == model.config
    assert extras["hparams"]["betas"] == (0.9, 0.99) and extras["sample_temperature"] == 0.5
    assert History(**extras["history"]).steps == history.steps and extras["config"] == model.config
    x = torch.as_tensor(vocab.encode("the lazy fox")).view(1, -1)
    model.eval()
    torch.testing.assert_close(loaded(x)[0], model(x)[0], atol=1e-6, rtol=1e-5)


def test_a_history_may_be_given_as_a_dict_and_unset_extras_are_none(tmp_path, trained):
    vocab, model, history = trained
    path = save_checkpoint(tmp_path / "m.pt", model, vocab=vocab, history=history.as_dict())
    _, _, extras = load_charrnn(path)
    assert extras["history"]["train_loss"] == history.train_loss
    assert extras["hparams"] is None and extras["sample_temperature"] is None


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(hparams={"lr": torch.tensor(0.1)}), r"hparams\['lr'\] is a Tensor: a checkpoint stores plain data"),
        (dict(hparams={"sizes": [1, object()]}), r"hparams\['sizes'\]\[1\] is a object"),
        (dict(hparams={"schedule": lambda p: p}), r"hparams\['schedule'\] is a function"),
        (dict(hparams=[("lr", 0.1)]), "hparams must be a dict"),
        (dict(history={"steps": [1]}), "history must be the History fit returned, or a dict with the lists"),
        (dict(sample_temperature=0), "sample_temperature must be a positive number"),
        (dict(sample_temperature=float("nan")), "sample_temperature must be a positive number"),
    ],
)
def test_save_refuses_what_is_not_plain_data(tmp_path, data, options, message):
    vocab, _ = data
    with pytest.raises(ValueError, match=message):
        save_checkpoint(tmp_path / "m.pt", small_model(len(vocab)), vocab=vocab, **options)
    assert not (tmp_path / "m.pt").exists()


def test_load_refuses_a_missing_file_and_files_that_are_not_checkpoints(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint at .*nowhere.pt"):
        load_charrnn(tmp_path / "nowhere.pt")
    text = tmp_path / "notes.pt"
    text.write_text("these are my notes, not a model")
    with pytest.raises(CheckpointError, match="is not a PyTorch checkpoint"):
        load_charrnn(text)
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match="not a labutils checkpoint: expected a dict with a 'state_dict'"):
        load_charrnn(tmp_path / "list.pt")
    torch.save({"state_dict": {}, "config": {}, "code": np.random.default_rng(0)}, tmp_path / "unsafe.pt")
    with pytest.raises(CheckpointError, match="cannot be loaded with weights_only=True"):
        load_charrnn(tmp_path / "unsafe.pt")


def edited(path, **changes):
    """Rewrite a checkpoint with some of its entries changed (what a hand-edited file would be)."""
    payload = torch.load(path, weights_only=True)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(payload.get(key), dict):
            payload[key] = {**payload[key], **value}
        else:
            payload[key] = value
    torch.save(payload, path)
    return path


def test_load_charrnn_refuses_a_config_that_does_not_fit_the_weights(tmp_path, data):
    vocab, _ = data
    path = save_checkpoint(tmp_path / "m.pt", small_model(len(vocab)), vocab=vocab)
    with pytest.raises(
        CheckpointMismatch, match=r"(?s)does not fit the stored weights.*weight_hh_l0: checkpoint \(48, 16\)"
    ):
        load_charrnn(edited(path, config={"hidden_size": 32}))
    path = save_checkpoint(tmp_path / "m.pt", small_model(len(vocab)), vocab=vocab)
    with pytest.raises(CheckpointMismatch, match="missing from the checkpoint"):
        load_charrnn(edited(path, config={"num_layers": 2}))
    path = save_checkpoint(tmp_path / "m.pt", small_model(len(vocab)), vocab=vocab)
    with pytest.raises(CheckpointMismatch, match=r"vocabulary has 29 characters but the config's vocab_size is 28"):
        load_charrnn(edited(path, vocab=sorted(vocab.chars + ["Z"])))


def test_load_charrnn_refuses_what_is_not_a_charrnn(tmp_path, data):
    vocab, _ = data
    path = save_checkpoint(tmp_path / "m.pt", small_model(len(vocab)), vocab=vocab)
    with pytest.raises(CheckpointError, match="unknown keys \\['n_classes'\\]"):
        load_charrnn(edited(path, config={"n_classes": 4}))
    path = save_checkpoint(tmp_path / "m.pt", small_model(len(vocab)), vocab=vocab)
    with pytest.raises(CheckpointError, match="does not describe a CharRNN: cell must be one of"):
        load_charrnn(edited(path, config={"cell": "transformer"}))
    path = save_checkpoint(tmp_path / "m.pt", small_model(len(vocab)), vocab=vocab, config={})
    with pytest.raises(CheckpointError, match="holds no CharRNN configuration"):
        load_charrnn(path)
    path = save_checkpoint(tmp_path / "m.pt", small_model(len(vocab)))
    with pytest.raises(CheckpointError, match="holds no character vocabulary"):
        load_charrnn(path)
    path = save_checkpoint(tmp_path / "m.pt", small_model(len(vocab)), vocab=list(reversed(vocab.chars)))
    with pytest.raises(CheckpointError, match="not a CharVocab's"):
        load_charrnn(path)
