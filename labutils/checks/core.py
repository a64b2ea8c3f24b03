"""Generic self-check helpers and the ``Check`` protocol every lab's checks follow.

The helpers raise ``AssertionError`` whose message says *what* is wrong and *what to try*:

>>> assert_shape("h_next", np.zeros((5, 231)), (231, 5))
Traceback (most recent call last):
AssertionError: h_next has shape (5, 231), expected (231, 5). ...

A ``Check`` splits one self-check into three steps so that the grader can run the middle one
in the student's kernel and the other two in its own, trusted process:

1. ``make_inputs(rng)``  -> dict of NumPy arrays (drawn by whoever runs the check);
2. ``probe(objects, inputs)`` -> dict of raw outputs: runs the *student's* code, nothing else;
3. ``judge(inputs, outputs)`` -> compares against an independent oracle and raises
   ``AssertionError`` with advice.

In a notebook all three run in one go: ``lab01.check_softmax(softmax)``.  Outputs are plain
arrays, numbers and strings, so they cross a process boundary as an ``.npz`` file with
``allow_pickle=False``: nothing the student's code returns is ever executed by the grader.

When the student's code raises inside a probe, ``run_probe`` raises a ``StudentCodeError`` whose
message is advice (``feedback.student_error``): the grader records that message, and a notebook
renders it without the checks' own frames.  In a notebook a wrong result raises ``CheckFailed``,
rendered as the judge's advice alone (see ``labutils.checks.feedback``).
"""

from __future__ import annotations

import contextlib
import importlib
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .feedback import CheckFailed, code_of, not_attempted, quiet_numpy, student_error
from .feedback import StudentCodeError as StudentCodeError  # re-exported: checks raise it

Arrays = dict[str, np.ndarray]

#: Every ``Check`` registers itself here under its ``grade_id`` (the nbgrader id of the
#: solution's test cell that calls it).  ``labutils.checks.get_check`` fills it lazily.
REGISTRY: dict[str, Check] = {}


