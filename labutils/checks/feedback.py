"""How a self-check's outcome reaches the student: advice first and alone, never the checks' source.

Two exception classes carry a check's verdict out of ``Check.__call__``:

* ``CheckFailed`` (an ``AssertionError``): the student's result is wrong; its message is the
  judge's advice.
* ``StudentCodeError``: the student's own code raised inside the check. Its message says which
  function raised what, and the likely slip behind it in that exercise (a check gives its hints
  by a fragment of the error's message or by its kind, see ``hint_for``); the original exception
  is its ``__cause__``.

Both define IPython's ``_render_traceback_`` hook, so a notebook shows the advice alone: no frame
of ``labutils`` and none of its source lines (which would show other diagnoses). A
``StudentCodeError`` also shows the frames of the student's own code, where the error came from,
and keeps the original traceback for ``%debug``. A stub that still raises ``NotImplementedError``
stays a ``NotImplementedError`` (the grader reports it as "not done") whose rendering is one line
saying that the exercise is not attempted yet.

Outside IPython (pytest, scripts) these are ordinary exceptions with ordinary tracebacks.
"""

from __future__ import annotations

import functools
import sysconfig
import traceback
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType

import numpy as np

RED, BOLD, RESET = "\033[31m", "\033[1m", "\033[0m"

#: What each kind of error usually means, when a check gives no hint of its own for that kind.
GENERIC_HINTS = {
    "matmul": "A matrix product whose inner sizes differ. In these labs the arrays are batch-first, one row "
    "per example, and the weights are shaped like PyTorch's, (out, in): multiply rows by W.T.",
    "broadcast": "Two arrays of incompatible shapes were combined elementwise. Compare the shapes below: a sum "
    "or max over an axis needs keepdims=True to broadcast back, and every term must have the same width.",
    "index": "An index past the end of an axis: range(T) runs from 0 to T - 1, so check the loop's range and "
    "any t + 1 or t - 1 at its ends.",
    "unpack": "A different number of values than the names they are unpacked into: check what the function "
    "you call returns, or along which axis you split.",
    "key": "A dict key that does not exist: the keys it has are listed below.",
    "dtype": "Two numbers of different types met (float32 against float64, or floats where integer ids are "
    "needed): keep the types of the inputs you are given.",
    "type": "A value of the wrong kind (a tensor where an array is expected, None, a tuple...): check what "
    "each line returns.",
    "other": "Read the line of your code shown below and the shapes of its arrays.",
}


def error_kind(exc: BaseException) -> str:
    """Classify an exception raised by a student's code: the key of a check's hint for it.

    One of ``matmul``, ``broadcast``, ``index``, ``unpack``, ``key``, ``dtype``, ``type``, ``other``.
    """
    text = str(exc).lower()
    if isinstance(exc, KeyError):
        return "key"
    if isinstance(exc, IndexError):
        return "index"
    if "values to unpack" in text:
        return "unpack"
    if any(s in text for s in ("dtype", "scalar type", "expected tensor for argument", "long but found")):
        return "dtype"  # first: a product of a float32 and a float64 matrix is a dtype error
    products = ("matmul", "mat1 and mat2", "shapes cannot be multiplied", "not aligned", "size mismatch", "input_size")
    if any(s in text for s in products):
        return "matmul"
    if "broadcast" in text or "must match the size of tensor" in text:
        return "broadcast"
    if isinstance(exc, TypeError):
        return "type"
    return "other"


# ----------------------------------------------------------------------- whose code is it?
@functools.cache
def _library_dirs() -> tuple[str, ...]:
    """Folders whose code is not the student's: labutils, the standard library, installed packages."""
    paths = sysconfig.get_paths()
    dirs = {str(Path(__file__).resolve().parents[1])}  # labutils/
    dirs.update(str(Path(paths[key]).resolve()) for key in ("stdlib", "platstdlib", "purelib", "platlib"))
    return tuple(sorted(dirs))


