"""Find the submissions in a folder, read them defensively, and prepare the notebook the kernel runs.

Two layouts are accepted (both may be mixed in one folder):

* ``SUBMISSIONS/alice.ipynb``: one notebook per student; the student is the file's stem;
* ``SUBMISSIONS/alice/01_rnn_forward_numpy.ipynb, ...``: one folder per student with several labs.

A notebook is matched to a lab by its name (``NN_`` prefix, as the students received it) or by
the nbgrader ``grade_id`` s its cells carry.  Every file is read into memory once, before any
code runs, so a submission cannot change another one on disk while grading is under way.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from .labs import Item, Lab, match_lab, nbgrader_meta, same_code

MAX_NOTEBOOK_MB = 50
SKIP = {"__MACOSX", ".ipynb_checkpoints", "__pycache__"}


@dataclass
class Notebook:
    """One submitted notebook of one student (or the reason it cannot be graded)."""

    student: str
    path: Path
    nb: nbformat.NotebookNode | None = None
    lab: Lab | None = None
    problem: str = ""  # why it cannot be graded at all
    notes: list[str] = field(default_factory=list)


@dataclass
class Student:
    name: str
    notebooks: list[Notebook] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def read_notebook(path: Path) -> tuple[nbformat.NotebookNode | None, str]:
    """``(notebook, "")`` or ``(None, reason)``: never raises on a student's file."""
    try:
        size = path.stat().st_size
        if size > MAX_NOTEBOOK_MB * 2**20:
            return None, f"{path.name} is {size / 2**20:.0f} MB, over the {MAX_NOTEBOOK_MB} MB a notebook may have"
        raw = path.read_bytes()
    except OSError as exc:
        return None, f"{path.name} cannot be read ({exc.strerror or exc})"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None, f"{path.name} is not a notebook (not UTF-8 text; a {path.suffix or 'binary'} file?)"
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"{path.name} is not a valid notebook (not JSON: {exc.msg} at line {exc.lineno})"
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        return None, f"{path.name} is not a valid notebook (JSON without a list of cells)"
    try:
        nb = nbformat.reads(text, as_version=4)
        nbformat.validator.normalize(nb)
        nbformat.validate(nb)
    except Exception as exc:  # nbformat raises several kinds
        message = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        return None, f"{path.name} is not a valid notebook ({message})"
    return nb, ""


def _grade_ids(nb) -> set[str]:
    return {str(nbgrader_meta(cell).get("grade_id")) for cell in nb.cells if nbgrader_meta(cell).get("grade_id")}


def _safe_name(name: str) -> str:
    return re.sub(r"[^\w.+-]+", "_", name).strip("._") or "student"


def discover(folder: Path, labs: dict[str, Lab], *, exclude: Path | None = None) -> list[Student]:
    """Every student in ``folder`` with their notebooks read and matched to labs."""
    folder = Path(folder)
    students: list[Student] = []
    flat: list[Notebook] = []
    exclude = exclude.resolve() if exclude else None
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith(".") or entry.name in SKIP or (exclude and entry.resolve() == exclude):
            continue
        if entry.is_dir():
            student = Student(entry.name)
            found = sorted(
                p
                for p in entry.rglob("*.ipynb")
                if not any(part.startswith(".") or part in SKIP for part in p.relative_to(entry).parts)
            )
            if not found:
                student.problems.append(f"no notebook (.ipynb) in the folder {entry.name}/")
            by_lab: dict[str, list[Notebook]] = {}
            for path in found:
                notebook = _load(student.name, path, labs)
                if notebook.problem:
                    student.problems.append(notebook.problem)
                elif notebook.lab is None:
                    student.problems.append(f"ignored {path.name}: it matches no graded lab")
                else:
                    by_lab.setdefault(notebook.lab.name, []).append(notebook)
            for lab_name, candidates in by_lab.items():
                exact = [n for n in candidates if n.path.stem == lab_name]
                chosen = (exact or candidates)[0]
                others = [n.path.name for n in candidates if n is not chosen]
                if others:
                    chosen.notes.append(f"graded {chosen.path.name}; also found {', '.join(others)} (not graded)")
                student.notebooks.append(chosen)
            students.append(student)
        elif entry.is_file():
            notebook = _load(entry.stem, entry, labs)
            flat.append(notebook)
            students.append(Student(entry.stem, [notebook]))
    # Flat notebooks without lab metadata or a lab-like name: the lab most others in the folder have.
    usual = Counter(n.lab.name for n in flat if n.lab and not n.problem).most_common(1)
    for notebook in flat:
        if notebook.lab is None and not notebook.problem:
            if usual:
                notebook.lab = labs[usual[0][0]]
                notebook.notes.append(f"matched to lab {notebook.lab.name} like the other notebooks in the folder")
            elif len(labs) == 1:
                notebook.lab = next(iter(labs.values()))
            else:
                notebook.problem = f"{notebook.path.name} matches no graded lab (neither by name nor by grade_id)"
    for student in students:
        for notebook in list(student.notebooks):
            if notebook.problem:
                student.problems.append(notebook.problem)
                student.notebooks.remove(notebook)
    # Two submissions with one stem (alice.ipynb and alice.txt): keep both rows apart.
    names = Counter(student.name for student in students)
    seen: Counter[str] = Counter()
    for student in students:
        if names[student.name] > 1:
            seen[student.name] += 1
            student.name = f"{student.name}#{seen[student.name]}"
    return students


