"""The grader on the real labs, graded as an instructor runs it: no LABUTILS_BUDGET in the environment.

Two students, ``solution`` (every solution notebook; for lab 07 also two small saved models that
pass the full-budget thresholds, ``sherlock_models.py``) and ``untouched`` (every student
notebook as distributed), one folder each: the solutions score full marks, the untouched
notebooks zero, and every student notebook runs without error up to its first exercise.  The
thresholds a grader draws do not depend on its own environment (unset, ``ci`` or ``full``).
"""

from __future__ import annotations

import csv
import re
import shutil
from pathlib import Path

import nbformat
import pytest
from exercises import exercise_cells
from lab_status import OPTIONAL_LABS, UNVERIFIED_LABS
from sherlock_models import trained_models

from labutils.grading import grade_folder
from labutils.grading.judging import RawRun
from labutils.grading.labs import load_lab

ROOT = Path(__file__).resolve().parent.parent
REAL = [
    p
    for p in sorted((ROOT / "solutions").glob("*.ipynb"))
    if p.name not in UNVERIFIED_LABS
    and any(c.metadata.get("nbgrader", {}).get("grade") for c in nbformat.read(p, as_version=4).cells)
]
REAL_WITH_CODE = [p for p in REAL if exercise_cells(p)]  # lab 05's only exercise is a written answer
LAB07 = ROOT / "solutions" / "07_sherlock_assignment.ipynb"


def test_every_lab_with_an_exercise_is_calibrated():
    """The calibration below is also what runs the student notebooks up to their first exercise."""
    for path in sorted((ROOT / "solutions").glob("*.ipynb")):
        if exercise_cells(path):
            known = path in REAL_WITH_CODE or path.name in UNVERIFIED_LABS | OPTIONAL_LABS
            assert known, f"{path.name}: an exercise, no graded cell"


def _submissions(base: Path) -> Path:
    subs = base / "submissions"
    for path in REAL:
        for student, folder in (("solution", ROOT / "solutions"), ("untouched", ROOT / "notebooks")):
            (subs / student).mkdir(parents=True, exist_ok=True)
            shutil.copy(folder / path.name, subs / student / path.name)
    if LAB07 in REAL:
        for model in trained_models().glob("sherlock_*.pt"):
            shutil.copy(model, subs / "solution" / model.name)
    return subs


@pytest.fixture(scope="module")
def real_graded(tmp_path_factory):
    """One grading run of both students, with the budget variables removed from the environment."""
    if not REAL:
        pytest.skip("no solution notebook has graded cells yet")
    base = tmp_path_factory.mktemp("real")
    subs, out = _submissions(base), base / "out"
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("LABUTILS_BUDGET", raising=False)
        mp.delenv("CI", raising=False)
        assert grade_folder(subs, out=out, timeout=600, memory_mb=4096, jobs=2, progress=False) == 0
    with open(out / "grades.csv", newline="", encoding="utf-8") as f:
        return {row["student"]: row for row in csv.DictReader(f)}, out


def _feedback(out, name):
    return (out / "feedback" / f"{name}.md").read_text(encoding="utf-8")


@pytest.mark.slow
@pytest.mark.parametrize("path", REAL, ids=lambda p: p.stem)
def test_every_solution_scores_full_marks(real_graded, path):
    rows, out = real_graded
    lab = load_lab(path)
    row = rows["solution"]
    lost = {i.grade_id: row[i.grade_id] for i in lab.auto_items if float(row[i.grade_id]) != i.points}
    assert not lost, f"{path.name} lost points on {lost}; status: {row['status']}\n{_feedback(out, 'solution')}"


@pytest.mark.slow
@pytest.mark.parametrize("path", REAL, ids=lambda p: p.stem)
def test_every_untouched_student_notebook_scores_zero(real_graded, path):
    rows, _ = real_graded
    lab = load_lab(path)
    row = rows["untouched"]
    assert all(row[i.grade_id] == "0" for i in lab.auto_items), row
    assert all(row[i.grade_id] == "manual" for i in lab.manual_items)


@pytest.mark.slow
def test_lab07_without_saved_models_says_what_to_hand_in(real_graded):
    if LAB07 not in REAL:
        pytest.skip("lab 07 is not graded yet")
    _, out = real_graded
    section = _lab_section(_feedback(out, "untouched"), LAB07.stem)
    assert "no saved model: run the save cell and hand in sherlock_gru.pt next to the notebook" in section
    assert "Errors raised while your notebook ran" not in section, "lab 07's notebook is not run by the grader"


def _first_exercise(nb) -> tuple[int, int, str]:
    """The first exercise cell and the first graded cell after it (its check), each as the grader's
    feedback numbers them (code cells counted from 1), and that check's grade_id."""
    code_number, exercise = 0, None
    for cell in nb.cells:
        code_number += cell.cell_type == "code"
        meta = cell.metadata.get("nbgrader", {})
        if exercise is None and cell.cell_type == "code" and meta.get("solution"):
            exercise = code_number
        elif exercise is not None and meta.get("grade"):
            return exercise, code_number, meta["grade_id"]
    raise AssertionError("no exercise followed by a graded cell")


