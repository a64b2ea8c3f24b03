"""A student notebook holds the student's path only: no history of the course itself.

COURSE.md principle 7: no dates, no logs of the course's machines or runs ("the course's machine",
"in a quiet hour", tables of the solution's trainings). A fact a student needs is stated as a
fact ("on a 2-core laptop CPU a pass takes about ..."), never as an entry of our diary.

``history_in`` reads every cell of a student notebook (its source) and the notebook's metadata,
and names each phrase that tells our history. The tests below prove it against sentences that
must be caught and sentences that must not.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
STUDENT = sorted((ROOT / "notebooks").glob("*.ipynb"))

MONTHS = "(?-i:January|February|March|April|May|June|July|August|September|October|November|December)"
NUMBER = r"(?:\d+|one|two|three|four|five|six|seven|eight|nine|ten|several|many)"
MACHINE = r"(?:machine|computer|host|server|vm|cpu)s?"
WHEN = r"(?:hour|host|machine|computer|day|week|time|moment|period)s?"

# (what it is, pattern). Case-insensitive (month names excepted); \b keeps "2,031" or "x2030y" out.
HISTORY = [
    ("a year", r"\b20[23]\d\b"),
    ("a date", rf"\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{MONTHS}\b"),
    ("a date", rf"\b{MONTHS}\s+\d{{1,2}}(?:st|nd|rd|th)?\b"),
    ("a date", r"\b\d{4}-\d{2}-\d{2}\b"),
    ("our machine", rf"\bcourse's\s+(?:own\s+|shared\s+|\d-core\s+|cloud\s+)*{MACHINE}\b"),
    ("our machine", rf"\bour\s+(?:own\s+)?{MACHINE}\b"),
    ("a quiet or busy hour", rf"\b(?:quiet|busy)(?:er)?\s+{WHEN}\b"),
    ("a quiet or busy hour", r"\bin\s+a\s+(?:quiet|busy|fast|slow)\s+(?:hour|moment|minute|day)\b"),
    ("a session", r"\bthis\s+session\b"),
    ("an earlier time", r"\b(?:earlier|previous|last)\s+(?:weeks?|months?|sessions?)\b|\byesterday\b"),
    ("a log of runs", r"\b(?:every|each)\s+(?:training|run)\s+of\s+(?:the|this)\b"),
    ("a log of runs", r"\bruns?\s+of\s+(?:this|the)\s+(?:notebook|solution)\b"),
    ("a log of runs", r"\b(?:this|the)\s+(?:notebook|solution)'s\s+runs\b"),
    ("a log of runs", rf"\b{NUMBER}\s+(?:runs|trainings)\s+of\b|\bin\s+{NUMBER}\s+runs\b|\bone\s+run\s+in\s+\w+\b"),
]
HISTORY_RE = [(label, re.compile(pattern, re.IGNORECASE)) for label, pattern in HISTORY]

# A Markdown table whose header names what a training run measured, with at least two numeric
# rows, is a table of runs: the student's own runs belong in their notebook, ours do not.
RUN_COLUMNS = re.compile(r"\b(?:steps?|bits|loss|held-out|seconds|time|ms|machine|runs?|budget)\b", re.IGNORECASE)


def _tables(markdown: str) -> list[list[str]]:
    """The Markdown tables of a cell, each as its list of lines (header, rule, rows)."""
    tables, current = [], []
    for line in markdown.splitlines() + [""]:
        if line.strip().startswith("|"):
            current.append(line.strip())
        elif current:
            tables.append(current)
            current = []
    return tables


def _is_table_of_runs(table: list[str]) -> bool:
    if len(table) < 4 or not RUN_COLUMNS.search(table[0]):
        return False
    numeric = [row for row in table[2:] if re.search(r"\d", row)]
    return len(numeric) >= 2


def history_in(nb: nbformat.NotebookNode) -> list[str]:
    """Each place where ``nb`` speaks of the course's own history: "cell N: what ('excerpt')"."""
    found = []
    texts = [(f"cell {i}", cell.source, cell.cell_type) for i, cell in enumerate(nb.cells)]
    texts.append(("metadata", json.dumps(nb.metadata), "metadata"))
    for where, text, kind in texts:
        for label, pattern in HISTORY_RE:
            for match in pattern.finditer(text):
                found.append(f"{where}: {label} ({match.group(0)!r})")
        if kind == "markdown":
            found += [f"{where}: a table of runs ({t[0]!r})" for t in _tables(text) if _is_table_of_runs(t)]
    return found


