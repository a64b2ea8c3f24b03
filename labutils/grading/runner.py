"""Grade a folder of submissions: run each notebook in a worker, judge the probes here.

Per submitted notebook (a *job*), in this, the grader's, process:

1. draw each automatic item's inputs with a fresh secret seed (``Check.inputs``) and write them
   to the job's scratch folder as ``.npz``;
2. start ``python -m labutils.grading.worker`` (its own session), which runs the notebook with its
   probes (up to the last probe) in a limited kernel and stops at the deadline; a backstop kills
   the worker and all it started if it overstays;
3. read each probe's outputs with ``numpy.load(allow_pickle=False)`` after checking the file's
   size, and hand them to ``Check.judge`` together with the inputs kept here -- so the verdict
   never depends on code or objects from the submission, only on the arrays its code returned.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .labs import Item, Lab
from .submissions import Notebook, instrument

MAX_PROBE_MB = 64  # uncompressed size of one probe's outputs
BACKSTOP_S = 45  # the worker stops itself at the deadline; this is for a worker that does not


@dataclass
class ItemResult:
    item: Item
    status: str  # passed | failed | error | not run | manual
    points: float | None  # earned; None for manual items
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
    seconds: float = 0.0

    @property
    def earned(self) -> float:
        return sum(r.points or 0 for r in self.items)


@dataclass
class RawRun:
    """What comes back from a worker: untrusted files, read with care."""

    report: dict
    outputs: dict[str, dict[str, np.ndarray]]
    errors: dict[str, dict]
    bad: dict[str, str]
    run_cells: list[dict]
    log_tail: str = ""


def kernel_env(jobs: int) -> dict[str, str]:
    """Environment of the kernels: the CI budget, one share of the cores, no plots shown, labutils importable."""
    threads = str(max(1, (os.cpu_count() or 1) // max(1, jobs)))
    root = str(Path(__file__).resolve().parents[2])
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    return {
        "LABUTILS_BUDGET": "ci",
        "MPLBACKEND": "Agg",
        "OMP_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
        "OPENBLAS_NUM_THREADS": threads,
        "TQDM_DISABLE": "1",
        "PYTHONPATH": path,
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    }


def load_probe_output(path: Path) -> dict[str, np.ndarray]:
    """Arrays from a probe's ``.npz``: size-checked, never unpickled; raises ``ValueError`` if unfit."""
    if path.stat().st_size > MAX_PROBE_MB * 2**20:
        raise ValueError(f"the output file is larger than {MAX_PROBE_MB} MB")
    try:
        with zipfile.ZipFile(path) as archive:
            total = sum(info.file_size for info in archive.infolist())
    except zipfile.BadZipFile:
        raise ValueError("the output file is not an .npz archive") from None
    if total > MAX_PROBE_MB * 2**20:
        raise ValueError(f"the outputs are larger than {MAX_PROBE_MB} MB")
    arrays = {}
    with np.load(path, allow_pickle=False) as data:
        for key in data.files:
            value = data[key]  # object arrays raise here: allow_pickle=False
            if not isinstance(value, np.ndarray) or value.dtype.hasobject:
                raise ValueError(f"output {key!r} is not an array of numbers or text")
            arrays[key] = value
    return arrays


def _kill_tree(pid: int) -> None:
    import psutil

    with contextlib.suppress(psutil.Error):
        parent = psutil.Process(pid)
        procs = [*parent.children(recursive=True), parent]
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        psutil.wait_procs(procs, timeout=5)