# --------------------------------------------------------------------------- comparisons
def rel_error(a, b, eps: float = 1e-12) -> float:
    """Largest elementwise relative error ``|a - b| / max(|a| + |b|, eps)``.

    The symmetric denominator keeps the measure meaningful when both are near zero.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise AssertionError(f"cannot compare arrays of shapes {a.shape} and {b.shape}")
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(a) + np.abs(b), eps)))


def assert_shape(name: str, actual, expected: tuple, hint: str = "") -> None:
    """Raise if ``actual`` (an array or a shape) does not have shape ``expected``.

    ``None`` in ``expected`` matches any size on that axis.
    """
    shape = tuple(actual) if isinstance(actual, tuple) else tuple(np.shape(actual))
    expected = tuple(expected)
    ok = len(shape) == len(expected) and all(e is None or e == s for s, e in zip(shape, expected, strict=True))
    if ok:
        return
    advice = hint
    if not advice and sorted(shape) == sorted(e for e in expected if e is not None):
        advice = "The sizes are right but in the wrong order: a missing transpose?"
    elif not advice and len(shape) != len(expected):
        advice = f"Expected {len(expected)} axes, got {len(shape)}: an axis summed away or added?"
    raise AssertionError(f"{name} has shape {shape}, expected {expected}. {advice}".strip())


def assert_finite(name: str, actual, hint: str = "") -> None:
    """Raise if ``actual`` holds NaN or infinity."""
    arr = np.asarray(actual, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise AssertionError(f"{name} has {bad} NaN or infinite entries. {hint}".strip())


def assert_close(name: str, actual, expected, *, tol: float = 1e-7, hint: str = "") -> None:
    """Raise unless ``actual`` matches ``expected`` in shape and to relative error ``tol``."""
    expected = np.asarray(expected)
    assert_shape(name, actual, expected.shape)
    assert_finite(name, actual, "Overflow in exp? Division by zero?")
    err = rel_error(actual, expected)
    if err > tol:
        raise AssertionError(f"{name} differs from the reference: relative error {err:.2e} > {tol:.0e}. {hint}".strip())


# --------------------------------------------------------------------- numerical gradients
def numerical_gradient(f: Callable[[], float], x: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    """Centred finite-difference gradient of the scalar ``f()`` with respect to ``x``.

    ``x`` is perturbed *in place* (and restored), so ``f`` should read it, e.g.
    ``numerical_gradient(lambda: loss(params), params["W_hh"])``.  ``x`` must be float64:
    in float32 the rounding error of ``f`` swamps a step of 1e-5.

    Returns an array shaped like ``x``: ``(f(x + eps e_i) - f(x - eps e_i)) / (2 eps)``.
    """
    if x.dtype != np.float64:
        raise TypeError(f"numerical_gradient needs a float64 array, got {x.dtype}; use x.astype(np.float64).")
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + eps
        f_plus = f()
        x[i] = old - eps
        f_minus = f()
        x[i] = old
        grad[i] = (f_plus - f_minus) / (2 * eps)
    return grad


def assert_gradient(name: str, analytic, numeric, *, tol: float = 1e-7) -> None:
    """Compare an analytic gradient with a numerical one; diagnose the usual slips."""
    analytic = np.asarray(analytic, dtype=np.float64)
    numeric = np.asarray(numeric, dtype=np.float64)
    if analytic.shape != numeric.shape and analytic.shape == numeric.T.shape:
        raise AssertionError(
            f"{name} has shape {analytic.shape}, expected {numeric.shape}: the gradient is transposed."
        )
    assert_shape(name, analytic, numeric.shape)
    err = rel_error(analytic, numeric)
    if err <= tol:
        return
    hint = ""
    if numeric.ndim == 2 and numeric.shape[0] == numeric.shape[1] and rel_error(analytic, numeric.T) <= tol:
        hint = "It matches the transpose of the numerical gradient: swap the order of the outer product."
    elif rel_error(-analytic, numeric) <= tol:
        hint = "It has the wrong sign."
    elif np.allclose(analytic, 0):
        hint = "It is all zeros: is this gradient computed (and accumulated) at all?"
    raise AssertionError(
        f"gradient {name} is off: relative error {err:.2e} against the numerical gradient "
        f"(want < {tol:.0e}). {hint}".strip()
    )


# ------------------------------------------------------------------ tensors for the probes
def tensor64(a, grad: bool = False):
    """A float64 torch tensor copied from ``a`` (an array or numbers), optionally a leaf with a gradient."""
    import torch

    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def as_numpy(t) -> np.ndarray:
    """A NumPy copy of a tensor (detached) or of anything ``np.asarray`` takes."""
    if hasattr(t, "detach"):
        return t.detach().cpu().numpy().copy()
    return np.array(t)


def grads_of(loss, tensors: Mapping[str, Any]) -> Arrays:
    """``{"grad_<name>": dloss/dtensor}`` for named tensors; zeros where the graph does not reach.

    A ``loss`` computed outside autograd (NumPy, ``.detach()``, ``torch.no_grad()``) reaches none.
    """
    import torch

    names = list(tensors)
    zeros = {f"grad_{n}": np.zeros(tuple(tensors[n].shape)) for n in names}
    if not getattr(loss, "requires_grad", False):
        return zeros
    grads = torch.autograd.grad(loss, [tensors[n] for n in names], allow_unused=True)
    return {f"grad_{n}": zeros[f"grad_{n}"] if g is None else as_numpy(g) for n, g in zip(names, grads, strict=True)}


def _what_it_is(value) -> str:
    """``a float``, ``a tuple of 3``: what a student's function returned, in words."""
    return f"a {type(value).__name__}" + (f" of {len(value)}" if isinstance(value, (tuple, list)) else "")


def unpack(result, count: int, what: str) -> tuple:
    """``result`` as a tuple of ``count`` things, or ``AssertionError`` saying what ``what`` must return."""
    if not isinstance(result, (tuple, list)) or len(result) != count:
        raise AssertionError(f"{what}; it returned {_what_it_is(result)}.")
    return tuple(result)


