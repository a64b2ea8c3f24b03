"""The exercise cells of a notebook, for the check tests that run the solutions' answers."""

from __future__ import annotations

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
