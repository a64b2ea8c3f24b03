"""labutils.schedules.cosine_lr: a pure function of training progress (warm-up, then half a cosine)."""

import math
import random

import pytest

from labutils.schedules import cosine_lr

LR = 3e-3


def test_warm_up_rises_linearly_from_one_percent_to_the_peak():
    assert cosine_lr(0.0, LR) == pytest.approx(0.01 * LR)  # never exactly 0: the first step moves
    assert cosine_lr(0.0001, LR) == pytest.approx(0.01 * LR)  # p / w = 0.005, below the 1% floor
    quarter, half, three_quarters = (cosine_lr(p, LR) for p in (0.005, 0.01, 0.015))
    assert (quarter, half, three_quarters) == pytest.approx((0.25 * LR, 0.5 * LR, 0.75 * LR))
    assert cosine_lr(0.02, LR) == pytest.approx(LR)  # the peak, where the warm-up ends
    assert cosine_lr(0.1, LR, warmup=0.2) == pytest.approx(0.5 * LR)  # the warm-up's length is a parameter


@pytest.mark.parametrize("final", [0.0, 0.05, 0.3])
def test_cosine_decay_from_the_peak_to_final_times_lr(final):
    w = 0.02
    assert cosine_lr(1.0, LR, final=final) == pytest.approx(final * LR, abs=1e-15)
    # halfway through the decay, q = 1/2: cos(pi/2) = 0, halfway between the peak and the floor
    assert cosine_lr(w + (1 - w) / 2, LR, final=final) == pytest.approx((final + (1 - final) / 2) * LR)
    # a quarter of the way: (1 + cos(pi/4)) / 2 of the way from the floor to the peak
    q = 0.25
    expected = (final + (1 - final) * (1 + math.cos(math.pi * q)) / 2) * LR
    assert cosine_lr(w + (1 - w) * q, LR, final=final) == pytest.approx(expected)


def test_rises_through_the_warm_up_and_decays_monotonically_after_it():
    grid = [k / 1000 for k in range(1001)]
    values = [cosine_lr(p, LR) for p in grid]
    warm = [v for p, v in zip(grid, values) if 0.0002 < p <= 0.02]  # above the 1% floor
    decay = [v for p, v in zip(grid, values) if p >= 0.02]
    assert all(a < b for a, b in zip(warm, warm[1:]))
    assert all(a > b for a, b in zip(decay, decay[1:]))
    assert max(values) == pytest.approx(LR) and min(decay) == pytest.approx(0.0, abs=1e-15)


def test_no_warm_up_starts_at_the_peak():
    assert cosine_lr(0.0, LR, warmup=0.0) == pytest.approx(LR)


def test_is_pure_the_same_progress_gives_the_same_rate_in_any_order():
    grid = [k / 50 for k in range(51)]
    in_order = {p: cosine_lr(p, LR) for p in grid}
    shuffled = grid[:]
    random.Random(0).shuffle(shuffled)
    assert {p: cosine_lr(p, LR) for p in shuffled} == in_order
    assert cosine_lr(0.5, 2 * LR) == pytest.approx(2 * cosine_lr(0.5, LR))  # linear in lr, nothing remembered


@pytest.mark.parametrize("p", [-0.01, 1.01, math.nan])
def test_progress_outside_0_1_is_refused(p):
    with pytest.raises(ValueError, match=r"fraction of training done, in \[0, 1\]"):
        cosine_lr(p, LR)


@pytest.mark.parametrize("options", [dict(warmup=1.0), dict(warmup=-0.1), dict(final=1.5), dict(final=-0.1)])
def test_bad_warm_up_or_final_is_refused(options):
    with pytest.raises(ValueError, match="warmup must be in"):
        cosine_lr(0.5, LR, **options)
