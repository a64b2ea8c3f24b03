"""Who installs what: the dependency split, course.py's choices, Binder's files, the setup cell.

Everything here is read statically or run in-process (no package index, no conda channel is
reachable from CI); tests/test_hosted.py runs a real Colab-like kernel.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml
from packaging.requirements import Requirement

from labutils import hosting
from labutils.hosting import Address, parse_address, read_address, setup_cell_source
from labutils.notebooks import ensure_setup_cell

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
EXTRAS = PYPROJECT["project"]["optional-dependencies"]

#: labutils modules that a student's kernel never imports: the instructor's and maintainer's tools.
TOOLING = ("labutils.notebooks", "labutils.release", "labutils.hosting", "labutils.grading", "labutils.bench")
TOOLING += ("labutils.doctor", "labutils.execute", "labutils.scrub", "labutils.__main__")
#: Packages of the instructor and of the local JupyterLab: never a core dependency.
NOT_CORE = {"nbgrader", "nbformat", "nbclient", "psutil", "jupyterlab", "jupyter-core", "threadpoolctl", "ipykernel"}
#: Import name -> distribution, for the kernel's third-party imports (IPython comes with ipywidgets).
IMPORT_TO_DIST = {"numpy": "numpy", "torch": "torch", "matplotlib": "matplotlib", "tqdm": "tqdm", "pooch": "pooch"}
IMPORT_TO_DIST |= {"requests": "requests", "ipywidgets": "ipywidgets", "IPython": "ipywidgets"}


def _names(requirements) -> set[str]:
    return {Requirement(r).name.lower() for r in requirements}


def _floors(requirements) -> dict[str, str]:
    floors = {}
    for r in map(Requirement, requirements):
        for spec in r.specifier:
            if spec.operator == ">=":
                floors[r.name.lower()] = spec.version
    return floors


# ------------------------------------------------------------------------ the dependency split
def _kernel_modules() -> list[Path]:
    paths = []
    for path in sorted((ROOT / "labutils").rglob("*.py")):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        if not module.startswith(TOOLING):
            paths.append(path)
    return paths


def _third_party_imports(path: Path) -> set[str]:
    """Top-level names of every import in ``path`` (at module level or inside functions)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"labutils", "__future__"}


def test_core_dependencies_are_exactly_what_the_kernel_imports():
    """A module a student's kernel loads imports only core dependencies, and each core one is used."""
    modules = _kernel_modules()
    assert any(p.name == "data.py" for p in modules) and any("judges" in p.parts for p in modules)
    used = {}
    for path in modules:
        for name in _third_party_imports(path):
            assert name in IMPORT_TO_DIST, (
                f"{path.relative_to(ROOT)} imports {name!r}, which is not a core dependency of labutils: a student's "
                "kernel (Colab, a hub) would not have it. Move the import into instructor tooling or add the package."
            )
            used.setdefault(IMPORT_TO_DIST[name], path)
    assert _names(PYPROJECT["project"]["dependencies"]) == set(used), "a core dependency no kernel module imports"


def test_the_split_keeps_the_instructors_tools_out_of_a_students_install():
    core, lab = _names(PYPROJECT["project"]["dependencies"]), _names(EXTRAS["lab"])
    assert not core & NOT_CORE, "the core (what Colab installs) holds a Jupyter or instructor package"
    assert not lab & (NOT_CORE - {"jupyterlab", "ipykernel"}), "instructor tools in `python3 course.py lab`"
    assert {"jupyterlab", "ipykernel", "ipywidgets"} <= lab
    assert {"nbgrader", "nbformat", "nbclient", "psutil", "ipykernel"} <= _names(EXTRAS["instructor"])
    assert "threadpoolctl" in _names(EXTRAS["bench"])
    dev = [Requirement(r) for r in EXTRAS["dev"]]
    (itself,) = [r for r in dev if r.name == "labutils"]
    assert itself.extras == {"lab", "instructor", "bench"}, "[dev] must hold every other extra"
    assert {"pytest", "pytest-xdist", "nbval", "ruff", "pyyaml", "playwright"} <= {r.name for r in dev}


