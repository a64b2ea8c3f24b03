"""The student release: ``python -m labutils release OUT`` writes what students get, and nothing else.

``OUT`` receives, from the course folder:

* ``notebooks/``: the generated student notebooks (refused if they are out of date with
  ``solutions/``: run ``python -m labutils generate`` first);
* ``labutils/``: the package (infrastructure, checks and oracles only, never an answer);
* ``data/README.md``: where the texts come from (the registry itself is ``labutils/data.py``;
  the downloaded texts are not copied);
* ``course.py``, ``environment.yml``, ``binder/`` (what mybinder.org builds), ``pyproject.toml``
  (without the maintainers' pytest settings, which name folders a release does not have) and a
  ``README.md`` written for students.

Pushed to the GitHub repository that ``pyproject.toml``'s ``[project.urls] Repository`` names, a
release is what Colab opens, Binder builds and the notebooks' first cell installs from.

``solutions/``, ``tests/``, the docs for maintainers and instructors, caches and build outputs
are left out by construction (only the list above is copied).  Before anything is moved into
place, the whole tree is searched for the solutions' answer lines and for answer or hidden-test
markers; a release that would leak one is not written.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent

# Built from parts so that this file itself never holds a marker line.
_BEGIN, _END = "### BEGIN ", "### END "
REGIONS = ("SOLUTION", "HIDDEN TESTS")
MARKER_LINE = re.compile(r"^\s*#+\s*(BEGIN|END)\s+(SOLUTION|HIDDEN TESTS)\s*$", re.M)
MIN_SNIPPET = 20  # shorter answer lines ("return h", "pass") also occur in honest code
TEXT_SUFFIXES = {".py", ".ipynb", ".md", ".txt", ".toml", ".yml", ".yaml", ".json", ".cfg", ".ini", ".rst", ".csv"}


def _norm(line: str) -> str:
    return " ".join(line.split())


def answer_regions(solutions: Path = ROOT / "solutions") -> list[tuple[str, list[str]]]:
    """Each answer or hidden-test region of the solutions: ``(where, its lines, whitespace-normalised)``."""
    regions = []
    for path in sorted(Path(solutions).glob("*.ipynb")):
        for index, cell in enumerate(nbformat.read(path, as_version=4).cells):
            current: list[str] | None = None
            for line in cell.source.splitlines():
                stripped = line.strip()
                if any(stripped == _BEGIN + r for r in REGIONS):
                    current = []
                elif any(stripped == _END + r for r in REGIONS) and current is not None:
                    regions.append((f"{path.name} cell {index}", current))
                    current = None
                elif current is not None and _norm(line):
                    current.append(_norm(line))
    return regions


def _texts(tree: Path):
    """``(relative path, text)`` of every text file in ``tree``; notebooks as their cells' sources."""
    for path in sorted(tree.rglob("*")):
        if not path.is_file() or path.suffix not in TEXT_SUFFIXES:
            continue
        rel = path.relative_to(tree).as_posix()
        try:
            if path.suffix == ".ipynb":
                text = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells)
            else:
                text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, ValueError):
            continue
        yield rel, text


def find_leaks(tree: Path, solutions: Path = ROOT / "solutions", notebooks: Path = ROOT / "notebooks") -> list[str]:
    """What in ``tree`` comes from an answer or hidden test: ``["path: why", ...]`` (empty if clean).

    A file leaks a region when it holds a marker line, or at least half of the region's
    significant lines: those of ``MIN_SNIPPET`` characters or more that the student notebooks do
    not show anyway (a line the exercise itself prints is part of the question, not the answer).
    Counting per region keeps one generic line (``ids = np.asarray(ids, dtype=np.int64)``) in
    honest code from being taken for an answer, while a one-line answer still counts.
    """
    given_lines: list[str] = []
    for path in Path(notebooks).glob("*.ipynb"):
        for cell in nbformat.read(path, as_version=4).cells:
            given_lines += [_norm(line) for line in cell.source.splitlines()]
    given = "\n".join(given_lines)
    regions = []
    for where, lines in answer_regions(solutions):
        significant = sorted({line for line in lines if len(line) >= MIN_SNIPPET and line not in given})
        if significant:
            regions.append((where, significant))
    leaks = []
    for rel, text in _texts(Path(tree)):
        for match in MARKER_LINE.finditer(text):
            leaks.append(f"{rel}: marker line {match.group(0).strip()!r}")
        normalised = "\n".join(_norm(line) for line in text.splitlines())
        for where, lines in regions:
            found = [line for line in lines if line in normalised]
            if found and len(found) * 2 >= len(lines):
                leaks.append(f"{rel}: {len(found)} of {len(lines)} answer lines of {where}, e.g. {found[0]!r}")
    return leaks


