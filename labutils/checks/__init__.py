"""Self-checks: the ``Check`` protocol (``core``), one module per lab (``lab01`` ... ``lab08``).

In a notebook::

    from labutils.checks import lab01
    lab01.check_softmax(softmax)

A lab's module defines its checks, their inputs and their probes (which only call the student's
code). The judges -- oracles, slip variants and the advice tied to them -- live in the package
``judges`` (one module per lab, shared helpers in ``judges.oracle``), imported only when a result
is judged, so that the grader can hide them from submissions. ``feedback`` turns a failed check
or an error in the student's code into advice that a notebook shows first and alone.

The grader finds the same checks by the nbgrader ``grade_id`` of the test cell that calls them,
through ``get_check``.
"""

from __future__ import annotations

import importlib
import pkgutil

from .core import (
    REGISTRY,
    Check,
    CheckFailed,
    StudentCodeError,
    assert_close,
    assert_finite,
    assert_gradient,
    assert_shape,
    numerical_gradient,
    rel_error,
)

__all__ = [
    "Check",
    "CheckFailed",
    "StudentCodeError",
    "all_checks",
    "assert_close",
    "assert_finite",
    "assert_gradient",
    "assert_shape",
    "get_check",
    "numerical_gradient",
    "rel_error",
]


def all_checks() -> dict[str, Check]:
    """Import every lab's check module and return the registry ``{grade_id: Check}``."""
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("lab"):
            importlib.import_module(f"{__name__}.{info.name}")
    return dict(REGISTRY)


def get_check(grade_id: str) -> Check:
    """The ``Check`` a solution's test cell ``grade_id`` runs; ``KeyError`` naming it if none."""
    checks = all_checks()
    if grade_id not in checks:
        raise KeyError(f"no self-check is registered under grade_id {grade_id!r}; known: {sorted(checks)}")
    return checks[grade_id]
