"""Run a solution notebook in a budget and store its outputs: ``python -m labutils execute``.

The solutions carry the outputs of a full-budget run, so that a reader sees what a lab really
produces (COURSE.md, principle 10); nbval still runs them in the CI budget and compares only the
``# NBVAL_CHECK_OUTPUT`` cells.  ``execute`` runs a notebook top to bottom with nbclient in a fresh
kernel of the current environment:

* ``LABUTILS_BUDGET`` is set to the budget asked for, the working directory is the notebook's
  folder, each cell may take ``timeout`` seconds;
* the first error stops the run and leaves the notebook file untouched (a solution runs clean);
* the outputs are scrubbed (``labutils.scrub``: no paths of this machine, no warnings, progress
  bars at their final state), ``metadata.labutils`` records ``{"budget": ..., "seconds": ...}``
  (the wall time of the run; no dates, no host names), and the file is replaced atomically.

Before writing, the outputs of the compared cells are set against those stored before: a compared
cell that now prints something else (sanitised as nbval sanitises) would make nbval fail when the
stored outputs come from one budget and CI runs the other.  ``write=False`` runs and compares
without writing: ``--budget ci --compare`` shows what CI's nbval will find.
"""

from __future__ import annotations

import copy
import difflib
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from .runtime import BUDGETS
from .scrub import Scrubbed, compared_text, is_compared, leftovers, load_sanitizers, scrub_notebook

DEFAULT_TIMEOUT = 3600  # seconds per cell: the longest training cell of a full budget, with room to spare
SANITIZE_FILE = Path(__file__).resolve().parent.parent / "tests" / "nbval_sanitize.cfg"


class ExecutionFailed(RuntimeError):
    """A notebook did not run clean; the message names the cell and the error."""


@dataclass
class Executed:
    """What ``execute`` did to one notebook."""

    path: Path
    budget: str
    seconds: float
    previous_budget: str | None  # from the stored notebook's metadata, before this run
    scrubbed: Scrubbed
    changed: list[tuple[int, str]] = field(default_factory=list)  # compared cells: (index, diff)
    leftovers: list[tuple[int, str]] = field(default_factory=list)
    compared: list[int] = field(default_factory=list)  # the indices of the # NBVAL_CHECK_OUTPUT cells
    written: bool = False


def _failure(label: str, nb, index: int | None, exc: Exception) -> ExecutionFailed:
    where = "the kernel"
    if index is not None:
        first_line = (nb.cells[index].source.splitlines() or [""])[0]
        where = f"cell {index} ({first_line[:60]!r})"
    what = f"{getattr(exc, 'ename', type(exc).__name__)}: {getattr(exc, 'evalue', '') or ''}".rstrip(": ")
    return ExecutionFailed(
        f"{label}: {where} failed with {what}\n{exc}\n\n"
        f"{label} was left unchanged. A solution must run clean: fix the error and run the command again."
    )


def run(
    nb, folder: Path, *, budget: str, timeout: int = DEFAULT_TIMEOUT, kernel_name: str | None = None, label: str = ""
) -> float:
    """Execute ``nb`` in place in a fresh kernel working in ``folder``; return the wall time in seconds.

    Raises ``ExecutionFailed`` (its message starts with ``label``, the notebook's name) on the
    first cell that raises (cells tagged ``raises-exception`` excepted), times out or kills the
    kernel, and when the kernel cannot start.
    """
    from jupyter_client.kernelspec import NoSuchKernel
    from nbclient import NotebookClient
    from nbclient.exceptions import CellControlSignal, CellExecutionError, CellTimeoutError, DeadKernelError

    label = label or str(folder)
    kernel_name = kernel_name or nb.metadata.get("kernelspec", {}).get("name", "python3")

    current: dict[str, int | None] = {"cell": None}  # the cell being run, to name it on failure
    client = NotebookClient(
        nb,
        timeout=timeout,
        startup_timeout=300,
        kernel_name=kernel_name,
        resources={"metadata": {"path": str(folder)}},
        allow_errors=False,
        record_timing=False,  # no dates in the stored notebook
        store_widget_state=True,  # progress bars and widgets render from the saved state
        on_cell_start=lambda cell, cell_index: current.update(cell=cell_index),
    )
    start = time.monotonic()
    try:
        client.execute(env={**os.environ, "LABUTILS_BUDGET": budget})
    except (CellExecutionError, CellTimeoutError, DeadKernelError, CellControlSignal) as exc:
        raise _failure(label, nb, current["cell"], exc) from exc
    except NoSuchKernel as exc:
        raise ExecutionFailed(
            f"{label}: no Jupyter kernel named {kernel_name!r} ({exc}). List them with `jupyter kernelspec list` "
            "and pick one with --kernel (python3 is the current environment's)."
        ) from exc
    return time.monotonic() - start


