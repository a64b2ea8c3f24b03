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


def with_slip(cells: dict[str, str], grade_id: str, old: str, new: str) -> dict[str, str]:
    """``cells`` with ``old`` replaced by ``new`` in the exercise cell ``grade_id``: a student's wrong answer
    written into the solution's own cell, as the student would meet its check."""
    assert old in cells[grade_id], f"the solution's {grade_id} no longer contains {old!r}: update this slip"
    return {**cells, grade_id: cells[grade_id].replace(old, new)}


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


def check_student_version(lab: str, prelude: str = "", given: dict | None = None) -> None:
    """The student version of ``lab`` (``"03_deep_rnns"``) against its self-checks.

    With the stubs as distributed, the check of each exercise (the exercise cell's ``grade_id``
    without ``-code``) says "not attempted yet"; with the solution's answers pasted over the stubs
    (``paste_solution``), every check passes.  ``prelude``: source run before the cells (imports);
    ``given``: names the cells use from elsewhere in the notebook.
    """
    import pytest

    from labutils.checks import get_check

    root = Path(__file__).resolve().parent.parent
    student = exercise_cells(root / "notebooks" / f"{lab}.ipynb")
    answers = exercise_cells(root / "solutions" / f"{lab}.ipynb")
    assert student.keys() == answers.keys()
    checks = [get_check(grade_id.removesuffix("-code")) for grade_id in student]
    stubs = run_cells([prelude, *student.values()], given)
    for check in checks:
        with pytest.raises(NotImplementedError, match="not attempted yet"):
            check(*(stubs[name] for name in check.needs))
    pasted = run_cells([prelude, *(paste_solution(student[g], answers[g]) for g in student)], given)
    for check in checks:
        check(*(pasted[name] for name in check.needs))
