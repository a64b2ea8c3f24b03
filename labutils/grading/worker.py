"""Run one submission's notebook in a limited kernel: ``python -m labutils.grading.worker JOB.json``.

The grader starts one worker process per submitted notebook, inside the notebook's sandbox
(``sandbox``), so that the worker and its kernel talk over the sandbox's own loopback.  The worker

1. becomes a *child subreaper* (Linux), so that any process the notebook starts, even one that
   detaches itself, stays its descendant and is killed at the end;
2. starts a kernel with ``labutils.grading.kernel`` (memory and file-size rlimits) in the
   scratch working directory, with the CI budget and one thread per job;
3. executes the code cells one by one (errors allowed) under one wall-clock deadline, while a
   watchdog thread kills the kernel when the resident memory of everything it started passes
   the limit;
4. kills every process left and writes a small JSON report: how far the notebook got and why it
   stopped.  The report only explains; scores come from the probes' output files, judged by
   the grader.

Outputs of the student's cells are discarded as they arrive (only errors are kept, cut short),
so a notebook that prints without end cannot exhaust the worker's memory.

The client does not play the front end of Output widgets (``comm_open_handlers`` emptied).
nbclient's stand-in for them answers the kernel on the shell channel from the task that reads
IOPub, while another task waits on that same channel for the cell's ``execute_reply``; that
send can swallow the socket's one wake-up for the reply, which then sits unread until the
cell's timeout.  Lab 00's ``interact`` (an Output widget around a plot) stalled headless
clients this way.  The grader only needs errors, which never pass through Output widgets.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import time
from pathlib import Path

KERNEL_NAME = "labutils-grade"
POLL_S = 0.2
MAX_LISTED = 100  # cells listed in the report (errors, timings): a notebook may hold 100,000 cells


def become_subreaper() -> None:
    """Orphaned descendants are re-parented to this process instead of init (Linux only)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    PR_SET_CHILD_SUBREAPER = 36
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def kill_descendants() -> None:
    """SIGKILL every descendant of this process (repeatedly: a dying parent re-parents its children)."""
    import psutil

    me = psutil.Process()
    for _ in range(20):
        children = me.children(recursive=True)
        if not children:
            break
        for proc in children:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        psutil.wait_procs(children, timeout=1)
        with contextlib.suppress(ChildProcessError):
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass


def write_kernelspec(folder: Path) -> None:
    spec = folder / "kernels" / KERNEL_NAME
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "labutils.grading.kernel", "-f", "{connection_file}"],
                "display_name": "labutils grading kernel",
                "language": "python",
            }
        )
    )


class Watchdog(threading.Thread):
    """Kills the kernel (and all it started) past the memory limit or well past the deadline."""

    def __init__(self, memory_mb: int, deadline: float):
        super().__init__(daemon=True)
        self.limit = memory_mb * 2**20 if memory_mb > 0 else None
        self.deadline = deadline
        self.reason: str | None = None
        self.peak_mb = 0.0
        self.stopped = threading.Event()

    def run(self) -> None:
        import psutil

        me = psutil.Process()
        while not self.stopped.wait(POLL_S):
            rss = 0
            for proc in me.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    rss += proc.memory_info().rss
            self.peak_mb = max(self.peak_mb, rss / 2**20)
            if self.limit is not None and rss > self.limit:
                self.reason = "memory"
            elif time.monotonic() > self.deadline + 15:  # nbclient did not stop it: a hung kernel
                self.reason = "timeout"
            if self.reason:
                kill_descendants()
                return


def _client_class():
    from nbclient import NotebookClient

    class Client(NotebookClient):
        """Keeps only error outputs, cut short; everything else a cell prints is dropped."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.comm_open_handlers = {}  # no Output-widget mimic: see the module's docstring

        def output(self, outs, msg, display_id, cell_index):
            if msg["msg_type"] != "error":
                return None
            content = msg["content"]
            out = {
                "output_type": "error",
                "ename": str(content.get("ename", ""))[:200],
                "evalue": str(content.get("evalue", ""))[:500],
                "traceback": [],
            }
            if len(outs) < 5:
                outs.append(out)
            return out

    return Client


def _prepare(job: dict) -> None:
    """The kernel's spec and Jupyter's folders in the job's scratch folder; the memory limit."""
    jupyter_dir = Path(job["jupyter_dir"])
    write_kernelspec(jupyter_dir)
    os.environ["JUPYTER_PATH"] = str(jupyter_dir)
    os.environ["JUPYTER_RUNTIME_DIR"] = str(jupyter_dir / "runtime")
    os.environ["IPYTHONDIR"] = str(jupyter_dir / "ipython")  # no user profile or startup files
    os.environ["LABUTILS_GRADE_MEMORY_MB"] = str(job.get("memory_mb", 0))


