"""ipywidgets render and react in JupyterLab: a minimal notebook, then lab 00's widget cell.

The minimal notebook separates "the harness and the widgets front-end work" from "our widget
works": if this test fails, no widget in the course can work for students either.
"""

import pytest
from labpage import (
    assert_widgets_rendered,
    image_digest,
    open_notebook,
    run_all,
    set_slider,
    wait_image_changes,
    write_notebook,
)

SLIDER_AND_PLOT = [
    "import ipywidgets as widgets\nimport matplotlib.pyplot as plt\nimport numpy as np",
    '''\
slider = widgets.IntSlider(value=1, min=1, max=8, description="frequency")
out = widgets.Output()


def draw(change=None):
    """Redraw the sine of the chosen frequency into the Output widget."""
    with out:
        out.clear_output(wait=True)
        x = np.linspace(0, 2 * np.pi, 200)
        plt.figure(figsize=(4, 2))
        plt.plot(x, np.sin(slider.value * x))
        plt.show()


slider.observe(draw, names="value")
draw()
widgets.VBox([slider, out])''',
]


def test_slider_redraws_plot(page, jupyter_lab, scratch_dir, shoot):
    write_notebook(scratch_dir / "slider.ipynb", SLIDER_AND_PLOT)
    panel = open_notebook(page, jupyter_lab, f"{scratch_dir.name}/slider.ipynb")
    run_all(page, panel)
    output = panel.locator(".jp-CodeCell").nth(1).locator(".jp-OutputArea")
    slider = output.locator(".widget-slider")
    assert_widgets_rendered(output, minimum=3)  # VBox, slider, Output
    img = output.locator(".widget-output img")
    img.wait_for()
    before = image_digest(img)
    shoot(page, "rendered")

    set_slider(slider, 5)
    wait_image_changes(img, before)
    assert slider.locator(".widget-readout").inner_text().strip() == "5"
    shoot(page, "after-slider")
    assert not page.errors, page.errors


def test_lab00_widget_cell(page, jupyter_lab, shoot):
    """Lab 00 ends with a slider that redraws tanh(w x): the students' own proof that widgets work."""
    folder = "notebooks" if (jupyter_lab.root_dir / "notebooks" / "00_setup.ipynb").exists() else "solutions"
    if not (jupyter_lab.root_dir / folder / "00_setup.ipynb").exists():
        pytest.fail("lab 00 (00_setup.ipynb) is missing from notebooks/ and solutions/")
    panel = open_notebook(page, jupyter_lab, f"{folder}/00_setup.ipynb")
    run_all(page, panel)
    cell = panel.locator(".jp-CodeCell").filter(has_text="interact(")
    assert cell.count() == 1, f"expected one cell using interact in lab 00, found {cell.count()}"
    output = cell.locator(".jp-OutputArea")
    assert_widgets_rendered(output, minimum=3)  # the interact box, its slider and its output
    interact = output.locator(".widget-interact").first
    slider = interact.locator(".widget-slider").first
    img = interact.locator(".widget-output img").first
    img.wait_for()
    interact.scroll_into_view_if_needed()
    before = image_digest(img)
    shoot(page, "rendered")

    set_slider(slider, 3.0)
    wait_image_changes(img, before)
    assert slider.locator(".widget-readout").inner_text().strip() == "3.0"
    shoot(page, "after-slider")
    assert not page.errors, page.errors


def test_lab02_gradient_explorer(page, jupyter_lab, shoot):
    """Lab 02: Run All, then move "spectral radius" from below 1 to above 1; the plot must change."""
    lab02 = "solutions/02_bptt_numpy.ipynb"
    if not (jupyter_lab.root_dir / lab02).exists():
        pytest.fail(f"{lab02} is missing")
    panel = open_notebook(page, jupyter_lab, lab02)
    run_all(page, panel)
    # The output of the cell that calls gradient_explorer() (found by its code, which the
    # front-end shows whether or not the widgets render).
    cell = panel.locator(".jp-CodeCell").filter(has_text="gradient_explorer()")
    assert cell.count() == 1, f"expected one cell calling gradient_explorer() in lab 02, found {cell.count()}"
    explorer = cell.locator(".jp-OutputArea")
    assert_widgets_rendered(explorer, minimum=5)  # box, sliders, toggle buttons, image
    radius = page.locator("label.widget-label", has_text="spectral radius")
    slider = explorer.locator(".widget-slider").filter(has=radius)
    img = explorer.locator(".widget-image").first
    img.wait_for()
    explorer.scroll_into_view_if_needed()

    start = image_digest(img)
    assert _readout(slider) != "0.80", "the test expects the explorer to start at another radius than 0.80"
    set_slider(slider, 0.8)
    below = wait_image_changes(img, start)
    assert _readout(slider) == "0.80"
    shoot(page, "radius-0.80")
    set_slider(slider, 1.2)
    above = wait_image_changes(img, below)
    assert _readout(slider) == "1.20"
    assert above != below
    shoot(page, "radius-1.20")
    assert not page.errors, page.errors


def _readout(slider) -> str:
    return slider.locator(".widget-readout").inner_text().strip()
