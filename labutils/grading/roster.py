"""The class list: who a submission belongs to, from a roster file and Canvas's bulk-download names.

A **roster** is a CSV file with a header row.  These columns are understood (any case, any
order, others ignored), so that a Canvas gradebook export and a Gradescope roster or grade
export are rosters as they come:

* ``Student`` (Canvas: "Last, First") or ``Name``, or ``First Name`` and ``Last Name``;
* ``ID`` (the Canvas user id), ``SIS User ID``, ``SIS Login ID``, ``Section`` / ``Sections``,
  ``Email``, ``SID`` (Gradescope's student id);
* ``submission``: the names under which this student's work appears in a folder of
  submissions (a file, its stem or a folder name; several separated by ``;``).

Canvas's row ``Points Possible`` and rows that identify nobody are skipped.  ``Roster.find(name)``
says whose a name is: a ``submission`` alias, a Canvas bulk-download file name (by its user id),
or one of the identifiers above (e-mail also by the part before ``@``).  A name that fits two
students is nobody's (``find`` returns None and ``ambiguous`` names it).

**Canvas bulk downloads** (Assignments > Download Submissions) name each file
``sortablename[_LATE]_USERID_ATTACHMENTID_FILENAME`` (``anon_ID`` instead of the name and user
id when grading is anonymous): see ``CanvasName``.  When a student hands in a file whose name
their earlier upload already has, Canvas renames it ``name-1.ext``, ``name-2.ext``...; such a
revision is recognised both in the file name and after the attachment id (``_67890-1_``).
Every such name is the student's own text: it is parsed, never used as a path.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from .results import safe_name
from .safefiles import Unreadable, read_regular

MAX_ROSTER_MB = 32

#: Canvas's ``ContentZipper``: [sortable name, "LATE", user id] joined by "_", then
#: "_ATTACHMENTID_DISPLAYNAME".  The name is lower-case word characters and never holds "_digits_".
_CANVAS = re.compile(
    r"^(?:(?P<name>[^\W_]\w*?)_)??(?:(?P<late>LATE)_)?"
    r"(?:anon_(?P<anon>[A-Za-z0-9]+)|(?P<user>\d+))_(?P<attachment>\d+)(?:-(?P<arev>\d+))?_(?P<file>.+)$",
    re.S,
)
_REVISION = re.compile(r"^(?P<base>.+?)-(?P<rev>\d{1,3})(?P<ext>\.[^.]*)?$", re.S)

#: Header (lower-case, single spaces) -> field of ``Person``.
COLUMNS = {
    "student": "name",
    "name": "name",
    "student name": "name",
    "first name": "first",
    "last name": "last",
    "id": "canvas_id",
    "student id": "canvas_id",
    "sis user id": "sis_user_id",
    "sis login id": "sis_login_id",
    "section": "section",
    "sections": "section",
    "email": "email",
    "sid": "sid",
    "submission": "aliases",
    "submissions": "aliases",
}
IDENTIFIERS = ("sis_login_id", "sis_user_id", "canvas_id", "email", "sid")


class RosterError(ValueError):
    """A roster file that cannot be used; the message says where and what to change."""


@dataclass(frozen=True)
class CanvasName:
    """The parts of a Canvas bulk-download file name."""

    user_id: str  # the Canvas user id, or "anon_XXXXX" under anonymous grading
    attachment: int  # Canvas's id of the uploaded file: a later upload has a larger one
    file: str  # the name the student gave the file, without Canvas's "-N" revision suffix
    revision: int  # Canvas's "-N" (0 for the first upload of that name)
    late: bool
    sortable_name: str = ""

    @property
    def key(self) -> tuple[int, int]:
        """Orders the uploads of one file name: the newest last."""
        return self.attachment, self.revision


def parse_canvas_name(name: str) -> CanvasName | None:
    """The parts of a Canvas bulk-download name, or None when ``name`` is not one."""
    match = _CANVAS.match(name)
    if not match:
        return None
    file, revision = strip_revision(match["file"])
    user = match["user"] or f"anon_{match['anon']}"
    revision = max(revision, int(match["arev"] or 0))
    return CanvasName(user, int(match["attachment"]), file, revision, bool(match["late"]), match["name"] or "")


def strip_revision(file: str) -> tuple[str, int]:
    """``("01_lab.ipynb", 2)`` for Canvas's renamed upload ``01_lab-2.ipynb``; ``(file, 0)`` otherwise."""
    match = _REVISION.match(file)
    if not match:
        return file, 0
    return match["base"] + (match["ext"] or ""), int(match["rev"])


