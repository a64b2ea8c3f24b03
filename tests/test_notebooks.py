"""The notebooks: student versions up to date and free of answers (tests/test_grading_labs.py runs them)."""

import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from exercises import exercise_cells
from lab_status import OPTIONAL_LABS

from labutils.checks import all_checks
from labutils.notebooks import generate

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))
STUDENT = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _nbgrader(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def test_every_solution_has_a_student_version():
    assert SOLUTIONS, "no solution notebooks found"
    assert [p.name for p in SOLUTIONS] == [p.name for p in STUDENT]


def test_generate_check_passes_on_the_repository():
    result = subprocess.run(
        [sys.executable, "-m", "labutils", "generate", "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_generate_check_detects_an_edited_solution(tmp_path):
    solutions, notebooks = tmp_path / "solutions", tmp_path / "notebooks"
    shutil.copytree(ROOT / "solutions", solutions)
    shutil.copytree(ROOT / "notebooks", notebooks)
    assert generate(solutions, notebooks, check=True) == []
    target = solutions / SOLUTIONS[0].name
    nb = nbformat.read(target, as_version=4)
    nb.cells.append(nbformat.v4.new_markdown_cell("A new paragraph the students have not got yet."))
    nbformat.write(nb, target)
    before = (notebooks / target.name).read_text()
    assert generate(solutions, notebooks, check=True) == [target.name]
    assert (notebooks / target.name).read_text() == before, "--check must write nothing"
    (notebooks / "99_stray.ipynb").write_text((notebooks / target.name).read_text())
    assert "99_stray.ipynb (no matching solution)" in generate(solutions, notebooks, check=True)
    generate(solutions, notebooks)
    assert generate(solutions, notebooks, check=True) == ["99_stray.ipynb (no matching solution)"]


@pytest.mark.parametrize("path", STUDENT, ids=lambda p: p.name)
def test_student_notebook_is_valid_and_free_of_answers(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        assert "BEGIN SOLUTION" not in cell.source and "HIDDEN TESTS" not in cell.source, path.name
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, f"{path.name} has stored outputs"


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_solution_metadata_follows_the_conventions(path):
    """Graded cells have unique ids and points; every automatic one has a registered Check."""
    nb = nbformat.read(path, as_version=4)
    checks = all_checks()
    ids = [_nbgrader(c)["grade_id"] for c in nb.cells if _nbgrader(c)]
    assert len(ids) == len(set(ids)), f"duplicate grade_ids in {path.name}"
    for cell in nb.cells:
        meta = _nbgrader(cell)
        if "BEGIN SOLUTION" in cell.source:
            assert meta.get("solution"), f"{path.name}: a solution region outside a solution cell"
        if meta.get("grade"):
            assert meta.get("points", 0) > 0, f"{path.name}: graded cell {meta['grade_id']} has no points"
            if cell.cell_type == "code":
                assert meta["grade_id"] in checks, f"{path.name}: no Check registered for {meta['grade_id']}"
                assert meta["grade_id"] in cell.source or checks[meta["grade_id"]].title, meta["grade_id"]


def _code(nb) -> list[str]:
    return [c.source for c in nb.cells if c.cell_type == "code"]


@pytest.mark.parametrize(
    "path", [p for p in STUDENT if not exercise_cells(p) or p.name in OPTIONAL_LABS], ids=lambda p: p.name
)
def test_a_student_notebook_is_its_solutions_code_up_to_its_first_exercise(path):
    """Lab 00 has no code exercise: the student version runs the solution's code, which nbval
    runs whole; an optional lab's (the appendix) is the solution's code up to its first exercise.
    (Graded labs are run up to their first exercise in tests/test_grading_labs.py, from the
    grader's calibration run of the untouched student notebooks.)"""

    def before_first_exercise(nb) -> list[str]:
        code = [c for c in nb.cells if c.cell_type == "code"]
        first = next((i for i, c in enumerate(code) if _nbgrader(c).get("solution")), len(code))
        return [c.source for c in code[:first]]

    solution = before_first_exercise(nbformat.read(ROOT / "solutions" / path.name, as_version=4))
    student = before_first_exercise(nbformat.read(path, as_version=4))
    assert student == solution, f"{path.name} differs from its solution before its first exercise"
    assert len(solution) > 1, f"{path.name}: no code before its first exercise"


def test_run_tagged_cells_names_what_is_missing(tmp_path):
    """How the benchmarks run a lab's own code (bench numpy-lm, tag numpy-lm); moved from the lab 07 layer tests."""
    from labutils.notebooks import run_tagged_cells

    path = tmp_path / "lab.ipynb"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["mine"]})])
    nbformat.write(nb, path)
    assert run_tagged_cells(path, "mine", ("x",))["x"] == 1
    with pytest.raises(LookupError, match="tagged 'other'"):
        run_tagged_cells(path, "other", ("x",))
    with pytest.raises(LookupError, match="define no y"):
        run_tagged_cells(path, "mine", ("x", "y"))
