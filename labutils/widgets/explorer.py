"""The hyperparameter explorer: choose a small character model, press Train, watch it learn.

The logic lives in plain objects so that it can be tested without a browser:

* ``ExplorerConfig`` -- the choices (cell, nonlinearity, sizes, learning rate, how much text, ...)
  and ``problems()``, the list of what is wrong with them in words a student can act on;
* ``TrainingRun`` -- one training session on the Sherlock Holmes canon: builds the model, trains
  it with ``labutils.train.fit`` (truncated BPTT over contiguous streams), keeps the ``History``,
  redraws the loss plot as PNG bytes while it trains, stops when asked and samples at the end;
* ``render_history_png(history)`` -- ``plots.plot_history`` as PNG bytes (a matplotlib ``Figure``
  drawn off-screen, safe to call from a background thread);
* ``Explorer`` -- the ipywidgets layout.  Pressing **Train** starts a ``TrainingRun`` in a
  background thread, so the kernel keeps processing events (the **Stop** button) while the
  model trains.  ``explorer_widget()`` returns an ``Explorer``, which a notebook cell displays.

The held-out text is the last 5% of the canon, as in lab 07; the explorer measures its loss on
the first ``VAL_CHARS`` characters of it to keep evaluation quick.
"""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import TYPE_CHECKING

import numpy as np

from ..data import load_text, train_val_split
from ..plots import figure_png, plot_history
from ..text import CharVocab, n_stream_batches, stream_batches
from .sampler import sample_block

if TYPE_CHECKING:  # the explorer imports torch only when it trains
    from tqdm import tqdm

    from ..models import CharRNN
    from ..train import History

CELL_CHOICES = ("rnn", "gru", "lstm")
NONLINEARITIES = ("tanh", "relu")
OPTIMIZERS = ("adam", "adamw", "rmsprop", "sgd", "adagrad")
VAL_FRACTION = 0.05  # the held-out part of the canon, as in lab 07
VAL_CHARS = 20_000  # how much of it the explorer evaluates on while training
VAL_STREAMS = 8  # read as this many parallel streams (fewer if too short): a few batched steps per evaluation
EVALUATIONS = 5  # held-out evaluations spread over a run, for the plot's held-out curve
PLOT_EVERY_S = 0.5  # train at least this long between two redraws of the loss plot


@dataclass
class ExplorerConfig:
    """What the student chooses.  ``train_chars`` counts characters from the start of the canon."""

    cell: str = "gru"
    nonlinearity: str = "tanh"  # used by cell="rnn" only
    embed_dim: int = 32
    hidden_size: int = 128
    num_layers: int = 1
    seq_len: int = 64
    batch_size: int = 32
    lr: float = 3e-3
    optimizer: str = "adam"
    train_chars: int = 200_000
    epochs: int = 1
    temperature: float = 0.8
    sample_length: int = 300
    prime: str = "Holmes"
    clip: float = 1.0
    seed: int = 0

    def problems(self, n_available: int | None = None) -> list[str]:
        """Everything wrong with this configuration, each with what to change (empty if fine).

        ``n_available``: how many training characters exist (the canon minus its held-out end).
        """
        out = []
        if self.cell not in CELL_CHOICES:
            out.append(f"cell must be one of {', '.join(CELL_CHOICES)}, not {self.cell!r}.")
        if self.nonlinearity not in NONLINEARITIES:
            out.append(f"nonlinearity must be tanh or relu, not {self.nonlinearity!r}.")
        if self.optimizer not in OPTIMIZERS:
            out.append(f"optimizer must be one of {', '.join(OPTIMIZERS)}, not {self.optimizer!r}.")
        for name, low in (
            ("embed_dim", 1),
            ("hidden_size", 1),
            ("num_layers", 1),
            ("seq_len", 2),
            ("batch_size", 1),
            ("epochs", 1),
            ("sample_length", 0),
        ):
            value = getattr(self, name)
            if int(value) != value or value < low:
                out.append(f"{name.replace('_', ' ')} must be a whole number of at least {low}, got {value}.")
        if not self.lr > 0:
            out.append(f"learning rate must be positive, got {self.lr}.")
        elif self.lr > 0.1:
            out.append(f"learning rate {self.lr} is far too large for Adam-style optimisers: try 0.001 to 0.01.")
        if self.temperature < 0:
            out.append(f"temperature must be 0 or more, got {self.temperature}.")
        if n_available is not None and self.train_chars > n_available:
            out.append(f"training characters ({self.train_chars:,}) is more than the {n_available:,} available.")
        streams = self.batch_size * max(int(self.seq_len), 1)
        if self.train_chars < streams + 1:
            out.append(
                f"{self.train_chars:,} training characters are too few for {self.batch_size} streams of "
                f"{self.seq_len} steps ({streams + 1:,} needed): use more characters or a shorter sequence length."
            )
        if not self.prime:
            out.append("the prime text must not be empty.")
        return out

    def steps_per_epoch(self) -> int:
        """How many (batch_size, seq_len) batches one pass over ``train_chars`` characters makes."""
        return n_stream_batches(self.train_chars, self.batch_size, self.seq_len)

    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch()


