"""Driving JupyterLab's notebook page the way a student does: open, Run All, read the outputs.

Selectors are JupyterLab 4's and ipywidgets 8's CSS classes (``jp-*``, ``widget-*``); the menu
is used by its visible labels. Everything waits on what the page shows, never on fixed sleeps.
"""

from __future__ import annotations

import contextlib
import time

import nbformat

# A widget view that the front-end really rendered: ipywidgets 8 puts this class on every view.
WIDGET = ".jupyter-widgets"
# What the page shows instead when the widget manager is missing or cannot load the model.
WIDGET_FALLBACK_TEXT = ("Loading widget", "Error displaying widget", "Model not found")


def write_notebook(path, cells: list[str]) -> None:
    """Write a notebook of code cells (kernel ``python3``) for a test to open."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(src) for src in cells]
    nbformat.write(nb, str(path))


def open_notebook(page, server, relpath: str, timeout: float = 180_000):
    """Open ``relpath`` and wait until its kernel is idle; returns the notebook panel locator."""
    page.goto(server.lab_url(relpath), wait_until="domcontentloaded")
    panel = page.locator(".jp-NotebookPanel:visible").first
    panel.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=timeout)
    wait_kernel_idle(page, timeout=timeout)
    return panel


def wait_kernel_idle(page, timeout: float = 120_000) -> None:
    """Wait until the visible notebook's kernel reports idle (toolbar execution indicator)."""
    page.locator(".jp-NotebookPanel:visible .jp-Notebook-ExecutionIndicator[data-status='idle']").wait_for(
        timeout=timeout
    )


def menu(page, *labels: str) -> None:
    """Click through the menu bar, e.g. ``menu(page, "Run", "Run All Cells")``."""
    page.locator(".lm-MenuBar-item", has_text=labels[0]).first.click()
    for label in labels[1:]:
        page.locator(".lm-Menu:visible .lm-Menu-item").filter(
            has=page.locator(".lm-Menu-itemLabel", has_text=label)
        ).first.click()


def run_all(page, panel, timeout: float = 300.0) -> None:
    """Run > Run All Cells, then wait until every code cell has an execution count.

    Fails with the text of the first error output if a cell raised.
    """
    panel.locator(".jp-Notebook").click(position={"x": 5, "y": 5})
    menu(page, "Run", "Run All Cells")
    deadline = time.monotonic() + timeout
    prompts = panel.locator(".jp-CodeCell .jp-InputArea-prompt")
    while True:
        texts = [t.strip() for t in prompts.all_inner_texts()]
        if texts and all(t[1:-2].strip().isdigit() for t in texts):
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"cells still running or not run after {timeout:.0f} s: prompts {texts}")
        page.wait_for_timeout(250)
    wait_kernel_idle(page)
    errors = panel.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.error']")
    if errors.count():
        raise AssertionError("a cell raised:\n" + errors.first.inner_text()[-2000:])


def image_digest(img) -> str:
    """SHA-256 of the bytes behind an <img> (data:, blob: or http: URL), computed in the page."""
    return img.evaluate(
        """async (el) => {
            const buf = await (await fetch(el.src)).arrayBuffer();
            const hash = await crypto.subtle.digest('SHA-256', buf);
            return Array.from(new Uint8Array(hash)).map(b => b.toString(16).padStart(2, '0')).join('');
        }"""
    )


def wait_image_changes(img, before: str, timeout: float = 60.0) -> str:
    """Wait until the image's bytes differ from digest ``before``; returns the new digest."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            now = image_digest(img)
        except Exception:  # the <img> is being replaced by the widget; try again
            now = before
        if now != before:
            return now
        if time.monotonic() > deadline:
            raise AssertionError(f"the plot image did not change within {timeout:.0f} s")
        img.page.wait_for_timeout(200)


def set_slider(slider, value) -> None:
    """Type ``value`` into an ipywidgets slider's editable readout and press Enter.

    ``slider`` is the ``.widget-slider`` (or any element containing one readout).
    """
    readout = slider.locator(".widget-readout").first
    readout.click()
    readout.press("Control+A")
    readout.type(str(value))
    readout.press("Enter")


def assert_widgets_rendered(area, minimum: int = 1, timeout: float = 60_000) -> None:
    """Fail unless ``area`` shows at least ``minimum`` rendered widget views and no fallback text.

    Widget views appear a moment after their cell ran; wait for the first one (up to
    ``timeout`` ms) so that a missing widgets front-end fails here with a clear message.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout  # imported late: optional dependency

    views = area.locator(WIDGET)
    with contextlib.suppress(PlaywrightTimeout):  # judged below, with the page's text in the message
        views.first.wait_for(timeout=timeout)
    text = area.inner_text()
    for bad in WIDGET_FALLBACK_TEXT:
        assert bad not in text, f"widget not rendered: the page shows {bad!r}"
    n = views.count()
    assert n >= minimum, (
        f"{n} rendered widget views, expected at least {minimum}: is the "
        "@jupyter-widgets/jupyterlab-manager front-end installed and enabled?"
        f" The output shows: {text[:300]!r}"
    )
