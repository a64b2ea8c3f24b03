"""Helpers shared by the judges of every lab: comparison, describing a wrong result, gradients.

* ``close(a, b)``: same shape, finite, relative error within ``tol``.
* ``describe_mismatch(got, want)``: a wrong result in words -- all zeros, the wrong sign, scaled by
  a constant, transposed, off by a constant, right to float32 precision only, one time step late or
  early, or wrong only in some entries or steps -- instead of
  "relative error 1.0e+00", which tells a student nothing.
* ``first_slip(got, slips)``: the advice of the first slip variant a result matches.
* ``judge_grads``: compare the gradients a probe extracted with an oracle's, explaining a mismatch.
* ``load_weights`` / ``param_values``: the student's weights, as a probe extracted them
  (``core.param_arrays``), copied into our own PyTorch layers or read back by name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from ..core import as_numpy, assert_shape, param_key, rel_error, tensor64

__all__ = [
    "FLOAT32_TOL",
    "GRAD_TOL",
    "TOL",
    "as_numpy",
    "close",
    "describe_mismatch",
    "entries_close",
    "first_slip",
    "judge_grads",
    "load_weights",
    "param_values",
    "params_of",
    "tensor64",
    "wrong_steps",
]

TOL = 1e-9  # float64 against float64: only rounding differs
GRAD_TOL = 1e-7
FLOAT32_TOL = 1e-5  # a result computed in float32 somewhere is this close, no closer


def close(a, b, tol: float = TOL) -> bool:
    """Same shape, all finite, and relative error at most ``tol``."""
    return np.shape(a) == np.shape(b) and bool(np.all(np.isfinite(a))) and rel_error(a, b) <= tol


def entries_close(a, b, tol: float = TOL) -> np.ndarray:
    """Elementwise version of ``close`` (same relative measure): a boolean array shaped like ``a``."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return np.abs(a - b) <= tol * np.maximum(np.abs(a) + np.abs(b), 1e-12)


def wrong_steps(got, want, axis: int = 1, tol: float = TOL) -> list[int]:
    """Indices along ``axis`` (the time axis of a (B, T, ...) array) where ``got`` differs from ``want``."""
    ok = entries_close(got, want, tol)
    other = tuple(a for a in range(ok.ndim) if a != axis)
    return [int(i) for i in np.flatnonzero(~ok.all(axis=other))]


def _steps_text(steps: list[int], n: int) -> str:
    if steps == list(range(steps[0], n)):
        return f"from step {steps[0]} on" if steps[0] else "at every step"
    return f"at step{'s' if len(steps) > 1 else ''} {', '.join(map(str, steps))} only (of 0..{n - 1})"


def _time_shift(got, want, axis: int, tol: float) -> str | None:
    """How a (B, T, ...) result that is ``want`` moved by one step along ``axis`` is off, or ``None``."""
    n = got.shape[axis]
    if n < 3:
        return None
    head, tail = np.take(got, range(n - 1), axis), np.take(got, range(1, n), axis)
    if close(tail, np.take(want, range(n - 1), axis), tol):
        return "is one step late: at step t it holds the expected value of step t - 1 (stored before it is computed?)"
    if close(head, np.take(want, range(1, n), axis), tol):
        return "is one step early: at step t it holds the expected value of step t + 1 (an index t - 1 or t + 1?)"
    return None


