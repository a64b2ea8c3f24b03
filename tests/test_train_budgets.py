"""fit's pieces: the step and time budgets, the schedule as a function of progress, stopping, accuracy
without an extra pass, resuming a history.  Time is a fake clock that the model advances."""

import pytest
import torch
from torch import nn

from labutils import train
from labutils.schedules import cosine_lr
from labutils.train import History, StopTraining, fit

N_BATCHES, B, C = 6, 4, 3


def batches(n=N_BATCHES, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(B, 2, generator=g), torch.randint(0, C, (B,), generator=g)) for _ in range(n)]


class Clocked(nn.Module):
    """A classifier whose training forward pass takes ``seconds`` of a fake clock; it counts its calls."""

    def __init__(self, clock=None, seconds=1.0):
        super().__init__()
        self.linear, self.clock, self.seconds = nn.Linear(2, C), clock, seconds
        self.calls = {"train": 0, "eval": 0}

    def forward(self, x):
        self.calls["train" if self.training else "eval"] += 1
        if self.clock is not None and self.training:
            self.clock.now += self.seconds
        return self.linear(x)


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(train, "_clock", fake)
    return fake


def run(model, data=None, **options):
    options = {"progress": False, "device": "cpu", **options}
    return fit(model, batches() if data is None else data, **options)


def recording(schedule, seen):
    def record(p):
        seen.append(p)
        return schedule(p)

    return record


@pytest.mark.parametrize("max_steps", [1, 4, N_BATCHES, N_BATCHES + 2])
def test_max_steps_takes_exactly_that_many_steps_and_ends_normally(max_steps):
    model, calls = Clocked(), []
    history = run(model, epochs=5, max_steps=max_steps, val=batches(2, 1), callback=lambda h: calls.append(1))
    assert history.steps == list(range(1, max_steps + 1)) and len(calls) == max_steps
    assert model.calls["train"] == max_steps and not history.stopped_early
    assert history.val_steps[-1] == max_steps, "held-out loss not measured where training ended"
    assert len(history.epochs) == max_steps // N_BATCHES  # finished epochs only, each once
    assert len(history.val_steps) == len(set(history.val_steps))


def test_max_seconds_stops_when_the_time_is_up_and_the_schedule_reaches_its_end(clock):
    seen = []
    history = run(Clocked(clock, seconds=1.0), epochs=100, max_seconds=8.0, lr_schedule=recording(lambda p: 0.1, seen))
    assert history.steps == list(range(1, 9)) and not history.stopped_early
    # 600 steps planned, so the time budget binds: p = seconds passed / 8 before each step
    assert seen == pytest.approx([k / 8 for k in range(8)])


def test_the_budget_that_runs_out_first_sets_the_progress(clock):
    seen = []  # 6 steps planned; 100 s at 1 s per step: the steps bind
    history = run(Clocked(clock), epochs=1, max_seconds=100.0, lr_schedule=recording(lambda p: 0.1, seen))
    assert seen == pytest.approx([k / 6 for k in range(6)]) and len(history.epochs) == 1
    seen.clear()  # 6 steps planned; 3 s at 1 s per step: the time binds
    run(Clocked(clock), epochs=1, max_seconds=3.0, lr_schedule=recording(lambda p: 0.1, seen))
    assert seen == pytest.approx([0, 1 / 3, 2 / 3])
    seen.clear()  # max_steps shortens the plan: 12 steps of 2 epochs cut to 4
    run(Clocked(), epochs=2, max_steps=4, lr_schedule=recording(lambda p: 0.1, seen))
    assert seen == pytest.approx([0, 0.25, 0.5, 0.75])


def test_the_optimiser_takes_the_schedules_rate_before_every_step():
    model, used = Clocked(), []
    opt = torch.optim.SGD(model.parameters(), lr=123.0)
    opt.register_step_pre_hook(lambda o, args, kwargs: used.append(o.param_groups[0]["lr"]))
    run(model, epochs=2, optimizer=opt, lr_schedule=lambda p: cosine_lr(p, 0.1))
    assert used == pytest.approx([cosine_lr(k / 12, 0.1) for k in range(12)])


def test_a_schedule_needs_a_known_length():
    with pytest.raises(ValueError, match="lr_schedule needs to know how long"):
        run(Clocked(), data=lambda: iter(batches()), lr_schedule=lambda p: 0.1)
    history = run(Clocked(), data=lambda: iter(batches()), max_steps=3, lr_schedule=lambda p: 0.1)
    assert len(history.steps) == 3


def test_callback_stop_is_early_and_keeps_the_history():
    def stop_at_three(history):
        if history.steps[-1] == 3:
            raise StopTraining

    history = run(Clocked(), epochs=3, val=batches(2, 1), callback=stop_at_three)
    assert history.steps == [1, 2, 3] and history.stopped_early
    assert history.val_steps == [3] and history.epochs == []


def test_resuming_continues_the_steps_and_clears_an_earlier_early_stop():
    def stop(history):
        raise StopTraining

    model = Clocked()
    history = run(model, epochs=2, callback=stop)
    assert history.steps == [1] and history.stopped_early
    history = run(model, epochs=1, max_steps=2, history=history)
    assert history.steps == [1, 2, 3] and not history.stopped_early
    history.stopped_early = True
    history = run(model, epochs=1, history=history)  # ends with its epochs, not by a budget
    assert history.steps == list(range(1, 4 + N_BATCHES)) and not history.stopped_early


def test_with_accuracy_counts_the_trained_batches_without_another_pass():
    class AlwaysZero(Clocked):
        def forward(self, x):
            logits = super().forward(x)
            return logits * 0 + torch.tensor([1.0, 0.0, 0.0])  # class 0, whatever the weights

    data, val = batches(), batches(2, 1)
    model = AlwaysZero()
    history = run(model, data, epochs=2, lr=0.0, val=val, with_accuracy=True)
    assert model.calls == {"train": 2 * N_BATCHES, "eval": 2 * len(val)}, "an extra pass over the data?"
    share_of_zeros = torch.cat([y for _, y in data]).eq(0).float().mean().item()
    val_zeros = torch.cat([y for _, y in val]).eq(0).float().mean().item()
    for epoch in history.epochs:
        assert epoch["train_accuracy"] == pytest.approx(share_of_zeros)
        assert epoch["val_accuracy"] == pytest.approx(val_zeros)


def test_an_epoch_without_batches_is_refused():
    used_up = iter(batches())  # a bare iterator is used up after one epoch
    with pytest.raises(ValueError, match="epoch 2 got no training batches"):
        run(Clocked(), data=used_up, epochs=2)


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(max_steps=0), "max_steps is a number of steps"),
        (dict(max_steps=2.5), "max_steps is a number of steps"),
        (dict(eval_every=0), "eval_every is a number of steps"),
        (dict(max_seconds=0), "max_seconds is a time budget"),
        (dict(max_seconds=-1.0), "max_seconds is a time budget"),
    ],
)
def test_bad_budgets_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        run(Clocked(), **options)


def test_history_is_the_callers_object():
    history = History()
    assert run(Clocked(), max_steps=2, history=history) is history and history.steps == [1, 2]
