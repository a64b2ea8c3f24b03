"""Judge one submission from the raw outputs its run left: every verdict is reached here.

The run (``jobs``) hands back a ``RawRun``: the worker's report (how far the notebook got and
why it stopped) and, per automatic item, the probe's arrays, the error its code raised, or why
its output file was unusable.  ``judge_run`` turns that into a ``JobResult``: one
``ItemResult`` per graded item, with an ``ItemStatus`` and a message for the student.  Only the
arrays are evidence, and they are judged by ``Check.run_judge`` in this (the grader's) process.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from .labs import Item, Lab
from .submissions import Notebook, find_answer


class ItemStatus(str, Enum):
    """What became of one graded item."""

    PASSED = "passed"  # the judge accepted the outputs: full points
    FAILED = "failed"  # outputs came back and the judge rejected them (or they were unusable)
    ERROR = "error"  # the student's code raised while the probe called it
    NOT_DONE = "not done"  # the exercise still raises NotImplementedError (or its file is missing)
    NOT_RUN = "not run"  # the run stopped (time, memory, crash) before the item's probe ran
    MANUAL = "manual"  # a written answer, graded by hand


class RunStop(str, Enum):
    """Why a run ended; ``OK`` when it went through (whatever the scores)."""

    OK = "ok"
    TIMEOUT = "timeout"
    MEMORY = "memory"
    DISK = "disk"  # it wrote more into its scratch folder than the grader allows
    DIED = "died"  # the kernel died: a crash, os._exit, a signal
    LOST = "lost"  # the sandbox ended without a report (its worker was killed from inside)
    FAILED = "failed"  # grading itself failed: the kernel or sandbox could not start

    @classmethod
    def of(cls, value) -> RunStop:
        try:
            return cls(value)
        except ValueError:
            return cls.FAILED


@dataclass
class ItemResult:
    item: Item
    status: ItemStatus
    points: float | None  # earned; None for a written answer not scored by hand yet
    message: str = ""
    answer: str | None = None  # manual items: the student's text (None: the cell is gone)


@dataclass
class JobResult:
    """One notebook graded: the items' results and why the run stopped, if it did."""

    student: str
    lab: Lab
    items: list[ItemResult] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)  # for the CSV's status column
    notes: list[str] = field(default_factory=list)  # feedback only
    cell_errors: list[str] = field(default_factory=list)
    stop: RunStop = RunStop.OK
    seconds: float = 0.0  # wall-clock seconds from drawing the inputs to the verdicts

    @property
    def earned(self) -> float:
        """Points of the automatic items and of the written answers scored by hand so far."""
        return sum(r.points or 0 for r in self.items)

    @property
    def auto_earned(self) -> float:
        return sum(r.points or 0 for r in self.items if not r.item.manual)

    @property
    def to_grade(self) -> float:
        """Points of the written answers not scored by hand yet."""
        return sum(r.item.points for r in self.items if r.item.manual and r.points is None)

    @property
    def grading_failed(self) -> bool:
        """True when the grader, not the submission, is why items went unjudged."""
        return self.stop is RunStop.FAILED


@dataclass
class RawRun:
    """What comes back from a run: untrusted, already read with size caps and without pickle."""

    report: dict
    outputs: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    errors: dict[str, dict] = field(default_factory=dict)
    bad: dict[str, str] = field(default_factory=dict)
    run_cells: list[dict] = field(default_factory=list)
    log_tail: str = ""


def describe_cell(run_cells: list[dict], index) -> str:
    """ "in code cell 3" or "while checking lab01-softmax" for a cell of the run notebook."""
    if not isinstance(index, int) or not 0 <= index < len(run_cells):
        return ""
    meta = run_cells[index]
    if "probe" in meta:
        return f"while checking {meta['probe']}"
    if "code_cell" in meta:
        return f"in code cell {meta['code_cell']}"
    return ""


def stop_reason(raw: RawRun, stop: RunStop, *, timeout: float, memory_mb: int) -> str:
    """The CSV's words for why a run stopped ("" when it did not)."""
    where = describe_cell(raw.run_cells, raw.report.get("cell"))
    reasons = {
        RunStop.TIMEOUT: f"timed out after {timeout:g} s {where}",
        RunStop.MEMORY: f"went over the memory limit of {memory_mb} MB {where}",
        RunStop.DISK: f"wrote more than the {raw.report.get('detail', 'allowed')} a run may write {where}",
        RunStop.DIED: f"the kernel died {where} (a crash, or a call to os._exit/exit())",
        RunStop.LOST: _lost(raw.report),
        RunStop.FAILED: "grading failed: " + str(raw.report.get("detail", "unknown error"))[:500],
    }
    return reasons.get(stop, "").strip()


