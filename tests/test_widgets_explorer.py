"""The hyperparameter explorer, driven without a browser: its callbacks and what they produce."""

import time

from labutils.widgets.explorer import Explorer, ExplorerConfig, TrainingRun, render_history_png

# A small, varied text stands in for the canon: the logic is the same and it loads instantly.
TEXT = (
    "To Sherlock Holmes she is always the woman. I have seldom heard him mention her under any other name. "
    'In his eyes she eclipses and predominates the whole of her sex. "It is quite a three pipe problem," '
    'said he, "and I beg that you won\'t speak to me for fifty minutes."\n'
) * 60

TINY = dict(
    cell="gru",
    embed_dim=8,
    hidden_size=16,
    num_layers=1,
    seq_len=16,
    batch_size=4,
    lr=1e-2,
    train_chars=3000,
    epochs=2,
    sample_length=40,
)


def test_config_problems_name_what_to_change():
    assert ExplorerConfig(**TINY).problems() == []
    bad = ExplorerConfig(cell="transformer", hidden_size=0, lr=-1.0, train_chars=50, seq_len=64, batch_size=4)
    text = " ".join(bad.problems())
    assert "cell must be one of rnn, gru, lstm" in text
    assert "hidden size must be a whole number of at least 1" in text
    assert "learning rate must be positive" in text
    assert "too few for 4 streams of 64 steps" in text
    assert "more than the 10 available" in ExplorerConfig(train_chars=100_000).problems(10)[0]


def test_total_steps_counts_stream_batches():
    cfg = ExplorerConfig(**TINY)
    # 3000 characters in 4 streams of 749 inputs, cut into batches of 16 steps: 47 per epoch.
    assert cfg.steps_per_epoch() == 47
    assert cfg.total_steps() == 94


def test_plot_png_is_an_image_that_changes_with_the_history():
    from labutils.train import History

    empty = render_history_png(None)
    assert empty[:8] == b"\x89PNG\r\n\x1a\n"
    h = History(steps=[1, 2, 3], train_loss=[4.0, 3.0, 2.5], val_steps=[3], val_loss=[2.8])
    assert render_history_png(h) != empty


def test_training_run_fills_history_plot_and_sample():
    updates = []
    run = TrainingRun(ExplorerConfig(**TINY), TEXT, on_update=lambda r: updates.append(r.status))
    run.run()
    assert run.status == "finished", run.message
    assert run.history.steps[-1] == ExplorerConfig(**TINY).total_steps()
    assert run.history.train_loss[-1] < run.history.train_loss[0]  # it learned something
    assert run.history.val_loss, "the held-out loss should be measured while training"
    assert run.plot_png[:4] == b"\x89PNG"
    assert run.sample_text.startswith("Holmes") and len(run.sample_text) == len("Holmes") + 40
    assert "finished after 94 of 94 steps" in run.message
    assert updates and updates[-1] == "finished"


def test_invalid_configuration_shows_a_message_and_trains_nothing():
    app = Explorer(TEXT, ExplorerConfig(**TINY))
    app.controls["seq_len"].value = 900  # longer than each of the 4 streams of 3000 characters
    app.train_button.click()
    assert app.thread is None
    assert "Please fix the configuration" in app.status.value
    assert "use more characters or a shorter sequence length" in app.status.value


def test_pressing_train_trains_in_the_background_and_updates_the_widgets():
    app = Explorer(TEXT, ExplorerConfig(**TINY))
    assert {c.description for c in app.controls.values()} >= {
        "cell",
        "hidden size",
        "layers",
        "embedding",
        "sequence length",
        "learning rate",
        "training characters",
        "temperature",
        "nonlinearity (rnn)",
    }
    first_plot = app.plot.value
    app.controls["cell"].value = "rnn"
    app.controls["nonlinearity"].value = "relu"
    app.train_button.click()
    assert app.thread is not None
    run = app.wait(timeout=600)
    assert not app.thread.is_alive()
    assert run.status == "finished", run.message
    assert run.model.config["cell"] == "rnn" and run.model.config["nonlinearity"] == "relu"
    bar = app.progress_box.children[0].children[1]  # tqdm's FloatProgress
    assert bar.value == bar.max == run.history.steps[-1]
    assert app.plot.value != first_plot
    assert "Sample" in app.sample.value and "Holmes" in app.sample.value
    assert not app.train_button.disabled and app.stop_button.disabled
    assert app.model is run.model and app.vocab is run.vocab


def test_stop_ends_training_early():
    cfg = dict(TINY, epochs=100)  # 4,700 steps: far longer than the test waits
    app = Explorer(TEXT, ExplorerConfig(**cfg))
    app.train_button.click()
    deadline = time.monotonic() + 300
    while (app.run.history is None or len(app.run.history.steps) < 3) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert app.stop_button.disabled is False
    app.stop_button.click()
    run = app.wait(timeout=300)
    assert not app.thread.is_alive(), "Stop did not end the training thread"
    assert run.status == "stopped"
    assert run.history.stopped_early
    assert run.history.steps[-1] < ExplorerConfig(**cfg).total_steps()
    assert "stopped after" in app.status.value
    assert run.sample_text, "a stopped model still gets a sample"


def test_lstm_trains_too():
    """cell="lstm" builds and trains an LSTM (its state is a pair), to the end, and samples from it."""
    from torch import nn

    cfg = ExplorerConfig(**dict(TINY, cell="lstm", epochs=1))
    run = TrainingRun(cfg, TEXT).run()
    assert run.status == "finished", run.message
    assert isinstance(run.model.rnn, nn.LSTM) and run.model.config["cell"] == "lstm"
    assert run.history.steps[-1] == cfg.total_steps()
    assert run.history.train_loss[-1] < run.history.train_loss[0]
    assert run.sample_text.startswith("Holmes") and len(run.sample_text) == len("Holmes") + cfg.sample_length
