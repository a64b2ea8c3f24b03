"""nbgrader as a real client: the solutions are an nbgrader course source, graded by nbgrader itself.

In a temporary course folder, ``nbgrader generate_assignment`` turns every solution notebook into
the version students get (it must accept each one and give the same code as ``notebooks/``), and
``nbgrader autograde`` grades two submissions of a lab: the solution itself (its full automatic
points) and the untouched student version (zero).

Autograde executes the *whole* notebook, training included, where our grader stops after the last
check; so it runs on the labs whose complete CI-budget run is short (``AUTOGRADED``: the NumPy
forward pass, the gated cells, and labs 05 and 06).  Lab 00 has no graded cell; labs 02, 03 and 07
train a language model (two for lab 07) after their exercises, and tests/test_grading.py grades
every lab with our own grader.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import nbformat
import pytest
from lab_status import UNVERIFIED_LABS

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = [p for p in sorted((ROOT / "solutions").glob("*.ipynb")) if p.name not in UNVERIFIED_LABS]
#: Labs autograded: each costs a complete CI-budget run of the solution, and one of the student version.
AUTOGRADED = [p for p in SOLUTIONS if p.name[:2] in ("01", "04", "05", "06")]
STUDENTS = ("solution", "untouched")

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")]  # nbgrader's own


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    """nbgrader's Python API on a course folder holding every solution as an assignment's source."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config

    root = tmp_path_factory.mktemp("course")
    for path in SOLUTIONS:
        (root / "source" / path.stem).mkdir(parents=True)
        shutil.copy(path, root / "source" / path.stem / path.name)
    config = Config()
    config.CourseDirectory.course_id = "rnn-course"
    config.Execute.timeout = 600  # seconds per cell (nbgrader's default, 30, is too short for training cells)
    with pytest.MonkeyPatch.context() as patch:
        # nbgrader runs ``alembic``, a command installed next to this Python, when it creates its gradebook
        patch.setenv("PATH", os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
        yield NbGraderAPI(coursedir=CourseDirectory(root=str(root), config=config), config=config)


def run(action, *args) -> None:
    """Call an NbGraderAPI action; fail the test with nbgrader's log if it did not succeed."""
    result = action(*args)
    log = result.get("log", "")[-3000:]
    assert result["success"], f"{action.__name__}{args} failed:\n{result.get('error', '')}\n{log}"


@pytest.fixture(scope="module")
def course(api) -> Path:
    """The course folder, with every assignment released by ``generate_assignment``."""
    for path in SOLUTIONS:
        run(api.generate_assignment, path.stem)
    return Path(api.coursedir.root)


def _code(nb) -> list[str]:
    return [c.source for c in nb.cells if c.cell_type == "code"]


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.stem)
def test_generate_assignment_gives_the_student_version(course, path):
    released = nbformat.read(course / "release" / path.stem / path.name, as_version=4)
    assert _code(released) == _code(nbformat.read(ROOT / "notebooks" / path.name, as_version=4)), (
        f"nbgrader's release of {path.name} differs from notebooks/{path.name}"
    )


@pytest.fixture(scope="module")
def autograded(api, course) -> dict:
    """``{(lab, student): [(grade_id, auto_score, max_score), ...]}`` for the autograded code cells."""
    from nbgrader.api import Gradebook

    for path in AUTOGRADED:
        for student, source in zip(STUDENTS, (path, course / "release" / path.stem / path.name), strict=True):
            folder = course / "submitted" / student / path.stem
            folder.mkdir(parents=True)
            shutil.copy(source, folder / path.name)
            run(api.autograde, path.stem, student)
    scores = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        for path in AUTOGRADED:
            for student in STUDENTS:
                notebook = gradebook.find_submission_notebook(path.stem, path.stem, student)
                scores[path.stem, student] = [
                    (g.name, g.auto_score, g.max_score) for g in notebook.grades if g.cell_type == "code"
                ]
    return scores


@pytest.mark.parametrize("path", AUTOGRADED, ids=lambda p: p.stem)
def test_autograde_gives_the_solution_its_full_automatic_points(autograded, path):
    from labutils.grading.labs import load_lab

    grades = autograded[path.stem, "solution"]
    assert grades, f"nbgrader found no autograded cell in {path.name}"
    assert {g for g, _, _ in grades} == {i.grade_id for i in load_lab(path).auto_items}
    lost = [(g, score, most) for g, score, most in grades if score != most]
    assert not lost, f"{path.name}: the solution lost automatic points: {lost}"


@pytest.mark.parametrize("path", AUTOGRADED, ids=lambda p: p.stem)
def test_autograde_gives_the_untouched_student_version_zero(autograded, path):
    grades = autograded[path.stem, "untouched"]
    assert grades and all(score == 0 for _, score, _ in grades), f"{path.name}: {grades}"
