"""Run one submission in its sandbox and collect what it left: nothing is judged here.

Per submitted notebook (a *job*), in the grader's process:

1. a fresh scratch folder gets a copy of the notebook (or of the files the lab asks for), the
   inputs the grader drew for each automatic item (``.npz``) and a job description;
2. ``python -m labutils.grading.worker`` (which runs the instrumented notebook in a kernel) or
   ``python -m labutils.grading.fileprobe`` (which reads handed-in files, lab 07) starts inside
   the sandbox (``sandbox.Sandbox``) -- or, with ``--unsafe-no-sandbox``, as a plain process in
   its own session;
3. the grader waits, and kills the whole sandbox when it overstays its deadline, its memory
   grows far past the limit (a backstop: the worker stops the kernel itself before that) or it
   writes more than ``MAX_SCRATCH_MB`` or ``MAX_SCRATCH_FILES`` into its scratch folder (which
   lies on the grader's disk: a full disk would stop every other student's grading);
4. the probes' files are read back as hostile files (regular files only, size-capped, ``.npz``
   loaded without pickle) into a ``RawRun``, and the scratch folder is deleted.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .judging import RawRun
from .safefiles import Unreadable, read_regular, read_tail
from .sandbox import Sandbox
from .submissions import Notebook, instrument, read_handin

MAX_PROBE_MB = 64  # uncompressed size of one probe's outputs
MAX_ERROR_KB = 256  # an error report of a probe
BACKSTOP_S = 45  # the worker stops itself at the deadline; this is for a worker that does not
BACKSTOP_MB = 1024  # memory of the worker and its kernel together, above the kernel's limit
POLL_S = 0.5
MAX_SCRATCH_MB = 2048  # what a job may write into its scratch folder (the CI budget needs a few MB)
MAX_SCRATCH_FILES = 20_000  # files and folders in it
DISK_EVERY = 4  # polls between two measures of the scratch folder


@dataclass
class Settings:
    """How every job runs: limits, the sandbox (None: unsafe), the environment, where scratch goes."""

    timeout: float
    memory_mb: int
    sandbox: Sandbox | None
    env: dict[str, str]
    scratch_root: Path


def load_probe_output(path: Path) -> dict[str, np.ndarray]:
    """Arrays from a probe's ``.npz``: a regular file, size-checked, never unpickled; ``ValueError`` if unfit."""
    try:
        raw = read_regular(path, MAX_PROBE_MB * 2**20)
    except Unreadable as exc:
        raise ValueError(str(exc).replace(Path(path).name, "the output file")) from None
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            total = sum(info.file_size for info in archive.infolist())
    except zipfile.BadZipFile:
        raise ValueError("the output file is not an .npz archive") from None
    if total > MAX_PROBE_MB * 2**20:
        raise ValueError(f"the outputs are larger than {MAX_PROBE_MB} MB")
    arrays = {}
    with np.load(io.BytesIO(raw), allow_pickle=False) as data:
        for key in data.files:
            value = data[key]  # object arrays raise here: allow_pickle=False
            if not isinstance(value, np.ndarray) or value.dtype.hasobject:
                raise ValueError(f"output {key!r} is not an array of numbers or text")
            arrays[key] = value
    return arrays


def load_error_report(path: Path) -> dict[str, str]:
    """A probe's report of the exception the student's code raised (type, message, where)."""
    try:
        report = json.loads(read_regular(path, MAX_ERROR_KB * 2**10))
        return {str(k): str(v)[:2000] for k, v in dict(report).items()}
    except (Unreadable, ValueError, TypeError, RecursionError):
        return {"type": "Error", "message": "(unreadable error report)"}


