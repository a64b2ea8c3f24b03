"""Find the submissions in a folder, read them as hostile, and prepare the notebook the kernel runs.

Two layouts are accepted (both may be mixed in one folder):

* ``SUBMISSIONS/alice.ipynb``: one notebook per student; the student is the file's stem.  Files
  a lab asks for beside the notebook (lab 07's ``sherlock_gru.pt``) are named after it:
  ``alice.sherlock_gru.pt`` (or ``alice_sherlock_gru.pt``);
* ``SUBMISSIONS/alice/01_rnn_forward_numpy.ipynb, ...``: one folder per student with several
  labs; a lab's files lie next to its notebook (``alice/sherlock_gru.pt``).

A notebook is matched to a lab by its name (``NN_`` prefix, as the students received it) or by
the nbgrader ``grade_id`` s its cells carry.  Every file is read once, into memory, before any
code runs, through ``safefiles``: links are never followed, FIFOs and devices never opened,
sizes and JSON nesting capped.  Each entry of the folder becomes a row, with the reason when it
cannot be graded: a name that is not UTF-8, a link, two files with one name (``dup.ipynb`` and
``dup.txt`` become the rows ``dup.ipynb`` and ``dup.txt``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from .labs import Item, Lab, match_lab, nbgrader_meta, same_code
from .safefiles import Entry, Unreadable, json_depth, name_problem, read_regular, scan, shown, valid_name, walk

MAX_NOTEBOOK_MB = 50
MAX_HANDIN_MB = 256  # a file a lab asks for beside the notebook (lab 07's saved models)
MAX_JSON_DEPTH = 64  # a notebook nests about 6 deep; widget states a little more
MAX_ANSWER_CHARS = 20_000  # of a written answer kept for grading by hand (a spreadsheet cell holds 32,767)
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a zip archive (or an empty one)
JUNK = {"__MACOSX", ".ipynb_checkpoints", "__pycache__", ".DS_Store", "Thumbs.db", "desktop.ini"}


@dataclass
class Notebook:
    """One submitted notebook of one student (or the reason it cannot be graded)."""

    student: str
    path: Path
    nb: nbformat.NotebookNode | None = None
    lab: Lab | None = None
    problem: str = ""  # why it cannot be graded at all
    notes: list[str] = field(default_factory=list)
    files: dict[str, tuple[Path, str]] = field(default_factory=dict)  # name: (path, sha256) of a file beside it
    sha256: str = ""  # of the notebook and its files: a resumed run regrades what changed
    beside: dict[str, Entry] = field(default_factory=dict, repr=False)  # files next to it, by name

    @property
    def from_files(self) -> bool:
        """Graded from handed-in files, without running the notebook (lab 07)."""
        return bool(self.lab and self.lab.from_files)


@dataclass
class Student:
    name: str
    notebooks: list[Notebook] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # the CSV's status column and the feedback
    notes: list[str] = field(default_factory=list)  # the feedback only: nothing went wrong


def parse_notebook(raw: bytes, name: str) -> tuple[nbformat.NotebookNode | None, str]:
    """``(notebook, "")`` or ``(None, reason)`` from a file's bytes: never raises on a student's file."""
    if raw.startswith(ZIP_MAGIC):
        return None, f"{name} is a zip archive, not a notebook: unzip it and hand in the .ipynb file it holds"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None, f"{name} is not a notebook (not UTF-8 text; a {Path(name).suffix or 'binary'} file?)"
    depth = json_depth(raw)
    if depth > MAX_JSON_DEPTH:
        return None, f"{name} is not a valid notebook (its JSON nests {depth} levels deep, over {MAX_JSON_DEPTH})"
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        where = f": {exc.msg} at line {exc.lineno}" if isinstance(exc, json.JSONDecodeError) else ""
        return None, f"{name} is not a valid notebook (not JSON{where})"
    if not isinstance(data, dict) or not isinstance(data.get("cells", data.get("worksheets")), list):
        return None, f"{name} is not a valid notebook (JSON without a list of cells)"
    try:
        nb = nbformat.reads(text, as_version=4)
        nbformat.validator.normalize(nb)
        nbformat.validate(nb)
    except Exception as exc:  # nbformat raises several kinds
        message = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        return None, f"{name} is not a valid notebook ({message})"
    return nb, ""


def read_notebook(path: Path) -> tuple[nbformat.NotebookNode | None, str]:
    """``(notebook, "")`` or ``(None, reason)`` for a file on disk: regular files only, size-capped."""
    try:
        raw = read_regular(path, MAX_NOTEBOOK_MB * 2**20)
    except Unreadable as exc:
        return None, str(exc)
    return parse_notebook(raw, shown(Path(path).name))


def _grade_ids(nb) -> set[str]:
    return {str(nbgrader_meta(cell).get("grade_id")) for cell in nb.cells if nbgrader_meta(cell).get("grade_id")}


def load_notebook(student: str, path: Path, labs: dict[str, Lab]) -> Notebook:
    """Read, parse and match one notebook file to its lab."""
    try:
        raw = read_regular(path, MAX_NOTEBOOK_MB * 2**20)
    except Unreadable as exc:
        return Notebook(student, path, problem=str(exc))
    nb, problem = parse_notebook(raw, shown(path.name))
    notebook = Notebook(student, path, nb, problem=problem, sha256=hashlib.sha256(raw).hexdigest())
    if nb is not None:
        notebook.lab = match_lab(path.stem, _grade_ids(nb), labs)
    return notebook


def attach_files(notebook: Notebook) -> None:
    """Find and fingerprint the files the notebook's lab asks for among those beside it.

    Each is read once here (to hash it, not kept: a class's saved models would not fit in
    memory together) and again, checked against its hash, when its job starts (``read_handin``).
    """
    digest = hashlib.sha256(notebook.sha256.encode())
    for name in notebook.lab.files if notebook.lab else ():
        entry = notebook.beside.get(name)
        if entry is None:
            continue
        try:
            sha256 = hashlib.sha256(read_regular(entry.path, MAX_HANDIN_MB * 2**20)).hexdigest()
        except Unreadable as exc:
            notebook.notes.append(f"{exc}: not used")
            continue
        notebook.files[name] = (entry.path, sha256)
        digest.update(f"{name}\0{sha256}".encode())
    notebook.sha256 = digest.hexdigest()


def read_handin(notebook: Notebook, name: str) -> bytes:
    """The bytes of a handed-in file, as fingerprinted by ``attach_files``; ``Unreadable`` if changed."""
    path, sha256 = notebook.files[name]
    data = read_regular(path, MAX_HANDIN_MB * 2**20)
    if hashlib.sha256(data).hexdigest() != sha256:
        raise Unreadable(f"{shown(name)} changed while the grader was running")
    return data


def discover(folder: Path, labs: dict[str, Lab], *, exclude: Path | None = None) -> list[Student]:
    """Every student in ``folder`` with their notebooks read and matched to labs; one per entry."""
    folder = Path(folder)
    skip = _identity(exclude) if exclude else None
    entries = [e for e in scan(folder) if e.name not in JUNK and (skip is None or _identity(e.path) != skip)]
    handins = {name for lab in labs.values() for name in lab.files}
    attached, flat = _flat_attachments(entries, handins)
    stems = Counter(Path(e.name).stem for e in entries if e.kind != "folder" and e.path not in attached)
    students: list[Student] = []
    for entry in entries:
        if entry.path in attached:
            continue
        if not valid_name(entry.name):
            problem = f"the name {shown(entry.name)!r} {name_problem(entry.name)}"
            students.append(Student(shown(entry.name), problems=[problem]))
        elif entry.kind == "folder":
            students.append(_student_folder(entry, labs))
        else:
            name = entry.name if stems[Path(entry.name).stem] > 1 else Path(entry.name).stem
            students.append(_flat_student(name, entry, labs, flat.get(entry.path, {})))
            if stems[Path(entry.name).stem] > 1:
                others = [e.name for e in entries if Path(e.name).stem == Path(entry.name).stem and e is not entry]
                students[-1].problems.append(f"another file has the same name: {', '.join(map(shown, others))}")
    _match_unnamed(students, labs)
    for notebook in (n for student in students for n in student.notebooks):
        attach_files(notebook)
    return students


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path, follow_symlinks=False)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _flat_attachments(entries: list[Entry], handins: set[str]) -> tuple[set[Path], dict[Path, dict[str, Entry]]]:
    """Files ``STEM.NAME`` / ``STEM_NAME`` beside a flat ``STEM.ipynb`` that a lab asks for."""
    notebooks = {Path(e.name).stem: e for e in entries if e.name.endswith(".ipynb") and e.kind != "folder"}
    attached: set[Path] = set()
    flat: dict[Path, dict[str, Entry]] = {}
    for entry in entries:
        for name in handins:
            for sep in (".", "_"):
                stem = entry.name[: -len(sep + name)] if entry.name.endswith(sep + name) else None
                if stem and stem in notebooks:
                    attached.add(entry.path)
                    flat.setdefault(notebooks[stem].path, {})[name] = entry
    return attached, flat


def _flat_student(name: str, entry: Entry, labs: dict[str, Lab], files: dict[str, Entry]) -> Student:
    if entry.kind != "file":
        return Student(name, problems=[f"{shown(entry.name)} is {entry.kind}: not read"])
    notebook = load_notebook(name, entry.path, labs)
    notebook.beside = files
    return Student(name, [notebook])


def _student_folder(entry: Entry, labs: dict[str, Lab]) -> Student:
    """A student's folder: each lab's notebook (the best-named one) and the files beside it."""
    student = Student(entry.name)
    try:
        inside = walk(entry.path)
    except Unreadable as exc:
        student.problems.append(f"the folder {entry.name}/ was not read: {exc}")
        return student
    inside = [e for e in inside if not any(part in JUNK for part in e.path.relative_to(entry.path).parts)]
    for odd in (e for e in inside if e.kind not in ("file", "folder") or not valid_name(e.name)):
        why = odd.kind if valid_name(odd.name) else f"its name {name_problem(odd.name)}"
        student.problems.append(f"skipped {shown(str(odd.path.relative_to(entry.path)))}: {why}")
    inside = [e for e in inside if valid_name(e.name)]
    notebooks = [e for e in inside if e.kind == "file" and e.name.endswith(".ipynb")]
    if not notebooks:
        archives = [shown(e.name) for e in inside if e.kind == "file" and e.name.lower().endswith(".zip")]
        unzip = f" ({', '.join(archives[:3])}: an archive; unzip it into the folder)" if archives else ""
        student.problems.append(f"no notebook (.ipynb) in the folder {shown(entry.name)}/{unzip}")
    by_lab: dict[str, list[Notebook]] = {}
    unmatched: list[Notebook] = []
    for item in notebooks:
        notebook = load_notebook(student.name, item.path, labs)
        if notebook.problem:
            student.problems.append(notebook.problem)
        elif notebook.lab is None:
            unmatched.append(notebook)
        else:
            by_lab.setdefault(notebook.lab.name, []).append(notebook)
    if len(labs) == 1 and len(unmatched) == 1 and not by_lab:  # one lab graded, one notebook handed in
        notebook = unmatched.pop()
        notebook.lab = next(iter(labs.values()))
        notebook.notes.append(f"matched to lab {notebook.lab.name}, the only lab graded here")
        by_lab[notebook.lab.name] = [notebook]
    # Beside a graded notebook, an unmatched one is no problem (lab 00, the appendix, a file of one's
    # own): a note in the feedback. With none graded, the student's status must say why.
    unmatched_text = [f"not graded: {shown(n.path.name)} matches no graded lab" for n in unmatched]
    if by_lab:
        student.notes += unmatched_text
    else:
        student.problems += unmatched_text
    for lab_name, candidates in by_lab.items():
        chosen = ([n for n in candidates if n.path.stem == lab_name] or candidates)[0]
        others = [shown(n.path.name) for n in candidates if n is not chosen]
        if others:
            chosen.notes.append(f"graded {shown(chosen.path.name)}; also found {', '.join(others)} (not graded)")
        chosen.beside = {e.name: e for e in inside if e.path.parent == chosen.path.parent and e.kind == "file"}
        student.notebooks.append(chosen)
    return student


def _match_unnamed(students: list[Student], labs: dict[str, Lab]) -> None:
    """Flat notebooks with neither a lab's name nor its grade_ids: the lab most others have."""
    usual = Counter(n.lab.name for s in students for n in s.notebooks if n.lab and not n.problem).most_common(1)
    for student in students:
        for notebook in list(student.notebooks):
            if notebook.lab is None and not notebook.problem:
                if usual:
                    notebook.lab = labs[usual[0][0]]
                    notebook.notes.append(f"matched to lab {notebook.lab.name} like the other notebooks in the folder")
                elif len(labs) == 1:
                    notebook.lab = next(iter(labs.values()))
                else:
                    notebook.problem = (
                        f"{shown(notebook.path.name)} matches no graded lab (neither by name nor by grade_id)"
                    )
            if notebook.problem:
                student.problems.append(notebook.problem)
                student.notebooks.remove(notebook)


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
    return cut_answer(text)


def cut_answer(text: str, limit: int = MAX_ANSWER_CHARS) -> str:
    """A written answer of at most ``limit`` characters, saying so when it was cut.

    The answer goes into the student's record, the feedback and a spreadsheet cell: a notebook
    with a 40 MB answer cell would otherwise make a record too large to be read back, and the
    student's automatic points would be lost with it.
    """
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n\n[... cut: the answer is {len(text):,} characters long; read it in the notebook]"


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
