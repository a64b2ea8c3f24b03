"""ipywidgets for the labs; one module per widget, the logic testable without a browser.

Each widget module keeps its computation in plain functions (unit-tested) and builds the
ipywidgets layout in one ``*_widget()`` function that returns the top-level widget.
"""
