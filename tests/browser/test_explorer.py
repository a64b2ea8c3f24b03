"""Lab 07's hyperparameter explorer, used as a student uses it: set a configuration, press Train.

The test opens lab 07 and runs only the explorer's cell (it imports what it needs; running the
whole lab trains two models, far too slow for this test). A tiny configuration (a 16-unit GRU
on 2,000 characters) trains in seconds. The test asserts on what the page shows: the status
line reports every step done, the progress bar is full and green, the loss plot changed and a
sample appears under the "Sample" heading.
"""

import re

import pytest
from labpage import assert_widgets_rendered, code_cell, image_digest, open_notebook, run_cell, wait_image_changes

LAB07 = "notebooks/07_sherlock_assignment.ipynb"
TINY = {
    "embedding": 8,
    "hidden size": 16,
    "layers": 1,
    "sequence length": 16,
    "streams (batch)": 4,
    "training characters": 2000,
    "epochs": 1,
}
TRAIN_MS = 300_000  # loading the canon, training 31 tiny steps and sampling, on a loaded machine


def set_number(area, label: str, value: int) -> None:
    """Type ``value`` into the number box described by ``label`` and commit it with Enter."""
    box = area.locator(".widget-text").filter(
        has=area.page.locator("label.widget-label", has_text=re.compile(f"^{re.escape(label)}$"))
    )
    assert box.count() == 1, f"no single number box labelled {label!r} in the explorer"
    field = box.locator("input")
    field.fill(str(value))
    field.press("Enter")


def tiny_steps() -> int:
    from labutils.text import n_stream_batches

    return TINY["epochs"] * n_stream_batches(
        TINY["training characters"], TINY["streams (batch)"], TINY["sequence length"]
    )


def test_lab07_explorer_trains(page, jupyter_lab, shoot):
    if not (jupyter_lab.root_dir / LAB07).exists():
        pytest.fail(f"{LAB07} is missing")
    panel = open_notebook(page, LAB07)
    cell = code_cell(panel, "explorer_widget(")
    run_cell(cell)
    explorer = cell.locator(".jp-OutputArea")
    assert_widgets_rendered(explorer, minimum=10)  # a dozen controls, two buttons, the plot
    train = explorer.locator("button", has_text=re.compile(r"^\s*Train\s*$"))
    assert train.count() == 1, "no Train button"
    for label, value in TINY.items():
        set_number(explorer, label, value)
    plot = explorer.locator(".widget-image").first
    before = image_digest(plot)
    explorer.scroll_into_view_if_needed()
    shoot(page, "configured")

    train.click()
    steps = tiny_steps()
    # The status line ends every run with "finished/stopped/failed after ..." (or asks for a fix).
    status = explorer.locator(".widget-html").filter(has_text=re.compile(r"(finished|stopped|failed) after|fix|Error"))
    status.first.wait_for(timeout=TRAIN_MS)
    text = status.first.inner_text()
    assert re.search(rf"finished after {steps} of {steps} steps", text), (
        f"the status line says {text!r}; expected 'finished after {steps} of {steps} steps'"
    )
    bar = explorer.locator(".widget-hprogress .progress-bar")
    assert bar.count() == 1, "no progress bar shown after pressing Train"
    width = bar.evaluate("el => el.style.width")
    assert width == "100%", f"the progress bar stopped at {width}"
    assert "progress-bar-success" in (bar.get_attribute("class") or ""), "the progress bar did not turn green"
    counter = explorer.locator(".widget-hprogress").locator("xpath=..").inner_text()
    assert f"{steps}/{steps}" in counter, f"progress text {counter!r}"
    wait_image_changes(plot, before)
    sample = explorer.locator(".lab-sample pre").first
    sample.wait_for()
    assert sample.inner_text().strip(), "no sample text under the 'Sample' heading"
    assert train.is_enabled(), "the Train button stays disabled after training"
    sample.scroll_into_view_if_needed()
    shoot(page, "trained")
    assert not page.errors, page.errors