#: Sources of compiled extensions (Cython): their frames carry the source's relative name, such as
#: ``numpy/random/_generator.pyx``, which would otherwise resolve against the working folder.
_COMPILED_SOURCES = (".pyx", ".pxd", ".pxi")


def is_student_file(filename: str) -> bool:
    """True for code the student wrote or ran (notebook cells, their own files), not a library's."""
    if filename.startswith("<frozen") or filename.endswith(_COMPILED_SOURCES):
        return False
    if filename.startswith("<"):  # exec'd or IPython cells
        return True
    try:
        path = str(Path(filename).resolve())
    except (OSError, ValueError):
        return True
    return not any(path.startswith(d) for d in _library_dirs())


def student_frames(tb: TracebackType | None, skip=()) -> list[tuple[TracebackType, traceback.FrameSummary]]:
    """The frames of ``tb`` that are the student's code, outermost first (not those running ``skip``)."""
    frames = []
    while tb is not None:
        code = tb.tb_frame.f_code
        if code not in skip and is_student_file(code.co_filename):
            summary = traceback.FrameSummary(code.co_filename, tb.tb_lineno, code.co_name)
            frames.append((tb, summary))
        tb = tb.tb_next
    return frames


def _qualname(tb: TracebackType) -> str:
    """``Class.method`` or ``function`` for a frame (without ``<locals>`` parts)."""
    code = tb.tb_frame.f_code
    name = getattr(code, "co_qualname", code.co_name).split("<locals>.")[-1]
    return ".".join(name.split(".")[-2:])


def describe_locals(tb: TracebackType, limit: int = 12) -> str:
    """Shapes of the arrays (and the keys of dicts of arrays) in a frame: what a student needs to see."""

    def shape_of(value) -> str | None:
        shape = getattr(value, "shape", None)  # NumPy's shape is a tuple, torch's a tuple subclass
        return str(tuple(shape)) if isinstance(shape, tuple) and not isinstance(value, type) else None

    parts = []
    for name, value in tb.tb_frame.f_locals.items():
        if name.startswith("_") or len(parts) >= limit:
            continue
        if shape_of(value) is not None:
            parts.append(f"{name} {shape_of(value)}")
        elif isinstance(value, Mapping) and value and any(shape_of(v) for v in value.values()):
            inner = ", ".join(f"{k} {shape_of(v)}" if shape_of(v) else k for k, v in list(value.items())[:8])
            parts.append(f"{name} {{{inner}}}")
    return ", ".join(parts)


# ------------------------------------------------------------------------------ rendering
def _render(title: str, body: str, extra: list[str] | None = None) -> list[str]:
    """Lines for IPython's ``_render_traceback_``: a red headline, the advice, then ``extra``."""
    return [f"{RED}{BOLD}✘ {title}{RESET}", body, *(extra or [])]


class CheckFailed(AssertionError):
    """A self-check's verdict: the student's result is wrong; the message is the judge's advice."""

    def __init__(self, title: str, advice: str):
        super().__init__(advice)
        self.title = title

    def _render_traceback_(self) -> list[str]:
        return _render(self.title, str(self))


class StudentCodeError(Exception):
    """The student's code raised inside a check. Chained to the original (``__cause__``)."""

    def __init__(self, title: str, advice: str):
        super().__init__(advice)
        self.title = title

    def _render_traceback_(self) -> list[str]:
        original = self.__cause__
        if original is None:
            return _render(self.title, str(self))
        frames = [summary for tb, summary in student_frames(original.__traceback__)]
        extra = [""]
        if frames:
            extra.append("Your code, where it failed:")
            extra.extend(line.rstrip("\n") for line in traceback.format_list(frames))
        extra.extend(line.rstrip("\n") for line in traceback.format_exception_only(type(original), original))
        extra.append("(To look at the variables where it failed, run %debug in a new cell.)")
        return _render(self.title, str(self), extra)


