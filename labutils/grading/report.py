"""Write ``grades.csv`` and ``feedback/<student>.md`` from the graded results, atomically.

Both are rebuilt from the per-submission records (``results``) at the end of every run: they
are assembled in a fresh folder inside the output folder and moved into place in one step
each, replacing whatever was there (an entry in the way, even a folder named ``grades.csv``, is
moved aside and reported).
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

from .judging import ItemStatus, JobResult
from .labs import Lab
from .submissions import Student

MARK = {ItemStatus.PASSED: "✔", ItemStatus.MANUAL: "✎"}  # every other status: ✘


def fmt(points: float) -> str:
    return str(int(points)) if float(points).is_integer() else f"{points:g}"


def cell_text(value: str) -> str:
    """A CSV cell that a spreadsheet will not run as a formula (file names are the students')."""
    value = str(value).replace("\r", " ").replace("\n", " ")
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t") else value


def safe_file_name(name: str) -> str:
    return re.sub(r"[^\w.+-]+", "_", name).strip("._")[:80] or "student"


def status_of(student: Student, results: dict[str, JobResult], labs: list[Lab]) -> str:
    parts = list(student.problems)
    several = len(labs) > 1
    for lab in labs:
        result = results.get(lab.name)
        if result is None:
            if any(nb.lab is lab for nb in student.notebooks):
                parts.append(f"{lab.name}: not graded yet" if several else "not graded yet")
            elif several and student.notebooks:
                parts.append(f"{lab.name}: not submitted")
            continue
        parts += [f"{lab.name}: {r}" if several else r for r in result.reasons]
    if not student.notebooks and not student.problems:
        parts.append("nothing to grade")
    return "; ".join(parts) or "ok"


def rows(students: list[Student], results: dict[tuple[str, str], JobResult], labs: list[Lab]):
    """``grades.csv``: per item its points (a written answer: its hand-given score, or "manual"),
    ``total`` (automatic and hand-given points), ``out_of`` (every point of the labs) and
    ``to_grade`` (points of written answers not scored by hand yet)."""
    header = ["student"] + [item.grade_id for lab in labs for item in lab.items]
    header += ["total", "out_of", "to_grade", "status"]
    out_of = sum(item.points for lab in labs for item in lab.items)
    table = []
    for student in students:
        mine = {lab.name: results[(student.name, lab.name)] for lab in labs if (student.name, lab.name) in results}
        row, total, to_grade = [student.name], 0.0, 0.0
        for lab in labs:
            earned = {r.item.grade_id: r for r in mine[lab.name].items} if lab.name in mine else {}
            for item in lab.items:
                points = earned[item.grade_id].points if item.grade_id in earned else (None if item.manual else 0.0)
                if item.manual and points is None:
                    to_grade += item.points if lab.name in mine else 0.0
                    row.append("manual")
                else:
                    total += points
                    row.append(fmt(points))
        row += [fmt(total), fmt(out_of), fmt(to_grade), status_of(student, mine, labs)]
        table.append(row)
    return header, table


def _quote(text: str) -> str:
    return "\n".join("> " + line if line.strip() else ">" for line in text.strip().splitlines()) or "> (empty)"


def _item_table(result: JobResult) -> list[str]:
    lines = ["| | Item | Points | Result |", "|---|---|---|---|"]
    for r in result.items:
        item = r.item
        shown = f"– / {fmt(item.points)}" if r.points is None else f"{fmt(r.points)} / {fmt(item.points)}"
        label = r.status.value
        if item.manual:
            label = "to grade by hand" if r.points is None else "graded by hand"
        title = item.title.replace("|", "\\|")
        lines.append(f"| {MARK.get(r.status, '✘')} | {title} (`{item.grade_id}`) | {shown} | {label} |")
    return [*lines, ""]


def _item_details(r) -> list[str]:
    """A written answer to grade by hand, or why an automatic item lost its points."""
    item = r.item
    if item.manual:
        if r.points is None:
            lines = [f"### ✎ {item.grade_id}: to grade by hand ({fmt(item.points)} points)", ""]
        else:
            lines = [f"### ✎ {item.grade_id}: graded by hand, {fmt(r.points)} / {fmt(item.points)}", ""]
            lines += [f"Comment: {r.message}", ""] if r.message else []
        if item.question:
            lines += ["Question:", "", _quote(item.question), ""]
        if r.answer is None:
            return [*lines, "Your answer: *(the answer cell is missing from the notebook)*", ""]
        if not r.answer:
            return [*lines, "Your answer: *(no answer written)*", ""]
        return [*lines, "Your answer:", "", _quote(r.answer), ""]
    if r.status is ItemStatus.PASSED:
        return []
    return [f"### ✘ {item.title} (`{item.grade_id}`): {fmt(r.points or 0)} / {fmt(item.points)}", "", r.message, ""]


def _lab_section(result: JobResult) -> list[str]:
    lines = [f"## {result.lab.name}: {fmt(result.auto_earned)} / {fmt(result.lab.auto_points)}", ""]
    for reason in result.reasons:
        lines += [f"**The run stopped early:** {reason}. Checks that did not run score 0.", ""]
    for note in result.notes:
        lines += [f"*Note:* {note}", ""]
    lines += _item_table(result)
    for r in result.items:
        lines += _item_details(r)
    if result.cell_errors:
        lines += ["Errors raised while your notebook ran:", ""]
        lines += [f"* {error}" for error in result.cell_errors[:10]]
        if len(result.cell_errors) > 10:
            lines.append(f"* ... and {len(result.cell_errors) - 10} more")
        lines.append("")
    return lines


HOW_RUN = (
    "Each function was called on new random inputs (not those of the self-checks in the notebook) "
    "and its results were compared with an independent reference implementation."
)
HOW_FILES = (
    "Models you saved were loaded and measured by the grader itself: their held-out bits per character, "
    "and passages it sampled from them at your sampling temperature."
)


def feedback(student: Student, results: dict[tuple[str, str], JobResult], labs: list[Lab]) -> str:
    mine = [results[(student.name, lab.name)] for lab in labs if (student.name, lab.name) in results]
    earned = sum(r.auto_earned for r in mine)
    possible = sum(lab.auto_points for lab in labs if any(r.lab is lab for r in mine)) or sum(
        lab.auto_points for lab in labs
    )
    manual = sum(item.points for r in mine for item in r.lab.manual_items)
    lines = [f"# Feedback for {student.name}", "", f"Automatic score: **{fmt(earned)} / {fmt(possible)}** points."]
    pending = sum(r.to_grade for r in mine)
    if manual and pending:
        lines.append(f"Written answers ({fmt(manual)} points) are graded by hand.")
    elif manual:
        by_hand = sum(r.earned - r.auto_earned for r in mine)
        lines.append(f"Written answers, graded by hand: **{fmt(by_hand)} / {fmt(manual)}** points.")
    lines += ["", HOW_RUN, ""]
    if any(r.lab.from_files for r in mine):
        lines += [HOW_FILES, ""]
    for problem in student.problems:
        lines += [f"**Problem:** {problem}", ""]
    for note in student.notes:
        lines += [f"*Note:* {note}", ""]
    if not mine:
        lines += ["No notebook could be graded, so every automatic item scores 0.", ""]
    for result in mine:
        lines += _lab_section(result)
    return "\n".join(lines).rstrip() + "\n"


def write_csv(path: Path, header: list[str], table: list[list[str]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows([[cell_text(v) for v in row] for row in table])


def write_feedback(folder: Path, students: list[Student], results, labs: list[Lab]) -> None:
    folder.mkdir()
    used: set[str] = set()
    for student in students:
        name = safe_file_name(student.name)
        while name.lower() in used:
            name += "_"
        used.add(name.lower())
        (folder / f"{name}.md").write_text(feedback(student, results, labs), encoding="utf-8")


def _move_aside(path: Path, staging: Path) -> None:
    """Clear the way for ``path``: a link or file is removed, anything else moved into ``staging``."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif os.path.lexists(path):
        path.rename(staging / f"old-{path.name}")


def write_outputs(
    out: Path, students: list[Student], results: dict[tuple[str, str], JobResult], labs: list[Lab]
) -> Path:
    """Write ``out/grades.csv`` and ``out/feedback/``; both replace what was there, in one move each."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".grading-", dir=out))
    try:
        write_csv(staging / "grades.csv", *rows(students, results, labs))
        write_feedback(staging / "feedback", students, results, labs)
        target = out / "grades.csv"
        if os.path.lexists(target) and not (target.is_file() and not target.is_symlink()):
            print(f"warning: {target} was not a file; it was replaced", file=sys.stderr)
            _move_aside(target, staging)
        os.replace(staging / "grades.csv", target)
        _move_aside(out / "feedback", staging)
        os.replace(staging / "feedback", out / "feedback")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out / "grades.csv"
