"""Every student notebook opens in JupyterLab without a front-end error.

Opening (not running: the student versions hold unfinished exercises) renders the Markdown,
the LaTeX and the stored outputs, and starts the notebook's kernel. A notebook that names a
kernel the course does not install, a broken widget state or a malformed cell shows up here as
a dialog or as an error in the browser console.
"""

import re
from pathlib import Path

import pytest
from labpage import open_notebook

NOTEBOOKS = sorted(p.name for p in (Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))

# Console errors that say nothing about our notebooks. Each entry: a regular expression matched
# against "console.error: <text>" / "pageerror: <text>", and why it is harmless.
BENIGN = [
    # (none so far: add an entry only with the exact message and the reason it is harmless)
]


def unexpected(errors: list[str]) -> list[str]:
    return [e for e in errors if not any(re.search(pattern, e) for pattern, _why in BENIGN)]


@pytest.mark.parametrize(
    "name", NOTEBOOKS or [pytest.param(None, marks=pytest.mark.skip(reason="notebooks/ is empty"))]
)
def test_notebook_opens_cleanly(name, page, jupyter_lab, shoot):
    panel = open_notebook(page, jupyter_lab, f"notebooks/{name}")
    # Give the stored outputs and the Markdown (MathJax) time to render before judging.
    page.wait_for_load_state("networkidle")
    cells = panel.locator(".jp-Cell").count()
    assert cells > 0, f"{name}: no cells rendered"
    dialogs = page.locator(".jp-Dialog")
    assert dialogs.count() == 0, f"{name}: JupyterLab shows a dialog: {dialogs.first.inner_text()[:500]!r}"
    shoot(page, name.removesuffix(".ipynb"))
    assert not unexpected(page.errors), f"{name}: browser console errors:\n" + "\n".join(page.errors)
