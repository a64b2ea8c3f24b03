"""The stream trainer: NaN stop, hidden state carried, history, callbacks (checkpoints: test_train_checkpoints.py)."""

import math

import numpy as np
import pytest
import torch
from char_models import small_model, text_data
from torch import nn

from labutils.text import n_stream_batches, stream_batches
from labutils.train import (
    NAN_ADVICE,
    History,
    StopTraining,
    StreamBatches,
    TrainingDiverged,
    evaluate,
    fit,
    make_optimizer,
)


@pytest.fixture
def data():
    return text_data()


def test_nan_stop_raises_with_advice(data):
    vocab, ids = data
    model = small_model(len(vocab), cell="rnn", nonlinearity="relu")
    with pytest.raises(TrainingDiverged) as err:
        fit(
            model,
            StreamBatches(ids, 4, 20),
            epochs=50,
            lr=1e6,
            clip=None,
            optimizer="sgd",
            stateful=True,
            progress=False,
            device="cpu",
        )
    message = str(err.value)
    assert "lower the learning rate" in message and NAN_ADVICE in message
    assert "at step" in message


class Recorder(nn.Module):
    """A stateful model that records the hidden state it receives and returns its own counter."""

    def __init__(self, V):
        super().__init__()
        self.linear = nn.Linear(1, V)
        self.received = []

    def forward(self, x, hidden=None):
        self.received.append(None if hidden is None else hidden.clone())
        count = torch.zeros(x.shape[0]) if hidden is None else hidden
        logits = self.linear(x.unsqueeze(-1).float())
        return logits, (count + x[:, -1].float()).detach()  # hidden = running sum of last inputs


def test_hidden_state_is_carried_across_batches_and_reset_each_epoch(data):
    vocab, ids = data
    model = Recorder(len(vocab))
    B, T = 3, 10
    fit(model, StreamBatches(ids, B, T), epochs=2, stateful=True, progress=False, device="cpu")
    n = n_stream_batches(len(ids), B, T)
    assert len(model.received) == 2 * n
    assert model.received[0] is None and model.received[n] is None  # each epoch starts fresh
    expected = torch.zeros(B)
    for k, (x, _) in enumerate(stream_batches(ids, B, T)):
        if k > 0:
            torch.testing.assert_close(model.received[k], expected)
        expected = expected + torch.as_tensor(x[:, -1]).float()


class BatchCounter(nn.Module):
    """A stateful model whose hidden state (L=1, B, 2) counts the batches since it was last zero.

    With ``pair=True`` it carries an LSTM-like pair ``(h, c)`` of such counters.
    """

    def __init__(self, V, pair=False):
        super().__init__()
        self.linear, self.pair = nn.Linear(1, V), pair
        self.received = []

    def forward(self, x, hidden=None):
        B = x.shape[0]
        if hidden is None:
            hidden = (torch.zeros(1, B, 2), torch.zeros(1, B, 2)) if self.pair else torch.zeros(1, B, 2)
        self.received.append(hidden)
        logits = self.linear(x.unsqueeze(-1).float())
        if self.pair:
            return logits, (hidden[0] + 1, hidden[1] + 1)
        return logits, hidden + 1


def test_state_reset_zeroes_each_stream_with_the_given_probability(data):
    vocab, ids = data
    B, T, p = 16, 2, 0.25
    ids = np.tile(ids, 20)  # 562 batches of 16 streams: about 9,000 draws
    model = BatchCounter(len(vocab))
    torch.manual_seed(0)
    fit(model, StreamBatches(ids, B, T), epochs=1, stateful=True, state_reset=p, progress=False, device="cpu")
    carried = model.received[1:]  # the first batch of an epoch starts from zero anyway
    assert max(int(h.max()) for h in carried) > 5, "the counter never advanced: was the state carried at all?"
    zeroed = torch.cat([h[0, :, 0] == 0 for h in carried]).float()
    # binomial: one standard deviation is about 0.005, so 0.02 is four of them
    assert abs(zeroed.mean().item() - p) < 0.02, f"{zeroed.mean():.3f} of the states were reset, want {p}"
    for h in model.received:
        assert torch.equal(h[..., 0], h[..., 1]), "a stream was reset in one unit but not the other"


def test_state_reset_zero_keeps_every_stream_and_pairs_reset_together(data):
    vocab, ids = data
    model = BatchCounter(len(vocab))
    fit(model, StreamBatches(ids, 4, 10), epochs=1, stateful=True, state_reset=0.0, progress=False, device="cpu")
    for k, h in enumerate(model.received):
        assert torch.equal(h, torch.full_like(h, float(k))), "state_reset=0 must carry every stream"
    lstm_like = BatchCounter(len(vocab), pair=True)
    torch.manual_seed(0)
    fit(lstm_like, StreamBatches(ids, 8, 2), epochs=1, stateful=True, state_reset=0.5, progress=False, device="cpu")
    assert any(bool((h == 0).any()) for h, _ in lstm_like.received[1:]), "no stream was ever reset"
    for h, c in lstm_like.received:
        assert torch.equal(h == 0, c == 0), "an LSTM's h and c must be reset together"


