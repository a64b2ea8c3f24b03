"""labutils.runtime: the budget switch, seeding and the device choice."""

import random

import numpy as np
import pytest
import torch

from labutils import runtime


@pytest.mark.parametrize(
    "budget_env, ci_env, expected",
    [(None, None, "full"), (None, "true", "ci"), ("full", "true", "full"), ("ci", None, "ci"), (None, "false", "full")],
)
def test_budget_from_environment(monkeypatch, budget_env, ci_env, expected):
    for var, value in (("LABUTILS_BUDGET", budget_env), ("CI", ci_env)):
        if value is None:
            monkeypatch.delenv(var, raising=False)
        else:
            monkeypatch.setenv(var, value)
    assert runtime.budget_name() == expected
    assert runtime.budget(full="F", ci="C") == expected[0].upper()


def test_unknown_budget_is_an_error(monkeypatch):
    monkeypatch.setenv("LABUTILS_BUDGET", "huge")
    with pytest.raises(ValueError, match="huge"):
        runtime.budget_name()


def test_seed_everything_seeds_python_numpy_and_torch():
    runtime.seed_everything(7)
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    runtime.seed_everything(7)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first


def test_device_prefers_what_is_available(monkeypatch):
    monkeypatch.delenv("LABUTILS_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert runtime.device().type == "cuda"  # CUDA first
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert runtime.device().type == "mps"  # then Apple's GPU
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert runtime.device().type == "cpu"
    assert runtime.device("meta").type == "meta"
    monkeypatch.setenv("LABUTILS_DEVICE", "meta")
    assert runtime.device().type == "meta"
