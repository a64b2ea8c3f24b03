"""labutils: the infrastructure shared by every lab of the RNN course.

It never holds the answer to an exercise: data, vocabularies, batching, training loops,
sampling, metrics, plots, widgets, self-checks and grading only.

Data flows one way; a module imports only from those to its left::

    runtime -> data -> text / datasets -> models / layers / train / schedules
            -> sampling / metrics -> plots / widgets
    checks (generic helpers, one module per lab; judges/ the oracles)
    notebooks, execute, scrub, release, grading, bench, doctor (tooling: may import anything)

The NumPy-only helpers listed in ``__all__`` are imported here; every module in ``_LAZY`` loads
on first use as ``labutils.NAME`` (``labutils.train``, ``labutils.models``, ...), so
``import labutils`` does not import PyTorch and the NumPy labs start fast.
"""

from __future__ import annotations

import importlib

from .checks import assert_close, assert_gradient, assert_shape, numerical_gradient, rel_error
from .data import load_text, train_val_split
from .runtime import budget, budget_name, device, is_ci, seed_everything
from .text import CharVocab, WordVocab, n_stream_batches, stream_batches, windows, words

__version__ = "0.1.0"

# Every module and subpackage of labutils, loaded on first use as ``labutils.NAME``
# (tests/test_api.py checks this table against the files).
_LAZY = (
    "bench",
    "checks",
    "data",
    "datasets",
    "doctor",
    "execute",
    "grading",
    "hosting",
    "layers",
    "metrics",
    "models",
    "notebooks",
    "plots",
    "release",
    "runtime",
    "sampling",
    "schedules",
    "scrub",
    "text",
    "train",
    "widgets",
)

# The names ``from labutils import *`` gives: the NumPy-only helpers imported above.
__all__ = [
    "CharVocab",
    "WordVocab",
    "assert_close",
    "assert_gradient",
    "assert_shape",
    "budget",
    "budget_name",
    "device",
    "is_ci",
    "load_text",
    "n_stream_batches",
    "numerical_gradient",
    "rel_error",
    "seed_everything",
    "stream_batches",
    "train_val_split",
    "windows",
    "words",
]


def __getattr__(name):  # PEP 562: ``labutils.train`` imports torch only when first used
    if name in _LAZY:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'labutils' has no attribute {name!r}")


def __dir__():  # what tab completion offers: the public API
    return sorted({*__all__, *_LAZY, "__version__"})