def _lab_section(feedback: str, lab: str) -> str:
    """The part of a feedback file about one lab (from its ``## lab`` heading to the next)."""
    match = re.search(rf"^## {re.escape(lab)}: .*?(?=^## |\Z)", feedback, re.M | re.S)
    assert match, f"no section for {lab} in the feedback"
    return match.group(0)


def _run_to_first_exercise(path: Path) -> list[tuple[int, str]]:
    """Errors of a notebook run headless up to its first exercise cell: ``[(code cell, ename)]``."""
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    exercise, _, _ = _first_exercise(nb)
    code = [c for c in nb.cells if c.cell_type == "code"][:exercise]
    run = nbformat.v4.new_notebook(cells=code, metadata=nb.metadata)
    client = NotebookClient(
        run, timeout=300, allow_errors=True, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    client.execute()
    return [(i + 1, o.ename) for i, c in enumerate(run.cells) for o in c.outputs if o.output_type == "error"]


@pytest.mark.slow
@pytest.mark.parametrize("path", REAL_WITH_CODE, ids=lambda p: p.stem)
def test_untouched_student_notebook_runs_up_to_its_first_exercise(real_graded, path):
    """Every cell before the first exercise works, and the first exercise's stub raises
    NotImplementedError: in the exercise cell itself, or in its check when the stub sits inside a
    function.  Read from the calibration's run of the untouched student notebook, whose feedback
    lists the errors of code cells in order and marks an item whose code raised
    NotImplementedError "not done".  A lab graded from saved files (lab 07) is not run by the
    grader: it is run here, headless, up to its first exercise."""
    _, out = real_graded
    exercise, check, check_id = _first_exercise(nbformat.read(ROOT / "notebooks" / path.name, as_version=4))
    if load_lab(path).from_files:
        errors = _run_to_first_exercise(ROOT / "notebooks" / path.name)
        assert [e for e in errors if e[0] < exercise] == [] and errors[:1] == [(exercise, "NotImplementedError")], (
            errors
        )
        return
    section = _lab_section(_feedback(out, "untouched"), path.stem)
    errors = [(int(m[1]), m[2]) for m in re.finditer(r"^\* code cell (\d+): (\w+)", section, re.M)]
    early = [e for e in errors if e[0] < exercise]
    assert not early, f"{path.name}: code cell(s) before the first exercise (code cell {exercise}) failed: {early}"
    raised_in_cell = bool(errors) and errors[0][0] <= check and errors[0][1] == "NotImplementedError"
    check_not_done = re.search(rf"\(`{re.escape(check_id)}`\) \|[^\n]*\| not done \|", section) is not None
    assert raised_in_cell or check_not_done, (
        f"{path.name}: the first exercise (code cell {exercise}) did not raise NotImplementedError "
        f"before its check {check_id} (code cell {check}); errors: {errors[:3]}\n{section}"
    )


@pytest.mark.parametrize("env", [None, "ci", "full"], ids=["unset", "ci", "full"])
def test_thresholds_do_not_depend_on_the_graders_environment(tmp_path, monkeypatch, env):
    """Lab 07 (judged from saved models) always draws the full budget's thresholds, every lab
    run in a kernel the kernel's (CI) budget: whatever LABUTILS_BUDGET and CI say."""
    monkeypatch.delenv("CI", raising=False)
    if env is None:
        monkeypatch.delenv("LABUTILS_BUDGET", raising=False)
    else:
        monkeypatch.setenv("LABUTILS_BUDGET", env)
    drawn = {}

    def no_run(notebook, inputs, settings):
        drawn[notebook.lab.name] = inputs
        return RawRun({"status": "ok"})

    monkeypatch.setattr("labutils.grading.grader.run_job", no_run)
    subs = tmp_path / "subs" / "student"
    subs.mkdir(parents=True)
    shutil.copy(LAB07, subs / LAB07.name)
    assert grade_folder(tmp_path / "subs", out=tmp_path / "out", progress=False) == 0
    inputs = drawn[LAB07.stem]
    assert (float(inputs["lab07-heldout"]["max_rnn_bpc"]), float(inputs["lab07-heldout"]["max_gru_bpc"])) == (2.8, 2.4)
    assert float(inputs["lab07-samples"]["min_words"]) == 0.6 and float(inputs["lab07-losses-fall"]["min_drop"]) == 1.0


def test_solutions_stay_an_nbgrader_source():
    """nbgrader's own preprocessors accept every solution notebook (cell metadata, checksums, locks)."""
    from nbgrader.preprocessors import CheckCellMetadata, ComputeChecksums, LockCells

    for path in sorted((ROOT / "solutions").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        for step in (CheckCellMetadata(), ComputeChecksums(), LockCells()):
            nb, _ = step.preprocess(nb, {})
        graded = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
        assert all("checksum" in c.metadata["nbgrader"] for c in graded), path.name
