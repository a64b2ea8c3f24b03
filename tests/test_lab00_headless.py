"""Lab 00 runs headless, again and again, without a stall (issue 26).

The cause of the stall: lab 00's slider used ``interact``, which draws into an *Output widget*.
A headless client (nbclient, under nbconvert, nbgrader's autograde and our grader's worker)
plays the front end of Output widgets: for each output it sends the widget's new state back to
the kernel on the shell channel, from the task that reads IOPub, while another task waits on
that same ZMQ socket for the cell's ``execute_reply``.  That send can consume the socket's
edge-triggered wake-up for the reply, which then sits unread until the client's timeout, the
kernel idle all along.  Lab 00 now redraws an Image widget instead (no Output widget), and the
grader's client no longer plays the Output widget's front end.
"""

from __future__ import annotations

import time
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
RUNS = 8


@pytest.mark.slow
def test_lab00_runs_headless_many_times_in_a_row():
    """Every code cell of lab 00, eight times over in one kernel, under nbclient's defaults."""
    run_headless(ROOT / "notebooks" / "00_setup.ipynb")


def run_headless(path: Path) -> None:
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    sources = [c.source for c in nb.cells if c.cell_type == "code"]
    run = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources * RUNS], metadata=nb.metadata)
    # A stalled cell would wait out its 120 s timeout and raise CellTimeoutError.
    client = NotebookClient(run, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}})
    start = time.monotonic()
    client.execute()
    seconds = time.monotonic() - start
    assert seconds < 60 + 10 * RUNS, f"{RUNS} runs of lab 00 took {seconds:.0f} s: a stall?"
    widgets = run.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
    models = {m["model_name"] for m in widgets.get("state", {}).values()}
    assert "ImageModel" in models and "OutputModel" not in models, models


def test_the_graders_client_does_not_play_the_output_widget():
    from labutils.grading.worker import _client_class

    client = _client_class()(nbformat.v4.new_notebook())
    assert client.comm_open_handlers == {}
