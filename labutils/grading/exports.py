"""Grades in the platforms' formats: ``python -m labutils export OUT --roster R --canvas C.csv --gradescope G.csv``.

Both exports are built from the records in ``OUT/results/`` and the hand-given scores of
``OUT/manual/`` (``manual``): a lab's score is its automatic points plus the written answers
scored so far.  Each student of the roster is one row, in the roster's order; a graded
submission is matched to its student with ``Roster.find`` (the folder names ``collect`` gives,
a ``submission`` alias, a Canvas download name, an identifier).

* **Canvas gradebook import** (the columns of Canvas's own gradebook export, which its
  importer reads back): ``Student, ID, SIS User ID, SIS Login ID, Section``, then one column per
  lab, then a ``Points Possible`` row under the header.  Canvas matches a row by ``ID``, else
  the SIS ids, else the name; a column titled ``Name (12345)`` updates the assignment with id
  12345, any other title creates an assignment of that name (``--column LAB=TITLE`` names
  them).  Only students with a graded submission have a row: Canvas's importer counts an empty
  cell where it holds a grade as a change, and leaves the students a file lacks alone (a
  student graded in one exported lab and not another gets an empty cell there: export the labs
  one at a time with ``--lab`` where that matters).
* **Gradescope's grade export** layout (every student of the roster; an empty score where
  there is no graded submission, as Gradescope writes it): ``First Name, Last Name, SID, Email, Sections``, then
  for each lab ``LAB``, ``LAB - Max Points``, ``LAB - Submission Time``, ``LAB - Lateness
  (H:M:S)`` (the grader does not know when work was handed in: the time is left empty and the
  lateness 00:00:00; Canvas's LATE mark is in ``collect``'s manifest).

Every cell is escaped so that a spreadsheet never runs it as a formula (names are the
students').  Graded submissions the roster does not know are named on the standard error and
make the exit code 1; the files are still written without them.
"""

from __future__ import annotations

import csv
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .labs import Lab
from .manual import ManualSheetError, apply_marks, read_marks
from .report import cell_text, fmt
from .results import from_record, read_records
from .roster import Roster

CANVAS_PEOPLE = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
GRADESCOPE_PEOPLE = ["First Name", "Last Name", "SID", "Email", "Sections"]
GRADESCOPE_PER_ASSIGNMENT = ("", " - Max Points", " - Submission Time", " - Lateness (H:M:S)")


@dataclass
class Scores:
    """Per roster row: per lab, the points earned; and what could not be matched."""

    by_row: dict[int, dict[str, float]] = field(default_factory=dict)
    unmatched: list[str] = field(default_factory=list)
    clashes: list[str] = field(default_factory=list)
    to_grade: float = 0.0  # points of written answers not scored by hand yet


def lab_total(lab: Lab) -> float:
    return sum(item.points for item in lab.items)


def collect_scores(out: Path, roster: Roster, labs: list[Lab]) -> Scores:
    """The scores of every graded submission in ``out``, matched to the roster; raises
    ``ManualSheetError`` when a manual-score sheet cannot be read (the scores would be wrong)."""
    by_name = {lab.name: lab for lab in labs}
    marks, bad = read_marks(out, labs)
    if bad:
        raise ManualSheetError("; ".join(bad.values()))
    results = {}
    for record in read_records(out):
        lab = by_name.get(record["lab"])
        if lab is not None:
            results[(record["student"], lab.name)] = from_record(record, lab)
    apply_marks(results, marks)
    scores, owner = Scores(), {}
    for (student, lab_name), result in sorted(results.items()):
        person = roster.find(student)
        if person is None:
            scores.unmatched.append(student)
            continue
        if owner.setdefault((person.row, lab_name), student) != student:
            scores.clashes.append(f"{owner[(person.row, lab_name)]} and {student} ({person.display_name}, {lab_name})")
            continue
        scores.by_row.setdefault(person.row, {})[lab_name] = result.earned
        scores.to_grade += result.to_grade
    scores.unmatched = sorted(set(scores.unmatched))
    return scores


def canvas_table(roster: Roster, scores: Scores, labs: list[Lab], titles: dict[str, str]) -> list[list[str]]:
    """Rows of the students with a graded submission only: Canvas's importer takes an empty cell
    where it has a grade for a change (to no grade), and leaves students absent from the file alone."""
    header = CANVAS_PEOPLE + [titles.get(lab.name, lab.name) for lab in labs]
    table = [header, ["Points Possible", "", "", "", ""] + [fmt(lab_total(lab)) for lab in labs]]
    for person in roster.people:
        row = [person.display_name, person.canvas_id, person.sis_user_id, person.sis_login_id, person.section]
        mine = scores.by_row.get(person.row, {})
        if mine:
            table.append(row + [fmt(mine[lab.name]) if lab.name in mine else "" for lab in labs])
    return table


