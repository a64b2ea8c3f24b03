"""What a stored solution may show: its outputs, without this machine's paths, warnings or terminal noise.

``python -m labutils execute`` (``labutils.execute``) applies these rules to a notebook it has just
run, before writing it:

1. **Streams read as a terminal shows them.** Adjacent outputs of the same stream are merged, and
   carriage returns and backspaces are resolved, so that a text progress bar keeps only its final
   state (nbval does the same before it compares).
2. **Python warnings are removed** from stderr: the ``file:line: SomeWarning: message`` line that
   ``warnings`` prints and the source line under it.  They are noise for a reader and carry the
   paths of the machine that ran the notebook.  The command lists every warning it removes, so that
   the notebook can silence it at its source.
3. **A progress widget's plain-text fallback shows where the bar ended.**  ``tqdm.auto`` draws an
   ipywidgets bar whose ``text/plain`` copy is frozen at 0 %; it is rewritten from the saved widget
   state (``training: 100%|##########| 71/71 [...]``), which viewers without widgets display.
4. **Absolute paths become relative**: anything up to ``site-packages/`` is dropped (a module's
   path reads as ``IPython/core/pylabtools.py``); the notebook's folder becomes ``.``, the project
   folder above it a relative path (``../data/cache``), the home folder ``~`` and the temporary
   folder ``$TMPDIR``.
5. Streams left empty are dropped.

``leftovers`` then names what no rule could fix, for the author of the notebook to print otherwise.
"""

from __future__ import annotations

import configparser
import html
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

# What an absolute path of a machine looks like in a stored output (the tests scan for the same).
PATH_MARKERS = ("/root/", "/home/", "/Users/", "/work/", "/tmp/", "site-packages", "dist-packages", "C:\\")
# A Python warning as ``warnings.showwarning`` prints it, with the source line it quotes.
WARNING_RE = re.compile(r"^[^\n]*:\d+: (?P<what>[A-Za-z_]\w*Warning: [^\n]*)\n(?:[ \t]+[^\n]*\n?)?", re.MULTILINE)
# Any remaining mention of a warning category followed by its message.
WARNING_MARK_RE = re.compile(r"\b[A-Z]\w*Warning: ")
NBVAL_CHECK = "NBVAL_CHECK_OUTPUT"
NOT_COMPARED = ("image/png", "image/jpeg", "application/vnd.jupyter.widget-view+json")
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"

_BACKSPACE = re.compile("[^\n]\x08")  # a character and the backspace after it
_CARRIAGE = re.compile(r"^.*\r(?=[^\n])", re.MULTILINE)
_SITE_PACKAGES = re.compile(r"(?:[A-Za-z]:)?(?:[/\\][^\s/\\'\"]+)+?[/\\](?:site|dist)-packages[/\\]")


@dataclass
class Scrubbed:
    """What ``scrub_notebook`` changed, cell by cell (indices into ``nb.cells``)."""

    warnings: list[tuple[int, str]] = field(default_factory=list)
    paths: list[int] = field(default_factory=list)  # one entry per path rewritten
    bars: list[int] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{len(self.warnings)} warnings removed, {len(self.paths)} paths made relative, "
            f"{len(self.bars)} progress bars at their final state"
        )


def resolve_terminal(text: str) -> str:
    """The text a terminal shows: backspaces and carriage returns applied (as nbval does)."""
    old = None
    while old != text:
        old, text = text, _BACKSPACE.sub("", text)
    return _CARRIAGE.sub("", text)


def strip_warnings(text: str) -> tuple[str, list[str]]:
    """Remove Python warnings from a stderr text; return it and the ``Category: message`` removed."""
    found = [m.group("what") for m in WARNING_RE.finditer(text)]
    return WARNING_RE.sub("", text), found


def _project_root(folder: Path) -> Path | None:
    for parent in (folder, *folder.parents):
        if (parent / "pyproject.toml").exists() or (parent / ".git").exists():
            return parent
    return None


