"""What a lab grades: the graded cells of its solution notebook, read from their nbgrader metadata.

A solution notebook ``solutions/NN_name.ipynb`` has two kinds of graded cells:

* **automatic items**: code cells with ``{"grade": true, "solution": false, "grade_id": G,
  "points": P}``; the cell calls the self-check registered under the same ``G``
  (``labutils.checks.get_check(G)``), and the grader runs that ``Check`` on the submission;
* **manual items**: cells (Markdown, usually) with ``{"grade": true, "solution": true}``: a
  written answer, listed in the feedback "to grade by hand" with the student's text.

Nothing here changes the solutions, so they stay an nbgrader source as they are.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

LAB_NUMBER = re.compile(r"^(\d{2})_")


@dataclass(frozen=True)
class Item:
    """One graded cell of a solution notebook."""

    grade_id: str
    points: float
    manual: bool
    title: str  # the check's title (automatic) or the question's first line (manual)
    module: str = ""  # module that registers the Check (automatic items); the kernel imports it
    call: str = ""  # the solution's check call, e.g. "lab01.check_softmax(softmax)": finds a renamed test cell
    question: str = ""  # manual items: the question the written answer replies to
    test_source: str = ""  # automatic items: the test cell as students get it (hidden tests removed)
    files: tuple[str, ...] = ()  # automatic items judged from handed-in files (Check.files)


@dataclass
class Lab:
    """The graded items of one solution notebook, in notebook order."""

    name: str  # the solution's file stem, e.g. "01_rnn_forward_numpy"
    path: Path
    items: list[Item] = field(default_factory=list)

    @property
    def number(self) -> str | None:
        match = LAB_NUMBER.match(self.name)
        return match.group(1) if match else None

    @property
    def auto_items(self) -> list[Item]:
        return [item for item in self.items if not item.manual]

    @property
    def manual_items(self) -> list[Item]:
        return [item for item in self.items if item.manual]

    @property
    def auto_points(self) -> float:
        return sum(item.points for item in self.auto_items)

    @property
    def files(self) -> tuple[str, ...]:
        """The files a submission hands in beside the notebook, for the items judged from files."""
        return tuple(dict.fromkeys(name for item in self.auto_items for name in item.files))

    @property
    def from_files(self) -> bool:
        """True when every automatic item is judged from handed-in files: the notebook is not run."""
        return bool(self.auto_items) and all(item.files for item in self.auto_items)

    @property
    def grade_ids(self) -> set[str]:
        return {item.grade_id for item in self.items}


def nbgrader_meta(cell) -> dict:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return meta if isinstance(meta, dict) else {}


def _first_line(text: str, limit: int = 80) -> str:
    for line in text.splitlines():
        line = re.sub(r"^(?:[#>\s]+)", "", line.replace("**", "")).strip()
        line = re.sub(r"^(?:Question|Q)\s*[.:]\s*", "", line)
        if line and not line.startswith("### BEGIN"):
            return line if len(line) <= limit else line[: limit - 1] + "…"
    return ""


HIDDEN_TESTS = re.compile(r"^[ \t]*### BEGIN HIDDEN TESTS.*?^[ \t]*### END HIDDEN TESTS[ \t]*\n?", re.M | re.S)


def strip_hidden_tests(source: str) -> str:
    """A test cell's source as nbgrader's ``ClearHiddenTests`` leaves it for students."""
    return HIDDEN_TESTS.sub("", source)


def same_code(a: str, b: str) -> bool:
    """True when two cell sources differ at most in blank lines and trailing spaces."""

    def norm(text: str) -> list[str]:
        return [line.rstrip() for line in text.strip().splitlines() if line.strip()]

    return norm(a) == norm(b)


def question_of(source: str) -> str:
    """The text of a written-answer cell before its answer region (nbgrader keeps it for students)."""
    head = source.split("### BEGIN SOLUTION")[0]
    return head.replace("YOUR ANSWER HERE", "").strip()


def _check_call(source: str) -> str:
    """The first code line of a test cell (skipping comments and markers): how to find it again."""
    for line in source.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            return line
    return ""


def module_of(check) -> str:
    """Name of the module that defines ``check``, so that a fresh kernel can import (and register) it."""
    candidates = [getattr(check.probe, "__module__", None), getattr(check.judge, "__module__", None)]
    for name in candidates:
        module = sys.modules.get(name or "")
        if module is not None and any(value is check for value in vars(module).values()):
            return name
    for name, module in list(sys.modules.items()):
        try:
            if any(value is check for value in vars(module).values()):
                return name
        except TypeError:
            continue
    if candidates[0]:
        return candidates[0]
    raise LookupError(f"cannot tell which module defines the check {check.grade_id!r}")


def _points(meta: dict, where: str) -> float:
    try:
        return float(meta.get("points", 0))
    except (TypeError, ValueError):
        raise ValueError(f"{where}: points {meta.get('points')!r} is not a number") from None


def _auto_item(cell, grade_id: str, points: float, checks: dict, where: str) -> Item:
    """An automatic item: the graded test cell and the ``Check`` registered under its grade_id."""
    if grade_id not in checks:
        raise ValueError(
            f"{where}: the graded test cell {grade_id!r} has no registered Check of the same grade_id "
            f"(known: {', '.join(sorted(checks)) or 'none'})"
        )
    check = checks[grade_id]
    visible = strip_hidden_tests(cell.source)
    return Item(
        grade_id,
        points,
        False,
        check.title,
        module_of(check),
        _check_call(visible),
        test_source=visible,
        files=tuple(check.files),
    )


def load_lab(path: Path) -> Lab:
    """Read a solution notebook's graded cells; raise ``ValueError`` naming any inconsistency."""
    from labutils.checks import all_checks

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    checks = all_checks()
    lab = Lab(name=path.stem, path=path)
    previous_markdown = ""
    for index, cell in enumerate(nb.cells):
        meta = nbgrader_meta(cell)
        if meta.get("grade"):
            grade_id, where = meta.get("grade_id"), f"{path.name} cell {index}"
            if not grade_id:
                raise ValueError(f"{where}: a graded cell without a grade_id")
            if grade_id in lab.grade_ids:
                raise ValueError(f"{where}: grade_id {grade_id!r} is used twice")
            points = _points(meta, where)
            if meta.get("solution"):
                question = question_of(cell.source) or previous_markdown
                lab.items.append(Item(grade_id, points, True, _first_line(question) or grade_id, question=question))
            else:
                lab.items.append(_auto_item(cell, grade_id, points, checks, where))
        if cell.cell_type == "markdown":
            previous_markdown = cell.source
    return lab


def load_labs(folder: Path) -> dict[str, Lab]:
    """Every solution notebook in ``folder`` that has graded cells, by file stem."""
    labs = {}
    for path in sorted(Path(folder).glob("*.ipynb")):
        lab = load_lab(path)
        if lab.items:
            labs[lab.name] = lab
    return labs


def match_lab(name: str, grade_ids: set[str], labs: dict[str, Lab]) -> Lab | None:
    """The lab a submitted notebook belongs to: same ``NN_`` prefix, else most shared grade_ids."""
    if name in labs:
        return labs[name]
    number = LAB_NUMBER.match(name)
    if number:
        same = [lab for lab in labs.values() if lab.number == number.group(1)]
        if len(same) == 1:
            return same[0]
    best, overlap = None, 0
    for lab in labs.values():
        shared = len(lab.grade_ids & grade_ids)
        if shared > overlap:
            best, overlap = lab, shared
    return best