def not_attempted(title: str, exc: NotImplementedError) -> NotImplementedError:
    """The stub still raises: a ``NotImplementedError`` (so the grader says "not done") that renders
    as one line."""
    frames = student_frames(exc.__traceback__)
    where = _qualname(frames[-1][0]) if frames else "the exercise"
    message = (
        f"{where} is not attempted yet: replace `raise NotImplementedError()` in its exercise cell with your "
        "code, run that cell, then run this check again."
    )
    error = NotImplementedError(message)
    error._render_traceback_ = functools.partial(_render, title, message)
    return error


def hint_for(exc: BaseException, hints: Mapping[str, str]) -> str:
    """The likely slip behind ``exc``: a check's hint keyed by a fragment of the error's message
    (the first that occurs in it), else its hint for the error's kind (``error_kind``), else the
    generic hint for that kind."""
    text = str(exc)
    for key, hint in hints.items():
        if key not in GENERIC_HINTS and key in text:
            return hint
    kind = error_kind(exc)
    return hints.get(kind) or GENERIC_HINTS[kind]


def code_of(objects: Iterable) -> frozenset:
    """The code objects of the functions among ``objects`` and of the methods of the classes among them."""
    codes = set()
    for obj in objects:
        function = getattr(obj, "__func__", obj)  # a bound method's function
        if hasattr(function, "__code__"):
            codes.add(function.__code__)
        elif isinstance(obj, type):
            codes.update(v.__code__ for v in vars(obj).values() if hasattr(v, "__code__"))
    return frozenset(codes)


def student_error(
    title: str, exc: Exception, hints: Mapping[str, str], probe=None, called: frozenset = frozenset()
) -> StudentCodeError | None:
    """A ``StudentCodeError`` with advice for ``exc`` if the student's code raised it, else ``None``.

    The error is the student's when its traceback passes through their code. The advice names the
    function the check called (and the one that raised, if different), the error, the likely slip
    (``hint_for``) and the shapes of the arrays where it was raised. ``probe`` (the check's own
    probe function) is never counted as the student's code, wherever it is defined. The check's
    hints are about the functions it calls (``called``: their code objects, see ``code_of``): when
    the error comes from another function of the student's, the advice is to fix that one first.
    """
    skip = (probe.__code__,) if hasattr(probe, "__code__") else ()
    frames = student_frames(exc.__traceback__, skip)
    if not frames:
        return None
    named = [tb for tb, _ in frames if not tb.tb_frame.f_code.co_name.startswith("<")]  # no <listcomp>, <lambda>
    outer, inner = (named[0], named[-1]) if named else (frames[0][0], frames[-1][0])
    if inner is outer:
        lines = [f"{_qualname(outer)} raised {type(exc).__name__}: {exc}", hint_for(exc, hints)]
    elif inner.tb_frame.f_code in called:  # one checked function calls another
        lines = [f"{_qualname(outer)} raised {type(exc).__name__} in {_qualname(inner)}: {exc}", hint_for(exc, hints)]
    else:  # the check's hints are about the functions it calls, not about this one
        kind = error_kind(exc)
        lines = [
            f"{_qualname(outer)} raised {type(exc).__name__} in {_qualname(inner)}, which it calls: {exc}",
            f"Fix {_qualname(inner)} first (does its own check pass?); if it does, look at the arguments "
            f"{_qualname(outer)} passes to it (their shapes are below). {GENERIC_HINTS[kind]}",
        ]
    arrays = describe_locals(inner)
    if arrays:
        lines.append(f"Where it was raised: {arrays}.")
    error = StudentCodeError(title, "\n".join(lines))
    return error.with_traceback(exc.__traceback__)


def quiet_numpy():
    """Silence NumPy's floating-point warnings while a probe runs: the judge reports overflow itself."""
    return np.errstate(all="ignore")