def test_core_floors_are_met_by_colabs_preinstalled_packages():
    """Colab's runtime (2025) ships at least these; a higher floor would make the setup cell upgrade them."""
    colab = {"numpy": "2.0", "torch": "2.6", "matplotlib": "3.10", "tqdm": "4.67", "pooch": "1.8", "requests": "2.32"}
    colab["ipywidgets"] = "7.7.1"
    from packaging.version import Version

    for name, floor in _floors(PYPROJECT["project"]["dependencies"]).items():
        assert Version(floor) <= Version(colab[name]), f"{name}>={floor} is above Colab's {colab[name]}"
    assert Version(_floors(PYPROJECT["project"]["dependencies"])["torch"]) >= Version("2.4"), "fused CPU Adam"


# ----------------------------------------------------------------------------- course.py
def _course():
    spec = importlib.util.spec_from_file_location("course", ROOT / "course.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "environ, platform, gpu, expected",
    [
        ({}, "linux", False, "cpu"),
        ({}, "linux", True, "torch"),
        ({}, "darwin", False, "torch"),
        ({}, "win32", False, "torch"),
        ({"TORCH_SPEC": "torch==2.13.0"}, "linux", False, "torch==2.13.0"),
        ({"TORCH_SPEC": "torch==2.13.0"}, "linux", True, "torch==2.13.0"),
    ],
)
def test_course_sizes_pytorch_to_the_machine(environ, platform, gpu, expected):
    spec = _course().torch_spec(environ, platform, gpu)
    if expected == "cpu":
        assert spec == "torch --index-url https://download.pytorch.org/whl/cpu"
    else:
        assert spec == expected


def test_course_installs_the_lab_extra_for_students_and_dev_for_tests(tmp_path):
    course = _course()
    assert course.EXTRAS == {"lab": "lab", "setup": "lab", "test": "dev"}
    stamp = tmp_path / "stamp"
    lab, dev = course._stamp("lab", "torch"), course._stamp("dev", "torch")
    assert course.needs_install(stamp, lab)  # nothing installed yet
    stamp.write_text(__import__("json").dumps(lab))
    assert not course.needs_install(stamp, lab)
    assert course.needs_install(stamp, dev), "a student's environment lacks the test tools"
    stamp.write_text(__import__("json").dumps(dev))
    assert not course.needs_install(stamp, lab), "an environment set up for tests also serves the labs"
    assert course.needs_install(stamp, course._stamp("lab", "torch==2.13.0")), "another PyTorch"
    stamp.write_text("0123abcd")  # the stamp of an older course.py
    assert course.needs_install(stamp, lab)


def test_course_turns_off_jupyterlabs_news_question():
    course = _course()
    assert course.NEWS_PLUGIN == "@jupyterlab/apputils-extension:announcements"
    source = (ROOT / "course.py").read_text()
    assert '"labextension", "disable", "--level=sys_prefix", NEWS_PLUGIN' in source


# ---------------------------------------------------------------------- conda and Binder
CONDA_NAMES = {"torch": "pytorch"}  # PyPI name -> conda-forge name, where they differ
KNOWN_CONDA = {"python", "pip", "pytorch", "numpy", "matplotlib", "tqdm", "pooch", "requests", "ipywidgets"}
KNOWN_CONDA |= {"jupyterlab", "ipykernel", "nbval"}
DESIGN_CARD = {"pytorch", "numpy", "matplotlib", "jupyterlab", "nbval", "ipywidgets"}
TEST_TOOLS = {"pytest-xdist", "ruff", "playwright", "pyyaml", "nbgrader"}


def _conda(path: Path) -> tuple[dict, dict[str, str], list]:
    env = yaml.safe_load(path.read_text())
    specs, pip = {}, []
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            pip += dep["pip"]
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*(.*)", dep)
        assert match, f"{path.name}: cannot read {dep!r}"
        specs[match.group(1)] = match.group(2)
    return env, specs, pip


