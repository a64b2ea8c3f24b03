"""Benchmarks: ``python -m labutils bench NAME [--json]``.

Each benchmark module has ``run(quick: bool) -> dict`` (``bench grading`` also takes ``copies``)
which prints what it measures as it goes and returns its figures; ``run_bench`` prints them
and, with ``--json``, one JSON object on the last line.  Ratios are measured within one run:
the machines are shared and noisy.
"""

from __future__ import annotations

import importlib
import json

BENCHMARKS = {
    "numpy-lm": "labutils.bench.numpy_lm",  # lab 02's NumPy language model vs a tutorial-style loop
    "trainer": "labutils.bench.trainer",  # labutils' stream trainer vs the original lab's loop; MFU
    "grading": "labutils.bench.grading",  # notebooks per core-minute: our grader vs nbgrader's autograde
}
TAKES_COPIES = ("grading",)


def run_bench(name: str, *, as_json: bool = False, quick: bool = False, copies: int | None = None) -> int:
    if name not in BENCHMARKS:
        print(f"unknown benchmark {name!r}; choose one of: {', '.join(BENCHMARKS)}")
        return 2
    if copies is not None and name not in TAKES_COPIES:
        print(f"--copies applies to: {', '.join(TAKES_COPIES)}")
        return 2
    options = {"copies": copies} if copies is not None else {}
    figures = importlib.import_module(BENCHMARKS[name]).run(quick=quick, **options)
    width = max(map(len, figures), default=0)
    for key, value in figures.items():
        print(f"{key:{width}s}  {value:.4g}" if isinstance(value, float) else f"{key:{width}s}  {value}")
    if as_json:
        print(json.dumps(figures))
    return 0
