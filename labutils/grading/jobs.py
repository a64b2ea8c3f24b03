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
   writes more than ``MAX_SCRATCH_MB``, ``MAX_SCRATCH_FILES`` or ``MAX_SCRATCH_DEPTH`` nested
   folders into its scratch folder (which lies on the grader's disk: a full disk would stop
   every other student's grading);
4. the probes' files are read back as hostile files (regular files only, size-capped, ``.npz``
   loaded without pickle) into a ``RawRun``, and the scratch folder is deleted.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import os
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
MAX_REPORT_KB = 1024  # the worker's report (it lists at most ``worker.MAX_LISTED`` cells)
BACKSTOP_S = 45  # the worker stops itself at the deadline; this is for a worker that does not
BACKSTOP_MB = 1024  # memory of the worker and its kernel together, above the kernel's limit
POLL_S = 0.5
MAX_SCRATCH_MB = 2048  # what a job may write into its scratch folder (the CI budget needs a few MB)
MAX_SCRATCH_FILES = 20_000  # files and folders in it
MAX_SCRATCH_DEPTH = 64  # folders nested in it (a run nests a few)
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
        remove_scratch(scratch)


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


def scratch_overgrown(
    folder: Path,
    max_mb: int = MAX_SCRATCH_MB,
    max_files: int = MAX_SCRATCH_FILES,
    max_depth: int = MAX_SCRATCH_DEPTH,
) -> bool:
    """Whether ``folder`` holds more than ``max_mb`` of disk blocks, ``max_files`` entries, or
    folders nested more than ``max_depth`` deep.

    The job is running while this walks its folder, so the walk trusts no path: each folder is
    opened relative to its parent's descriptor without following a link (a folder the job swaps
    for a link to ``/`` mid-walk is never entered, let alone changed), and a path is never
    spelled out (a folder nested beyond what a path can name is measured too, and past
    ``max_depth`` is enough to stop the job).  It stops as soon as a limit is passed, so that a
    folder of millions of files costs no more than ``max_files`` entries.  A folder the job made
    unreadable is made readable again (the grader owns every file in there).
    """
    used, entries = 0, 0
    try:
        root = os.open(folder, _DIR_FLAGS)
    except OSError:
        return False
    stack: list[tuple[int, list[str] | None]] = [(root, None)]  # open folders, their subfolders to visit
    try:
        while stack:
            fd, pending = stack[-1]
            if pending is None:
                pending, blocks, count = _measure(fd)
                used, entries = used + blocks, entries + count
                stack[-1] = (fd, pending)
                if entries > max_files or used > max_mb * 2**20:
                    return True
            if not pending:
                os.close(stack.pop()[0])
                continue
            if len(stack) > max_depth:
                return True
            with contextlib.suppress(OSError):
                stack.append((_open_folder(pending.pop(), fd), None))
    finally:
        for fd, _ in stack:
            os.close(fd)
    return False


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _open_folder(name: str, parent: int) -> int:
    """A descriptor of the folder ``name`` in ``parent``, never through a link; made readable if need be."""
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=parent)
    except PermissionError:
        pass
    where = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)  # the entry itself
    try:
        if not stat.S_ISDIR(os.fstat(where).st_mode):
            raise NotADirectoryError(name)
        os.chmod(f"/proc/self/fd/{where}", stat.S_IRWXU)  # that very folder, whatever its name now
    finally:
        os.close(where)
    return os.open(name, _DIR_FLAGS, dir_fd=parent)


def _measure(fd: int) -> tuple[list[str], int, int]:
    """(subfolders, disk bytes used, entries) of the open folder ``fd``, links not followed."""
    folders, used, count = [], 0, 0
    with contextlib.suppress(OSError), os.scandir(fd) as listing:
        for entry in listing:
            count += 1
            with contextlib.suppress(OSError):
                info = entry.stat(follow_symlinks=False)
                used += info.st_blocks * 512
                if stat.S_ISDIR(info.st_mode):
                    folders.append(entry.name)
    return folders, used, count


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
        limits = f"{MAX_SCRATCH_MB} MB, {MAX_SCRATCH_FILES:,} files or {MAX_SCRATCH_DEPTH} nested folders"
        return {"status": killed, "cell": None, "detail": limits}
    if killed:
        return {"status": killed, "cell": None, "detail": f"the run was stopped after {timeout:g} s"}
    try:
        report = json.loads(read_regular(path, MAX_REPORT_KB * 2**10))
        if isinstance(report, dict):
            return report
        detail = "the run's report is not a JSON object"
    except (Unreadable, ValueError, RecursionError) as exc:
        detail = f"the run's report was unusable ({str(exc)[:200]})"
    if tail.lstrip().startswith("bwrap:"):  # the sandbox itself did not start
        return {"status": "failed", "cell": None, "detail": "the sandbox did not start: " + tail.strip()[:300]}
    return {"status": "lost", "cell": None, "detail": detail if os.path.lexists(path) else ""}


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


def remove_scratch(folder: Path) -> None:
    """Delete a scratch folder however its job left it, once the job is dead.

    Folders the job made unreadable or read-only are given back their permissions; links are
    removed, never followed; folders nested thousands deep (beyond what a path can name, and
    what a recursive ``shutil.rmtree`` survives) are deleted one level at a time through
    descriptors, each folder listed once.
    """
    try:
        fd = os.open(folder, _DIR_FLAGS)
    except FileNotFoundError:
        return
    pending: list[list[str] | None] = [None]  # per open level: its subfolders still to delete
    names: list[str] = []  # the folders from ``folder`` down to the open one
    try:
        while True:
            if pending[-1] is None:
                pending[-1] = _clear_files(fd)
            if pending[-1]:
                name = pending[-1].pop()
                try:
                    child = _open_folder(name, fd)
                except OSError:
                    continue  # gone, or not a folder after all: its parent's rmdir will fail, not loop
                os.close(fd)
                fd = child
                names.append(name)
                pending.append(None)
                continue
            pending.pop()
            if not names:
                break
            parent = os.open("..", _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = parent
            with contextlib.suppress(OSError):
                os.rmdir(names.pop(), dir_fd=fd)
    finally:
        os.close(fd)
    with contextlib.suppress(OSError):
        os.rmdir(folder)


def _clear_files(fd: int) -> list[str]:
    """Delete every entry but the folders of the open folder ``fd`` (made writable); return the folders."""
    with contextlib.suppress(OSError):
        os.fchmod(fd, stat.S_IRWXU)
    entries = []
    with contextlib.suppress(OSError), os.scandir(fd) as listing:
        entries = [(entry.name, entry.is_dir(follow_symlinks=False)) for entry in listing]
    folders = []
    for name, is_folder in entries:
        if is_folder:
            folders.append(name)
        else:
            with contextlib.suppress(OSError):
                os.unlink(name, dir_fd=fd)
    return folders