@pytest.mark.parametrize("path", ["environment.yml", "binder/environment.yml"])
def test_conda_environment_lists_the_course_packages(path):
    env, specs, _ = _conda(ROOT / path)
    assert env["name"] == "rnn-course" and env["channels"] == ["conda-forge"]
    assert set(specs) <= KNOWN_CONDA, f"unknown conda-forge packages (typo?): {set(specs) - KNOWN_CONDA}"
    assert set(specs) >= DESIGN_CARD
    assert not set(specs) & TEST_TOOLS
    for name, floor in _floors(PYPROJECT["project"]["dependencies"]).items():
        conda = CONDA_NAMES.get(name, name)
        assert conda in specs, f"{path} lacks {conda}, a dependency of labutils"
        if name != "ipywidgets":  # JupyterLab 4 needs ipywidgets 8: the conda route asks for >=8.1
            assert specs[conda] == f">={floor}", f"{path}: {conda}{specs[conda]} differs from pyproject's >={floor}"


def test_binder_builds_without_the_repository_and_installs_it_after():
    _, binder, pip = _conda(ROOT / "binder" / "environment.yml")
    _, local, _ = _conda(ROOT / "environment.yml")
    assert binder == local, "binder/environment.yml and environment.yml list different packages"
    assert not pip, "repo2docker builds the environment before it copies the repository: no pip install of it here"
    post = ROOT / "binder" / "postBuild"
    mode = subprocess.run(["git", "ls-files", "-s", str(post)], cwd=ROOT, capture_output=True, text=True).stdout
    assert mode.startswith("100755") or (not mode and post.stat().st_mode & 0o111), "postBuild must be executable"
    text = post.read_text()
    assert text.startswith("#!/bin/bash") and "set -euo pipefail" in text
    assert subprocess.run(["bash", "-n", str(post)]).returncode == 0
    assert re.search(r"pip install --no-deps --no-cache-dir \.$", text, re.M), "installs labutils from the checkout"
    assert " -e " not in text and "[dev]" not in text
    assert "labextension disable" in text and "announcements" in text


# ------------------------------------------------------------------------- the setup cell
def test_address_parsing_and_links():
    address = parse_address("https://github.com/ada/rnn-course")
    assert address == Address("ada", "rnn-course", "main") and not address.is_placeholder
    assert parse_address("https://github.com/ada/rnn-course.git/").branch == "main"
    assert parse_address("https://github.com/ada/rnn-course/tree/spring-2026").branch == "spring-2026"
    assert address.requirement == "labutils @ https://github.com/ada/rnn-course/archive/refs/heads/main.zip"
    assert address.colab_url("01_x.ipynb") == (
        "https://colab.research.google.com/github/ada/rnn-course/blob/main/notebooks/01_x.ipynb"
    )
    assert address.binder_url == "https://mybinder.org/v2/gh/ada/rnn-course/main?urlpath=lab/tree/notebooks"
    assert "repo=https%3A%2F%2Fgithub.com%2Fada%2Frnn-course" in address.nbgitpuller_url()
    with pytest.raises(ValueError, match="pyproject.toml"):
        parse_address("https://gitlab.com/ada/rnn-course")


def test_the_configured_address_is_an_obvious_placeholder_until_set():
    address = read_address()
    assert address.is_placeholder == (address.owner == hosting.PLACEHOLDER_OWNER)
    if address.is_placeholder:
        readme = (ROOT / "README.md").read_text()
        assert "Instructors:" in readme and hosting.PLACEHOLDER_OWNER in readme


@pytest.mark.parametrize("folder", ["solutions", "notebooks"])
def test_every_notebook_starts_with_the_setup_cell(folder):
    wanted = setup_cell_source(read_address())
    paths = sorted((ROOT / folder).glob("*.ipynb"))
    assert paths
    for path in paths:
        first = nbformat.read(path, as_version=4).cells[0]
        assert first.cell_type == "code" and hosting.SETUP_TAG in first.metadata.get("tags", []), (
            f"{folder}/{path.name} does not start with the hosted setup cell: run `python -m labutils hosted` "
            "(then `python -m labutils generate`)"
        )
        assert first.source == wanted, f"{folder}/{path.name}: outdated setup cell; run `python -m labutils hosted`"
        assert not first.get("outputs"), "the setup cell prints nothing where labutils is installed"