def _client(nb, deadline: float):
    return _client_class()(
        nb,
        kernel_name=KERNEL_NAME,
        allow_errors=True,
        interrupt_on_timeout=False,
        timeout_func=lambda cell: max(1, int(deadline - time.monotonic())),
        startup_timeout=max(10, int(min(120, deadline - time.monotonic()))),
        record_timing=False,
        store_widget_state=False,
        shutdown_kernel="immediate",
    )


def _run_cells(client, nb, deadline: float, report: dict) -> None:
    """Execute the code cells in order, recording errors; ``report["cell"]`` is the one running."""
    from nbclient.exceptions import CellTimeoutError

    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if time.monotonic() > deadline:
            raise CellTimeoutError("deadline passed")
        report["cell"] = index
        began = time.monotonic()
        client.execute_cell(cell, index)
        report["executed"] = index + 1
        _listed(report, "cell_seconds", [index, round(time.monotonic() - began, 2)])
        for out in cell.outputs:
            if out.get("output_type") == "error":
                _listed(report, "errors", {"cell": index, "ename": out["ename"], "evalue": out["evalue"]})
    report["cell"] = None


def _listed(report: dict, key: str, entry) -> None:
    """Add ``entry`` to ``report[key]`` up to ``MAX_LISTED`` entries; count the others in ``KEY_more``.

    The report must stay small for the grader to read it back (``jobs.MAX_REPORT_KB``): a
    notebook of thousands of cells, each raising an error, would otherwise lose its report.
    """
    if len(report[key]) < MAX_LISTED:
        report[key].append(entry)
    else:
        report[f"{key}_more"] = report.get(f"{key}_more", 0) + 1


def run_job(job: dict) -> dict:
    """Run the job's notebook; the report says how far it got and why it stopped."""
    import nbformat
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    start = time.monotonic()
    deadline = start + float(job["timeout"])
    _prepare(job)
    nb = nbformat.read(job["notebook"], as_version=4)
    report: dict = {"status": "ok", "cell": None, "errors": [], "executed": 0, "cell_seconds": []}
    client = _client(nb, deadline)
    watchdog = Watchdog(int(job.get("memory_mb", 0)), deadline)
    watchdog.start()
    try:
        with client.setup_kernel(cwd=job["cwd"]):
            report["startup_seconds"] = round(time.monotonic() - start, 2)
            _run_cells(client, nb, deadline, report)
    except CellTimeoutError:
        report["status"] = "timeout"
    except DeadKernelError:
        report["status"] = watchdog.reason or "died"
    except Exception as exc:  # noqa: BLE001 -- the kernel did not start (grading failed), or broke off
        late = "timeout" if time.monotonic() > deadline else ("died" if "startup_seconds" in report else "failed")
        report.update(status=watchdog.reason or late, detail=f"{type(exc).__name__}: {str(exc)[:500]}")
    finally:
        watchdog.stopped.set()
        kill_descendants()
    if watchdog.reason == "memory":
        report["status"] = "memory"
    report["seconds"] = round(time.monotonic() - start, 2)
    report["peak_memory_mb"] = round(watchdog.peak_mb, 1)
    return report


def main() -> int:
    # jsonschema (under nbformat) builds a parser for an optional IRI format check at import:
    # seconds of CPU per worker, for a check notebooks never use.  Skip that optional import.
    sys.modules.setdefault("rfc3987_syntax", None)
    become_subreaper()
    job = json.loads(Path(sys.argv[1]).read_text())
    try:
        report = run_job(job)
    except Exception as exc:  # keep the grader informed whatever happens
        report = {"status": "failed", "cell": None, "errors": [], "detail": f"{type(exc).__name__}: {exc}"}
    finally:
        kill_descendants()
    result = Path(job["result"])
    tmp = result.with_suffix(".tmp")
    tmp.write_text(json.dumps(report))
    os.replace(tmp, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
