"""The grader: finding submissions, judging outside the kernel, adversarial submissions, calibration.

A tiny fixture lab (two automatic items, one written answer; checks in
``tests/fixtures/grading/gradefix_checks.py``) carries the adversarial suite: one grading run over
a folder of complete, partial, broken, malicious and not-notebook submissions, then one test per
claim.  The real labs are calibrated once each (solutions full marks, student notebooks zero, and
every student notebook runs without error up to its first exercise's stub).
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest

from labutils.grading import grade_folder
from labutils.grading.labs import load_lab, load_labs, match_lab, strip_hidden_tests
from labutils.grading.report import cell_text
from labutils.grading.runner import load_probe_output
from labutils.grading.submissions import discover, find_test_cell, instrument, read_notebook
from labutils.notebooks import student_version

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "grading"
# Per fixture notebook. 60 s was once too short for an honest one on a throttled 2-core CI host
# (kernel start and imports alone: "timed out after 60 s in code cell 2"); "loop" pays it in full.
TIMEOUT = float(os.environ.get("GRADING_TEST_TIMEOUT", "120"))
MEMORY_MB = 800

sys.path.insert(0, str(FIXTURES))
import gradefix_checks  # noqa: E402,F401 -- registers fix-add and fix-scale in this process


# ------------------------------------------------------------------------------ fixture lab
def _meta(**kw):
    return {"nbgrader": {"schema_version": 3, "locked": False, **kw}}


def fixture_solution() -> nbformat.NotebookNode:
    """A solution notebook as the course writes them: exercise, graded test cell, written answer."""
    code, md = nbformat.v4.new_code_cell, nbformat.v4.new_markdown_cell
    cells = [
        code("import numpy as np\nfrom gradefix_checks import check_add, check_scale"),
        md("# Fixture lab\n\nAdd, then scale."),
        code(
            'def add(a, b):\n    """a, b: arrays of one shape -> their sum."""\n'
            "    ### BEGIN SOLUTION\n    return a + b\n    ### END SOLUTION",
            metadata=_meta(grade=False, solution=True, grade_id="fix-add-code"),
        ),
        code(
            "# NBVAL_CHECK_OUTPUT\ncheck_add(add)",
            metadata=_meta(grade=True, solution=False, locked=True, grade_id="fix-add", points=2),
        ),
        code(
            'def scale(x):\n    """x: (n,) -> 2 x."""\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION',
            metadata=_meta(grade=False, solution=True, grade_id="fix-scale-code"),
        ),
        code(
            "# NBVAL_CHECK_OUTPUT\ncheck_scale(scale)\n### BEGIN HIDDEN TESTS\ncheck_scale(scale, seed=1)\n"
            "### END HIDDEN TESTS",
            metadata=_meta(grade=True, solution=False, locked=True, grade_id="fix-scale", points=3),
        ),
        md(
            "**Question.** Why is `2 * x` a scaling?\n\n### BEGIN SOLUTION\n"
            "Every entry is multiplied by the same number.\n### END SOLUTION",
            metadata=_meta(grade=True, solution=True, grade_id="fix-written", points=1),
        ),
        code("print('the end')"),
    ]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def _copy(nb):
    return nbformat.from_dict(json.loads(json.dumps(nb)))


def _index(nb, grade_id):
    return next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def wrong_scale():
    """Honest work with one exercise wrong: 2 of 5 points."""
    nb = _copy(fixture_solution())
    cell = nb.cells[_index(nb, "fix-scale-code")]
    cell.source = cell.source.replace("return 2 * x", "return 3 * x")
    return nb


def with_cell(nb, source, *, after="fix-add"):
    """``nb`` with a code cell inserted after the cell whose grade_id is ``after``, or at the top."""
    nb = _copy(nb)
    position = _index(nb, after) + 1 if after else 1
    nb.cells.insert(position, nbformat.v4.new_code_cell(source))
    return nb


@pytest.fixture(scope="module")
def solutions_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("solutions")
    nbformat.write(fixture_solution(), folder / "90_fixture.ipynb")
    return folder


@pytest.fixture(scope="module", autouse=True)
def _kernels_import_the_fixture_checks():
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(FIXTURES), old) if p)
    yield
    if old is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = old


# ------------------------------------------------------------------- fast unit tests (no kernel)
def test_load_lab_reads_items_points_and_the_written_answer(solutions_dir):
    lab = load_lab(solutions_dir / "90_fixture.ipynb")
    assert [(i.grade_id, i.points, i.manual) for i in lab.items] == [
        ("fix-add", 2, False),
        ("fix-scale", 3, False),
        ("fix-written", 1, True),
    ]
    assert lab.auto_points == 5
    assert lab.items[0].module == "gradefix_checks"
    assert "HIDDEN" not in lab.items[1].test_source
    assert lab.items[2].title == "Why is `2 * x` a scaling?"


def test_load_lab_refuses_a_graded_cell_without_a_check(tmp_path):
    nb = fixture_solution()
    nb.cells[_index(nb, "fix-add")].metadata["nbgrader"]["grade_id"] = "fix-nothing"
    nbformat.write(nb, tmp_path / "91_bad.ipynb")
    with pytest.raises(ValueError, match="fix-nothing"):
        load_lab(tmp_path / "91_bad.ipynb")


def test_strip_hidden_tests_matches_what_students_get():
    nb = fixture_solution()
    cell = nb.cells[_index(nb, "fix-scale")]
    student = student_version(nb).cells[_index(nb, "fix-scale")]
    assert strip_hidden_tests(cell.source).strip() == student.source.strip()


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"hello", "not JSON"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\xff", "not UTF-8"),
        (b'{"nbformat": 4}', "without a list of cells"),
        (b'{"cells": [{"cell_type": "code"}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}', "not a valid"),
    ],
)
def test_read_notebook_gives_a_reason_for_files_that_are_not_notebooks(tmp_path, content, reason):
    path = tmp_path / "x.ipynb"
    path.write_bytes(content)
    nb, problem = read_notebook(path)
    assert nb is None and reason in problem


def test_discover_flat_and_per_student_layouts(tmp_path, solutions_dir):
    labs = load_labs(solutions_dir)
    subs = tmp_path / "subs"
    (subs / "bob").mkdir(parents=True)
    (subs / "carol").mkdir()
    (subs / ".ipynb_checkpoints").mkdir()
    nbformat.write(fixture_solution(), subs / "alice.ipynb")  # flat: matched by grade_ids
    nbformat.write(fixture_solution(), subs / "bob" / "90_fixture.ipynb")  # by name
    nbformat.write(fixture_solution(), subs / "bob" / "90_fixture-Copy1.ipynb")
    (subs / "carol" / "notes.txt").write_text("no notebook here")
    (subs / "dave.pdf").write_bytes(b"%PDF-1.4")
    students = {s.name: s for s in discover(subs, labs)}
    assert sorted(students) == ["alice", "bob", "carol", "dave"]
    assert students["alice"].notebooks[0].lab.name == "90_fixture"
    assert [n.path.name for n in students["bob"].notebooks] == ["90_fixture.ipynb"]
    assert "90_fixture-Copy1.ipynb" in students["bob"].notebooks[0].notes[0]
    assert "no notebook" in students["carol"].problems[0]
    assert "dave.pdf is not a valid notebook" in students["dave"].problems[0]


def test_match_lab_by_number_and_by_grade_ids(solutions_dir):
    labs = load_labs(solutions_dir)
    assert match_lab("90_my_copy", set(), labs).name == "90_fixture"
    assert match_lab("homework", {"fix-scale"}, labs).name == "90_fixture"
    assert match_lab("homework", {"other"}, labs) is None


def test_instrument_replaces_untouched_test_cells_and_keeps_edited_ones(tmp_path, solutions_dir):
    lab = load_lab(solutions_dir / "90_fixture.ipynb")
    student = student_version(fixture_solution())
    run, notes = instrument(student, lab, tmp_path)
    sources = [c.source for c in run.cells]
    assert not notes
    assert not any(s.startswith("# NBVAL_CHECK_OUTPUT\ncheck_") for s in sources), "untouched test cells run"
    probes = [c.metadata["labutils"]["probe"] for c in run.cells if "probe" in c.metadata["labutils"]]
    assert probes == ["fix-add", "fix-scale"]
    # The probe of an item follows the definition it needs.
    assert [i for i, s in enumerate(sources) if "def scale" in s][0] < probes.index("fix-scale") + len(sources)
    edited = _copy(student)
    edited.cells[_index(edited, "fix-scale")].source = "scale = lambda x: 2 * x"
    del edited.cells[_index(edited, "fix-add")]
    run, notes = instrument(edited, lab, tmp_path)
    assert any(c.source == "scale = lambda x: 2 * x" for c in run.cells), "an edited test cell is student code"
    assert run.cells[-1].metadata["labutils"] == {"probe": "fix-add"} and "fix-add" in notes[0]


def test_cells_after_the_last_check_are_not_run(tmp_path, solutions_dir):
    """They cannot change a score; in labs 02-04 they train models for minutes."""
    lab = load_lab(solutions_dir / "90_fixture.ipynb")
    nb = with_cell(fixture_solution(), "trained = train_for_an_hour()", after="fix-scale")
    run, _ = instrument(nb, lab, tmp_path)
    assert run.cells[-1].metadata["labutils"] == {"probe": "fix-scale"}
    assert not any("train_for_an_hour" in c.source for c in run.cells)
    # Without a lab's last test cell, its probe runs at the very end, after every cell.
    del nb.cells[_index(nb, "fix-scale")]
    run, _ = instrument(nb, lab, tmp_path)
    assert [c.source for c in run.cells[-3:-1]] == ["trained = train_for_an_hour()", "print('the end')"]
    assert run.cells[-1].metadata["labutils"] == {"probe": "fix-scale"}


def test_find_test_cell_without_metadata_by_the_check_call(solutions_dir):
    lab = load_lab(solutions_dir / "90_fixture.ipynb")
    nb = _copy(fixture_solution())
    for cell in nb.cells:
        cell.metadata.pop("nbgrader", None)  # some editors drop unknown metadata
    assert find_test_cell(nb, lab.items[1]) == 5


def test_probe_outputs_are_never_unpickled_and_are_size_checked(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"

    class Bomb:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    np.savez(tmp_path / "pickled.npz", y=np.array([Bomb()], dtype=object))
    with pytest.raises(ValueError):
        load_probe_output(tmp_path / "pickled.npz")
    assert not marker.exists()
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(ValueError, match="not an .npz"):
        load_probe_output(tmp_path / "text.npz")
    monkeypatch.setattr("labutils.grading.runner.MAX_PROBE_MB", 1)
    np.savez_compressed(tmp_path / "bomb.npz", y=np.zeros(10**6))  # 8 MB of zeros, a few KB zipped
    assert (tmp_path / "bomb.npz").stat().st_size < 2**20
    with pytest.raises(ValueError, match="larger than"):
        load_probe_output(tmp_path / "bomb.npz")
    np.savez(tmp_path / "fine.npz", y=np.arange(3.0), label=np.array("text"))
    assert load_probe_output(tmp_path / "fine.npz")["y"].tolist() == [0.0, 1.0, 2.0]


def test_csv_cells_cannot_become_spreadsheet_formulas():
    assert cell_text("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert cell_text("alice") == "alice"


# -------------------------------------------------------------------- the adversarial folder
CHEATS = {
    # name: (notebook builder, points its honest work deserves)
    "cheat_checks": (
        lambda out: with_cell(
            wrong_scale(),
            "import gradefix_checks, labutils.checks.core as core\n"
            "from labutils.checks.core import REGISTRY\n"
            "for check in REGISTRY.values():\n    check.judge = lambda inputs, outputs: None\n"
            "core.assert_shape = core.assert_close = lambda *a, **k: None\n"
            "check_scale = gradefix_checks.check_scale = lambda f, **k: print('✔ scale by two: all checks passed.')",
            after=None,
        ),
        2,
    ),
    "cheat_allclose": (
        lambda out: with_cell(
            wrong_scale(),
            "import numpy\nnumpy.allclose = np.allclose = lambda *a, **k: True\n"
            "numpy.testing.assert_allclose = lambda *a, **k: None\nnumpy.isclose = lambda a, b, **k: True\n"
            "import torch\ntorch.allclose = lambda *a, **k: True\n"
            "torch.testing.assert_close = lambda *a, **k: None",
            after=None,
        ),
        2,
    ),
    "cheat_tests_edited": (lambda out: _edit_tests(wrong_scale()), 2),
    "cheat_tests_deleted": (lambda out: _delete_tests(wrong_scale()), 2),
    "cheat_probe": (
        lambda out: with_cell(
            wrong_scale(),
            "import os, numpy as np, labutils.grading.probe as probe\n"
            "class Bomb:\n    def __reduce__(self):\n"
            f"        return (os.system, ('touch {out.parent / 'pwned'}',))\n"
            "def fake(grade_id, module, inputs, out_stem, namespace):\n"
            "    if grade_id == 'fix-add':\n"
            "        np.savez(out_stem + '.npz', s=np.array([Bomb()], dtype=object))\n"
            "    else:\n"
            "        np.savez(out_stem + '.npz', y=np.zeros(5))\n"
            "probe.run = fake",
            after=None,
        ),
        0,
    ),
    "cheat_exit": (
        lambda out: with_cell(
            with_cell(wrong_scale(), "import sys\nsys.exit('all tests passed')"),
            "import os\nos._exit(0)",
            after="fix-scale-code",  # before the last check: cells after it are not run
        ),
        2,
    ),
    "cheat_output_folder": (lambda out: _write_output(wrong_scale(), out), 2),
}
HONEST = {"full": 5, "untouched": 0, "wrong_scale": 2, "written": 5}
BROKEN = {"loop": 2, "crash": 2}


def _edit_tests(nb):
    nb = _copy(nb)
    for grade_id in ("fix-add", "fix-scale"):
        nb.cells[_index(nb, grade_id)].source = "print('✔ all checks passed: 5/5 points')"
    return nb


def _delete_tests(nb):
    nb = _copy(nb)
    nb.cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") not in ("fix-add", "fix-scale")]
    return nb


def _write_output(nb, out: Path):
    """Writes a full-marks CSV and feedback into the output folder, now and from a detached process later."""
    grades, feedback = out / "grades.csv", out / "feedback"
    late = f"import time; time.sleep(20); open({str(grades)!r}, 'w').write('student,total\\ncheat_output_folder,99\\n')"
    source = (
        "import os, subprocess, sys\n"
        f"os.makedirs({str(feedback)!r}, exist_ok=True)\n"
        f"open({str(grades)!r}, 'w').write('student,total\\ncheat_output_folder,99\\nfull,0\\n')\n"
        f"open(os.path.join({str(feedback)!r}, 'cheat_output_folder.md'), 'w').write('99 / 5')\n"
        f"open(os.path.join({str(feedback)!r}, 'planted.md'), 'w').write('planted')\n"
        f"p = subprocess.Popen([sys.executable, '-c', {late!r}], start_new_session=True,\n"
        "                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
        f"open({str(out.parent / 'daemon.pid')!r}, 'w').write(str(p.pid))\n"
        "print('✔ all checks passed')"
    )
    return with_cell(nb, source)


def _memory_hog(nb):
    """Allocates without end in shared anonymous pages, which ``RLIMIT_DATA`` does not count (whoever
    runs the grader, root or not): only the watchdog, which watches resident memory, can stop it."""
    return with_cell(
        nb,
        "import mmap\n"
        "blocks = []\nwhile True:\n"
        "    block = mmap.mmap(-1, 2**25)  # 32 MB, MAP_SHARED\n"
        "    block.write(b'x' * 2**25)  # written, so resident\n"
        "    blocks.append(block)",
    )


@pytest.fixture(scope="module")
def graded(tmp_path_factory, solutions_dir):
    """One grading run over a folder of every kind of submission; returns (rows, out folder, seconds)."""
    base = tmp_path_factory.mktemp("adversarial")
    subs, out = base / "submissions", base / "out"
    subs.mkdir()
    out.mkdir()
    solution = fixture_solution()
    written = _copy(solution)
    cell = written.cells[_index(written, "fix-written")]
    cell.source = "**Question.** Why is `2 * x` a scaling?\n\nBecause all entries grow by the same factor."
    notebooks = {
        "full": solution,
        "untouched": student_version(solution),
        "wrong_scale": wrong_scale(),
        "written": written,
        # Busy, as a student's endless loop is, but at the lowest priority: it burns a core until
        # the timeout, and the rest of the suite runs beside it.
        "loop": with_cell(solution, "import os\nos.nice(19)\nwhile True:\n    pass"),
        "crash": with_cell(solution, "import ctypes\nctypes.string_at(0)"),
        "memory_big": with_cell(solution, "x = np.ones(2**40)  # 8 TB"),
        "memory_hog": _memory_hog(solution),
        **{name: build(out) for name, (build, _) in CHEATS.items()},
    }
    for name, nb in notebooks.items():
        nbformat.write(nb, subs / f"{name}.ipynb")
    (subs / "garbage.ipynb").write_text("I forgot to save my notebook")
    (subs / "scan.pdf").write_bytes(b"%PDF-1.4\n\x00\xff\xfe binary")
    (subs / "nocells.ipynb").write_text('{"nbformat": 4, "metadata": {}}')
    start = time.monotonic()
    code = grade_folder(
        subs, out=out, timeout=TIMEOUT, memory_mb=MEMORY_MB, jobs=2, solutions=solutions_dir, progress=False
    )
    seconds = time.monotonic() - start
    assert code == 0
    with open(out / "grades.csv", newline="", encoding="utf-8") as f:
        rows = {row["student"]: row for row in csv.DictReader(f)}
    return rows, out, seconds


def _feedback(out, name):
    return (out / "feedback" / f"{name}.md").read_text(encoding="utf-8")


@pytest.mark.slow
def test_csv_has_a_row_per_submission_and_a_column_per_item(graded):
    rows, out, _ = graded
    assert len(rows) == len(HONEST) + len(BROKEN) + len(CHEATS) + 2 + 3
    header = list(next(iter(rows.values())))
    assert header == ["student", "fix-add", "fix-scale", "fix-written", "total", "out_of", "status"]
    assert all(row["out_of"] == "5" and row["fix-written"] == "manual" for row in rows.values())


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(HONEST))
def test_honest_submissions_get_their_points(graded, name):
    rows, out, _ = graded
    row = rows[name]
    assert row["total"] == str(HONEST[name]) and row["status"] == "ok", row
    assert int(row["fix-add"]) + int(row["fix-scale"]) == HONEST[name]


@pytest.mark.slow
def test_one_wrong_exercise_loses_exactly_its_points_and_says_why(graded):
    rows, out, _ = graded
    assert (rows["wrong_scale"]["fix-add"], rows["wrong_scale"]["fix-scale"]) == ("2", "0")
    text = _feedback(out, "wrong_scale")
    assert "scale(x) returns 3 x; the exercise asks for 2 x." in text
    assert "✔ | add two arrays" in text


@pytest.mark.slow
def test_untouched_notebook_scores_zero_and_says_not_attempted(graded):
    rows, out, _ = graded
    assert rows["untouched"]["fix-add"] == rows["untouched"]["fix-scale"] == "0"
    text = _feedback(out, "untouched")
    assert text.count("not attempted") == 2 and "(no answer written)" in text


@pytest.mark.slow
def test_written_answers_are_listed_to_grade_by_hand(graded):
    _, out, _ = graded
    text = _feedback(out, "written")
    assert "fix-written: to grade by hand (1 points)" in text
    assert "> Because all entries grow by the same factor." in text
    assert "Why is `2 * x` a scaling?" in text


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CHEATS))
def test_cheating_scores_no_more_than_the_honest_work(graded, name):
    rows, out, _ = graded
    assert int(rows[name]["total"]) == CHEATS[name][1], rows[name]


@pytest.mark.slow
def test_a_pickle_bomb_from_the_kernel_is_never_loaded(graded):
    rows, out, _ = graded
    assert not (out.parent / "pwned").exists()
    assert "unusable result" in _feedback(out, "cheat_probe")


@pytest.mark.slow
def test_writing_into_the_output_folder_changes_nothing(graded):
    rows, out, _ = graded
    assert rows["cheat_output_folder"]["total"] == "2" and rows["full"]["total"] == "5"
    assert "99 / 5" not in _feedback(out, "cheat_output_folder")
    assert not (out / "feedback" / "planted.md").exists()
    pid = int((out.parent / "daemon.pid").read_text())
    import psutil

    alive = psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    assert not alive, "a process the submission detached outlived its grading"


@pytest.mark.slow
def test_exit_calls_leave_a_reason(graded):
    rows, _, _ = graded
    assert "kernel died" in rows["cheat_exit"]["status"]


@pytest.mark.slow
def test_an_endless_loop_times_out_with_credit_for_what_ran(graded):
    rows, out, _ = graded
    row = rows["loop"]
    assert (row["fix-add"], row["fix-scale"]) == ("2", "0")
    assert row["status"].startswith(f"timed out after {TIMEOUT:g} s in code cell")
    assert "the notebook stopped before this check could run" in _feedback(out, "loop")


@pytest.mark.slow
def test_a_crashing_kernel_gets_a_reason(graded):
    rows, _, _ = graded
    assert (rows["crash"]["fix-add"], rows["crash"]["fix-scale"]) == ("2", "0")
    assert "the kernel died in code cell" in rows["crash"]["status"]


@pytest.mark.slow
def test_memory_beyond_the_limit_is_stopped_with_a_reason(graded):
    rows, _, _ = graded
    big = rows["memory_big"]
    assert big["status"].startswith("MemoryError in code cell") and big["total"] == "5"
    hog = rows["memory_hog"]  # the watchdog stopped it: the work before counts, the rest did not run
    assert hog["status"].startswith(f"went over the memory limit of {MEMORY_MB} MB"), hog
    assert (hog["fix-add"], hog["fix-scale"], hog["total"]) == ("2", "0", "2"), hog


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "reason"), [("garbage", "not JSON"), ("scan", "not UTF-8"), ("nocells", "without a list of cells")]
)
def test_files_that_are_not_notebooks_get_a_row_with_the_reason(graded, name, reason):
    rows, out, _ = graded
    assert rows[name]["total"] == "0" and reason in rows[name]["status"]
    assert reason in _feedback(out, name)


# ------------------------------------------------------------------------- the real labs
from exercises import exercise_cells  # noqa: E402 - next to this file
from lab_status import UNVERIFIED_LABS  # noqa: E402 - the root conftest.py

REAL = [
    p
    for p in sorted((ROOT / "solutions").glob("*.ipynb"))
    if p.name not in UNVERIFIED_LABS
    and any(c.metadata.get("nbgrader", {}).get("grade") for c in nbformat.read(p, as_version=4).cells)
]


REAL_WITH_CODE = [p for p in REAL if exercise_cells(p)]  # lab 05's only exercise is a written answer


def test_every_lab_with_an_exercise_is_calibrated():
    """The calibration below is also what runs the student notebooks up to their first exercise."""
    for path in sorted((ROOT / "solutions").glob("*.ipynb")):
        if exercise_cells(path):
            assert path in REAL_WITH_CODE or path.name in UNVERIFIED_LABS, f"{path.name}: an exercise, no graded cell"


@pytest.fixture(scope="module")
def real_graded(tmp_path_factory):
    """Students ``solution`` (every solution notebook) and ``untouched`` (every student notebook), one folder each."""
    if not REAL:
        pytest.skip("no solution notebook has graded cells yet")
    base = tmp_path_factory.mktemp("real")
    subs, out = base / "submissions", base / "out"
    for path in REAL:
        for student, folder in (("solution", ROOT / "solutions"), ("untouched", ROOT / "notebooks")):
            (subs / student).mkdir(parents=True, exist_ok=True)
            shutil.copy(folder / path.name, subs / student / path.name)
    assert grade_folder(subs, out=out, timeout=600, memory_mb=4096, jobs=2, progress=False) == 0
    with open(out / "grades.csv", newline="", encoding="utf-8") as f:
        return {row["student"]: row for row in csv.DictReader(f)}, out


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


@pytest.mark.slow
@pytest.mark.parametrize("path", REAL_WITH_CODE, ids=lambda p: p.stem)
def test_untouched_student_notebook_runs_up_to_its_first_exercise(real_graded, path):
    """Every cell before the first exercise works, and the first exercise's stub raises
    NotImplementedError: in the exercise cell itself, or in its check when the stub sits inside a
    function.  Read from the calibration's run of the untouched student notebook, whose feedback
    lists the errors of code cells in order and marks an item whose code raised
    NotImplementedError "not done"."""
    _, out = real_graded
    exercise, check, check_id = _first_exercise(nbformat.read(ROOT / "notebooks" / path.name, as_version=4))
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


def test_solutions_stay_an_nbgrader_source():
    """nbgrader's own preprocessors accept every solution notebook (cell metadata, checksums, locks)."""
    from nbgrader.preprocessors import CheckCellMetadata, ComputeChecksums, LockCells

    for path in sorted((ROOT / "solutions").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        for step in (CheckCellMetadata(), ComputeChecksums(), LockCells()):
            nb, _ = step.preprocess(nb, {})
        graded = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
        assert all("checksum" in c.metadata["nbgrader"] for c in graded), path.name