@dataclass
class Person:
    """One row of the roster."""

    row: int  # line of the roster file, for messages
    name: str = ""
    first: str = ""
    last: str = ""
    canvas_id: str = ""
    sis_user_id: str = ""
    sis_login_id: str = ""
    section: str = ""
    email: str = ""
    sid: str = ""
    aliases: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """The student's folder name in a collected submissions folder (safe as a path)."""
        for value in (*(getattr(self, f) for f in IDENTIFIERS), self.display_name):
            if value:
                return safe_name(value)
        return f"row{self.row}"

    @property
    def display_name(self) -> str:
        """ "Last, First" as Canvas writes it (or the name as given)."""
        if self.name:
            return self.name
        return ", ".join(p for p in (self.last, self.first) if p)

    @property
    def first_last(self) -> tuple[str, str]:
        """(first name, last name), split from "Last, First" or "First Last" when not given apart."""
        if self.first or self.last:
            return self.first, self.last
        if "," in self.name:
            last, first = self.name.split(",", 1)
            return first.strip(), last.strip()
        first, _, last = self.name.strip().rpartition(" ")
        return (first, last) if first else (last, "")


@dataclass
class Roster:
    people: list[Person] = field(default_factory=list)
    index: dict[str, list[Person]] = field(default_factory=lambda: defaultdict(list), repr=False)

    def add(self, person: Person) -> None:
        self.people.append(person)
        values = {*person.aliases, *(Path(a).stem for a in person.aliases)}
        values |= {getattr(person, f) for f in IDENTIFIERS} | {person.key}
        if person.email and "@" in person.email:
            values.add(person.email.split("@", 1)[0])
        for value in values:
            if value and person not in self.index[value.casefold()]:
                self.index[value.casefold()].append(person)

    def lookup(self, value: str) -> list[Person]:
        return list(self.index.get(value.casefold(), []))

    def find(self, name: str) -> Person | None:
        """The student ``name`` (a submission's file or folder name) belongs to, or None."""
        found = self.candidates(name)
        return found[0] if len(found) == 1 else None

    def candidates(self, name: str) -> list[Person]:
        for value in (name, Path(name).stem):
            if self.lookup(value):
                return self.lookup(value)
        canvas = parse_canvas_name(name)
        if canvas is not None:
            return [p for p in self.people if p.canvas_id == canvas.user_id]
        return []

    def ambiguous(self, name: str) -> list[Person]:
        """The students a name fits when it fits more than one (else [])."""
        found = self.candidates(name)
        return found if len(found) > 1 else []


def _header(cells: list[str]) -> list[str | None]:
    return [COLUMNS.get(" ".join(c.replace("\ufeff", "").split()).casefold()) for c in cells]


def _person(row_number: int, fields: list[str | None], cells: list[str]) -> Person | None:
    values: dict[str, str] = {}
    for name, cell in zip(fields, cells):
        if name and cell.strip() and name not in values:
            values[name] = cell.strip()
    if "points possible" in values.get("name", "").casefold() and not values.get("canvas_id"):
        return None  # Canvas's second row
    aliases = tuple(a.strip() for a in values.pop("aliases", "").split(";") if a.strip())
    person = Person(row_number, aliases=aliases, **values)
    if not any(getattr(person, f) for f in IDENTIFIERS) and not aliases and not person.display_name:
        return None
    return person


def parse_roster(text: str, source: str = "roster") -> Roster:
    """A ``Roster`` from a CSV text; ``RosterError`` naming the line when it cannot be one."""
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    if not rows:
        raise RosterError(f"{source} is empty: it needs a header row (e.g. Student,ID,SIS Login ID,Section)")
    fields = _header(rows[0])
    if not any(f in IDENTIFIERS or f == "aliases" for f in fields):
        raise RosterError(
            f"{source}: the header names no identifying column; it needs one of ID, SIS User ID, "
            f"SIS Login ID, Email, SID or submission (it has: {', '.join(rows[0][:8])})"
        )
    roster = Roster()
    for number, cells in enumerate(rows[1:], start=2):
        person = _person(number, fields, cells)
        if person is not None:
            roster.add(person)
    clashes = sorted(key for key, n in Counter(p.key for p in roster.people).items() if n > 1)
    if clashes:
        raise RosterError(f"{source}: several rows share the identifier {clashes[0]!r}; each student needs their own")
    return roster


def read_roster(path: Path) -> Roster:
    """The roster in a CSV file (UTF-8, with or without Excel's byte-order mark)."""
    try:
        raw = read_regular(Path(path), MAX_ROSTER_MB * 2**20)
    except Unreadable as exc:
        raise RosterError(f"roster {path}: {exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise RosterError(f"roster {path} is not UTF-8 text: save it as 'CSV UTF-8'") from None
    return parse_roster(text, str(path))