def render_history_png(history, *, title: str = "", width: float = 6.0, height: float = 3.0) -> bytes:
    """``plots.plot_history`` of ``history`` (``None`` before training) as PNG bytes of a fixed size.

    Draws on a bare ``matplotlib.figure.Figure`` (no pyplot): nothing is shown inline and the
    call is safe from a background thread.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=80)
    ax = fig.add_subplot()
    if history is not None and history.train_loss:
        plot_history(history, ax, title=title, smoothing=0.9)
    else:
        plot_history(_NO_HISTORY, ax, title=title)
        ax.text(0.5, 0.5, "press Train", ha="center", va="center", transform=ax.transAxes, color="grey")
    fig.tight_layout()
    return figure_png(fig, crop=False)


_NO_HISTORY = SimpleNamespace(steps=[], train_loss=[], val_steps=[], val_loss=[])


@dataclass
class TrainingRun:
    """One training session of the explorer; every field is something a widget shows.

    ``run()`` trains synchronously (the widget calls it in a thread); ``stop()`` asks it to end
    after the current step.  ``on_update()`` is called after each plot redraw and at the end.
    ``status`` is one of "not started", "training", "finished", "stopped", "failed".
    """

    config: ExplorerConfig
    text: str
    progress_factory: Callable | None = None  # e.g. tqdm.notebook.tqdm; default: tqdm.auto.tqdm
    on_update: Callable[[TrainingRun], None] | None = None
    device: str | None = "cpu"  # small models train fastest on the CPU
    history: History | None = None
    model: CharRNN | None = None
    vocab: CharVocab | None = None
    plot_png: bytes = b""
    sample_text: str = ""
    message: str = ""
    status: str = "not started"
    seconds: float = 0.0
    bar: tqdm | None = None
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _next_draw: float = field(default=0.0, repr=False)  # perf_counter time from which the plot may be redrawn

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> TrainingRun:
        """Train, plot, sample; never raises: problems end up in ``message`` and ``status``."""
        from ..train import TrainingDiverged

        train_text, val_text = train_val_split(self.text, VAL_FRACTION)
        issues = self.config.problems(len(train_text))
        if issues:
            self.status, self.message = "failed", "Please fix the configuration: " + " ".join(issues)
            self._notify()
            return self
        train_ids, val_ids = self._build(train_text, val_text)
        start = time.perf_counter()
        try:
            self._train(train_ids, val_ids)
            self.status = "stopped" if self.history.stopped_early else "finished"
        except TrainingDiverged as exc:
            self.status, self.message = "failed", str(exc)
        finally:
            self.seconds = time.perf_counter() - start
            self.bar.close()
        if self.status != "failed":
            self._sample_and_summarise()
        self._redraw()
        return self

    def _build(self, train_text: str, val_text: str) -> tuple[np.ndarray, np.ndarray]:
        """The vocabulary, the seeded model, an empty history and the progress bar; return the ids.

        Training ids: the first ``train_chars`` characters of ``train_text``; held-out ids: the
        first ``VAL_CHARS`` of ``val_text``.
        """
        import torch

        from ..models import CharRNN
        from ..train import History

        cfg = self.config
        self.vocab = CharVocab(self.text)
        torch.manual_seed(cfg.seed)
        self.model = CharRNN(
            len(self.vocab), cfg.embed_dim, cfg.hidden_size, cfg.num_layers, cfg.cell, cfg.nonlinearity
        )
        self.history = History()
        factory = self.progress_factory
        if factory is None:
            from tqdm.auto import tqdm as factory
        self.bar = factory(total=cfg.total_steps(), desc="training", unit="batch")
        self.status, self.message = "training", f"training a {cfg.cell.upper()} for {cfg.total_steps()} steps ..."
        return self.vocab.encode(train_text[: cfg.train_chars]), self.vocab.encode(val_text[:VAL_CHARS])

    def _train(self, train_ids: np.ndarray, val_ids: np.ndarray) -> None:
        """``fit`` by truncated BPTT over ``batch_size`` streams, evaluated ``EVALUATIONS`` times."""
        from ..train import fit, make_optimizer

        cfg = self.config
        val_streams = max(1, min(VAL_STREAMS, (len(val_ids) - 1) // (cfg.seq_len + 1)))
        fit(
            self.model,
            lambda: stream_batches(train_ids, cfg.batch_size, cfg.seq_len),
            epochs=cfg.epochs,
            optimizer=make_optimizer(self.model, cfg.optimizer, cfg.lr),
            clip=cfg.clip,
            val=lambda: stream_batches(val_ids, val_streams, cfg.seq_len),
            stateful=True,
            eval_every=max(1, cfg.total_steps() // EVALUATIONS),
            callback=self._after_step,
            device=self.device,
            progress=False,
            history=self.history,
        )

    def _after_step(self, history: History) -> None:
        """``fit``'s callback: move the bar, stop if asked, redraw the plot now and then."""
        from ..train import StopTraining

        self.bar.update(history.steps[-1] - self.bar.n)  # fit may call back less often than every step
        self.bar.set_postfix(loss=f"{history.train_loss[-1]:.3f}", refresh=False)
        if self._stop.is_set():
            raise StopTraining  # fit ends the run and sets history.stopped_early
        now = time.perf_counter()
        if now >= self._next_draw:
            self._redraw()
            # Count from the end of the redraw and give training at least twice the time the
            # redraw took: on a slow machine a redraw can take longer than PLOT_EVERY_S, and
            # the plot would otherwise be redrawn after every step, most of the run's time.
            done = time.perf_counter()
            self._next_draw = done + max(PLOT_EVERY_S, 2 * (done - now))

    def _sample_and_summarise(self) -> None:
        """A sample from the trained model, and the status line: steps done and the last losses."""
        from ..sampling import sample

        cfg, history = self.config, self.history
        self.sample_text = sample(self.model, self.vocab, self._prime(), cfg.sample_length, cfg.temperature)
        steps = history.steps[-1] if history.steps else 0
        held = f", held-out {history.val_loss[-1]:.3f}" if history.val_loss else ""
        self.message = (
            f"{self.status} after {steps} of {cfg.total_steps()} steps: training loss "
            f"{np.mean(history.train_loss[-10:]):.3f}{held} (nats per character)."
        )

    def _prime(self) -> str:
        """The configured prime, without characters the vocabulary lacks (a test text may miss some)."""
        kept = "".join(c for c in self.config.prime if c in self.vocab)
        return kept or self.vocab.chars[0]

    def _redraw(self) -> None:
        title = f"{self.config.cell.upper()} {self.config.num_layers}x{self.config.hidden_size}"
        self.plot_png = render_history_png(self.history, title=title)
        self._notify()

    def _notify(self) -> None:
        if self.on_update is not None:
            self.on_update(self)


