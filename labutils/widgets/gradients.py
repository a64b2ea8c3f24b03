"""Lab 02's vanishing / exploding gradient explorer.

An RNN with a random recurrent matrix ``W_hh`` of chosen spectral radius reads a random sequence;
the loss depends on the last hidden state only. PyTorch autograd (float64) gives
``||dL/dh_t||`` at every step ``t``, which the widget plots on a log scale. The computation is
independent of any exercise: it is autograd, not a hand-written backward pass.

* ``recurrent_matrix(H, rho, rng)`` -- a random (H, H) matrix with spectral radius ``rho``;
* ``hidden_gradient_norms(rho, nonlinearity, T)`` -- the norms, an array of shape (T,);
* ``plot_gradient_norms(norms, ...)`` -- a matplotlib ``Figure``;
* ``gradient_explorer()`` -- the ipywidgets box: sliders "spectral radius" and "sequence
  length", a "nonlinearity" toggle, and an ``Image`` widget holding the plot as PNG.
"""

from __future__ import annotations

import numpy as np

from ..plots import figure_png

NONLINEARITIES = ("tanh", "relu", "linear")


def recurrent_matrix(H: int, rho: float, rng: np.random.Generator) -> np.ndarray:
    """A Gaussian (H, H) matrix rescaled so that its largest |eigenvalue| equals ``rho``."""
    W = rng.normal(size=(H, H)) / np.sqrt(H)
    return W * (rho / np.max(np.abs(np.linalg.eigvals(W))))


def hidden_gradient_norms(
    rho: float, nonlinearity: str = "tanh", T: int = 50, *, H: int = 64, input_scale: float = 0.1, seed: int = 0
) -> np.ndarray:
    """``||dL/dh_t||`` for t = 1..T, by autograd in float64, for L = <v, h_T> with random v.

    h_t = f(W_hh h_{t-1} + W_xh x_t + b), f in {tanh, relu, linear}, W_hh of spectral radius
    ``rho``, small random inputs, h_0 = 0. Returns an array of shape (T,); entry t-1 is the
    norm of the gradient reaching h_t. Going back from t = T, each step multiplies the gradient
    by W_hh^T diag(f'(z_t)): norms shrink roughly like rho^(T - t) when rho < 1 and can grow
    when rho > 1.
    """
    import torch

    if nonlinearity not in NONLINEARITIES:
        raise ValueError(f"nonlinearity must be one of {NONLINEARITIES}, got {nonlinearity!r}")
    rng = np.random.default_rng(seed)
    f = {"tanh": torch.tanh, "relu": torch.relu, "linear": lambda z: z}[nonlinearity]
    W_hh = torch.as_tensor(recurrent_matrix(H, rho, rng))
    W_xh = torch.as_tensor(rng.normal(size=(H, H)) / np.sqrt(H))
    b = torch.as_tensor(np.full(H, 0.1 if nonlinearity == "relu" else 0.0))  # keeps ReLU units alive
    x = torch.as_tensor(rng.normal(size=(T, H)) * input_scale)
    v = torch.as_tensor(rng.normal(size=H) / np.sqrt(H))
    h = torch.zeros(H, dtype=torch.float64, requires_grad=True)  # so that every h_t is in the graph
    states = []
    for t in range(T):
        h = f(W_hh @ h + W_xh @ x[t] + b)
        h.retain_grad()
        states.append(h)
    (v @ h).backward()
    return np.array([float(torch.linalg.vector_norm(s.grad)) for s in states])


def plot_gradient_norms(norms: np.ndarray, *, rho: float, nonlinearity: str, ax=None):
    """Semilog plot of the norms against t; the colour says vanishing (blue) or exploding (red)."""
    if ax is None:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(7, 3.4), dpi=90)
        ax = fig.add_subplot()
    T = len(norms)
    ratio = norms[0] / norms[-1] if norms[-1] > 0 else np.inf
    colour = "tab:red" if ratio > 1 else "tab:blue"
    ax.semilogy(np.arange(1, T + 1), np.maximum(norms, 1e-300), "o-", ms=3, color=colour)
    ax.axhline(norms[-1], color="grey", lw=0.8, ls=":")
    ax.set_xlabel("time step t")
    ax.set_ylabel(r"$\|\partial L / \partial h_t\|$")
    regime = "explodes" if ratio > 1 else "vanishes"
    ax.set_title(
        f"spectral radius {rho:.2f}, {nonlinearity}: the gradient {regime} going back "
        f"(h_1 gets {ratio:.1e} x that of h_T)",
        fontsize=9,
    )
    ax.grid(alpha=0.3, which="both")
    return ax.figure


def explorer_png(rho: float, nonlinearity: str, T: int) -> bytes:
    """The explorer's picture for one setting of its controls."""
    norms = hidden_gradient_norms(rho, nonlinearity, T)
    return figure_png(plot_gradient_norms(norms, rho=rho, nonlinearity=nonlinearity))


def gradient_explorer(rho: float = 0.9, nonlinearity: str = "tanh", T: int = 50):
    """The widget: move "spectral radius" across 1 and watch the gradient norms turn around."""
    import ipywidgets as w

    style = {"description_width": "initial"}
    rho_slider = w.FloatSlider(
        value=rho,
        min=0.5,
        max=1.5,
        step=0.05,
        description="spectral radius",
        continuous_update=False,
        readout_format=".2f",
        style=style,
    )
    act = w.ToggleButtons(options=list(NONLINEARITIES), value=nonlinearity, description="nonlinearity", style=style)
    length = w.IntSlider(
        value=T, min=5, max=100, step=5, description="sequence length", continuous_update=False, style=style
    )
    image = w.Image(format="png", value=explorer_png(rho, nonlinearity, T))

    def update(_change=None):
        image.value = explorer_png(rho_slider.value, act.value, length.value)

    for control in (rho_slider, act, length):
        control.observe(update, names="value")
    box = w.VBox([w.HBox([rho_slider, length]), act, image])
    box.update = update  # lets tests and notebooks redraw on demand
    return box