def run_job(notebook: Notebook, inputs: dict[str, dict[str, np.ndarray]], settings: Settings) -> RawRun:
    """Run one notebook (or read its handed-in files) in a sandbox; collect the raw outputs."""
    scratch = Path(tempfile.mkdtemp(prefix="job-", dir=settings.scratch_root))
    try:
        io_dir, work = scratch / "io", scratch / "work"
        io_dir.mkdir()
        work.mkdir()
        for grade_id, arrays in inputs.items():
            np.savez(io_dir / f"{grade_id}.in.npz", **arrays)
        if notebook.from_files:
            module, run_cells = "labutils.grading.fileprobe", []
            job = _file_job(notebook, scratch, work)
        else:
            module, job, run_cells = "labutils.grading.worker", *_notebook_job(notebook, scratch, work)
        job.update(io=str(io_dir), timeout=settings.timeout, memory_mb=settings.memory_mb)
        (scratch / "job.json").write_text(json.dumps(job))
        report, tail = _execute([sys.executable, "-m", module, str(scratch / "job.json")], scratch, work, settings)
        return _collect(notebook, io_dir, report, run_cells, tail)
    finally:
        _remove(scratch)


def _notebook_job(notebook: Notebook, scratch: Path, work: Path) -> tuple[dict, list[dict]]:
    """The kernel's working folder holds a copy of the submitted notebook only; the probes go in."""
    import nbformat

    (work / notebook.path.name).write_text(nbformat.writes(notebook.nb), encoding="utf-8")
    run_nb, notes = instrument(notebook.nb, notebook.lab, scratch / "io")
    notebook.notes.extend(notes)
    (scratch / "run.ipynb").write_text(nbformat.writes(run_nb), encoding="utf-8")
    job = {"notebook": str(scratch / "run.ipynb"), "cwd": str(work), "jupyter_dir": str(scratch / "jupyter")}
    job["result"] = str(scratch / "result.json")
    return job, [dict(cell.metadata.get("labutils", {})) for cell in run_nb.cells]


def _file_job(notebook: Notebook, scratch: Path, work: Path) -> dict:
    """The handed-in files, copied into the scratch folder, and the items to probe on them."""
    for name in notebook.files:
        try:
            (work / name).write_bytes(read_handin(notebook, name))
        except Unreadable as exc:
            notebook.notes.append(f"{exc}: not used")
    items = [{"grade_id": item.grade_id, "module": item.module} for item in notebook.lab.auto_items]
    return {"files": str(work), "items": items, "result": str(scratch / "result.json")}


def _execute(argv: list[str], scratch: Path, work: Path, settings: Settings) -> tuple[dict, str]:
    """Start the job (sandboxed unless unsafe), wait with a backstop; return its report and log tail."""
    if settings.sandbox is not None:  # the sandbox builds its own environment (--clearenv)
        command, env = settings.sandbox.wrap(argv, scratch, work), {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    else:
        command, env = argv, {**os.environ, **settings.env}
    log_path = scratch / "worker.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=work, env=env,
            start_new_session=True,
        )  # fmt: skip
        killed = _wait(proc, settings, scratch)
    tail = ""
    with contextlib.suppress(Unreadable):
        tail = read_tail(log_path, 1500).decode("utf-8", "replace")
    return _report(scratch / "result.json", killed, tail, settings.timeout), tail


def _wait(proc: subprocess.Popen, settings: Settings, scratch: Path) -> str:
    """Wait for the job; kill its whole tree past the deadline, far past the memory limit, or
    when its scratch folder outgrows ``MAX_SCRATCH_MB``/``MAX_SCRATCH_FILES``."""
    import psutil

    deadline = time.monotonic() + settings.timeout + BACKSTOP_S
    limit = (settings.memory_mb + BACKSTOP_MB) * 2**20 if settings.memory_mb > 0 else None
    for poll in itertools.count():
        try:
            proc.wait(POLL_S)
            return ""
        except subprocess.TimeoutExpired:
            pass
        with contextlib.suppress(psutil.Error):
            tree = psutil.Process(proc.pid).children(recursive=True)
            rss = sum(_rss(p) for p in tree)
            if limit is not None and rss > limit:
                _kill_tree(proc)
                return "memory"
        if poll % DISK_EVERY == DISK_EVERY - 1 and scratch_overgrown(scratch):
            _kill_tree(proc)
            return "disk"
        if time.monotonic() > deadline:
            _kill_tree(proc)
            return "timeout"
    raise AssertionError("unreachable")


