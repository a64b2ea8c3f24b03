"""Grade submitted notebooks: ``python -m labutils grade SUBMISSIONS --out DIR``.

The safety model in one paragraph: each submission runs in its own sandbox (bubblewrap: own
PID and network namespaces, read-only views of Python and ``labutils`` without its judges, one
writable scratch folder; see ``sandbox``), under a wall-clock deadline and a memory limit.  The
kernel only *computes*: for each automatic item the grader draws fresh inputs (a seed logged in
the output folder, unknown to the submission) and adds a cell that calls the item's
``Check.probe`` on the student's objects and saves the raw results as ``.npz``.  The *verdict*
is reached outside, in the grader's process, by ``Check.judge`` on those arrays (read as hostile
files: no links, no pickle, size-capped) and the inputs the grader kept.  Labs judged from
handed-in files (lab 07's saved models) are not run at all: a file probe reads the files in the
same sandbox.  Each submission's result is written as a small JSON record the moment it is
graded; ``grades.csv`` and the feedback are rebuilt from the records.  See docs/GRADING.md.

Modules: ``labs`` (graded items from the solutions), ``safefiles`` and ``submissions`` (finding
and reading submissions), ``sandbox`` (the bwrap command line), ``jobs`` (one sandboxed run),
``worker``, ``kernel``, ``probe`` and ``fileprobe`` (what runs inside the sandbox), ``judging``
(verdicts), ``results`` (the records), ``report`` (CSV and feedback), ``grader`` (the run).
This file imports nothing heavy: the kernel imports ``labutils.grading.probe`` through it.
"""

from __future__ import annotations


def grade_folder(submissions, *, out, **options) -> int:
    """Grade a folder of submissions (see ``labutils.grading.grader.grade_folder``); returns the exit code."""
    from .grader import grade_folder as run

    return run(submissions, out=out, **options)