def run_notebook(
    notebook: Notebook,
    inputs: dict[str, dict[str, np.ndarray]],
    *,
    timeout: float,
    memory_mb: int,
    env: dict[str, str],
    scratch_root: Path,
) -> RawRun:
    """Run one notebook in a worker process and collect what its probes wrote (nothing is judged here)."""
    lab = notebook.lab
    scratch = Path(tempfile.mkdtemp(prefix="job-", dir=scratch_root))
    try:
        work, io_dir = scratch / "work", scratch / "io"
        work.mkdir()
        io_dir.mkdir()
        # The kernel's working directory holds a copy of the submitted notebook only.
        (work / notebook.path.name).write_text(_dumps(notebook.nb), encoding="utf-8")
        for grade_id, arrays in inputs.items():
            np.savez(io_dir / f"{grade_id}.in.npz", **arrays)
        run_nb, notes = instrument(notebook.nb, lab, io_dir)
        notebook.notes.extend(notes)
        (scratch / "run.ipynb").write_text(_dumps(run_nb), encoding="utf-8")
        job = {
            "notebook": str(scratch / "run.ipynb"),
            "cwd": str(work),
            "timeout": timeout,
            "memory_mb": memory_mb,
            "result": str(scratch / "result.json"),
            "jupyter_dir": str(scratch / "jupyter"),
            "env": env,
        }
        log_path = scratch / "worker.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "labutils.grading.worker"],
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=work,
                env={**os.environ, **env},
                start_new_session=True,
            )
            try:
                proc.communicate(json.dumps(job).encode(), timeout=timeout + BACKSTOP_S)
            except subprocess.TimeoutExpired:
                _kill_tree(proc.pid)
                proc.wait()
        report = _read_report(scratch / "result.json", timeout)
        outputs, errors, bad = {}, {}, {}
        for item in lab.auto_items:
            npz, err = io_dir / f"{item.grade_id}.out.npz", io_dir / f"{item.grade_id}.out.json"
            if npz.is_file():
                try:
                    outputs[item.grade_id] = load_probe_output(npz)
                except Exception as exc:  # noqa: BLE001 -- a malformed file is the submission's doing
                    bad[item.grade_id] = str(exc)[:300]
            elif err.is_file():
                try:
                    if err.stat().st_size > 2**20:
                        raise ValueError("too large")
                    errors[item.grade_id] = {k: str(v)[:2000] for k, v in dict(json.loads(err.read_text())).items()}
                except Exception:  # noqa: BLE001
                    errors[item.grade_id] = {"type": "Error", "message": "(unreadable error report)"}
        tail = ""
        if report.get("status") == "failed":
            with contextlib.suppress(OSError):
                tail = log_path.read_bytes()[-1500:].decode("utf-8", "replace")
        run_cells = [dict(cell.metadata.get("labutils", {})) for cell in run_nb.cells]
        return RawRun(report, outputs, errors, bad, run_cells, tail)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _dumps(nb) -> str:
    import nbformat

    return nbformat.writes(nb)


def _read_report(path: Path, timeout: float) -> dict:
    try:
        report = json.loads(path.read_text())
        return report if isinstance(report, dict) else {"status": "failed", "detail": "unreadable report"}
    except (OSError, ValueError):
        return {"status": "timeout", "cell": None, "detail": f"the worker was stopped after {timeout:g} s"}


# ---------------------------------------------------------------------------------- judging
def _describe_cell(run_cells: list[dict], index) -> str:
    if not isinstance(index, int) or not 0 <= index < len(run_cells):
        return ""
    meta = run_cells[index]
    if "probe" in meta:
        return f"while checking {meta['probe']}"
    if "code_cell" in meta:
        return f"in code cell {meta['code_cell']}"
    return ""