def describe_mismatch(got, want, *, tol: float = TOL, time_axis: int | None = None) -> str:
    """How ``got`` differs from ``want`` (same shape, both finite), as the end of a sentence.

    With ``time_axis``, a result wrong at some steps only says which: "right up to step 2, wrong
    from step 3 on".
    """
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    if np.allclose(got, 0, atol=1e-12):
        return "is all zeros"
    if close(-got, want, tol):
        return "has the wrong sign: it is -1 times the expected values"
    denominator = float(np.sum(want * want))
    if denominator > 0:
        c = float(np.sum(got * want)) / denominator
        if not np.isclose(c, 1) and close(got, c * want, tol):
            return f"is the expected values times {c:.4g}: a factor too many or too few?"
    if want.ndim == 2 and want.shape[0] == want.shape[1] and close(got, want.T, tol):
        return "is the transpose of the expected values"
    diff = got - want
    if np.allclose(diff, diff.flat[0], rtol=1e-6, atol=1e-12):
        return f"is off by the same amount, {diff.flat[0]:.4g}, everywhere: a constant added or left out?"
    if rel_error(got, want) <= FLOAT32_TOL:
        return (
            f"agrees with the expected values only to float32 precision (relative error {rel_error(got, want):.1e}; "
            "is something computed in float32, with dtype=np.float32, .astype(np.float32) or .float()? Keep float64)"
        )
    if time_axis is not None and got.ndim > time_axis:
        shift = _time_shift(got, want, time_axis, tol)
        if shift:
            return shift
        steps = wrong_steps(got, want, time_axis, tol)
        if steps and len(steps) < got.shape[time_axis]:
            return f"is right at some steps but wrong {_steps_text(steps, got.shape[time_axis])}"
    bad = ~entries_close(got, want, tol)
    where = tuple(int(i) for i in np.unravel_index(int(np.argmax(np.abs(diff))), got.shape))
    if bad.sum() < bad.size:
        return f"is right in {bad.size - bad.sum()} of {bad.size} entries but wrong in the others (e.g. at {where})"
    largest = np.abs(diff).max()
    return f"differs from the expected values in every entry (the largest difference, {largest:.3g}, at {where})"


def first_slip(got, slips: Iterable[tuple[str, object]], tol: float = TOL) -> str | None:
    """The advice of the first ``(advice, result)`` pair whose result equals ``got``, else ``None``."""
    for advice, result in slips:
        if result is not None and close(got, as_numpy(result), tol):
            return advice
    return None


def judge_grads(out: dict, oracle: dict, what: str) -> None:
    """Compare every ``grad_*`` array of a probe with the oracle's; explain a mismatch.

    Called once the outputs are right, so a wrong gradient means a graph cut somewhere.
    """
    for key, want in oracle.items():
        got = out[key]
        assert_shape(key, got, want.shape)
        if rel_error(got, want) <= GRAD_TOL:
            continue
        name = key.removeprefix("grad_")
        if np.allclose(got, 0):
            raise AssertionError(
                f"no gradient reaches {name}: is {what} computed with torch operations on the given tensors "
                "(no NumPy, no .detach(), no .item(), no torch.no_grad())?"
            )
        raise AssertionError(
            f"the outputs are right but the gradient with respect to {name} {describe_mismatch(got, want)}: "
            "is a state detached, or copied with .data, somewhere? Backpropagation needs the whole graph."
        )


def param_values(out: Mapping, names: Iterable[str], prefix: str = "param_") -> dict[str, np.ndarray]:
    """``{name: array}``: the parameters ``names`` as the probe extracted them under ``prefix``."""
    return {name: out[f"{prefix}{param_key(name)}"] for name in names}


def load_weights(modules: Mapping[str, Any], out: Mapping, names: Iterable[str], prefix: str = "param_") -> None:
    """Copy the weights a probe extracted into our own layers: ``names`` are ``owner.attribute``
    (``rnn.weight_ih_l0``), ``modules[owner]`` the layer that holds the attribute."""
    import torch

    with torch.no_grad():
        for name, value in param_values(out, names, prefix).items():
            owner, attribute = name.split(".")
            getattr(modules[owner], attribute).copy_(tensor64(value))


def params_of(modules: Mapping[str, Any]) -> dict[str, Any]:
    """``{owner.attribute: parameter}`` of the layers ``modules`` (``{"rnn": nn.RNN(...), ...}``)."""
    return {name: p for owner, m in modules.items() for name, p in m.named_parameters(prefix=owner)}
