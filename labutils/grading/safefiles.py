"""Read a folder of submissions as hostile: regular files only, never a link followed, every size capped.

* ``scan(folder)`` lists a folder's entries with ``os.scandir`` and ``lstat`` (links are
  reported as links, never followed), with their kind: ``"file"``, ``"folder"`` or the reason
  the entry is not read ("a symbolic link", "a FIFO", "a device"...).
* ``read_regular(path, limit)`` opens with ``O_NOFOLLOW | O_NONBLOCK`` (a link or a FIFO can
  neither redirect nor block the read), checks on the open file that it is a regular file and
  not over ``limit`` bytes, and reads at most that.
* ``json_depth(text)`` measures how deeply a JSON text nests *before* it is parsed, so that a
  notebook nested ten thousand levels deep is refused with a reason instead of raising
  ``RecursionError`` in the parser.
* ``shown(name)`` is a file name as it can be printed: a name that is not valid UTF-8 keeps its
  bytes visible as ``\\xNN``.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class Unreadable(Exception):
    """A file the grader will not read; the message is the reason, for the student's row."""


@dataclass(frozen=True)
class Entry:
    path: Path
    name: str  # as the OS gave it (surrogate escapes for bytes that are not UTF-8)
    kind: str  # "file", "folder", or why it is not read
    size: int


def kind_of(mode: int) -> str:
    """ "file", "folder", or what else the entry is, in words."""
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "folder"
    kinds = {
        stat.S_ISLNK: "a symbolic link (not followed)",
        stat.S_ISFIFO: "a FIFO (named pipe)",
        stat.S_ISCHR: "a character device",
        stat.S_ISBLK: "a block device",
        stat.S_ISSOCK: "a socket",
    }
    return next((words for test, words in kinds.items() if test(mode)), "not a regular file")


def shown(name: str) -> str:
    """``name`` printable: bytes that are not UTF-8 appear as ``\\xNN``, control characters escaped."""
    text = os.fsencode(name).decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def valid_name(name: str) -> bool:
    """True for a name that is UTF-8 and holds no control characters."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # surrogate escapes: bytes that are not UTF-8
        return False
    return name.isprintable()


def name_problem(name: str) -> str:
    """What is wrong with a name ``valid_name`` refuses, and what to do: for the student's row."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid UTF-8: rename it with plain letters and digits"
    return "holds a control character (a line break, a tab...): rename it with plain letters and digits"


def scan(folder: Path, limit: int = 10_000) -> list[Entry]:
    """The entries of ``folder`` (not recursive), sorted by name; links and devices as such.

    Raises ``Unreadable`` when the folder holds more than ``limit`` entries.
    """
    entries = []
    with os.scandir(folder) as it:
        for item in it:
            if len(entries) >= limit:
                raise Unreadable(f"the folder holds more than {limit} entries")
            try:
                st = item.stat(follow_symlinks=False)
            except OSError as exc:
                entries.append(Entry(Path(item.path), item.name, f"unreadable ({exc.strerror})", 0))
                continue
            entries.append(Entry(Path(item.path), item.name, kind_of(st.st_mode), st.st_size))
    return sorted(entries, key=lambda e: os.fsencode(e.name))


def walk(folder: Path, *, max_depth: int = 6, limit: int = 2_000) -> list[Entry]:
    """Every entry below ``folder``, depth first, never entering a link; at most ``limit`` entries."""
    found: list[Entry] = []
    pending = [(Path(folder), 0)]
    while pending:
        current, depth = pending.pop()
        for entry in scan(current, limit):
            found.append(entry)
            if len(found) > limit:
                raise Unreadable(f"more than {limit} files and folders")
            if entry.kind == "folder" and depth < max_depth:
                pending.append((entry.path, depth + 1))
    return found


def read_regular(path: Path, limit: int) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; ``Unreadable`` with the reason otherwise."""
    name = shown(Path(path).name)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if Path(path).is_symlink():
            raise Unreadable(f"{name} is a symbolic link (not followed)") from None
        raise Unreadable(f"{name} cannot be read ({exc.strerror or exc})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise Unreadable(f"{name} is {kind_of(st.st_mode)}, not a file")
        if st.st_size > limit:
            raise Unreadable(f"{name} is {st.st_size / 2**20:.1f} MB, over the {limit / 2**20:g} MB allowed")
        chunks, left = [], limit + 1
        while left > 0:
            chunk = os.read(fd, min(left, 2**20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > limit:  # it grew while being read
        raise Unreadable(f"{name} is over the {limit / 2**20:g} MB allowed")
    return data


def read_tail(path: Path, size: int) -> bytes:
    """The last ``size`` bytes of a regular file (a log a kernel may have filled): ``Unreadable`` otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise Unreadable(f"{shown(Path(path).name)} cannot be read ({exc.strerror or exc})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise Unreadable(f"{shown(Path(path).name)} is {kind_of(st.st_mode)}, not a file")
        os.lseek(fd, max(0, st.st_size - size), os.SEEK_SET)
        return os.read(fd, size)
    finally:
        os.close(fd)


_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)


def json_depth(raw: bytes) -> int:
    """How deeply the arrays and objects of a JSON text nest (strings ignored); no parsing."""
    skeleton = np.frombuffer(_STRING.sub(b"", raw), dtype=np.uint8)
    steps = np.zeros(skeleton.shape, dtype=np.int64)
    steps[(skeleton == ord("[")) | (skeleton == ord("{"))] = 1
    steps[(skeleton == ord("]")) | (skeleton == ord("}"))] = -1
    return int(np.cumsum(steps).max(initial=0))