def judge_run(
    notebook: Notebook, inputs: dict[str, dict[str, np.ndarray]], raw: RawRun, *, timeout: float, memory_mb: int
) -> JobResult:
    """Score one notebook from its probes' arrays; every verdict is computed here."""
    from labutils.checks import get_check

    lab = notebook.lab
    result = JobResult(notebook.student, lab, notes=list(notebook.notes), seconds=float(raw.report.get("seconds", 0)))
    status = raw.report.get("status", "failed")
    where = _describe_cell(raw.run_cells, raw.report.get("cell"))
    stop = {
        "timeout": f"timed out after {timeout:g} s {where}".strip(),
        "memory": f"went over the memory limit of {memory_mb} MB {where}".strip(),
        "died": f"the kernel died {where} (a crash, or a call to os._exit/exit())".strip(),
        "failed": "the notebook could not be run: " + str(raw.report.get("detail", "unknown error")),
    }.get(status)
    if stop:
        result.reasons.append(stop)
    for error in raw.report.get("errors", [])[:50] if isinstance(raw.report.get("errors"), list) else []:
        if not isinstance(error, dict):
            continue
        cell = _describe_cell(raw.run_cells, error.get("cell"))
        if not cell.startswith("in code cell"):
            continue
        ename, evalue = str(error.get("ename", "")), str(error.get("evalue", ""))
        result.cell_errors.append(f"{cell[3:]}: {ename}: {evalue}".strip())
        if ename == "MemoryError" and not any("memory" in r for r in result.reasons):
            result.reasons.append(f"MemoryError {cell} (memory limit {memory_mb} MB)")
    if raw.log_tail:
        result.notes.append("worker log (end):\n" + raw.log_tail)

    for item in lab.items:
        if item.manual:
            from .submissions import find_answer

            result.items.append(ItemResult(item, "manual", None, answer=find_answer(notebook.nb, item)))
            continue
        gid = item.grade_id
        if gid in raw.outputs:
            try:
                get_check(gid).run_judge({k: v.copy() for k, v in inputs[gid].items()}, raw.outputs[gid])
                result.items.append(ItemResult(item, "passed", item.points, get_check(gid).success or "passed"))
            except AssertionError as exc:
                result.items.append(ItemResult(item, "failed", 0.0, str(exc) or "the check failed"))
            except KeyError as exc:
                result.items.append(ItemResult(item, "failed", 0.0, f"the result has no {exc}: was the check altered?"))
            except Exception as exc:  # noqa: BLE001 -- outputs of an unexpected kind
                result.items.append(
                    ItemResult(item, "failed", 0.0, f"the result could not be checked ({type(exc).__name__}: {exc})")
                )
        elif gid in raw.bad:
            result.items.append(ItemResult(item, "failed", 0.0, f"unusable result: {raw.bad[gid]}"))
        elif gid in raw.errors:
            err = raw.errors[gid]
            kind, message, line = err.get("type", "Error"), err.get("message", ""), err.get("where", "")
            if kind == "NotImplementedError":
                text = "not attempted: the exercise still raises NotImplementedError."
                status = "not done"
            else:
                text = f"your code raised {kind}: {message}".rstrip(": ")
                if line:
                    text += f" (at {line})"
                status = "error"
            result.items.append(ItemResult(item, status, 0.0, text))
        else:
            why = "the notebook stopped before this check could run" if stop else "this check did not run"
            result.items.append(ItemResult(item, "not run", 0.0, why + (f" ({stop})" if stop else "")))
    return result


def draw_inputs(lab: Lab, seed: int | None, key: str) -> dict[str, dict[str, np.ndarray]]:
    """Fresh inputs for each automatic item, from a seed the submission cannot know in advance."""
    from labutils.checks import get_check

    inputs = {}
    for item in lab.auto_items:
        if seed is None:
            item_seed = secrets.randbits(64)
        else:  # reproducible runs (tests): derived from the given seed, the student and the item
            item_seed = int.from_bytes(f"{seed}/{key}/{item.grade_id}".encode(), "little") % 2**63
        inputs[item.grade_id] = get_check(item.grade_id).inputs(item_seed)
    return inputs


def grade_notebook(
    notebook: Notebook,
    *,
    timeout: float,
    memory_mb: int,
    env: dict[str, str],
    scratch_root: Path,
    seed: int | None = None,
) -> JobResult:
    """Run and judge one notebook (used by ``grade_folder``; handy on its own in tests)."""
    start = time.monotonic()
    inputs = draw_inputs(notebook.lab, seed, notebook.student)
    raw = run_notebook(notebook, inputs, timeout=timeout, memory_mb=memory_mb, env=env, scratch_root=scratch_root)
    result = judge_run(notebook, inputs, raw, timeout=timeout, memory_mb=memory_mb)
    result.seconds = round(time.monotonic() - start, 1)
    return result