def returned_array(value, what: str) -> np.ndarray:
    """What a student's function returned (a tensor, an array, numbers) as a NumPy copy of numbers, or
    ``AssertionError`` saying what it must return (``what``) when it is something else: ``None``, text..."""
    try:
        array = as_numpy(value)
    except (TypeError, ValueError, RuntimeError):  # e.g. a list of tensors that still need their gradient
        array = np.array(None)
    if array.dtype.kind not in "biuf":
        raise AssertionError(f"{what}; it returned {_what_it_is(value)}.")
    return array


def param_key(name: str) -> str:
    """A parameter's name as an output's name, without dots: ``rnn.weight_ih_l0`` -> ``rnn__weight_ih_l0``."""
    return name.replace(".", "__")


def given_params(model, names) -> dict[str, Any]:
    """``{name: parameter}`` of a student's model for ``names`` (PyTorch's dotted names), or
    ``AssertionError`` naming those it lacks: its ``__init__`` is given, only ``forward`` is the exercise."""
    params = dict(model.named_parameters())
    missing = [n for n in names if n not in params]
    if missing:
        parts = ", ".join(dict.fromkeys(f"self.{n.split('.')[0]}" for n in names))
        raise AssertionError(
            f"{type(model).__name__} has no parameter(s) {missing}: keep the given __init__ ({parts}); "
            "only forward is the exercise."
        )
    return {n: params[n] for n in names}


def param_arrays(params: Mapping[str, Any], prefix: str = "param_") -> Arrays:
    """``{prefix + param_key(name): array}`` for named parameters (a dict, or ``model.named_parameters()``);
    ``judges.oracle.load_weights`` copies them back into PyTorch layers."""
    return {f"{prefix}{param_key(n)}": as_numpy(p) for n, p in dict(params).items()}


# ---------------------------------------------------------------------- the Check protocol
class MissingFile(FileNotFoundError):
    """A file a check judges was not handed in; the message tells the student what to hand in."""


def to_arrays(outputs: Mapping[str, Any]) -> Arrays:
    """Turn a probe's outputs into plain NumPy arrays (no objects) so they can cross processes."""
    if not isinstance(outputs, Mapping):
        raise TypeError(f"a probe must return a dict of arrays, got {type(outputs).__name__}")
    result = {}
    for key, value in outputs.items():
        if hasattr(value, "detach"):  # a torch tensor
            value = value.detach().cpu().numpy()
        arr = np.asarray(value)
        if arr.dtype == object:
            raise TypeError(f"output {key!r} is not numbers or text (got {type(value).__name__})")
        result[key] = arr
    return result


