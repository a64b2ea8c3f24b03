"""Lab 07's hyperparameter explorer, used as a student uses it: set a configuration, press Train.

A tiny configuration (a 16-unit GRU on 2,000 characters) trains in seconds. The test asserts on
what the page shows: the progress bar fills and turns green, the loss plot image changes, the
status line reports every step done, and a sample appears under the "Sample" heading.
"""

import re

import pytest
from labpage import (
    assert_widgets_rendered,
    image_digest,
    open_notebook,
    run_all,
    wait_image_changes,
    write_notebook,
)

LAB07 = "solutions/07_sherlock_assignment.ipynb"
TINY = {
    "embedding": 8,
    "hidden size": 16,
    "layers": 1,
    "sequence length": 16,
    "streams (batch)": 4,
    "training characters": 2000,
    "epochs": 1,
}


def find_explorer(panel):
    """The output of the cell that calls ``explorer_widget(...)``, once its widgets rendered."""
    cell = panel.locator(".jp-CodeCell").filter(has_text="explorer_widget(")
    assert cell.count() == 1, f"expected one cell calling explorer_widget(...), found {cell.count()}"
    output = cell.locator(".jp-OutputArea")
    assert_widgets_rendered(output, minimum=10)  # a dozen controls, two buttons, the plot
    assert output.locator("button", has_text=re.compile(r"^\s*Train\s*$")).count() == 1, "no Train button"
    return output


def set_number(area, label: str, value: int) -> None:
    """Type ``value`` into the number box described by ``label`` and commit it with Enter."""
    box = area.locator(".widget-text").filter(
        has=area.page.locator("label.widget-label", has_text=re.compile(f"^{re.escape(label)}$"))
    )
    assert box.count() == 1, f"no single number box labelled {label!r} in the explorer"
    field = box.locator("input")
    field.fill(str(value))
    field.press("Enter")


def train_tiny_model(explorer, shoot, expected_steps: int) -> None:
    """Set TINY, press Train and check everything the explorer shows while and after it trains."""
    page = explorer.page
    for label, value in TINY.items():
        set_number(explorer, label, value)
    plot = explorer.locator(".widget-image").first
    before = image_digest(plot)
    explorer.scroll_into_view_if_needed()
    shoot(page, "configured")

    train = explorer.locator("button", has_text=re.compile(r"^\s*Train\s*$"))
    train.click()
    # While it trains the Train button is disabled; it is enabled again when the run ends.
    status = explorer.locator(".widget-html").filter(has_text=re.compile(r"(finished|stopped|failed) after|fix|Error"))
    status.first.wait_for(timeout=120_000)
    text = status.first.inner_text()
    shoot(page, "trained")
    assert re.search(rf"finished after {expected_steps} of {expected_steps} steps", text), (
        f"the status line says {text!r}; expected 'finished after {expected_steps} of {expected_steps} steps'"
    )

    bar = explorer.locator(".widget-progress .progress-bar")
    assert bar.count() == 1, "no progress bar shown after pressing Train"
    width = bar.evaluate("el => el.style.width")
    assert width == "100%", f"the progress bar stopped at {width}"
    assert "progress-bar-success" in (bar.get_attribute("class") or ""), "the progress bar did not turn green"
    counter = explorer.locator(".widget-progress").locator("xpath=..").inner_text()
    assert f"{expected_steps}/{expected_steps}" in counter, f"progress text {counter!r}"

    wait_image_changes(plot, before)
    sample = explorer.locator(".lab-sample pre").first
    assert sample.inner_text().strip(), "no sample text under the 'Sample' heading"
    assert train.is_enabled(), "the Train button stays disabled after training"
    shoot(page, "final")


def tiny_steps() -> int:
    from labutils.text import n_stream_batches

    return TINY["epochs"] * n_stream_batches(
        TINY["training characters"], TINY["streams (batch)"], TINY["sequence length"]
    )


def test_explorer_widget_trains(page, jupyter_lab, scratch_dir, shoot):
    """The explorer alone, in a notebook of one cell (fast; isolates the widget from lab 07)."""
    write_notebook(
        scratch_dir / "explorer.ipynb", ["from labutils.widgets.explorer import explorer_widget\n\nexplorer_widget()"]
    )
    panel = open_notebook(page, jupyter_lab, f"{scratch_dir.name}/explorer.ipynb")
    run_all(page, panel)
    train_tiny_model(find_explorer(panel), shoot, tiny_steps())
    assert not page.errors, page.errors


def test_lab07_explorer(page, jupyter_lab, shoot):
    """Lab 07 itself: Run All, then train a tiny model in its explorer."""
    if not (jupyter_lab.root_dir / LAB07).exists():
        pytest.fail(f"{LAB07} is missing")
    panel = open_notebook(page, jupyter_lab, LAB07)
    run_all(page, panel, timeout=240)
    train_tiny_model(find_explorer(panel), shoot, tiny_steps())
    assert not page.errors, page.errors
