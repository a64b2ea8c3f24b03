"""The vanishing / exploding gradient explorer of lab 02: computation and widget, without a browser."""

from __future__ import annotations

import numpy as np
import pytest

from labutils.widgets import gradients as gw


def test_recurrent_matrix_has_the_spectral_radius():
    W = gw.recurrent_matrix(20, 1.3, np.random.default_rng(0))
    assert np.isclose(np.max(np.abs(np.linalg.eigvals(W))), 1.3)


def test_norms_vanish_below_one_with_tanh():
    norms = gw.hidden_gradient_norms(0.5, "tanh", 30)
    assert norms.shape == (30,)
    assert np.all(np.isfinite(norms))
    assert norms[0] < 1e-6 * norms[-1]
    assert np.all(np.diff(norms) > 0)  # grows towards the last step: shrinks going back in time


@pytest.mark.parametrize("nonlinearity", ["relu", "linear"])
def test_norms_explode_above_one(nonlinearity):
    norms = gw.hidden_gradient_norms(2.0, nonlinearity, 30)
    assert norms[0] > 1e3 * norms[-1]


def test_crossing_one_turns_the_trend_around():
    below = gw.hidden_gradient_norms(0.9, "linear", 40)
    above = gw.hidden_gradient_norms(1.2, "linear", 40)
    assert below[0] < below[-1]
    assert above[0] > above[-1]


def test_unknown_nonlinearity_is_refused():
    with pytest.raises(ValueError, match="nonlinearity"):
        gw.hidden_gradient_norms(1.0, "sigmoid", 5)


def test_png_is_rendered():
    png = gw.explorer_png(0.9, "tanh", 10)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def _find(widget, cls, description=None):
    import ipywidgets as w

    found = []
    stack = [widget]
    while stack:
        node = stack.pop()
        if isinstance(node, cls) and (description is None or getattr(node, "description", None) == description):
            found.append(node)
        if isinstance(node, w.Box):
            stack.extend(node.children)
    return found


def test_explorer_image_changes_when_the_slider_crosses_one():
    import ipywidgets as w

    box = gw.gradient_explorer(rho=0.9, T=20)
    (slider,) = _find(box, w.FloatSlider, "spectral radius")
    (_length,) = _find(box, w.IntSlider, "sequence length")
    (_act,) = _find(box, w.ToggleButtons, "nonlinearity")
    (image,) = _find(box, w.Image)
    before = image.value
    slider.value = 1.3
    assert image.value != before
    assert image.value[:4] == b"\x89PNG"