class PathScrubber:
    """Rewrite the absolute paths of this machine found in a text (rule 4 above).

    ``folder`` is the notebook's folder, the kernel's working directory.  Calling the scrubber
    returns the new text and how many paths it rewrote.
    """

    def __init__(self, folder: Path):
        folder = Path(folder).resolve()
        places = [(folder, ".")]
        root = _project_root(folder)
        if root is not None and root != folder:
            places.append((root, os.path.relpath(root, folder)))
        places += [(Path.home(), "~"), (Path(tempfile.gettempdir()), "$TMPDIR")]
        self.replacement: dict[str, str] = {}
        for place, short in places:
            for spelling in (str(place), str(place.resolve())):
                if len(spelling) > 1:  # never rewrite the bare root "/"
                    self.replacement.setdefault(spelling, short)
        prefixes = sorted(self.replacement, key=len, reverse=True)  # the most specific place first
        self.pattern = re.compile(r"(?<![\w.~/\\-])(" + "|".join(map(re.escape, prefixes)) + r")(?:([/\\])|(?![\w.-]))")

    def _replace(self, match: re.Match) -> str:
        short = self.replacement[match.group(1)]
        if not match.group(2):
            return short
        return "" if short == "." else short + "/"

    def __call__(self, text: str) -> tuple[str, int]:
        text, n_site = _SITE_PACKAGES.subn("", text)
        text, n_places = self.pattern.subn(self._replace, text)
        return text, n_site + n_places


def progress_text(model_id: str, widgets: dict) -> str | None:
    """The final state of a tqdm widget bar as tqdm prints it in a terminal, or None if not a bar."""
    box = widgets.get(model_id, {})
    children = [c.removeprefix("IPY_MODEL_") for c in box.get("state", {}).get("children", [])]
    kinds = [widgets.get(c, {}).get("model_name") for c in children]
    if box.get("model_name") != "HBoxModel" or kinds != ["HTMLModel", "FloatProgressModel", "HTMLModel"]:
        return None

    def text_of(child: str) -> str:
        value = re.sub(r"<[^>]*>", "", str(widgets[child]["state"].get("value", "")))
        return html.unescape(value).replace("\u2007", " ")

    left, right = text_of(children[0]), text_of(children[2])
    if not left.rstrip().endswith("%"):  # no total: tqdm prints no bar
        return left + right
    bar = widgets[children[1]]["state"]
    filled = int(10 * float(bar.get("value", 0)) / float(bar.get("max") or 1))
    filled = max(0, min(10, filled))
    return f"{left}|{'█' * filled}{' ' * (10 - filled)}|{right}"


def _merge_streams(outputs: list) -> list:
    merged = []
    for out in outputs:
        previous = merged[-1] if merged else {}
        if out.get("output_type") == "stream" == previous.get("output_type") and previous["name"] == out["name"]:
            previous["text"] += out["text"]
        else:
            merged.append(out)
    return merged


def _scrub_output(out, index: int, widgets: dict, paths: PathScrubber, done: Scrubbed) -> None:
    def clean(text: str) -> str:
        text, n = paths(text)
        done.paths += [index] * n
        return text

    kind = out.get("output_type")
    if kind == "stream":
        text = resolve_terminal(out["text"])
        if out["name"] == "stderr":
            text, found = strip_warnings(text)
            done.warnings += [(index, w) for w in found]
        out["text"] = clean(text)
    elif kind in ("display_data", "execute_result"):
        view = out.get("data", {}).get(WIDGET_VIEW)
        final = progress_text(view.get("model_id", ""), widgets) if isinstance(view, dict) else None
        if final is not None:
            out["data"]["text/plain"] = final
            done.bars.append(index)
        for mime, value in out.get("data", {}).items():
            if mime.startswith("text/") and isinstance(value, str):
                out["data"][mime] = clean(value)
    elif kind == "error":
        out["evalue"] = clean(out.get("evalue", ""))
        out["traceback"] = [clean(line) for line in out.get("traceback", [])]