def _controls(cfg: ExplorerConfig) -> dict:
    """One widget per field a student may change, named like the field, showing ``cfg``'s value."""
    import ipywidgets as W

    wide = {"style": {"description_width": "140px"}, "layout": W.Layout(width="340px")}

    def number(name, description, low, high, **extra):
        return W.BoundedIntText(value=getattr(cfg, name), min=low, max=high, description=description, **extra, **wide)

    return {
        "cell": W.Dropdown(options=list(CELL_CHOICES), value=cfg.cell, description="cell", **wide),
        "nonlinearity": W.Dropdown(
            options=list(NONLINEARITIES), value=cfg.nonlinearity, description="nonlinearity (rnn)", **wide
        ),
        "embed_dim": number("embed_dim", "embedding", 1, 1024),
        "hidden_size": number("hidden_size", "hidden size", 1, 2048),
        "num_layers": number("num_layers", "layers", 1, 8),
        "seq_len": number("seq_len", "sequence length", 2, 1000),
        "batch_size": number("batch_size", "streams (batch)", 1, 1024),
        "lr": W.FloatLogSlider(
            value=cfg.lr, base=10, min=-5, max=-1, step=0.1, readout_format=".1e", description="learning rate", **wide
        ),
        "optimizer": W.Dropdown(options=list(OPTIMIZERS), value=cfg.optimizer, description="optimiser", **wide),
        "train_chars": number("train_chars", "training characters", 1, 4_000_000, step=10_000),
        "epochs": number("epochs", "epochs", 1, 100),
        "temperature": W.FloatSlider(
            value=cfg.temperature, min=0.0, max=2.0, step=0.05, description="temperature", **wide
        ),
    }


