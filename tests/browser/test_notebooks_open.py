"""Every student notebook opens in JupyterLab without a front-end error.

Opening (not running: the student versions hold unfinished exercises) renders the Markdown,
the LaTeX and the stored outputs, and starts the notebook's kernel. A notebook that names a
kernel the course does not install, a broken widget state or a malformed cell shows up here as
a dialog or as an error in the browser console.
"""

import re
from pathlib import Path

import nbformat
import pytest
from labpage import cell_count, open_notebook

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))

# Console errors that say nothing about our notebooks. Each entry: a regular expression matched
# against "console.error: <text>" / "pageerror: <text>", and why it is harmless.
BENIGN = [
    # (none so far: add an entry only with the exact message and the reason it is harmless)
]


def unexpected(errors: list[str]) -> list[str]:
    return [e for e in errors if not any(re.search(pattern, e) for pattern, _why in BENIGN)]


@pytest.mark.parametrize(
    "path",
    NOTEBOOKS or [pytest.param(None, marks=pytest.mark.skip(reason="notebooks/ is empty"))],
    ids=lambda p: p.stem if p else "none",
)
def test_notebook_opens_cleanly(path, page, jupyter_lab, shoot):
    panel = open_notebook(page, f"notebooks/{path.name}")  # waits until its kernel is idle
    expected = len(nbformat.read(path, as_version=4).cells)
    cells = cell_count(panel)
    assert cells == expected, f"{path.name}: JupyterLab shows {cells} cells, the file has {expected}"
    rendered = panel.locator(".jp-MarkdownCell .jp-RenderedMarkdown")
    assert rendered.count() > 0, f"{path.name}: no Markdown cell rendered"
    dialogs = page.locator(".jp-Dialog")
    assert dialogs.count() == 0, f"{path.name}: JupyterLab shows a dialog: {dialogs.first.inner_text()[:500]!r}"
    shoot(page, path.stem)
    assert not unexpected(page.errors), f"{path.name}: browser console errors:\n" + "\n".join(page.errors)
