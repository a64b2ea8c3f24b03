"""Grading on many machines: ``grade --shard I/N`` grades one share, ``merge`` puts the shares together.

A batch scheduler runs ``python -m labutils grade SUBS --out OUT/shard-I --shard I/N`` for
I = 1..N (a Slurm job array, a Kubernetes indexed Job; docs/GRADING.md has both), each on its
own machine, over the same folder of submissions.  ``select`` gives shard I its notebooks: all
notebooks sorted by lab, then by student, dealt out in turn, so that every shard gets the same
share of every lab (to one notebook) whatever the names.  Each shard writes its records and its
own ``grades.csv`` as a run would.  Then

    python -m labutils merge OUT/shard-* --out OUT --submissions SUBS

copies the best record of every submission into ``OUT/results/`` (the one of the submission as
it is now: same SHA-256; else one whose grading did not fail; else the newest), appends the
shards' ``runs.jsonl`` lines (with the seeds) to ``OUT/runs.jsonl``, and writes ``grades.csv``,
the feedback and the manual-score sheets as one run over the whole folder would have written
them.  Item seeds depend on the run's seed, the student, the lab and the item, never on the
shard, so ``--seed S`` on every shard reproduces a single run with ``--seed S`` exactly.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .results import read_records, write_record
from .safefiles import Unreadable, read_regular
from .submissions import Notebook

MAX_LOG_MB = 16


class ShardError(ValueError):
    """A ``--shard`` that is not ``I/N`` with 1 <= I <= N."""


def parse_shard(text: str) -> tuple[int, int]:
    """``"2/8"`` -> ``(2, 8)``: shards are numbered from 1 (``$((JOB_COMPLETION_INDEX + 1))/N`` on Kubernetes)."""
    index, sep, count = str(text).partition("/")
    try:
        i, n = int(index), int(count)
    except ValueError:
        raise ShardError(f"--shard {text!r}: write it I/N, e.g. 3/8 for the third of eight shares") from None
    if not sep or n < 1 or not 1 <= i <= n:
        last = max(n, 1)
        raise ShardError(f"--shard {text!r}: shares are numbered 1 to N (e.g. 1/{last} ... {last}/{last})")
    return i, n


def _order(notebook: Notebook) -> tuple[bytes, bytes]:
    return notebook.lab.name.encode(), notebook.student.encode("utf-8", "surrogateescape")


def select(notebooks: list[Notebook], shard: tuple[int, int]) -> list[Notebook]:
    """The notebooks of shard ``(I, N)``: sorted by lab and student, every N-th from the I-th."""
    i, n = shard
    return [nb for k, nb in enumerate(sorted(notebooks, key=_order)) if k % n == i - 1]


def _rank(record: dict, sha256: str) -> tuple:
    """Orders the records of one submission: current files first, then graded, then newest."""
    return record.get("sha256") == sha256, not record.get("grading_failed"), str(record.get("graded_at", ""))


def _append_logs(shards: list[Path], out: Path) -> None:
    with open(out / "runs.jsonl", "a", encoding="utf-8") as log:
        for shard in shards:
            if shard.resolve() == out.resolve():
                continue
            try:
                lines = read_regular(shard / "runs.jsonl", MAX_LOG_MB * 2**20).decode("utf-8").splitlines()
            except (Unreadable, UnicodeDecodeError):
                continue
            for line in lines:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if isinstance(entry, dict):
                    log.write(json.dumps({**entry, "merged_from": shard.name}) + "\n")


def best_records(shards: list[Path], wanted: dict[tuple[str, str], Notebook]) -> dict[tuple[str, str], dict]:
    """The best record of every wanted (student, lab) among the shards' records."""
    best: dict[tuple[str, str], dict] = {}
    for shard in shards:
        for record in read_records(shard):
            key = (record["student"], str(record.get("lab")))
            if key not in wanted:
                continue
            sha256 = wanted[key].sha256
            if key not in best or _rank(record, sha256) > _rank(best[key], sha256):
                best[key] = record
    return best


def merge(shards, *, out, submissions, solutions=None) -> int:
    """Merge the shards' records into ``out`` and write the outputs of the whole folder; the exit code.

    0 when every notebook of ``submissions`` has a record whose grading did not fail, 1 otherwise
    (they are named), 2 on a usage error.
    """
    from ..notebooks import SOLUTIONS
    from .grader import finish, folders_problem, labs_in_play
    from .labs import load_labs
    from .submissions import discover

    shards, out, submissions = [Path(s) for s in shards], Path(out), Path(submissions)
    for folder in (*shards, submissions):
        if not folder.is_dir():
            print(f"{folder} is not a folder", file=sys.stderr)
            return 2
    problem = folders_problem(submissions, out)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    labs = load_labs(Path(solutions) if solutions else SOLUTIONS)
    students = discover(submissions, labs, exclude=out)
    wanted = {(nb.student, nb.lab.name): nb for s in students for nb in s.notebooks}
    out.mkdir(parents=True, exist_ok=True)
    best = best_records([out, *shards], wanted)
    for record in best.values():
        write_record(out, record)
    _append_logs(shards, out)
    csv_path = finish(out, students, labs_in_play(students, labs))
    missing = sorted(f"{s} ({lab})" for (s, lab) in wanted if (s, lab) not in best)
    failed = sorted(f"{s} ({lab})" for (s, lab), r in best.items() if r.get("grading_failed"))
    print(f"merged {len(best)} record(s) from {len(shards)} shard(s) for {len(wanted)} notebook(s); wrote {csv_path}")
    for words, names in (("no record (not graded by any shard)", missing), ("grading failed", failed)):
        if names:
            more = f" and {len(names) - 10} more" if len(names) > 10 else ""
            print(f"{len(names)} notebook(s) with {words}: {', '.join(names[:10])}{more}", file=sys.stderr)
    return 1 if missing or failed else 0
