"""Arrange a Canvas bulk download as one folder per student: ``python -m labutils collect DOWNLOAD --into SUBS``.

``DOWNLOAD`` is what Canvas's "Download Submissions" gives, as the ``.zip`` or unpacked: one
flat folder of files named ``sortablename[_LATE]_USERID_ATTACHMENTID_FILENAME``
(``roster.parse_canvas_name``).  ``collect`` copies each student's files into ``SUBS/<key>/``
under the names the student gave them (Canvas's ``-1``, ``-2`` revision suffixes removed), so
that a lab 07 notebook finds its ``sherlock_rnn.pt`` and ``sherlock_gru.pt`` beside it and the
grader's per-student layout applies.  ``<key>`` is the student's roster identifier (SIS login,
SIS user id, Canvas id...: ``roster.Person.key``) or ``canvas-USERID`` for someone the roster
lacks.  Of several uploads of one file name, the newest (largest attachment id) is kept.

Every name in the download is a student's text and the archive itself is untrusted: names
become paths only through ``safe_name`` (letters, digits, ``.+-_``; no folders, no ``..``),
entries in sub-folders, links, devices and anything over the size cap are listed and skipped,
never followed or extracted by name.  ``SUBS.csv`` (the manifest) lists every entry of the
download with what became of it.
"""

from __future__ import annotations

import contextlib
import csv
import os
import stat
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .report import cell_text
from .results import safe_name
from .roster import CanvasName, Roster, parse_canvas_name
from .safefiles import Unreadable, name_problem, read_regular, scan, shown, valid_name
from .submissions import MAX_HANDIN_MB

MAX_ENTRIES = 50_000
LIMIT = MAX_HANDIN_MB * 2**20


@dataclass
class Entry:
    """One file of the download: its name as shown, a reader for its bytes, or why it is skipped."""

    name: str
    read: Callable[[], bytes] | None
    problem: str = ""
    canvas: CanvasName | None = None
    folder: str = ""  # the student's folder in SUBS
    person: str = ""  # the roster's name for the student
    action: str = "skipped"
    target: str = ""


@dataclass
class Collected:
    entries: list[Entry] = field(default_factory=list)

    def count(self, action: str) -> int:
        return sum(e.action == action for e in self.entries)

    @property
    def students(self) -> int:
        return len({e.folder for e in self.entries if e.action == "copied"})

    @property
    def unmatched(self) -> list[str]:
        return sorted({e.folder for e in self.entries if e.action == "copied" and not e.person})


def _zip_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """The bytes of one archive member, read at most ``LIMIT`` bytes far (a zip bomb stops there)."""
    with archive.open(info) as member:
        data = member.read(LIMIT + 1)
    if len(data) > LIMIT:
        raise Unreadable(f"{shown(info.filename)} is over the {LIMIT / 2**20:g} MB allowed")
    return data


def _zip_entries(archive: zipfile.ZipFile) -> Iterator[Entry]:
    for info in archive.infolist()[:MAX_ENTRIES]:
        name = info.filename
        if info.is_dir():
            continue
        if "/" in name or "\\" in name or name in ("", ".", ".."):
            yield Entry(shown(name), None, "inside a folder of the archive (Canvas's downloads are flat): not read")
        elif stat.S_ISLNK(info.external_attr >> 16):
            yield Entry(shown(name), None, "a symbolic link: not read")
        elif info.file_size > LIMIT:
            yield Entry(shown(name), None, f"{info.file_size / 2**20:.1f} MB, over the {LIMIT / 2**20:g} MB allowed")
        else:
            yield Entry(shown(name), lambda info=info: _zip_member(archive, info))


def _folder_entries(folder: Path) -> Iterator[Entry]:
    for entry in scan(folder, MAX_ENTRIES):
        if not valid_name(entry.name):
            yield Entry(shown(entry.name), None, f"its name {name_problem(entry.name)}")
        elif entry.kind != "file":
            yield Entry(shown(entry.name), None, f"{entry.kind}: not read")
        else:
            yield Entry(entry.name, lambda path=entry.path: read_regular(path, LIMIT))


@contextlib.contextmanager
def entries_of(download: Path):
    """The files of a download (a folder, or a ``.zip``), each with a reader; a context manager."""
    download = Path(download)
    if download.is_dir():
        yield list(_folder_entries(download))
        return
    try:
        archive = zipfile.ZipFile(download)
    except (OSError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{download} is neither a folder nor a .zip archive ({exc})") from None
    with archive:
        yield list(_zip_entries(archive))


def _assign(entry: Entry, roster: Roster | None) -> None:
    """The student and file name a Canvas entry belongs to (or why it is skipped)."""
    canvas = parse_canvas_name(entry.name)
    if canvas is None:
        entry.problem = "not a Canvas download name (sortablename_USERID_ATTACHMENTID_file)"
        return
    entry.canvas = canvas
    person = roster.find(entry.name) if roster else None
    if person is not None:
        entry.folder, entry.person = person.key, person.display_name
    else:
        entry.folder = safe_name(f"canvas-{canvas.user_id}")
    entry.target = f"{entry.folder}/{safe_name(canvas.file)}"


def _choose(entries: list[Entry]) -> None:
    """Per student and file name, the newest upload is copied; the older ones are superseded."""
    newest: dict[str, Entry] = {}
    for entry in entries:
        if entry.read is None or entry.problem or entry.canvas is None:
            continue
        kept = newest.get(entry.target)
        if kept is None or entry.canvas.key > kept.canvas.key:
            newest[entry.target] = entry
    for entry in entries:
        if entry.canvas is not None and not entry.problem:
            entry.action = "copy" if newest.get(entry.target) is entry else "superseded"
            if entry.action == "superseded":
                entry.problem = f"a newer upload of the same file was kept ({newest[entry.target].name})"


def _write(into: Path, entry: Entry) -> None:
    path = into / entry.target
    path.parent.mkdir(exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    with os.fdopen(fd, "wb") as f:
        f.write(entry.read())
    os.replace(tmp, path)


def write_manifest(path: Path, result: Collected) -> None:
    header = ["file", "action", "student", "roster_name", "canvas_user_id", "late", "copied_to", "reason"]
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for e in result.entries:
            canvas = e.canvas
            row = [e.name, e.action, e.folder, e.person, canvas.user_id if canvas else "", ""]
            row[5] = ("yes" if canvas.late else "no") if canvas else ""
            row += [e.target if e.action == "copied" else "", e.problem]
            writer.writerow([cell_text(v) for v in row])


def collect(download: Path, into: Path, roster: Roster | None = None) -> Collected:
    """Copy a Canvas bulk download into ``into/<student>/<file>``; ``into`` must be new or empty."""
    into = Path(into)
    if into.exists() and (not into.is_dir() or any(into.iterdir())):
        raise ValueError(f"{into} already exists and is not an empty folder: choose a new one")
    result = Collected()
    with entries_of(download) as entries:
        result.entries = entries
        for entry in entries:
            if entry.read is not None:
                _assign(entry, roster)
        _choose(entries)
        into.mkdir(parents=True, exist_ok=True)
        for entry in (e for e in entries if e.action == "copy"):
            try:
                _write(into, entry)
                entry.action = "copied"
            except Exception as exc:  # noqa: BLE001 -- a corrupt or encrypted member is skipped with its reason
                entry.action, entry.problem = "skipped", f"not copied: {str(exc)[:300]}"
    return result