def scratch_overgrown(folder: Path, max_mb: int = MAX_SCRATCH_MB, max_files: int = MAX_SCRATCH_FILES) -> bool:
    """Whether ``folder`` holds more than ``max_mb`` of disk blocks or ``max_files`` entries.

    Walks without following links and stops as soon as a limit is passed, so that a folder of
    millions of files costs no more than ``max_files`` entries. A folder the job made unreadable
    is made readable again first (the grader owns every file in there).
    """
    used, entries, stack = 0, 0, [str(folder)]
    while stack:
        path = stack.pop()
        try:
            os.chmod(path, stat.S_IRWXU)
            listing = os.scandir(path)
        except OSError:
            continue
        with listing:
            for entry in listing:
                entries += 1
                with contextlib.suppress(OSError):
                    info = entry.stat(follow_symlinks=False)
                    used += info.st_blocks * 512
                    if stat.S_ISDIR(info.st_mode):
                        stack.append(entry.path)
                if entries > max_files or used > max_mb * 2**20:
                    return True
    return False


def _rss(proc) -> int:
    import psutil

    try:
        return proc.memory_info().rss
    except psutil.Error:
        return 0


def _kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL the job and all it started (the sandbox's namespace dies with its first process)."""
    import psutil

    with contextlib.suppress(psutil.Error):
        parent = psutil.Process(proc.pid)
        procs = [*parent.children(recursive=True), parent]
        for p in procs:
            with contextlib.suppress(psutil.Error):
                p.kill()
        psutil.wait_procs(procs, timeout=5)
    proc.wait()


def _report(path: Path, killed: str, tail: str, timeout: float) -> dict:
    """The worker's report, or what the grader knows when there is none."""
    if killed == "disk":
        return {"status": killed, "cell": None, "detail": f"{MAX_SCRATCH_MB} MB or {MAX_SCRATCH_FILES:,} files"}
    if killed:
        return {"status": killed, "cell": None, "detail": f"the run was stopped after {timeout:g} s"}
    try:
        report = json.loads(read_regular(path, 2**20))
        if isinstance(report, dict):
            return report
    except (Unreadable, ValueError, RecursionError):
        pass
    if tail.lstrip().startswith("bwrap:"):  # the sandbox itself did not start
        return {"status": "failed", "cell": None, "detail": "the sandbox did not start: " + tail.strip()[:300]}
    return {"status": "lost", "cell": None}


def _collect(notebook: Notebook, io_dir: Path, report: dict, run_cells: list[dict], tail: str) -> RawRun:
    raw = RawRun(report, run_cells=run_cells)
    for item in notebook.lab.auto_items:
        npz, err = io_dir / f"{item.grade_id}.out.npz", io_dir / f"{item.grade_id}.out.json"
        if os.path.lexists(npz):
            try:
                raw.outputs[item.grade_id] = load_probe_output(npz)
            except Exception as exc:  # noqa: BLE001 -- a malformed file is the submission's doing
                raw.bad[item.grade_id] = str(exc)[:300]
        elif os.path.lexists(err):
            raw.errors[item.grade_id] = load_error_report(err)
    if report.get("status") == "failed":
        raw.log_tail = tail
    return raw


def _remove(folder: Path) -> None:
    """Delete a scratch folder, also when the submission took the write permission off its folders."""

    def retry(function, path, _exc):
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(path), stat.S_IRWXU)
            if os.path.isdir(path) and not os.path.islink(path):
                os.chmod(path, stat.S_IRWXU)
            function(path)

    shutil.rmtree(folder, onerror=retry)
