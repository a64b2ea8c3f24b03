"""Student notebooks from solution notebooks, with nbgrader's own preprocessors.

``solutions/NN_name.ipynb`` is the source of truth.  ``generate`` writes
``notebooks/NN_name.ipynb`` from it:

* the code between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` becomes a stub that raises
  ``NotImplementedError`` (nbgrader's ``ClearSolutions``; Markdown answers become
  "YOUR ANSWER HERE");
* ``### BEGIN HIDDEN TESTS`` ... ``### END HIDDEN TESTS`` regions are removed
  (``ClearHiddenTests``);
* outputs and execution counts are cleared (``ClearOutput``).

The first cell of every notebook is the hosted setup cell (``labutils.hosting``): on Colab or a
bare JupyterHub it installs labutils, elsewhere it does nothing.  ``ensure_setup_cell`` puts it
in place; ``python -m labutils hosted`` applies it to every solution.

Cells keep their nbgrader metadata (``grade_id``, ``points``, ...), so the solutions also serve
as an nbgrader source for instructors who prefer nbgrader's own workflow.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "solutions"
NOTEBOOKS = ROOT / "notebooks"

CODE_STUB = "# YOUR CODE HERE\nraise NotImplementedError()"
TEXT_STUB = "YOUR ANSWER HERE"


def student_version(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Return a copy of the solution notebook ``nb`` as students receive it."""
    from nbgrader.preprocessors import ClearHiddenTests, ClearOutput, ClearSolutions

    nb = nbformat.from_dict(nb)  # a deep copy
    steps = [
        ClearSolutions(code_stub={"python": CODE_STUB}, text_stub=TEXT_STUB, enforce_metadata=True),
        ClearHiddenTests(enforce_metadata=True),
        ClearOutput(),
    ]
    for step in steps:
        nb, _ = step.preprocess(nb, {})
    for cell in nb.cells:
        cell.metadata.pop("execution", None)  # timings written by nbclient
    # Keep only what a student's Jupyter needs: executing a solution rewrites the rest
    # (interpreter version, saved widget state), which would make the generated files drift.
    nb.metadata = nbformat.NotebookNode(
        kernelspec=nb.metadata.get("kernelspec", {"name": "python3", "display_name": "Python 3", "language": "python"}),
        language_info={"name": "python"},
    )
    return nb


def render(nb: nbformat.NotebookNode) -> str:
    """The exact text ``generate`` writes for a notebook."""
    return nbformat.writes(nb) + "\n"


def generate(solutions: Path = SOLUTIONS, notebooks: Path = NOTEBOOKS, *, check: bool = False) -> list[str]:
    """Write the student notebooks; with ``check=True`` write nothing.

    Returns the names of the notebooks that differ from what the solutions give (in check
    mode) or that were rewritten, plus any stray notebook in ``notebooks`` with no solution.
    """
    solutions, notebooks = Path(solutions), Path(notebooks)
    sources = sorted(solutions.glob("*.ipynb"))
    if not sources:
        raise FileNotFoundError(f"no solution notebooks in {solutions}")
    changed = []
    for src in sources:
        wanted = render(student_version(nbformat.read(src, as_version=4)))
        dst = notebooks / src.name
        if dst.exists() and dst.read_text(encoding="utf-8") == wanted:
            continue
        changed.append(src.name)
        if not check:
            notebooks.mkdir(parents=True, exist_ok=True)
            dst.write_text(wanted, encoding="utf-8")
    strays = sorted({p.name for p in notebooks.glob("*.ipynb")} - {p.name for p in sources})
    if check:
        changed += [f"{name} (no matching solution)" for name in strays]
    return changed


def ensure_setup_cell(nb: nbformat.NotebookNode, source: str) -> bool:
    """Make a cell with ``source``, tagged ``hosted-setup``, the first cell of ``nb``; in place.

    Idempotent: returns False when the first cell is that cell already.  An outdated setup cell
    (another address, an older text) is replaced, wherever it was; no other cell changes.
    """
    from .hosting import SETUP_TAG

    first = nb.cells[0] if nb.cells else None
    if first is not None and SETUP_TAG in first.metadata.get("tags", []) and first.source == source:
        return False
    nb.cells = [cell for cell in nb.cells if SETUP_TAG not in cell.metadata.get("tags", [])]
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": [SETUP_TAG]})
    if nb.get("nbformat_minor", 0) >= 5 or nb.get("nbformat", 4) > 4:
        cell.id = SETUP_TAG  # a fixed id: applying it on two branches gives the same file
    else:
        cell.pop("id", None)
    nb.cells.insert(0, cell)
    return True


def run_tagged_cells(notebook: Path, tag: str, names: tuple[str, ...], namespace: dict | None = None) -> dict:
    """Execute the code cells of ``notebook`` tagged ``tag``; return their namespace.

    This is how the benchmarks run a lab's own code (labutils holds no exercise answers).
    ``namespace`` seeds the globals the cells expect.  Raises ``FileNotFoundError`` with advice
    when the notebook is missing (a student release ships ``notebooks/`` only) and
    ``LookupError`` when no cell carries the tag or the cells do not define all of ``names``.
    """
    notebook = Path(notebook)
    if not notebook.exists():
        raise FileNotFoundError(
            f"{notebook} not found: this runs code from the solution notebook, which a student release "
            "does not contain. Run it from the instructors' repository."
        )
    nb = nbformat.read(notebook, as_version=4)
    sources = [c.source for c in nb.cells if c.cell_type == "code" and tag in c.metadata.get("tags", [])]
    if not sources:
        raise LookupError(f"no code cell of {notebook.name} is tagged {tag!r}")
    namespace = {"__name__": f"{notebook.stem}_{tag}", **(namespace or {})}
    for src in sources:
        exec(compile(src, f"{notebook.name}[{tag}]", "exec"), namespace)
    missing = [n for n in names if n not in namespace]
    if missing:
        raise LookupError(f"the cells of {notebook.name} tagged {tag!r} define no {', '.join(missing)}")
    return namespace
