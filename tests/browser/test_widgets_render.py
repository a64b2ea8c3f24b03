"""The course's widgets render and react in JupyterLab, in the notebooks students open.

Lab 00's slider is the students' own proof that widgets work; lab 02's gradient explorer must
show vanishing gradients (a blue curve) below spectral radius 1 and exploding ones (red) above.
The last test loads JupyterLab without the widgets front-end and proves that the assertions
used here notice: the page then shows the widget's plain-text repr instead of the widget.
"""

import pytest
from labpage import (
    WIDGETS_MANAGER,
    assert_widgets_rendered,
    code_cell,
    colour_pixels,
    image_digest,
    open_notebook,
    run_cell,
    set_slider,
    wait_image_changes,
)

LAB00 = "notebooks/00_setup.ipynb"
LAB02 = "notebooks/02_bptt_numpy.ipynb"
# matplotlib's default colours, which plot_gradient_norms uses for the two regimes.
REGIMES = {"vanishing (blue)": (31, 119, 180), "exploding (red)": (214, 39, 40)}


def _readout(slider) -> str:
    return slider.locator(".widget-readout").inner_text().strip()


def _require(server, relpath: str) -> None:
    if not (server.root_dir / relpath).exists():
        pytest.fail(f"{relpath} is missing")


def test_lab00_widget_cell(page, jupyter_lab, shoot):
    """Lab 00 ends with a slider that redraws tanh(w x); it needs the imports of the first cell."""
    _require(jupyter_lab, LAB00)
    panel = open_notebook(page, LAB00)
    run_cell(code_cell(panel, "import ipywidgets"))
    cell = code_cell(panel, "slider.observe(")
    run_cell(cell)
    output = cell.locator(".jp-OutputArea")
    assert_widgets_rendered(output, minimum=3)  # the box, its slider and its image
    box = output.locator(".widget-vbox").first
    slider = box.locator(".widget-slider").first
    img = box.locator(".widget-image").first
    img.wait_for()
    box.scroll_into_view_if_needed()
    assert float(_readout(slider)) == 1.0
    before = image_digest(img)
    shoot(page, "rendered")

    set_slider(slider, 3.0)
    wait_image_changes(img, before)
    assert float(_readout(slider)) == 3.0
    shoot(page, "after-slider")
    assert not page.errors, page.errors


def explorer_output(panel):
    """Run lab 02's gradient-explorer cell (it needs no other cell) and return its output area."""
    cell = code_cell(panel, "gradient_explorer()")
    run_cell(cell)
    return cell.locator(".jp-OutputArea")


def test_lab02_gradient_explorer(page, jupyter_lab, shoot):
    """Move "spectral radius" from 0.80 to 1.30: the plot changes from a blue to a red curve."""
    _require(jupyter_lab, LAB02)
    panel = open_notebook(page, LAB02)
    explorer = explorer_output(panel)
    assert_widgets_rendered(explorer, minimum=5)  # boxes, two sliders, the toggle buttons, the image
    slider = explorer.locator(".widget-slider").filter(
        has=page.locator("label.widget-label", has_text="spectral radius")
    )
    img = explorer.locator(".widget-image").first
    img.wait_for()
    explorer.scroll_into_view_if_needed()
    start = image_digest(img)
    assert _readout(slider) == "0.90", "the test expects the explorer to start at spectral radius 0.90"

    set_slider(slider, 0.8)
    below = wait_image_changes(img, start)
    assert _readout(slider) == "0.80"
    shoot(page, "radius-0.80")
    colours = colour_pixels(img, REGIMES)
    assert colours["vanishing (blue)"] > 100 > colours["exploding (red)"], f"at radius 0.80: {colours}"

    set_slider(slider, 1.3)
    wait_image_changes(img, below)
    assert _readout(slider) == "1.30"
    shoot(page, "radius-1.30")
    colours = colour_pixels(img, REGIMES)
    assert colours["exploding (red)"] > 100 > colours["vanishing (blue)"], f"at radius 1.30: {colours}"
    assert not page.errors, page.errors


def test_missing_widgets_frontend_is_noticed(lab_tab, jupyter_lab, shoot):
    """Without @jupyter-widgets/jupyterlab-manager the explorer cell runs but shows no widget,
    and ``assert_widgets_rendered`` -- the assertion every widget test relies on -- fails."""
    _require(jupyter_lab, LAB02)
    with lab_tab(disabled=[WIDGETS_MANAGER]) as tab:
        panel = open_notebook(tab, LAB02)
        explorer = explorer_output(panel)
        with pytest.raises(AssertionError, match=r"plain-text repr .VBox\(children=") as failure:
            assert_widgets_rendered(explorer, minimum=5)
        explorer.scroll_into_view_if_needed()
        shoot(tab, "no-widgets-frontend")
        assert explorer.locator(".jupyter-widgets").count() == 0
        print(f"assert_widgets_rendered without the widgets front-end: {failure.value}")