def test_ensure_setup_cell_inserts_replaces_and_is_idempotent():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Lab"), nbformat.v4.new_code_cell("x = 1")])
    old = setup_cell_source(Address("old", "course"))
    new = setup_cell_source(Address("ada", "rnn-course"))
    assert ensure_setup_cell(nb, old) and nb.cells[0].source == old and len(nb.cells) == 3
    assert not ensure_setup_cell(nb, old), "a second application changes nothing"
    nb.cells.insert(1, nb.cells.pop(0))  # someone moved it below the title
    assert ensure_setup_cell(nb, new)
    assert [c.source for c in nb.cells] == [new, "# Lab", "x = 1"], "replaced in place of the old one, not added"
    assert nb.cells[0].id == hosting.SETUP_TAG
    nbformat.validate(nb)


def _run_cell(monkeypatch, *, present: bool, install: str | None = None):
    """Execute the setup cell with pip replaced by a recorder; ``present``: whether labutils is importable."""
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: calls.append(cmd))
    monkeypatch.setattr(sys, "path", list(sys.path))  # the cell may add the user site folder
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: real(name, *a) if present else None)
    if install:
        monkeypatch.setenv(hosting.INSTALL_ENV, install)
    else:
        monkeypatch.delenv(hosting.INSTALL_ENV, raising=False)
    exec(compile(setup_cell_source(Address("ada", "rnn-course")), "setup-cell", "exec"), {})
    return calls


def test_setup_cell_does_nothing_where_labutils_is_installed(monkeypatch, capsys):
    assert _run_cell(monkeypatch, present=True) == []
    assert capsys.readouterr().out == ""


def test_setup_cell_installs_from_the_address_and_holds_the_jupyter_stack(monkeypatch, capsys):
    (cmd,) = _run_cell(monkeypatch, present=False)
    assert cmd[:5] == [sys.executable, "-m", "pip", "install", "--quiet"]
    assert cmd[5] == "labutils @ https://github.com/ada/rnn-course/archive/refs/heads/main.zip"
    held = dict(pin.split("==") for pin in cmd[6:])
    from importlib.metadata import version

    for name in ("ipykernel", "ipywidgets", "jupyterlab", "tornado"):  # installed here: each is pinned
        assert held[name] == version(name), name
    assert "Installing labutils from labutils @ https://github.com/ada" in capsys.readouterr().out
    (cmd,) = _run_cell(monkeypatch, present=False, install="/wheels/labutils-0.1.0-py3-none-any.whl")
    assert cmd[5] == "/wheels/labutils-0.1.0-py3-none-any.whl", "LABUTILS_INSTALL overrides the address"


def test_hosted_check_passes_on_the_repository():
    assert hosting.apply(check=True) == []


def test_hosted_finds_a_missing_cell_and_a_changed_address(tmp_path):
    for name in ("solutions", "notebooks"):
        (tmp_path / name).mkdir()
    for path in sorted((ROOT / "solutions").glob("*.ipynb"))[:2]:
        (tmp_path / "solutions" / path.name).write_bytes(path.read_bytes())
    for name in ("README.md", "pyproject.toml"):
        (tmp_path / name).write_text((ROOT / name).read_text())
    hosting.apply(tmp_path)  # the README block now lists these two notebooks
    assert hosting.apply(tmp_path, check=True) == []
    first = sorted((tmp_path / "solutions").glob("*.ipynb"))[0]
    nb = nbformat.read(first, as_version=4)
    nb.cells.pop(0)
    nbformat.write(nb, first)
    assert hosting.apply(tmp_path, check=True) == [f"solutions/{first.name}"]
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        re.sub(r'Repository = ".*"', 'Repository = "https://github.com/ada/rnn-course"', pyproject.read_text())
    )
    assert len(hosting.apply(tmp_path, check=True)) == 3  # both notebooks and README
    hosting.apply(tmp_path)
    readme = (tmp_path / "README.md").read_text()
    assert "https://colab.research.google.com/github/ada/rnn-course/blob/main/notebooks/" + first.name in readme
    assert "Instructors:" not in readme, "the placeholder note goes once the address is set"
    assert nbformat.read(first, as_version=4).cells[0].source == setup_cell_source(Address("ada", "rnn-course"))