def write_atomic(nb, path: Path) -> None:
    """Write ``nb`` to ``path`` through a temporary file in the same folder, then rename it.

    A crash or an interrupt at any moment leaves either the old file or the new one, whole.
    """
    path = Path(path)
    nbformat.validate(nb)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".ipynb.tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            nbformat.write(nb, fh)
            fh.flush()
            os.fsync(fh.fileno())
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def compare_compared_cells(before, after, sanitize_file: Path | None = SANITIZE_FILE) -> list[tuple[int, str]]:
    """``(index, diff)`` for each ``# NBVAL_CHECK_OUTPUT`` cell whose outputs differ between two runs."""
    sanitizers = load_sanitizers(sanitize_file)
    changed = []
    for index, (old, new) in enumerate(zip(before.cells, after.cells)):
        if not is_compared(new):
            continue
        old_text, new_text = compared_text(old, sanitizers), compared_text(new, sanitizers)
        if old_text != new_text:
            diff = difflib.unified_diff(old_text.splitlines(), new_text.splitlines(), "stored", "this run", lineterm="")
            changed.append((index, "\n".join(list(diff)[2:])))
    return changed


def execute(
    path,
    *,
    budget: str = "full",
    timeout: int = DEFAULT_TIMEOUT,
    kernel_name: str | None = None,
    write: bool = True,
    sanitize_file: Path | None = SANITIZE_FILE,
) -> Executed:
    """Run the notebook at ``path`` in ``budget`` and (unless ``write=False``) store its outputs."""
    path = Path(path)
    if budget not in BUDGETS:
        raise ValueError(f"budget {budget!r} is not one of {BUDGETS}")
    if path.suffix != ".ipynb" or not path.is_file():
        raise FileNotFoundError(f"{path} is not a notebook file (expected an existing .ipynb)")
    stored = nbformat.read(path, as_version=4)
    nb = copy.deepcopy(stored)
    nb.metadata.pop("widgets", None)  # the state of the previous run's widgets
    seconds = run(nb, path.parent.resolve(), budget=budget, timeout=timeout, kernel_name=kernel_name, label=str(path))
    scrubbed = scrub_notebook(nb, path.parent)
    nb.metadata["labutils"] = {"budget": budget, "seconds": round(seconds)}
    result = Executed(
        path=path,
        budget=budget,
        seconds=seconds,
        previous_budget=stored.metadata.get("labutils", {}).get("budget"),
        scrubbed=scrubbed,
        changed=compare_compared_cells(stored, nb, sanitize_file),
        leftovers=leftovers(nb),
        compared=[i for i, cell in enumerate(nb.cells) if is_compared(cell)],
    )
    if write:
        write_atomic(nb, path)
        result.written = True
    return result


def describe(result: Executed) -> str:
    """What ``python -m labutils execute`` prints about one notebook."""
    what = "stored" if result.written else "not written (--compare)"
    lines = [f"{result.path}: {result.budget} budget, {result.seconds:.0f} s, {what}; {result.scrubbed.summary()}"]
    lines += [f"  removed from cell {i}: {warning}" for i, warning in result.scrubbed.warnings]
    noisy = sorted({i for i, _ in result.scrubbed.warnings} | set(result.scrubbed.paths))
    with_check = [i for i in noisy if i in result.compared]
    if with_check:
        lines.append(
            f"  compared cells {with_check} print a warning or a path: nbval compares them in CI, where they "
            "differ; silence the warning or print the path relative in the notebook."
        )
    if result.changed:
        before = f"the {result.previous_budget} budget" if result.previous_budget else "an earlier run"
        lines.append(
            f"  # NBVAL_CHECK_OUTPUT cells that print differently from the outputs stored before (from {before}); "
            "a compared cell must print the same in both budgets:"
        )
        for index, diff in result.changed:
            lines.append(f"    cell {index}:")
            lines += [f"      {line}" for line in diff.splitlines()[:12]]
    for index, what in result.leftovers:
        lines.append(f"  still in the outputs of cell {index}: {what!r} (print it otherwise in the notebook)")
    return "\n".join(lines)


def execute_paths(paths, *, budget: str, timeout: int, kernel_name: str | None, compare: bool, keep_going: bool) -> int:
    """Run each notebook in turn, printing what happened; the exit status of the command.

    Stops at the first notebook that fails unless ``keep_going``.  Exit status 1 when a notebook
    failed, or, with ``compare``, when a compared cell prints differently from its stored output.
    """
    status = 0
    for path in paths:
        print(f"{path}: running in the {budget} budget (up to {timeout} s a cell) ...", flush=True)
        try:
            result = execute(path, budget=budget, timeout=timeout, kernel_name=kernel_name, write=not compare)
        except (ExecutionFailed, FileNotFoundError) as exc:
            print(exc, file=sys.stderr, flush=True)
            status = 1
            if not keep_going:
                break
            continue
        print(describe(result), flush=True)
        if compare and result.changed:
            status = 1
    return status
