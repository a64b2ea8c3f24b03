"""The student release: everything a student needs, and nothing of the solutions or hidden tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from labutils.release import answer_regions, find_leaks, release

ROOT = Path(__file__).resolve().parent.parent


def _norm(line: str) -> str:
    return " ".join(line.split())


@pytest.fixture(scope="module")
def released(tmp_path_factory) -> Path:
    return release(tmp_path_factory.mktemp("release") / "rnn-course")


def test_release_has_what_students_need(released):
    names = sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert sorted(p.name for p in (released / "notebooks").glob("*.ipynb")) == names
    for path in (
        "labutils/__init__.py",
        "labutils/checks/core.py",
        "labutils/data.py",
        "data/README.md",
        "README.md",
        "environment.yml",
        "pyproject.toml",
        "course.py",
    ):
        assert (released / path).is_file(), path
    readme = (released / "README.md").read_text()
    assert all(f"notebooks/{name}" in readme for name in names)
    assert "[tool.pytest" not in (released / "pyproject.toml").read_text()
    assert 'name = "labutils"' in (released / "pyproject.toml").read_text()
    assert "Repository = " in (released / "pyproject.toml").read_text(), "the address the setup cells install from"
    assert os.access(released / "binder" / "postBuild", os.X_OK), "Binder runs postBuild only if it is executable"
    assert (released / "binder" / "environment.yml").read_text() == (ROOT / "binder" / "environment.yml").read_text()


def test_release_has_nothing_of_solutions_tests_or_caches(released):
    top = {p.name for p in released.iterdir()}
    expected = {
        "notebooks",
        "labutils",
        "data",
        "binder",
        "README.md",
        "environment.yml",
        "pyproject.toml",
        "course.py",
    }
    assert top == expected | ({"LICENSE"} if (ROOT / "LICENSE").exists() else set())
    assert not list(released.rglob("__pycache__")) and not list(released.rglob("*.pyc"))
    assert [p.name for p in (released / "data").iterdir()] == ["README.md"], "downloaded texts are not released"
    assert not (released / "solutions").exists() and not (released / "tests").exists()


def test_released_notebooks_hold_no_answer_line_and_no_hidden_test(released):
    """Strict, line by line: no line of an answer or hidden-test region that students are not shown anyway."""
    shown = set()
    for path in (ROOT / "notebooks").glob("*.ipynb"):
        for cell in nbformat.read(path, as_version=4).cells:
            shown.update(_norm(line) for line in cell.source.splitlines())
    secret = {
        line
        for _, lines in answer_regions(ROOT / "solutions")
        for line in lines
        if len(line) >= 20 and line not in shown
    }
    assert secret, "found no answer lines in solutions/: the scan would prove nothing"
    for path in sorted((released / "notebooks").glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            assert "BEGIN SOLUTION" not in cell.source and "HIDDEN TESTS" not in cell.source, path.name
            leaked = {_norm(line) for line in cell.source.splitlines()} & secret
            assert not leaked, f"{path.name} holds answer lines: {sorted(leaked)[:3]}"


def test_released_tree_has_no_answers_anywhere(released):
    assert find_leaks(released) == []


def test_the_leak_scan_finds_a_planted_answer(released, tmp_path):
    """The scan can fail: an answer region copied into labutils, or a marker line, is reported."""
    copy = tmp_path / "copy"
    shutil.copytree(released, copy)
    where, lines = max(answer_regions(ROOT / "solutions"), key=lambda region: len(region[1]))
    (copy / "labutils" / "oops.py").write_text("def helper():\n" + "\n".join("    " + line for line in lines) + "\n")
    (copy / "labutils" / "marker.py").write_text("x = 1\n" + "### BEGIN " + "HIDDEN TESTS\n")
    leaks = find_leaks(copy)
    assert any(leak.startswith("labutils/oops.py:") and where in leak for leak in leaks), leaks
    assert any(leak.startswith("labutils/marker.py: marker line") for leak in leaks), leaks


def test_release_refuses_an_existing_folder_and_stale_notebooks(tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("mine")
    with pytest.raises(FileExistsError):
        release(tmp_path / "taken")
    root = tmp_path / "course"
    for name in ("solutions", "notebooks", "labutils"):
        shutil.copytree(ROOT / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    target = sorted((root / "solutions").glob("*.ipynb"))[0]
    nb = nbformat.read(target, as_version=4)
    nb.cells.append(nbformat.v4.new_markdown_cell("A paragraph the student notebooks do not have yet."))
    nbformat.write(nb, target)
    with pytest.raises(RuntimeError, match="out of date"):
        release(tmp_path / "new", root=root)
    assert not (tmp_path / "new").exists()


def _run_released(released: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(released)}
    return subprocess.run([sys.executable, *args], cwd=released, env=env, capture_output=True, text=True, timeout=600)


def test_released_package_works_without_the_solutions(released):
    where = str(released)
    code = (
        f"import labutils, labutils.checks as c; assert labutils.__file__.startswith({where!r}), labutils.__file__; "
        "print(len(c.all_checks()))"
    )
    result = _run_released(released, "-c", code)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.strip()) > 0


@pytest.mark.skipif(not (ROOT / "labutils" / "bench" / "numpy_lm.py").exists(), reason="no numpy-lm benchmark yet")
def test_benchmark_that_reads_the_solutions_fails_clearly_in_a_release(released):
    result = _run_released(released, "-m", "labutils", "bench", "numpy-lm", "--quick")
    output = result.stdout + result.stderr
    assert result.returncode != 0, "the benchmark ran without the solutions?"
    assert "solutions" in output[-600:], "the error should say that it needs solutions/:\n" + output[-2000:]
