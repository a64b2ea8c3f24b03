"""One small JSON record per student and lab: written the moment a submission is graded.

``OUT/results/<student>/<lab>.json`` (the folder name is the student's name made safe, plus a
short hash of the exact name) holds everything ``grades.csv`` and the feedback are built from::

    {"schema": 1, "student": "alice", "lab": "01_rnn_forward_numpy", "source": "alice/01_....ipynb",
     "sha256": "...", "graded_at": "2025-01-01T12:00:00+00:00", "budget": "ci", "run_seed": 123,
     "seconds": 9.2, "stop": "ok", "grading_failed": false,
     "reasons": [], "notes": [], "cell_errors": [],
     "items": [{"grade_id": "lab01-softmax", "status": "passed", "points": 2, "out_of": 2,
                "message": "...", "seed": 456}, {"grade_id": "...", "status": "manual", "answer": "..."}]}

Each item's ``seed`` is derived from the run's seed, the student, the lab and the item
(``item_seed``), so ``--seed RUN_SEED --student NAME`` draws the very same inputs again and
reproduces a disputed score.  Records are written atomically (a temporary file, then
``os.replace``), so a run killed at any moment leaves whole records only; ``--resume`` keeps
those whose submission has not changed (same ``sha256``).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import tempfile
from pathlib import Path

from .judging import ItemResult, ItemStatus, JobResult, RunStop
from .labs import Lab
from .safefiles import Unreadable, read_regular, walk

SCHEMA = 1
RESULTS = "results"
MAX_RECORD_MB = 16


def item_seed(run_seed: int, student: str, lab: str, grade_id: str) -> int:
    """The seed of one item's inputs: a hash of the run's seed, the student, the lab and the item."""
    digest = hashlib.sha256(f"{run_seed}\0{student}\0{lab}\0{grade_id}".encode()).digest()
    return int.from_bytes(digest[:8], "little") % 2**63


def safe_name(name: str) -> str:
    """A file name made of ``name``'s letters, digits and ``.+-_`` only (never empty)."""
    return re.sub(r"[^\w.+-]+", "_", name).strip("._")[:80] or "student"


def record_path(out: Path, student: str, lab: str) -> Path:
    key = hashlib.sha256(student.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    return Path(out) / RESULTS / f"{safe_name(student)}-{key}" / f"{safe_name(lab)}.json"


def to_record(result: JobResult, *, source: str, sha256: str, budget: str, run_seed: int, seeds) -> dict:
    """The JSON-ready record of a graded submission."""
    items = []
    for r in result.items:
        entry = {"grade_id": r.item.grade_id, "status": r.status.value}
        if r.item.manual:
            entry["answer"] = r.answer
        else:
            entry |= {"points": r.points, "out_of": r.item.points, "message": r.message}
            entry["seed"] = seeds.get(r.item.grade_id)
        items.append(entry)
    return {
        "schema": SCHEMA,
        "student": result.student,
        "lab": result.lab.name,
        "source": source,
        "sha256": sha256,
        "graded_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "budget": budget,
        "run_seed": run_seed,
        "seconds": round(result.seconds, 1),
        "stop": result.stop.value,
        "grading_failed": result.grading_failed,
        "reasons": result.reasons,
        "notes": result.notes,
        "cell_errors": result.cell_errors,
        "items": items,
    }


def from_record(record: dict, lab: Lab) -> JobResult:
    """The ``JobResult`` a record describes, with the lab's items (an item the record lacks: not run)."""
    result = JobResult(record["student"], lab, stop=RunStop.of(record.get("stop")))
    result.reasons, result.notes = list(record.get("reasons", [])), list(record.get("notes", []))
    result.cell_errors, result.seconds = list(record.get("cell_errors", [])), float(record.get("seconds", 0))
    saved = {entry.get("grade_id"): entry for entry in record.get("items", [])}
    for item in lab.items:
        entry = saved.get(item.grade_id, {"status": "not run", "points": 0.0, "message": "not graded"})
        status = ItemStatus(entry.get("status", "not run"))
        if item.manual:
            result.items.append(ItemResult(item, ItemStatus.MANUAL, None, answer=entry.get("answer")))
        else:
            result.items.append(ItemResult(item, status, float(entry.get("points") or 0), entry.get("message", "")))
    return result


def write_record(out: Path, record: dict) -> Path:
    """Write a record atomically; returns its path."""
    path = record_path(out, record["student"], record["lab"])
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(record, f, indent=1, ensure_ascii=False)
    os.replace(tmp, path)
    return path


def read_record(out: Path, student: str, lab: str) -> dict | None:
    """The record of one student and lab, or None (none yet, or unreadable)."""
    try:
        record = json.loads(read_regular(record_path(out, student, lab), MAX_RECORD_MB * 2**20))
    except (Unreadable, ValueError, RecursionError):
        return None
    if not isinstance(record, dict) or record.get("schema") != SCHEMA or record.get("student") != student:
        return None
    return record


def read_records(folder: Path) -> list[dict]:
    """Every well-formed record under ``folder/results/`` (links and odd files skipped)."""
    root = Path(folder) / RESULTS
    if not root.is_dir():
        return []
    records = []
    for entry in walk(root, max_depth=2, limit=1_000_000):
        if entry.kind != "file" or not entry.name.endswith(".json") or entry.name.startswith(".tmp-"):
            continue
        try:
            record = json.loads(read_regular(entry.path, MAX_RECORD_MB * 2**20))
        except (Unreadable, ValueError, RecursionError):
            continue
        usable = isinstance(record, dict) and record.get("schema") == SCHEMA
        if usable and isinstance(record.get("student"), str) and isinstance(record.get("lab"), str):
            records.append(record)
    return records