class Explorer:
    """The explorer's widgets and their callbacks.  ``Explorer().widget`` goes in a notebook cell.

    Controls (their ``description`` is what a student reads): cell, nonlinearity, embedding,
    hidden size, layers, sequence length, streams, learning rate, optimiser, training characters,
    epochs, temperature; buttons Train and Stop.  Below them: the progress bar, the loss plot
    (an ``Image``), a status line and the sample (an ``HTML`` block headed "Sample").
    """

    def __init__(self, text: str | None = None, config: ExplorerConfig | None = None, *, device: str | None = "cpu"):
        import ipywidgets as W

        self._text = text
        self.device = device
        self.controls = _controls(config or ExplorerConfig())
        self.train_button = W.Button(description="Train", button_style="success", icon="play")
        self.stop_button = W.Button(description="Stop", button_style="danger", icon="stop", disabled=True)
        self.progress_box = W.Box()
        self.plot = W.Image(value=render_history_png(None), format="png")
        self.status = W.HTML(value="Choose a configuration and press <b>Train</b>.")
        self.sample = W.HTML(value=sample_block(""))
        self.sample.add_class("lab-sample")
        self.train_button.on_click(self._on_train)
        self.stop_button.on_click(self._on_stop)
        self.run: TrainingRun | None = None
        self.thread: threading.Thread | None = None
        left = W.VBox([*self.controls.values(), W.HBox([self.train_button, self.stop_button])])
        right = W.VBox([self.progress_box, self.plot, self.status])
        self.widget = W.VBox([W.HBox([left, right]), self.sample])

    # ------------------------------------------------------------------ logic behind the widgets
    def config(self) -> ExplorerConfig:
        """The configuration the controls show now."""
        values = {name: control.value for name, control in self.controls.items()}
        return ExplorerConfig(**values)

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = load_text("sherlock_canon")
        return self._text

    def _on_train(self, _button=None) -> None:
        if self.thread is not None and self.thread.is_alive():
            return
        cfg = self.config()
        issues = cfg.problems()
        if issues:  # report at once, before loading anything
            self.status.value = "<b>Please fix the configuration:</b><br>" + "<br>".join(map(html.escape, issues))
            return
        from tqdm.notebook import tqdm as notebook_tqdm

        def progress_factory(**kwargs):
            bar = notebook_tqdm(display=False, **kwargs)
            self.progress_box.children = (bar.container,)
            return bar

        self.sample.value = sample_block("")
        self.run = TrainingRun(
            cfg, self.text, progress_factory=progress_factory, on_update=self._show, device=self.device
        )
        self.train_button.disabled, self.stop_button.disabled = True, False
        self.thread = threading.Thread(target=self._train_in_background, name="explorer-training", daemon=True)
        self.thread.start()

    def _train_in_background(self) -> None:
        try:
            self.run.run()
        except Exception as exc:  # shown to the student rather than lost in a thread
            self.run.status, self.run.message = "failed", f"{type(exc).__name__}: {exc}"
            self._show(self.run)
        finally:
            self.train_button.disabled, self.stop_button.disabled = False, True

    def _on_stop(self, _button=None) -> None:
        if self.run is not None:
            self.run.stop()
            self.status.value = "stopping after this step ..."

    def _show(self, run: TrainingRun) -> None:
        if run.plot_png:
            self.plot.value = run.plot_png
        self.status.value = html.escape(run.message).replace("\n", "<br>")
        if run.sample_text:
            self.sample.value = sample_block(run.sample_text)

    def wait(self, timeout: float | None = None) -> TrainingRun | None:
        """Block until the background training ends (for tests and scripts); return the run."""
        if self.thread is not None:
            self.thread.join(timeout)
        return self.run

    def _ipython_display_(self):  # a notebook cell ending in an Explorer shows its widget
        from IPython.display import display

        display(self.widget)

    @property
    def model(self):
        """The model trained last (for the sampler and the hidden-state viewer)."""
        return None if self.run is None else self.run.model

    @property
    def vocab(self):
        return None if self.run is None else self.run.vocab


def explorer_widget(text: str | None = None, **config) -> Explorer:
    """Build the explorer; display ``explorer.widget`` (a notebook shows the returned object)."""
    return Explorer(text, ExplorerConfig(**config))
