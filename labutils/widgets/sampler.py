"""The sampler widget: prime text, temperature, top-k and length over a trained character model.

``generate(model, vocab, settings)`` does the work and returns ``(text, message)``; it never
raises for a bad setting (an empty prime, characters the model has never seen, a negative
temperature) but explains it in ``message``, which the widget shows.  ``Sampler`` wires it to
ipywidgets; ``sampler_widget(model, vocab)`` returns one ready to display.
"""

from __future__ import annotations

import html
from dataclasses import dataclass


@dataclass
class SampleSettings:
    """``top_k=0`` means no top-k filter; ``seed=None`` draws differently every time."""

    prime: str = "Holmes"
    temperature: float = 0.8
    top_k: int = 0
    length: int = 300
    seed: int | None = 0


def generate(model, vocab, settings: SampleSettings) -> tuple[str, str]:
    """Sample ``settings.length`` characters after ``settings.prime``; return ``(text, message)``.

    ``text`` is empty when the settings cannot be used; ``message`` then says why.
    """
    import torch

    from ..sampling import sample

    if model is None or vocab is None:
        return "", "There is no trained model yet: train one first (e.g. in the explorer above)."
    if not settings.prime:
        return "", "The prime text is empty: type a few characters for the model to continue."
    unknown = vocab.unknown(settings.prime) if hasattr(vocab, "unknown") else []
    if unknown:
        return "", (
            f"The prime text contains characters the model has never seen: {unknown!r}. Remove or replace them."
        )
    if settings.temperature < 0:
        return "", f"The temperature must be 0 or more, got {settings.temperature}."
    if settings.length < 0:
        return "", f"The length must be 0 or more, got {settings.length}."
    generator = None
    if settings.seed is not None:
        generator = torch.Generator(device=next(model.parameters()).device).manual_seed(int(settings.seed))
    top_k = int(settings.top_k) or None
    text = sample(
        model, vocab, settings.prime, int(settings.length), float(settings.temperature), top_k, generator=generator
    )
    how = (
        "the most likely character every time" if settings.temperature == 0 else f"temperature {settings.temperature:g}"
    )
    return text, f"{settings.length} characters at {how}" + (f", top-{top_k}" if top_k else "") + "."


def sample_block(text: str, prime: str = "") -> str:
    """HTML for a sample: a "Sample" heading, the prime in bold, the generated rest after it."""
    rest = text[len(prime) :] if prime and text.startswith(prime) else text
    head = f"<b>{html.escape(prime)}</b>" if prime and text.startswith(prime) else ""
    return (
        '<div class="lab-sample"><h4>Sample</h4><pre style="white-space: pre-wrap; margin: 0">'
        f"{head}{html.escape(rest)}</pre></div>"
    )


class Sampler:
    """Controls (prime text, temperature, top-k, length, seed), a Sample button and the result."""

    def __init__(self, model, vocab, settings: SampleSettings | None = None):
        import ipywidgets as W

        self.model, self.vocab = model, vocab
        s = settings or SampleSettings()
        style = {"description_width": "110px"}
        n_tokens = len(vocab) if vocab is not None else 100
        self.prime = W.Text(value=s.prime, description="prime text", style=style)
        self.temperature = W.FloatSlider(
            value=s.temperature, min=0.0, max=2.0, step=0.05, description="temperature", style=style
        )
        self.top_k = W.IntSlider(value=s.top_k, min=0, max=n_tokens, description="top-k (0: all)", style=style)
        self.length = W.IntSlider(value=s.length, min=0, max=2000, step=10, description="length", style=style)
        self.seed = W.IntText(value=0 if s.seed is None else s.seed, description="seed", style=style)
        self.button = W.Button(description="Sample", button_style="primary", icon="pencil")
        self.message = W.HTML()
        self.output = W.HTML(value=sample_block(""))
        self.output.add_class("lab-sample")
        self.button.on_click(self._on_sample)
        self.widget = W.VBox(
            [
                W.HBox(
                    [W.VBox([self.prime, self.temperature, self.top_k]), W.VBox([self.length, self.seed, self.button])]
                ),
                self.message,
                self.output,
            ]
        )

    def settings(self) -> SampleSettings:
        return SampleSettings(
            self.prime.value, self.temperature.value, self.top_k.value, self.length.value, self.seed.value
        )

    def _on_sample(self, _button=None) -> None:
        settings = self.settings()
        text, message = generate(self.model, self.vocab, settings)
        self.message.value = html.escape(message)
        if text:
            self.output.value = sample_block(text, settings.prime)

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)


def sampler_widget(model, vocab, **settings) -> Sampler:
    """A sampler over ``model`` (a ``CharRNN``) and its ``vocab``; display it by ending a cell with it."""
    return Sampler(model, vocab, SampleSettings(**settings))
