"""ipywidgets for the labs; one module per widget, the logic testable without a browser.

* ``gradients`` -- lab 02's vanishing / exploding gradient explorer (``gradient_explorer()``);
* ``explorer`` -- lab 07's hyperparameter explorer (``explorer_widget()``);
* ``sampler`` -- text from a trained model with prime, temperature and top-k (``sampler_widget()``);
* ``hidden`` -- a passage coloured by one hidden unit (``hidden_widget()``).

Each module keeps its computation in plain functions or objects (unit-tested) and builds the
ipywidgets layout in one function that returns what a notebook cell displays; plots are drawn
with ``labutils.plots`` on bare matplotlib figures and shown as PNG (``plots.figure_png``).
"""