@pytest.mark.parametrize("p", [-0.1, 1.0, 2])
def test_state_reset_outside_0_1_is_refused(data, p):
    vocab, ids = data
    with pytest.raises(ValueError, match="state_reset"):
        fit(BatchCounter(len(vocab)), StreamBatches(ids, 4, 10), stateful=True, state_reset=p, progress=False)


def test_stateless_model_gets_no_hidden(data):
    vocab, ids = data
    model = nn.Sequential(nn.Embedding(len(vocab), 4), nn.Linear(4, len(vocab)))
    batches = [(torch.as_tensor(x), torch.as_tensor(y)) for x, y in stream_batches(ids, 4, 10)]
    history = fit(model, batches, epochs=1, progress=False, device="cpu")
    assert len(history.train_loss) == len(batches)


def test_history_lengths_and_eval_every(data):
    vocab, ids = data
    train, val = ids[:700], ids[700:]
    model = small_model(len(vocab))
    history = fit(
        model,
        StreamBatches(train, 4, 20),
        val=StreamBatches(val, 2, 20),
        epochs=2,
        stateful=True,
        eval_every=3,
        progress=False,
        device="cpu",
    )
    n = n_stream_batches(len(train), 4, 20)
    assert history.steps == list(range(1, 2 * n + 1))
    assert len(history.train_loss) == 2 * n
    assert len(history.epochs) == 2 and all("val_loss" in e for e in history.epochs)
    assert len(history.val_steps) == len(history.val_loss) == 2 * n // 3 + 2
    assert history.tokens_seen == 2 * 4 * ((len(train) - 1) // 4)
    assert all(math.isfinite(v) for v in history.val_loss)
    assert history.epochs[-1]["train_loss"] < history.train_loss[0]  # it learns something


def test_training_lowers_heldout_loss(data):
    vocab, ids = data
    model = small_model(len(vocab))
    val = StreamBatches(ids[:300], 2, 20)
    before = evaluate(model, val, stateful=True)["loss"]
    fit(model, StreamBatches(ids, 4, 20), epochs=5, lr=1e-2, stateful=True, progress=False, device="cpu")
    assert evaluate(model, val, stateful=True)["loss"] < before - 0.5


def test_callback_can_stop_training(data):
    vocab, ids = data
    seen = []

    def stop_at_three(history):
        seen.append(len(history.train_loss))
        if len(history.train_loss) == 3:
            raise StopTraining

    history = fit(
        small_model(len(vocab)),
        StreamBatches(ids, 4, 20),
        epochs=5,
        stateful=True,
        callback=stop_at_three,
        progress=False,
        device="cpu",
    )
    assert seen == [1, 2, 3] and len(history.train_loss) == 3 and history.stopped_early


def test_max_steps_and_resuming_history(data):
    vocab, ids = data
    model = small_model(len(vocab))
    history = fit(model, StreamBatches(ids, 4, 20), epochs=5, stateful=True, max_steps=4, progress=False)
    assert len(history.train_loss) == 4 and not history.stopped_early
    history = fit(
        model, StreamBatches(ids, 4, 20), epochs=5, stateful=True, max_steps=2, progress=False, history=history
    )
    assert history.steps == [1, 2, 3, 4, 5, 6]


def test_stream_batches_wrapper_checks_sizes_and_has_length(data):
    _, ids = data
    streams = StreamBatches(ids, 4, 20)
    assert len(streams) == len(list(streams)) == n_stream_batches(len(ids), 4, 20)
    with pytest.raises(ValueError, match="too few"):
        StreamBatches(ids[:3], 8, 2)


def test_evaluate_refuses_empty_data(data):
    vocab, _ = data
    with pytest.raises(ValueError, match="no batches"):
        evaluate(small_model(len(vocab)), [], stateful=True)


def test_history_as_dict_round_trips():
    h = History(steps=[1, 2], train_loss=[2.0, 1.0])
    assert History(**h.as_dict()) == h


def test_adam_is_fused_on_the_cpu_and_steps_like_torch_adam():
    torch.manual_seed(0)
    ours, reference = nn.Linear(30, 20), nn.Linear(30, 20)
    reference.load_state_dict(ours.state_dict())
    opt = make_optimizer(ours, "adam", 1e-2)
    assert opt.defaults["fused"], "Adam on the CPU should use PyTorch's fused kernel"
    ref_opt = torch.optim.Adam(reference.parameters(), lr=1e-2, foreach=False)
    for _ in range(20):
        x = torch.randn(8, 30)
        for model, o in ((ours, opt), (reference, ref_opt)):
            o.zero_grad()
            (model(x) ** 2).mean().backward()
            o.step()
    torch.testing.assert_close(ours.weight, reference.weight, rtol=0, atol=1e-6)


def test_make_optimizer_passes_betas_to_adam_and_refuses_them_elsewhere():
    model = nn.Linear(3, 2)
    assert make_optimizer(model, "adam", 1e-3, betas=(0.9, 0.99)).defaults["betas"] == (0.9, 0.99)
    assert make_optimizer(model, "adamw", 1e-3).defaults["betas"] == (0.9, 0.999)
    with pytest.raises(ValueError, match="adam and adamw only"):
        make_optimizer(model, "sgd", 1e-3, betas=(0.9, 0.99))