def _scrub_strings(value, paths: PathScrubber):
    """Apply ``paths`` to every string inside a JSON-like value (the saved widget state)."""
    if isinstance(value, str):
        return paths(value)[0]
    if isinstance(value, dict):
        return {k: _scrub_strings(v, paths) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub_strings(v, paths) for v in value]
    return value


def scrub_notebook(nb, folder: Path) -> Scrubbed:
    """Apply the rules of this module to ``nb``'s outputs in place; ``folder`` is where it ran."""
    paths = PathScrubber(folder)
    widgets = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    done = Scrubbed()
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        cell.outputs = _merge_streams(cell.outputs)
        for out in cell.outputs:
            _scrub_output(out, index, widgets, paths, done)
        cell.outputs = [o for o in cell.outputs if o.get("output_type") != "stream" or o["text"]]
        cell.metadata.pop("execution", None)  # nbclient's timestamps: no dates in a stored notebook
    if widgets:
        nb.metadata.widgets[WIDGET_STATE]["state"] = _scrub_strings(widgets, paths)
    return done


def output_texts(cell) -> list[str]:
    """The text of every output of a code cell: streams, ``text/*`` data and errors."""
    texts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            texts.append(out["text"])
        elif out.get("output_type") == "error":
            texts.append(f"{out.get('ename')}: {out.get('evalue')}\n" + "\n".join(out.get("traceback", [])))
        else:
            texts += [v for k, v in out.get("data", {}).items() if k.startswith("text/") and isinstance(v, str)]
    return texts


def leftovers(nb) -> list[tuple[int, str]]:
    """``(cell index, what)`` for each path marker or warning still in ``nb``'s outputs."""
    found = []
    for index, cell in enumerate(nb.cells):
        text = "\n".join(output_texts(cell)) if cell.cell_type == "code" else ""
        found += [(index, marker) for marker in PATH_MARKERS if marker in text]
        found += [(index, m.group(0).strip()) for m in WARNING_MARK_RE.finditer(text)]
    return found


# --- the cells nbval compares -------------------------------------------------------------------


def is_compared(cell) -> bool:
    """True for a code cell nbval compares under ``--nbval-lax`` (its ``# NBVAL_CHECK_OUTPUT`` marker)."""
    if cell.cell_type != "code":
        return False
    tags = cell.metadata.get("tags", [])
    marked = any(line.strip().lstrip("#").strip() == NBVAL_CHECK for line in cell.source.splitlines())
    return marked or "nbval-check-output" in tags


def load_sanitizers(path: Path | None) -> list[tuple[re.Pattern, str]]:
    """The ``regex``/``replace`` pairs of an nbval sanitize file (none when ``path`` is missing)."""
    if path is None or not Path(path).exists():
        return []
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(path, encoding="utf-8")
    return [(re.compile(parser[s]["regex"]), parser[s]["replace"]) for s in parser.sections()]


def compared_text(cell, sanitizers: list[tuple[re.Pattern, str]]) -> str:
    """What nbval compares in a cell's outputs, one ``key: value`` block per output, sanitised.

    Streams are merged per name and resolved; images and widget views are left out; the order of
    different keys does not matter (nbval groups values by key), so the blocks are sorted by key.
    """
    values: dict[str, list[str]] = {}
    streams: dict[str, str] = {}
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            streams[out["name"]] = streams.get(out["name"], "") + out["text"]
        elif out.get("output_type") == "error":
            values.setdefault("error", []).append(f"{out.get('ename')}: {out.get('evalue')}")
        else:
            for mime, value in out.get("data", {}).items():
                if mime not in NOT_COMPARED:
                    values.setdefault(mime, []).append(str(value))
    for name, text in streams.items():
        values.setdefault(name, []).append(resolve_terminal(text))
    blocks = []
    for key in sorted(values):
        for value in values[key]:
            for pattern, replace in sanitizers:
                value = pattern.sub(replace, value)
            blocks.append(f"{key}: {value}")
    return "\n".join(blocks)