def _lost(report: dict) -> str:
    """Why a run left no usable report: its grading process was killed, or the report was spoiled."""
    detail = str(report.get("detail") or "")[:300]
    if detail:
        return f"the run ended without a usable report: {detail}; the notebook may have tampered with it"
    return "the run ended without a report: its grading process was killed from inside the notebook"


def _cell_errors(raw: RawRun, result: JobResult, memory_mb: int) -> None:
    """Errors the student's own cells raised (not the probes'), for the feedback."""
    errors = raw.report.get("errors")
    for error in errors[:50] if isinstance(errors, list) else []:
        if not isinstance(error, dict):
            continue
        where = describe_cell(raw.run_cells, error.get("cell"))
        if not where.startswith("in code cell"):
            continue
        ename, evalue = str(error.get("ename", ""))[:200], str(error.get("evalue", ""))[:500]
        result.cell_errors.append(f"{where.removeprefix('in ')}: {ename}: {evalue}".strip())
        if ename == "MemoryError" and not any("memory" in r for r in result.reasons):
            result.reasons.append(f"MemoryError {where} (memory limit {memory_mb} MB)")


def judge_item(item: Item, inputs: dict[str, np.ndarray], outputs: dict[str, np.ndarray]) -> ItemResult:
    """The verdict on one item's outputs: passed, or failed with the judge's advice."""
    from labutils.checks import get_check

    check = get_check(item.grade_id)
    try:
        check.run_judge({k: v.copy() for k, v in inputs.items()}, outputs)
    except AssertionError as exc:
        return ItemResult(item, ItemStatus.FAILED, 0.0, str(exc) or "the check failed")
    except KeyError as exc:  # the outputs lack an array the judge reads
        return ItemResult(item, ItemStatus.FAILED, 0.0, f"the result lacks the output {exc}: it is incomplete")
    except Exception as exc:  # noqa: BLE001 -- outputs of an unexpected kind
        message = f"the result could not be checked ({type(exc).__name__}: {str(exc)[:300]})"
        return ItemResult(item, ItemStatus.FAILED, 0.0, message)
    return ItemResult(item, ItemStatus.PASSED, item.points, check.success or "passed")


def _raised(item: Item, err: dict) -> ItemResult:
    kind, message, line = err.get("type", "Error"), err.get("message", ""), err.get("where", "")
    if kind == "NotImplementedError":
        return ItemResult(
            item, ItemStatus.NOT_DONE, 0.0, "not attempted: the exercise still raises NotImplementedError."
        )
    if kind == "MissingFile":
        return ItemResult(item, ItemStatus.NOT_DONE, 0.0, message)
    if kind == "StudentCodeError":  # the check's own advice already names the function and its error
        text = message
    else:
        text = f"your code raised {kind}: {message}".rstrip(": ")
    text += f" (at {line})" if line else ""
    return ItemResult(item, ItemStatus.ERROR, 0.0, text)


def _item_result(item: Item, notebook: Notebook, inputs, raw: RawRun, stop_text: str) -> ItemResult:
    gid = item.grade_id
    if item.manual:
        return ItemResult(item, ItemStatus.MANUAL, None, answer=find_answer(notebook.nb, item))
    if gid in raw.outputs:
        return judge_item(item, inputs[gid], raw.outputs[gid])
    if gid in raw.bad:
        return ItemResult(item, ItemStatus.FAILED, 0.0, f"unusable result: {raw.bad[gid]}")
    if gid in raw.errors:
        return _raised(item, raw.errors[gid])
    why = f"the notebook stopped before this check could run ({stop_text})" if stop_text else "this check did not run"
    return ItemResult(item, ItemStatus.NOT_RUN, 0.0, why)


def judge_run(notebook: Notebook, inputs: dict[str, dict[str, np.ndarray]], raw: RawRun, *, timeout, memory_mb):
    """Score one notebook from its probes' arrays; every verdict is computed here."""
    stop = RunStop.of(raw.report.get("status", "failed"))
    result = JobResult(notebook.student, notebook.lab, notes=list(notebook.notes), stop=stop)
    stop_text = stop_reason(raw, stop, timeout=timeout, memory_mb=memory_mb)
    if stop_text:
        result.reasons.append(stop_text)
    _cell_errors(raw, result, memory_mb)
    if raw.log_tail:
        result.notes.append("worker log (end):\n" + raw.log_tail)
    result.items = [_item_result(item, notebook, inputs, raw, stop_text) for item in notebook.lab.items]
    return result
