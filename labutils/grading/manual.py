"""Written answers graded by hand: one sheet per lab, ``OUT/manual/<lab>.csv``, merged into the grades.

Every grading run (and ``merge``) (re)writes, for each lab with written answers, a CSV with one
row per student and question::

    student, grade_id, question, out_of, score, comment, note, answer, answer_id

``score`` and ``comment`` are the instructor's: they are left empty for new rows and kept as
they are, whatever the run, for rows already scored (a row whose student is no longer in the
folder is kept too).  ``note`` says when an answer changed after it was scored (``answer_id``
is a short hash of the answer); it stays until the instructor deletes it.  The next run,
``merge`` and ``export`` read the scores back: they go into ``grades.csv`` (the item's column,
the total), the student's feedback (with the comment) and the exports.  A sheet that cannot
be read (a score that is not a number or is out of range) is named with its line, left
untouched and not used until it is fixed.

The answers are the students' text: cells that a spreadsheet would run as formulas are escaped.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .judging import JobResult
from .labs import Lab
from .report import cell_text, fmt
from .results import safe_name
from .safefiles import Unreadable, read_regular

SHEETS = "manual"
HEADER = ["student", "grade_id", "question", "out_of", "score", "comment", "note", "answer", "answer_id"]
MAX_SHEET_MB = 64
#: The note on a scored answer that changed since; it stays until the instructor deletes it.
CHANGED = "answer changed after it was scored"


class ManualSheetError(ValueError):
    """A manual-score sheet that cannot be used; the message names the file and line."""


@dataclass
class Mark:
    """One hand-given score (None: not scored yet) and what it was given for."""

    score: float | None
    comment: str = ""
    answer_id: str = ""
    row: dict | None = None  # the sheet's row as read, kept for rows no run regenerates


def answer_id(answer: str | None) -> str:
    return hashlib.sha256((answer or "").encode("utf-8", "surrogatepass")).hexdigest()[:12] if answer else ""


def sheet_path(out: Path, lab: str) -> Path:
    return Path(out) / SHEETS / f"{safe_name(lab)}.csv"


def text_cell(value: str) -> str:
    """A cell a spreadsheet will not run as a formula; unlike ``cell_text`` it keeps line breaks."""
    value = str(value)
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def plain(value: str) -> str:
    """A cell as it was before ``text_cell``/``cell_text`` escaped it."""
    return value[1:] if value[:1] == "'" and value[1:2] in ("=", "+", "-", "@", "\t", "\r") else value


def _score(text: str, item_points: float, where: str) -> float | None:
    text = text.strip()
    if not text:
        return None
    try:
        score = float(text.replace(",", "."))
    except ValueError:
        raise ManualSheetError(f"{where}: the score {text!r} is not a number") from None
    if not 0 <= score <= item_points:
        raise ManualSheetError(f"{where}: the score {text} is outside 0 to {fmt(item_points)}")
    return score


def read_sheet(path: Path, lab: Lab) -> dict[tuple[str, str], Mark]:
    """The marks in one lab's sheet, by (student, grade_id); ``ManualSheetError`` naming what is wrong."""
    try:
        text = read_regular(path, MAX_SHEET_MB * 2**20).decode("utf-8-sig")
    except (Unreadable, UnicodeDecodeError) as exc:
        raise ManualSheetError(f"{path.name}: {exc}") from None
    reader = csv.DictReader(io.StringIO(text))
    missing = {"student", "grade_id", "score"} - set(reader.fieldnames or [])
    if missing:
        raise ManualSheetError(f"{path.name}: the columns {', '.join(sorted(missing))} are missing")
    points = {item.grade_id: item.points for item in lab.manual_items}
    marks: dict[tuple[str, str], Mark] = {}
    for row in reader:
        where = f"{path.name} line {reader.line_num}"
        student, grade_id = plain(row.get("student") or ""), (row.get("grade_id") or "").strip()
        if grade_id not in points:
            raise ManualSheetError(f"{where}: {grade_id!r} is not a written answer of {lab.name}")
        if (student, grade_id) in marks:
            raise ManualSheetError(f"{where}: a second row for {student} and {grade_id}")
        score = _score(row.get("score") or "", points[grade_id], where)
        marks[(student, grade_id)] = Mark(score, plain(row.get("comment") or ""), row.get("answer_id") or "", row)
    return marks


def read_marks(out: Path, labs: list[Lab]) -> tuple[dict[tuple[str, str, str], Mark], dict[str, str]]:
    """Every sheet's marks by (student, lab, grade_id), and {lab: why its sheet was not used}."""
    marks, bad = {}, {}
    for lab in labs:
        path = sheet_path(out, lab.name)
        if not lab.manual_items or not os.path.lexists(path):
            continue
        try:
            sheet = read_sheet(path, lab)
        except ManualSheetError as exc:
            bad[lab.name] = str(exc)
            continue
        marks |= {(student, lab.name, gid): mark for (student, gid), mark in sheet.items()}
    return marks, bad


def apply_marks(results: dict[tuple[str, str], JobResult], marks: dict[tuple[str, str, str], Mark]) -> None:
    """Put the scored marks into the results' manual items (points and the comment as the message)."""
    for (student, lab), result in results.items():
        for r in result.items:
            mark = marks.get((student, lab, r.item.grade_id))
            if r.item.manual and mark is not None and mark.score is not None:
                r.points, r.message = mark.score, mark.comment


def _rows(lab: Lab, results: dict[tuple[str, str], JobResult], old: dict[tuple[str, str], Mark]) -> list[list]:
    rows, done = [], set()
    for (student, lab_name), result in results.items():
        if lab_name != lab.name:
            continue
        for r in (r for r in result.items if r.item.manual):
            mark = old.get((student, r.item.grade_id)) or Mark(None)
            aid = answer_id(r.answer)
            sticky = mark.row is not None and plain(mark.row.get("note") or "") == CHANGED
            note = CHANGED if mark.score is not None and (mark.answer_id != aid or sticky) else ""
            score = "" if mark.score is None else fmt(mark.score)
            answer = "(no answer cell)" if r.answer is None else r.answer
            rows.append([student, r.item.grade_id, r.item.title, fmt(r.item.points), score, mark.comment, note])
            rows[-1] += [answer, aid]
            done.add((student, r.item.grade_id))
    for (student, grade_id), mark in old.items():  # the instructor's rows are never dropped
        if (student, grade_id) not in done and mark.row is not None:
            kept = [plain(mark.row.get(column) or "") for column in HEADER]
            kept[HEADER.index("note")] = "no graded notebook of this student in the last run"
            rows.append(kept)
    return rows


def write_sheets(out: Path, results: dict[tuple[str, str], JobResult], labs: list[Lab], skip=()) -> list[Path]:
    """(Re)write the sheet of every lab with written answers, keeping the instructor's marks."""
    written = []
    for lab in labs:
        if not lab.manual_items or lab.name in skip:
            continue
        path = sheet_path(out, lab.name)
        old = read_sheet(path, lab) if os.path.lexists(path) else {}
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".csv", dir=path.parent)
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(HEADER)
            for row in _rows(lab, results, old):
                writer.writerow([text_cell(v) if i in (0, 5, 7) else cell_text(v) for i, v in enumerate(row)])
        os.replace(tmp, path)
        written.append(path)
    return written
