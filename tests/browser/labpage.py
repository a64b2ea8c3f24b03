"""Driving JupyterLab's notebook page the way a student does: open, run a cell, read the outputs.

Documents are opened and closed with JupyterLab's own commands (``window.jupyterapp``, exposed by
the test server), as the file browser does; cells are run with the keyboard (select, Shift+Enter)
and widgets are used with the mouse and keyboard. Selectors are JupyterLab 4's and ipywidgets 8's
CSS classes (``jp-*``, ``widget-*``). Everything waits on what the page shows, never on fixed
sleeps, with limits meant for a loaded 2-core CI machine.
"""

from __future__ import annotations

import re
import time

import nbformat

# The JupyterLab extension that renders ipywidgets (package jupyterlab_widgets).
WIDGETS_MANAGER = "@jupyter-widgets/jupyterlab-manager"
# A widget view that the front-end really rendered: ipywidgets 8 puts this class on every view.
WIDGET = ".jupyter-widgets"
# What the page shows instead when the widget manager cannot load a model.
WIDGET_FALLBACK_TEXT = ("Loading widget", "Error displaying widget", "Model not found")
# What it shows when there is no widget manager at all: the widget's text/plain repr.
WIDGET_REPR = re.compile(r"^\s*[A-Za-z]+\((children|value|description|layout)=")
PROMPT_DONE = re.compile(r"^\s*\[\d+\]:\s*$")

KERNEL_MS = 240_000  # opening a notebook until its kernel is idle (a cold kernel start under load)
CELL_MS = 240_000  # one cell's run (imports torch the first time)


def write_notebook(path, cells: list[str]) -> None:
    """Write a notebook of code cells (kernel ``python3``) for a test to open."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(src) for src in cells]
    nbformat.write(nb, str(path))


def wait_app_ready(page, timeout: float) -> None:
    """Wait until JupyterLab has started and restored its layout (``window.jupyterapp.restored``)."""
    # One predicate, polled until true: it survives a reload of the page while it waits.
    page.wait_for_function(
        """() => {
            const app = window.jupyterapp;
            if (!app) return false;
            if (!window.__labWatching) {
                window.__labWatching = true;
                app.restored.then(() => { window.__labRestored = true; });
            }
            return window.__labRestored === true;
        }""",
        timeout=timeout,
        polling=250,
    )
    # Fold the side bars away: the screenshots show the notebook at full width.
    page.evaluate("() => { window.jupyterapp.shell.collapseLeft(); window.jupyterapp.shell.collapseRight(); }")


def close_all_documents(page) -> int:
    """Close every tab of the main area without saving (tests never save); returns how many."""
    return page.evaluate(
        """() => {
            if (!window.jupyterapp) return 0;
            const widgets = Array.from(window.jupyterapp.shell.widgets('main'));
            for (const w of widgets) {
                if (w.context) w.context.model.dirty = false;  // no "save changes?" dialog
                w.dispose();
            }
            return widgets.length;
        }"""
    )


def open_notebook(page, relpath: str, timeout: float = KERNEL_MS):
    """Open ``relpath`` (relative to the served root) and wait until its kernel is idle.

    Returns the notebook panel's locator.
    """
    widget_id = page.evaluate(
        """async (path) => {
            const w = await window.jupyterapp.commands.execute('docmanager:open', {path, factory: 'Notebook'});
            return w.id;
        }""",
        relpath,
    )
    panel = page.locator(f'[id="{widget_id}"]')
    panel.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=timeout)
    wait_kernel_idle(page, widget_id, timeout=timeout)
    return panel


def wait_kernel_idle(page, widget_id: str, timeout: float = KERNEL_MS) -> None:
    """Wait until the notebook ``widget_id``'s kernel is connected and idle."""
    page.wait_for_function(
        """(id) => {
            const w = Array.from(window.jupyterapp.shell.widgets('main')).find((x) => x.id === id);
            const kernel = w && w.sessionContext.session && w.sessionContext.session.kernel;
            return !!kernel && kernel.connectionStatus === 'connected' && kernel.status === 'idle';
        }""",
        arg=widget_id,
        timeout=timeout,
        polling=250,
    )


def cell_count(panel) -> int:
    """How many cells notebook ``panel`` holds (JupyterLab draws far-away cells only on demand)."""
    return panel.evaluate(
        """(node) => Array.from(window.jupyterapp.shell.widgets('main')).find((x) => x.node === node)
            .content.widgets.length"""
    )


