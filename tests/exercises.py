"""The exercise cells of a notebook, for the check tests that run the solutions' answers."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import numpy as np


def exercise_cells(path: Path) -> dict[str, str]:
    """``{grade_id: source}`` of the exercise (solution) code cells of a notebook."""
    nb = nbformat.read(path, as_version=4)
    return {
        c.metadata["nbgrader"]["grade_id"]: c.source
        for c in nb.cells
        if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("solution")
    }


def run_cells(sources, given: dict | None = None) -> dict:
    """Execute cell sources one after another in one namespace (with ``np`` and ``given``); return it."""
    ns = {"np": np, **(given or {})}
    for src in sources:
        exec(compile(src, "<notebook cell>", "exec"), ns)
    return ns


STUB = re.compile(r"^([ \t]*)# YOUR CODE HERE\n[ \t]*raise NotImplementedError\(\)[ \t]*$", re.M)
REGION = re.compile(r"^[ \t]*### BEGIN SOLUTION[ \t]*\n(.*?)^[ \t]*### END SOLUTION[ \t]*$", re.M | re.S)


def paste_solution(student: str, solution: str) -> str:
    """A student's exercise cell with the solution's answer regions pasted over its stubs, in order."""
    answers = [m.group(1).rstrip("\n") for m in REGION.finditer(solution)]
    stubs = list(STUB.finditer(student))
    assert len(stubs) == len(answers), f"{len(stubs)} stubs for {len(answers)} answers"
    pieces, end = [], 0
    for stub, answer in zip(stubs, answers, strict=True):
        pieces += [student[end : stub.start()], answer]
        end = stub.end()
    return "".join(pieces) + student[end:]