STUDENT_README = """\
# Recurrent neural networks: the labs

A hands-on course on recurrent neural networks: from an RNN written in NumPy, through
backpropagation through time and gradient checks, to LSTMs and GRUs in PyTorch, language models
and text generation. Each lab is a Jupyter notebook that explains, asks you to write a piece of
the model, and checks your code as you go.

## The labs

{labs}

## Set up (once)

**In Colab or on a JupyterHub**, open a notebook: its first cell installs `labutils` (the
course's helper package) when the kernel lacks it, and does nothing where it is installed.
**On Binder**, the `binder/` folder describes the environment.

**On your own machine** you need Python 3.10 or newer. In this folder, run

    python3 course.py lab

It creates a virtual environment in `.venv`, installs what the labs need (PyTorch -- the CPU-only
build on Linux without an NVIDIA GPU --, NumPy, JupyterLab, `labutils`), registers a Jupyter
kernel named "Python (RNN course)" and opens
JupyterLab in `notebooks/`. Run the same command whenever you come back. With conda instead:
`conda env create -f environment.yml`, `conda activate rnn-course`, then `jupyter lab notebooks`.

Check your installation with `python -m labutils doctor`. The texts the labs read (public-domain
books) are downloaded and verified on first use; `python -m labutils download --all` fetches them
all at once, for example before going offline (see `data/README.md`).

## Working on a lab

* Write your code where a cell says `# YOUR CODE HERE` (and delete the
  `raise NotImplementedError()` line), and your written answers where a cell says
  `YOUR ANSWER HERE`.
* The cell after each exercise is a self-check: it runs your function on small random inputs,
  compares the result with an independent reference and tells you what looks wrong ("bias not
  added?", "h_next has shape (5, 231), expected (231, 5)"). A passing self-check means the same
  checks will most likely pass when your work is graded, on new random inputs.
* Training cells show a progress bar. On a slow laptop, set the environment variable
  `LABUTILS_BUDGET=ci` before starting JupyterLab to run every lab on small sizes (the results
  are then rougher, but everything runs).

## Handing in

Hand in the notebook file itself (`NN_name.ipynb`), with the name it has here. Before you do,
choose *Kernel > Restart Kernel and Run All Cells* and check that it runs from top to bottom.
Grading runs your notebook from the start in a fresh kernel, with a time limit, then calls your
functions on new inputs; editing or deleting the self-check cells changes nothing to that, and
code that does not finish (an endless loop, a very long training run) loses the points of
everything after it.
"""


def _lab_list(notebooks: Path) -> str:
    lines = []
    for path in sorted(notebooks.glob("*.ipynb")):
        title = ""
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "markdown":
                heading = next((ln for ln in cell.source.splitlines() if ln.startswith("#")), "")
                title = heading.lstrip("#").strip()
                if title:
                    break
        lines.append(f"* `notebooks/{path.name}`" + (f": {title}" if title else ""))
    return "\n".join(lines) or "(none yet)"


def _student_pyproject(text: str) -> str:
    """``pyproject.toml`` without ``[tool.pytest...]`` tables (they name tests/ and solutions/)."""
    out, skipping = [], False
    for line in text.splitlines(keepends=True):
        if line.startswith("["):
            skipping = line.strip().startswith("[tool.pytest")
        if not skipping:
            out.append(line)
    return "".join(out).rstrip() + "\n"


FALLBACK_ENVIRONMENT = """\
# conda env create -f environment.yml && conda activate rnn-course
name: rnn-course
channels:
  - conda-forge
dependencies:
  - python=3.11
  - pip
  - pip:
      - -e .
"""


def _copy_course_files(root: Path, staging: Path) -> None:
    """``data/README.md``, ``course.py``, ``LICENSE`` and ``binder/``, those that exist."""
    (staging / "data").mkdir()
    if (root / "data" / "README.md").is_file():
        shutil.copy2(root / "data" / "README.md", staging / "data" / "README.md")
    for name in ("course.py", "LICENSE"):
        if (root / name).is_file():
            shutil.copy2(root / name, staging / name)
    if (root / "binder").is_dir():
        shutil.copytree(root / "binder", staging / "binder")


def release(out, *, root: Path = ROOT) -> Path:
    """Write the student release into the new folder ``out``; return its path.

    Raises ``FileExistsError`` if ``out`` exists and is not empty, ``RuntimeError`` if the
    student notebooks are out of date or if the release would contain an answer.
    """
    from .notebooks import generate

    root, out = Path(root), Path(out).resolve()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(
            f"{out} exists and is not empty; a release goes into a new or empty folder (nothing was written)"
        )
    stale = generate(root / "solutions", root / "notebooks", check=True)
    if stale:
        raise RuntimeError(
            "notebooks/ is out of date with solutions/ (" + ", ".join(stale) + "); run `python -m labutils generate`"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".release-", dir=out.parent))
    try:
        (staging / "notebooks").mkdir()
        for path in sorted((root / "notebooks").glob("*.ipynb")):
            shutil.copy2(path, staging / "notebooks" / path.name)
        shutil.copytree(
            root / "labutils", staging / "labutils", ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
        )
        _copy_course_files(root, staging)
        env = root / "environment.yml"
        (staging / "environment.yml").write_text(
            env.read_text(encoding="utf-8") if env.is_file() else FALLBACK_ENVIRONMENT, encoding="utf-8"
        )
        pyproject = (root / "pyproject.toml").read_text(encoding="utf-8")
        (staging / "pyproject.toml").write_text(_student_pyproject(pyproject), encoding="utf-8")
        (staging / "README.md").write_text(STUDENT_README.format(labs=_lab_list(root / "notebooks")), encoding="utf-8")
        leaks = find_leaks(staging, root / "solutions", root / "notebooks")
        if leaks:
            raise RuntimeError("the release would contain answers or hidden tests:\n  " + "\n  ".join(leaks[:20]))
        if out.exists():
            out.rmdir()
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    n = len(list((out / "notebooks").glob("*.ipynb")))
    print(
        f"wrote the student release to {out}: {n} notebooks, labutils, data/README.md, README.md, "
        "course.py, environment.yml, binder/, pyproject.toml"
    )
    return out
