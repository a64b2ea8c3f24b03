"""The hidden-state viewer: colour a passage by what one hidden unit does at each character.

Karpathy's "unreasonable effectiveness" essay found units that track quotation marks or the
position in a line.  Here a student can look for them:

* ``unit_activations(model, vocab, passage)`` -> (T, H) array: the last layer's hidden state
  after reading each character of ``passage``;
* ``colour_passage_html(passage, values)`` -> HTML with one background colour per character
  (blue for negative, white near 0, red for positive; scaled by the largest ``|value|``);
* ``rank_units(acts, feature)`` -> units ordered by how strongly they follow a per-character
  feature such as ``inside_quotes(passage)`` or ``position_in_line(passage)``;
* ``HiddenViewer`` / ``hidden_widget(model, vocab, passage)`` -- the widget: a passage box, a
  "hidden unit" slider, a "sort units by" menu and the coloured passage.
"""

from __future__ import annotations

import html

import numpy as np


def unit_activations(model, vocab, passage: str) -> np.ndarray:
    """The last recurrent layer's hidden state after each character: (len(passage), H) float64."""
    import torch

    if not passage:
        raise ValueError("the passage is empty: type some text to look at")
    unknown = vocab.unknown(passage) if hasattr(vocab, "unknown") else []
    if unknown:
        raise ValueError(f"the passage contains characters the model has never seen: {unknown!r}")
    device = next(model.parameters()).device
    x = torch.as_tensor(vocab.encode(passage), device=device).unsqueeze(0)  # (1, T)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            states = model.hidden_states(x)  # (1, T, H)
    finally:
        model.train(was_training)
    return states[0].double().cpu().numpy()


def colour(value: float, scale: float) -> str:
    """A CSS colour for ``value`` in [-scale, scale]: blue (negative) -> white (0) -> red (positive)."""
    t = 0.0 if scale <= 0 else float(np.clip(value / scale, -1.0, 1.0))
    fade = int(round(255 * (1 - abs(t))))  # how much of the other two channels is left
    r, g, b = (255, fade, fade) if t >= 0 else (fade, fade, 255)
    return f"#{r:02x}{g:02x}{b:02x}"


def colour_passage_html(passage: str, values, *, scale: float | None = None) -> str:
    """HTML in which character i of ``passage`` has a background coloured by ``values[i]``.

    ``scale`` defaults to the largest ``|value|`` (so ReLU units, which are unbounded, are shown
    on their own scale).  Newlines are kept; every span's ``title`` shows the exact value.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.shape != (len(passage),):
        raise ValueError(f"need one value per character: passage has {len(passage)}, values {values.shape}")
    if scale is None:
        scale = float(np.max(np.abs(values))) if values.size else 0.0
    spans = []
    for ch, v in zip(passage, values, strict=True):
        shown = "⏎\n" if ch == "\n" else html.escape(ch)
        spans.append(f'<span style="background-color:{colour(v, scale)}" title="{v:+.3f}">{shown}</span>')
    return (
        '<pre class="lab-hidden" style="white-space: pre-wrap; font-family: monospace; line-height: 1.5">'
        + "".join(spans)
        + "</pre>"
    )


def inside_quotes(passage: str) -> np.ndarray:
    """1.0 for characters between an opening and a closing double quote, else 0.0."""
    out, inside = np.zeros(len(passage)), False
    for i, ch in enumerate(passage):
        if ch == '"':
            inside = not inside
        out[i] = float(inside)
    return out


def position_in_line(passage: str) -> np.ndarray:
    """How many characters since the last newline (0 at the start of a line)."""
    out, pos = np.zeros(len(passage)), 0
    for i, ch in enumerate(passage):
        out[i] = pos
        pos = 0 if ch == "\n" else pos + 1
    return out


FEATURES = {"inside quotes": inside_quotes, "position in line": position_in_line}


def rank_units(acts: np.ndarray, feature=None) -> np.ndarray:
    """Unit indices, most interesting first.

    With a ``feature`` (one number per character): by ``|correlation|`` between the unit's
    activation and the feature.  Without one: by the variance of the activation.
    """
    acts = np.asarray(acts, dtype=np.float64)
    if feature is None:
        score = acts.var(axis=0)
    else:
        f = np.asarray(feature, dtype=np.float64)
        a = acts - acts.mean(axis=0)
        f = f - f.mean()
        denom = np.sqrt((a**2).sum(axis=0) * (f**2).sum())
        score = np.abs(a.T @ f) / np.where(denom > 0, denom, np.inf)
    return np.argsort(-score, kind="stable")


class HiddenViewer:
    """Passage, "hidden unit" slider and "sort units by" menu; the passage coloured by the unit."""

    def __init__(self, model, vocab, passage: str):
        import ipywidgets as W

        self.model, self.vocab = model, vocab
        hidden = model.config["hidden_size"] if hasattr(model, "config") else model.rnn.hidden_size
        style = {"description_width": "110px"}
        self.passage = W.Textarea(
            value=passage, description="passage", style=style, layout=W.Layout(width="95%", height="90px")
        )
        self.sort_by = W.Dropdown(
            options=["unit number", "variance", *FEATURES], value="variance", description="sort units by", style=style
        )
        self.rank = W.IntSlider(value=0, min=0, max=hidden - 1, description="hidden unit", style=style)
        self.label = W.HTML()
        self.view = W.HTML()
        self.acts = None
        self.order = np.arange(hidden)
        self.passage.observe(lambda _change: self.refresh(), names="value")
        self.sort_by.observe(lambda _change: self.refresh(), names="value")
        self.rank.observe(lambda _change: self.show(), names="value")
        self.widget = W.VBox([self.passage, W.HBox([self.sort_by, self.rank]), self.label, self.view])
        self.refresh()

    def refresh(self) -> None:
        """Recompute the activations of the passage and the order of the units."""
        try:
            self.acts = unit_activations(self.model, self.vocab, self.passage.value)
        except ValueError as exc:
            self.acts = None
            self.label.value = html.escape(str(exc))
            self.view.value = ""
            return
        how = self.sort_by.value
        if how == "unit number":
            self.order = np.arange(self.acts.shape[1])
        else:
            feature = FEATURES[how](self.passage.value) if how in FEATURES else None
            self.order = rank_units(self.acts, feature)
        self.show()

    def show(self) -> None:
        if self.acts is None:
            return
        unit = int(self.order[self.rank.value])
        values = self.acts[:, unit]
        self.label.value = (
            f"unit {unit} (number {self.rank.value + 1} by {html.escape(self.sort_by.value)}): "
            f"from {values.min():+.2f} (blue) to {values.max():+.2f} (red)"
        )
        self.view.value = colour_passage_html(self.passage.value, values)

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)


def hidden_widget(model, vocab, passage: str) -> HiddenViewer:
    """The hidden-state viewer over ``model`` (a ``CharRNN``); display it by ending a cell with it."""
    return HiddenViewer(model, vocab, passage)