def _load(student: str, path: Path, labs: dict[str, Lab]) -> Notebook:
    nb, problem = read_notebook(path)
    notebook = Notebook(student, path, nb, problem=problem)
    if nb is not None:
        notebook.lab = match_lab(path.stem, _grade_ids(nb), labs)
    return notebook


# ----------------------------------------------------------------------------- instrumenting
def find_test_cell(nb, item: Item) -> int | None:
    """Index of the submission's cell that holds ``item``'s test: by grade_id, else by its check call."""
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and nbgrader_meta(cell).get("grade_id") == item.grade_id:
            return index
    call = _squash(item.call)
    if call:
        for index, cell in enumerate(nb.cells):
            if cell.cell_type == "code" and call in _squash(cell.source):
                return index
    return None


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def find_answer(nb, item: Item) -> str | None:
    """The student's written answer for a manual item (question text removed), or None if no cell."""
    cell = None
    for candidate in nb.cells:
        if nbgrader_meta(candidate).get("grade_id") == item.grade_id:
            cell = candidate
            break
    if cell is None and item.question:
        first = item.question.strip().splitlines()[0]
        cell = next((c for c in nb.cells if c.cell_type == "markdown" and c.source.strip().startswith(first)), None)
    if cell is None:
        return None
    text = cell.source
    if item.question and text.strip().startswith(item.question.strip()):
        text = text.strip()[len(item.question.strip()) :]
    text = text.replace("YOUR ANSWER HERE", "").strip()
    return text


def probe_source(item: Item, inputs: Path, out_stem: Path) -> str:
    return (
        '__import__("labutils.grading.probe", fromlist=["run"]).run('
        f"{item.grade_id!r}, {item.module!r}, {str(inputs)!r}, {str(out_stem)!r}, globals())"
    )


def instrument(nb, lab: Lab, io_dir: Path) -> tuple[nbformat.NotebookNode, list[str]]:
    """The notebook the kernel runs: the student's code cells, each item's probe after its test cell.

    A test cell left as distributed is replaced by the probe (it only called the check, whose
    verdict in the kernel counts for nothing); an edited one runs as the student's code, then the
    probe.  A missing test cell puts the probe at the end.  The code cells after the last probe
    are left out: they cannot change a score, and in several labs they train a model for minutes.
    Returns the notebook and notes.
    """
    notes = []
    after: dict[int, list[Item]] = {}
    at_end: list[Item] = []
    for item in lab.auto_items:
        index = find_test_cell(nb, item)
        if index is None:
            at_end.append(item)
            notes.append(f"the test cell of {item.grade_id} is missing: it was checked at the end of the notebook")
        else:
            after.setdefault(index, []).append(item)
    cells = []
    code_number = 0

    def probe_cell(item: Item):
        source = probe_source(item, io_dir / f"{item.grade_id}.in.npz", io_dir / f"{item.grade_id}.out")
        return nbformat.v4.new_code_cell(source, metadata={"labutils": {"probe": item.grade_id}})

    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        code_number += 1
        items_here = after.get(index, [])
        untouched = any(same_code(cell.source, item.test_source) for item in items_here)
        if not untouched:
            cells.append(nbformat.v4.new_code_cell(cell.source, metadata={"labutils": {"code_cell": code_number}}))
        cells.extend(probe_cell(item) for item in items_here)
    cells.extend(probe_cell(item) for item in at_end)
    probes = [i for i, cell in enumerate(cells) if "probe" in cell.metadata["labutils"]]
    if probes:
        del cells[probes[-1] + 1 :]
    run = nbformat.v4.new_notebook(cells=cells)
    run.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return run, notes