def code_cell(panel, snippet: str):
    """The one code cell of notebook ``panel`` whose source contains ``snippet``.

    Found in the notebook's model (which holds every cell as soon as the file is loaded, while
    the page may not have drawn the editors of cells far below yet) and marked with a
    ``data-test-cell`` attribute for the returned locator. Fails unless exactly one cell matches.
    """
    key = re.sub(r"\W+", "-", snippet).strip("-")
    found = panel.evaluate(
        """(node, [snippet, key]) => {
            const w = Array.from(window.jupyterapp.shell.widgets('main')).find((x) => x.node === node);
            const cells = w.content.widgets.filter(
                (c) => c.model.type === 'code' && c.model.sharedModel.getSource().includes(snippet));
            cells.forEach((c) => c.node.setAttribute('data-test-cell', key));
            return cells.length;
        }""",
        [snippet, key],
    )
    assert found == 1, f"expected one code cell containing {snippet!r}, found {found}"
    return panel.locator(f'.jp-CodeCell[data-test-cell="{key}"]')


def run_cell(cell, timeout: float = CELL_MS) -> None:
    """Select ``cell``, press Shift+Enter and wait until it has run; fail if it raised.

    The prompt shows ``[*]:`` from the key press until the kernel's reply, then ``[n]:``.
    """
    from playwright.sync_api import expect  # imported late: optional dependency

    prompt = cell.locator(".jp-InputArea-prompt").first
    prompt.click()
    cell.page.keyboard.press("Shift+Enter")
    expect(prompt).to_have_text(PROMPT_DONE, timeout=timeout)
    errors = cell.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.error']")
    if errors.count():
        raise AssertionError("the cell raised:\n" + errors.first.inner_text()[-2000:])


def image_digest(img) -> str:
    """SHA-256 of the bytes behind an <img> (data:, blob: or http: URL), computed in the page."""
    return img.evaluate(
        """async (el) => {
            const buf = await (await fetch(el.src)).arrayBuffer();
            const hash = await crypto.subtle.digest('SHA-256', buf);
            return Array.from(new Uint8Array(hash)).map(b => b.toString(16).padStart(2, '0')).join('');
        }"""
    )


def wait_image_changes(img, before: str, timeout: float = 120.0) -> str:
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
        img.page.wait_for_timeout(250)


def colour_pixels(img, colours: dict[str, tuple[int, int, int]], tolerance: int = 40) -> dict[str, int]:
    """How many pixels of the displayed image lie within ``tolerance`` (per channel) of each colour."""
    return img.evaluate(
        """(el, [colours, tol]) => {
            const canvas = document.createElement('canvas');
            canvas.width = el.naturalWidth;
            canvas.height = el.naturalHeight;
            const ctx = canvas.getContext('2d');
            ctx.drawImage(el, 0, 0);
            const px = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
            const counts = {};
            for (const [name, [r, g, b]] of Object.entries(colours)) {
                let n = 0;
                for (let i = 0; i < px.length; i += 4) {
                    const near = (j, c) => Math.abs(px[i + j] - c) <= tol;
                    if (near(0, r) && near(1, g) && near(2, b)) n++;
                }
                counts[name] = n;
            }
            return counts;
        }""",
        [colours, tolerance],
    )


def set_slider(slider, value) -> None:
    """Type ``value`` into an ipywidgets slider's editable readout and press Enter.

    ``slider`` is the ``.widget-slider`` (or any element containing one readout).
    """
    readout = slider.locator(".widget-readout").first
    readout.click()
    readout.press("Control+A")
    readout.type(str(value))
    readout.press("Enter")


def assert_widgets_rendered(area, minimum: int = 1, timeout: float = 120_000) -> None:
    """Fail unless ``area`` (a cell's output area) shows at least ``minimum`` rendered widget views.

    Waits for the cell's output first; then fails at once, with what the page shows, if that
    output is a stand-in ("Loading widget...", or the widget's plain-text repr, which is what
    JupyterLab shows when the widgets front-end is missing or disabled).
    """
    outputs = area.locator(".jp-OutputArea-output")
    outputs.first.wait_for(timeout=timeout)
    views = area.locator(WIDGET)
    deadline = time.monotonic() + timeout / 1000
    while True:
        n = views.count()
        if n >= minimum:
            break
        text = area.inner_text()
        for bad in WIDGET_FALLBACK_TEXT:
            assert bad not in text, f"widget not rendered: the page shows {bad!r}"
        for shown in outputs.all_inner_texts():
            assert not WIDGET_REPR.match(shown), (
                f"widget not rendered: the output shows the widget's plain-text repr {shown.strip()[:100]!r}"
                f" instead: is the {WIDGETS_MANAGER} front-end installed and enabled?"
            )
        assert time.monotonic() < deadline, (
            f"{n} rendered widget views after {timeout / 1000:.0f} s, expected at least {minimum}."
            f" The output shows: {text[:300]!r}"
        )
        area.page.wait_for_timeout(250)