@dataclass
class Check:
    """One self-check: ``check(*objects)`` draws inputs, probes the student's code, judges.

    ``needs`` names the notebook objects the probe uses, in the order ``__call__`` takes them.
    ``hints`` maps a kind of error (``feedback.error_kind``: ``matmul``, ``broadcast``, ``index``,
    ``unpack``, ``key``, ``dtype``, ``type``) or a fragment of an error's message (such as
    ``"must be sorted in decreasing order"``, tried first) to the likely slip behind it in this
    exercise; it is shown when the student's code raises such an error inside the probe.
    """

    grade_id: str
    title: str
    needs: tuple[str, ...]
    probe: Callable[[dict[str, Any], Arrays], Mapping[str, Any]]
    #: The verdict: a function, or ``"labutils.checks.judges.labNN:function"``, imported only when a
    #: result is judged.  Judges hold the oracles, so they live in ``labutils.checks.judges``, a
    #: package the grader's sandbox hides from submissions (see ``run_judge``).
    judge: Callable[[Arrays, Arrays], None] | str
    make_inputs: Callable[[np.random.Generator], Mapping[str, Any]] = lambda rng: {}
    success: str = field(default="")
    #: Files a submission hands in next to its notebook (e.g. ``("sherlock_gru.pt",)``) that the
    #: grader judges instead of running the notebook: ``file_probe(paths, inputs)`` reads them
    #: (in the grader's sandbox) and returns the same kind of raw outputs as ``probe``.
    files: tuple[str, ...] = ()
    file_probe: Callable[[dict[str, Any], Arrays], Mapping[str, Any]] | None = None
    hints: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self):
        if bool(self.files) != (self.file_probe is not None):
            raise ValueError(f"check {self.grade_id!r}: give both files and file_probe, or neither")
        REGISTRY[self.grade_id] = self

    def inputs(self, seed: int, budget: str | None = None) -> Arrays:
        """The inputs ``make_inputs`` draws from ``seed``; thresholds in the given ``budget``
        ("full" or "ci"; default: the environment's), so that a grader never depends on its own."""
        from ..runtime import using_budget

        with using_budget(budget) if budget else contextlib.nullcontext():
            return to_arrays(self.make_inputs(np.random.default_rng(seed)))

    def run_probe(self, objects: Mapping[str, Any], inputs: Arrays) -> Arrays:
        """Run the probe on the student's ``objects``; return its outputs as plain arrays.

        An exception raised by the student's code becomes a ``StudentCodeError`` with advice
        (chained to it); a stub's ``NotImplementedError`` stays one, saying "not attempted yet".
        Anything else the probe raises (an ``AssertionError`` about what the code returned) passes.
        """
        missing = [n for n in self.needs if n not in objects]
        if missing:
            raise NameError(f"{self.title}: the notebook has no {', '.join(missing)} defined; run the cells above.")
        try:
            with quiet_numpy(), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the judge explains overflow and NaN; warnings would come first
                outputs = self.probe(dict(objects), inputs)
        except NotImplementedError as exc:
            raise not_attempted(self.title, exc) from exc
        except Exception as exc:
            error = student_error(self.title, exc, self.hints, self.probe, code_of(objects.values()))
            if error is None:
                raise
            raise error from exc
        return to_arrays(outputs)

    def run_file_probe(self, paths: Mapping[str, Any], inputs: Arrays) -> Arrays:
        """Raw outputs from the handed-in files ``{file name: path}`` (a missing one is absent)."""
        if self.file_probe is None:
            raise TypeError(f"{self.title} judges live objects, not files")
        return to_arrays(self.file_probe(dict(paths), inputs))

    def run_judge(self, inputs: Arrays, outputs: Arrays) -> None:
        """Judge a probe's ``outputs``: return if right, raise ``AssertionError`` with advice if not."""
        judge = self.judge
        if isinstance(judge, str):
            module, _, name = judge.partition(":")
            try:
                judge = getattr(importlib.import_module(module), name)
            except ImportError:
                raise RuntimeError(
                    f"{self.title}: the reference this check compares with ({module}) cannot be imported here. "
                    "Inside the grader's sandbox that is expected: the grader judges your results outside it."
                ) from None
        judge(inputs, outputs)

    def __call__(self, *objects, seed: int = 0, **named) -> None:
        """Check the student's objects in a notebook: print success, or raise advice to read.

        A wrong result raises ``CheckFailed`` (an ``AssertionError``) with the judge's advice; so does
        a missing notebook name or a result of the wrong kind. An error raised by the student's code
        arrives as ``StudentCodeError`` (``run_probe``).
        """
        if len(objects) > len(self.needs):
            raise TypeError(f"{self.title} takes {len(self.needs)} objects: {', '.join(self.needs)}")
        bound = dict(zip(self.needs, objects, strict=False)) | named
        inputs = self.inputs(seed)
        try:
            outputs = self.run_probe(bound, inputs)
            self.run_judge(inputs, outputs)
        except CheckFailed:
            raise
        except (AssertionError, NameError, TypeError) as exc:  # a wrong result, or one of the wrong kind
            raise CheckFailed(self.title, str(exc)) from exc
        print(self.success or f"✔ {self.title}: all checks passed.")