# ----------------------------------------------------------------------------- the notebooks
def test_there_are_student_notebooks():
    assert STUDENT, "no notebooks/*.ipynb found: run python -m labutils generate"


@pytest.mark.parametrize("path", STUDENT, ids=lambda p: p.name)
def test_student_notebook_tells_no_history_of_the_course(path):
    found = history_in(nbformat.read(path, as_version=4))
    assert not found, (
        f"{path.name} speaks of the course's own history, which a student notebook must not "
        "(state a measured fact as a fact, without when or on whose machine; keep logs of runs out):\n  "
        + "\n  ".join(found)
    )


# ------------------------------------------------------------ the detector, proven by mutants
CAUGHT = {
    "On the course's machine a pass took 350 ms.": "our machine",
    "on the course's shared 2-core cloud machines, training takes ...": "our machine",
    "Measured on 23 November 2026 on an AMD EPYC.": "a year",
    "measured on 23 November on an AMD EPYC": "a date",
    "measured on November 23rd": "a date",
    "the log of 2026-11-23 says so": "a date",
    "In a quiet hour it read 9.9 million characters.": "a quiet or busy hour",
    "a straight-line decay reached 1.613 in a fast hour": "a quiet or busy hour",
    "1.645 bits on a busy host": "a quiet or busy hour",
    "a faster or quieter computer gets more steps": "a quiet or busy hour",
    "with this session's fresh-clone figures": "a session",
    "on the machine of earlier weeks, bfloat16 was slower": "an earlier time",
    "here is every training of this configuration": "a log of runs",
    "in this notebook's runs the GRU ended lower": "a log of runs",
    "two runs of this notebook's GRU": "a log of runs",
    "four runs of the timing cell gave 262 ms": "a log of runs",
    "one run in seven wrote such samples": "a log of runs",
    "| machine | steps | bits |\n|---|---|---|\n| A | 1,553 | 1.631 |\n| B | 1,121 | 1.685 |": "a table of runs",
}
INNOCENT = [
    "`labutils` is the course's helper package.",
    "batch-first (the course's convention)",
    "put it in the course's `data/` folder",
    "A hidden size of 2048 units, 2,031 steps, the year 1891 in the story.",
    "On a slow laptop, start with a few hundred thousand characters.",
    "On a 2-core laptop CPU a pass of a 2 x 512 GRU takes about a third of a second.",
    "Run the cell again: one run is one draw.",
    "May you find the notebook useful.",
    "| key | meaning | hints |\n|---|---|---|\n| `lr` | learning rate | 1e-3 to 5e-3 |\n| `seq_len` | steps | 25-100 |",
    "| name | shape | role |\n|---|---|---|\n| `W_xh` | `(H, D)` | input |\n| `W_hh` | `(H, H)` | recurrence |",
]


def _notebook_with(markdown: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# A lab\n\nSome honest prose."), nbformat.v4.new_markdown_cell(markdown)]
    return nb


@pytest.mark.parametrize("sentence", CAUGHT, ids=range(len(CAUGHT)))
def test_history_is_caught(sentence):
    found = history_in(_notebook_with(sentence))
    assert any(f"cell 1: {CAUGHT[sentence]}" in f for f in found), (
        f"{sentence!r} not caught as {CAUGHT[sentence]}: {found}"
    )


@pytest.mark.parametrize("sentence", INNOCENT, ids=range(len(INNOCENT)))
def test_honest_prose_is_not_caught(sentence):
    assert history_in(_notebook_with(sentence)) == []


def test_a_date_in_a_code_cell_or_in_the_metadata_is_caught():
    nb = _notebook_with("Nothing here.")
    nb.cells.append(nbformat.v4.new_code_cell("# measured on 3 March 2027\nx = 1"))
    assert any(f.startswith("cell 2: a year") for f in history_in(nb))
    nb = _notebook_with("Nothing here.")
    nb.metadata["note"] = "executed on 2026-11-23"
    assert any(f.startswith("metadata: a date") for f in history_in(nb))