def gradescope_table(roster: Roster, scores: Scores, labs: list[Lab], titles: dict[str, str]) -> list[list[str]]:
    header = list(GRADESCOPE_PEOPLE)
    for lab in labs:
        header += [titles.get(lab.name, lab.name) + suffix for suffix in GRADESCOPE_PER_ASSIGNMENT]
    table = [header]
    for person in roster.people:
        first, last = person.first_last
        row = [first, last, person.sid or person.sis_user_id, person.email, person.section]
        mine = scores.by_row.get(person.row, {})
        for lab in labs:
            row += [fmt(mine[lab.name]) if lab.name in mine else "", fmt(lab_total(lab)), "", "00:00:00"]
        table.append(row)
    return table


def write_table(path: Path, table: list[list[str]]) -> None:
    """A CSV (UTF-8, formula-safe cells), written atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".csv", dir=path.parent)
    with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([[cell_text(v) for v in row] for row in table])
    os.replace(tmp, path)


def parse_titles(pairs: list[str], labs: list[Lab]) -> dict[str, str]:
    """``["01=Lab 1 (12345)"]`` -> ``{"01_rnn_forward_numpy": "Lab 1 (12345)"}``; a lab by name or number."""
    titles = {}
    for pair in pairs:
        key, sep, title = pair.partition("=")
        found = [lab for lab in labs if key.strip() in (lab.name, lab.number)]
        if not sep or not title.strip() or len(found) != 1:
            names = ", ".join(lab.name for lab in labs)
            raise ValueError(f"--column {pair!r}: write LAB=TITLE with LAB one of {names} (or its number)")
        titles[found[0].name] = title.strip()
    return titles


def report_problems(scores: Scores) -> int:
    """Say what the exports lack; 1 when a graded submission is missing from them."""
    for words, names in (("are not in the roster", scores.unmatched), ("belong to one student", scores.clashes)):
        if names:
            more = f" and {len(names) - 10} more" if len(names) > 10 else ""
            print(f"left out: these graded submissions {words}: {', '.join(names[:10])}{more}", file=sys.stderr)
    if scores.unmatched:
        print("add them to the roster (column 'submission') and export again", file=sys.stderr)
    if scores.to_grade:
        print(f"note: {fmt(scores.to_grade)} points of written answers are not scored yet (OUT/manual/)")
    return 1 if scores.unmatched or scores.clashes else 0


def chosen_labs(out: Path, solutions, only=()) -> list[Lab]:
    """The labs with graded submissions in ``out`` (of those, the ones named in ``only``: names or numbers)."""
    from ..notebooks import SOLUTIONS
    from .labs import load_labs

    graded = {record["lab"] for record in read_records(out)}
    labs = [lab for lab in load_labs(Path(solutions) if solutions else SOLUTIONS).values() if lab.name in graded]
    unknown = [ref for ref in only if not any(ref in (lab.name, lab.number) for lab in labs)]
    if unknown:
        raise ValueError(f"--lab {unknown[0]!r}: no graded lab of that name or number in {out}")
    return [lab for lab in labs if not only or lab.name in only or lab.number in only]


def export(out, *, roster: Path, canvas=None, gradescope=None, columns=(), labs=(), solutions=None) -> int:
    """Write the Canvas and/or Gradescope CSV of the grades in ``out``; returns the exit code."""
    from .roster import RosterError, read_roster

    if canvas is None and gradescope is None:
        print("nothing to write: give --canvas FILE and/or --gradescope FILE", file=sys.stderr)
        return 2
    try:
        labs = chosen_labs(Path(out), solutions, tuple(labs))
        if not labs:
            raise ValueError(f"no graded submission in {out}: run python -m labutils grade first")
        people = read_roster(roster)
        titles = parse_titles(list(columns), labs)
        scores = collect_scores(Path(out), people, labs)
    except (RosterError, ValueError) as exc:
        print(exc, file=sys.stderr)
        return 2
    for path, build, head in ((canvas, canvas_table, 2), (gradescope, gradescope_table, 1)):
        if path is not None:
            table = build(people, scores, labs, titles)
            write_table(path, table)
            print(f"wrote {path}: {len(table) - head} students, {len(labs)} lab(s)")
    return report_problems(scores)
