"""The grader on a tiny fixture lab: finding submissions, judging outside the kernel, the sandbox.

A fixture lab (two automatic items, one written answer; checks in
``tests/fixtures/grading/gradefix_checks.py``) carries the adversarial suite: one grading run over
a folder of complete, partial, broken, cheating, attacking (``fixtures/grading/attacks.py``: one
per attack family of issue 26) and not-notebook submissions, then one test per claim.  Honest
submissions in the same folder keep their full scores.  The real labs are calibrated in
``test_grading_labs.py``; resuming, regrading one student and reproducing a seed in
``test_grading_runs.py``.
"""

from __future__ import annotations

import csv
import json
import os
import socket
import sys
import threading
import uuid
from pathlib import Path

import nbformat
import numpy as np
import pytest

from labutils.grading import grade_folder
from labutils.grading.jobs import load_probe_output
from labutils.grading.labs import load_lab, load_labs, match_lab, strip_hidden_tests
from labutils.grading.report import cell_text
from labutils.grading.submissions import discover, find_test_cell, instrument, read_notebook
from labutils.notebooks import student_version

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "grading"
# Per fixture notebook. 60 s was once too short for an honest one on a throttled 2-core CI host
# (kernel start and imports alone: "timed out after 60 s in code cell 2"); "loop" pays it in full.
TIMEOUT = float(os.environ.get("GRADING_TEST_TIMEOUT", "120"))
MEMORY_MB = 800

sys.path.insert(0, str(FIXTURES))
import attacks  # noqa: E402 -- the hostile cells
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
    nbformat.write(nbformat.v4.new_notebook(), subs / "bob" / "00_setup.ipynb")  # a lab with nothing graded
    (subs / "carol" / "notes.txt").write_text("no notebook here")
    (subs / "dave.pdf").write_bytes(b"%PDF-1.4")
    students = {s.name: s for s in discover(subs, labs)}
    assert sorted(students) == ["alice", "bob", "carol", "dave"]
    assert students["alice"].notebooks[0].lab.name == "90_fixture"
    assert [n.path.name for n in students["bob"].notebooks] == ["90_fixture.ipynb"]
    assert "90_fixture-Copy1.ipynb" in students["bob"].notebooks[0].notes[0]
    assert students["bob"].problems == [] and students["bob"].notes == [
        "not graded: 00_setup.ipynb matches no graded lab"
    ]  # a note in the feedback, not a problem in the CSV's status column
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
    monkeypatch.setattr("labutils.grading.jobs.MAX_PROBE_MB", 1)
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
        lambda ctx: with_cell(
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
        lambda ctx: with_cell(
            wrong_scale(),
            "import numpy\nnumpy.allclose = np.allclose = lambda *a, **k: True\n"
            "numpy.testing.assert_allclose = lambda *a, **k: None\nnumpy.isclose = lambda a, b, **k: True\n"
            "import torch\ntorch.allclose = lambda *a, **k: True\n"
            "torch.testing.assert_close = lambda *a, **k: None",
            after=None,
        ),
        2,
    ),
    "cheat_tests_edited": (lambda ctx: _edit_tests(wrong_scale()), 2),
    "cheat_tests_deleted": (lambda ctx: _delete_tests(wrong_scale()), 2),
    "cheat_probe": (
        lambda ctx: with_cell(
            wrong_scale(),
            "import os, numpy as np, labutils.grading.probe as probe\n"
            "class Bomb:\n    def __reduce__(self):\n"
            f"        return (os.system, ('touch {ctx['pwned']}',))\n"
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
        lambda ctx: with_cell(
            with_cell(wrong_scale(), "import sys\nsys.exit('all tests passed')"),
            "import os\nos._exit(0)",
            after="fix-scale-code",  # before the last check: cells after it are not run
        ),
        2,
    ),
    # The attack families of issue 26, each on honest work worth 2 points (or 5 for the killers).
    "attack_plant_module": (lambda ctx: with_cell(wrong_scale(), attacks.plant_module(ctx)), 2),
    "attack_read_solutions": (
        lambda ctx: with_cell(wrong_scale(), attacks.read_solutions(ctx), after="fix-scale-code"),
        2,
    ),
    "attack_read_classmates": (
        lambda ctx: with_cell(wrong_scale(), attacks.read_classmates(ctx), after="fix-scale-code"),
        2,
    ),
    "attack_import_judges": (lambda ctx: with_cell(wrong_scale(), attacks.import_judges(ctx)), 2),
    "attack_kill_grader": (lambda ctx: with_cell(fixture_solution(), attacks.kill_grader(ctx)), 5),
    "attack_kill_worker": (lambda ctx: with_cell(fixture_solution(), attacks.kill_worker(ctx)), 2),
    "attack_grades_folder": (lambda ctx: with_cell(wrong_scale(), attacks.grades_into_folder(ctx)), 2),
    "attack_network": (lambda ctx: with_cell(wrong_scale(), attacks.network(ctx)), 2),
}
AT_MOST = {"attack_rewrite_classmates": (lambda ctx: with_cell(wrong_scale(), attacks.rewrite_classmates(ctx)), 2)}
HONEST = {"full": 5, "untouched": 0, "wrong_scale": 2, "written": 5, "victim": 5, "long_answer": 5}
BROKEN = {"crash": 2}
NOT_NOTEBOOKS = {  # name in the CSV: a reason its status gives
    "garbage": "not JSON",
    "scan": "not UTF-8",
    "nocells": "without a list of cells",
    "nested": "nests 100001 levels deep",
    "linked": "a symbolic link (not followed)",
    "zero": "a symbolic link (not followed)",
    "pipe": "a FIFO",
    "dup.txt": "not JSON",
    "caf\\xe9.ipynb": "not valid UTF-8",
    "line\\nbreak.ipynb": "holds a control character (a line break, a tab...): rename it",
    "zipped": "is a zip archive, not a notebook: unzip it",
    "zipped_folder": "(lab.zip: an archive; unzip it into the folder)",
}


def _edit_tests(nb):
    nb = _copy(nb)
    for grade_id in ("fix-add", "fix-scale"):
        nb.cells[_index(nb, grade_id)].source = "print('✔ all checks passed: 5/5 points')"
    return nb


def _delete_tests(nb):
    nb = _copy(nb)
    nb.cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") not in ("fix-add", "fix-scale")]
    return nb


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


def _disk_fill(nb):
    """Writes files without end into its folder, which lies on the grader's disk: a full disk would
    stop every other student's grading. Sparse files would cost no disk: these are written out."""
    return with_cell(
        nb,
        "import itertools, os\n"
        "for i in itertools.count():\n"
        "    with open(f'fill-{i}', 'wb') as f:\n"
        "        f.write(os.urandom(2**24))  # 16 MB",
    )


class Listener:
    """A TCP server on the host's loopback that counts the connections a submission makes to it."""

    def __init__(self):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.5)
        self.port, self.accepted, self.stop = self.server.getsockname()[1], 0, False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stop:
            try:
                self.server.accept()[0].close()
                self.accepted += 1
            except OSError:
                continue

    def close(self):
        self.stop = True
        self.thread.join()
        self.server.close()


def _plant_files(subs: Path, solutions: Path) -> None:
    """Entries that are not notebooks, or not files: each must get a row with its reason."""
    (subs / "garbage.ipynb").write_text("I forgot to save my notebook")
    (subs / "scan.pdf").write_bytes(b"%PDF-1.4\n\x00\xff\xfe binary")
    (subs / "nocells.ipynb").write_text('{"nbformat": 4, "metadata": {}}')
    (subs / "nested.ipynb").write_text('{"cells": ' + "[" * 100_000 + "]" * 100_000 + "}")
    (subs / "linked.ipynb").symlink_to(solutions / "90_fixture.ipynb")
    (subs / "zero.ipynb").symlink_to("/dev/zero")
    os.mkfifo(subs / "pipe.ipynb")
    nbformat.write(fixture_solution(), subs / "dup.ipynb")
    (subs / "dup.txt").write_text("my notes")
    nbformat.write(fixture_solution(), subs / os.fsdecode(b"caf\xe9.ipynb"))
    nbformat.write(fixture_solution(), subs / "line\nbreak.ipynb")  # valid UTF-8, but a line break
    _zip_notebook(subs / "zipped.zip")
    (subs / "zipped_folder").mkdir()
    _zip_notebook(subs / "zipped_folder" / "lab.zip")
    (subs / "folder_link").mkdir()
    (subs / "folder_link" / "90_fixture.ipynb").symlink_to(solutions / "90_fixture.ipynb")


def _zip_notebook(path: Path) -> None:
    """A notebook handed in zipped, where the notebook itself is expected."""
    import zipfile

    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("90_fixture.ipynb", nbformat.writes(fixture_solution()))


def _long_answer(nb):
    """Honest work whose written answer is longer than a record may be (it once lost every point)."""
    from labutils.grading.results import MAX_RECORD_MB

    nb = _copy(nb)
    nb.cells[_index(nb, "fix-written")].source += "\n\n" + "It scales. " * (MAX_RECORD_MB * 2**20 // 10)
    return nb


@pytest.fixture(scope="module")
def graded(tmp_path_factory, solutions_dir):
    """One grading run over a folder of every kind of submission; returns (rows, out, context)."""
    base = tmp_path_factory.mktemp("adversarial")
    subs, out, cwd = base / "submissions", base / "out", base / "grader-cwd"
    for folder in (subs, out, cwd):
        folder.mkdir()
    listener = Listener()
    ctx = dict(cwd=str(cwd), out=str(out), subs=str(subs), solutions=str(solutions_dir), pwned=str(base / "pwned"))
    ctx |= dict(pid=os.getpid(), port=listener.port, marker=f"marker-{uuid.uuid4().hex}")
    solution = fixture_solution()
    written = _copy(solution)
    written.cells[
        _index(written, "fix-written")
    ].source = "**Question.** Why is `2 * x` a scaling?\n\nBecause all entries grow by the same factor."
    notebooks = {
        "full": solution,
        "victim": solution,
        "untouched": student_version(solution),
        "wrong_scale": wrong_scale(),
        "written": written,
        "long_answer": _long_answer(solution),
        "crash": with_cell(solution, "import ctypes\nctypes.string_at(0)"),
        "memory_big": with_cell(solution, "x = np.ones(2**40)  # 8 TB"),
        "memory_hog": _memory_hog(solution),
        "disk_fill": _disk_fill(solution),
        "shm_fill": with_cell(
            solution, "with open('/dev/shm/fill', 'wb') as f:\n    for _ in range(4096): f.write(bytes(2**20))"
        ),
        **{name: build(ctx) for name, (build, _) in {**CHEATS, **AT_MOST}.items()},
    }
    for name, nb in notebooks.items():
        nbformat.write(nb, subs / f"{name}.ipynb")
    _plant_files(subs, solutions_dir)
    old_cwd = os.getcwd()
    os.chdir(cwd)
    try:
        code = grade_folder(
            subs, out=out, timeout=TIMEOUT, memory_mb=MEMORY_MB, jobs=2, solutions=solutions_dir, progress=False
        )
    finally:
        os.chdir(old_cwd)
        listener.close()
    assert code == 0
    with open(out / "grades.csv", newline="", encoding="utf-8") as f:
        rows = {row["student"]: row for row in csv.DictReader(f)}
    return rows, out, dict(ctx, accepted=listener.accepted, base=base)


def _feedback(out, name):
    return (out / "feedback" / f"{name}.md").read_text(encoding="utf-8")


def _leak(out, name) -> str:
    """What an attack reported it saw (the text of its ``RuntimeError("LEAK ...")``)."""
    text = _feedback(out, name)
    assert "RuntimeError: LEAK" in text, f"{name}: the attack cell did not report\n{text}"
    return text.split("RuntimeError: LEAK", 1)[1].splitlines()[0].strip()


@pytest.mark.slow
def test_csv_has_a_row_per_entry_and_a_column_per_item(graded):
    rows, out, _ = graded
    limits = 4  # memory_big, memory_hog, disk_fill, shm_fill
    entries = len(HONEST) + len(BROKEN) + limits + len(CHEATS) + len(AT_MOST) + len(NOT_NOTEBOOKS) + 1 + 1
    assert len(rows) == entries, sorted(rows)
    header = list(next(iter(rows.values())))
    assert header == ["student", "fix-add", "fix-scale", "fix-written", "total", "out_of", "to_grade", "status"]
    # out_of: every point of the lab, the written answer's included; to_grade: what is left to score by hand
    assert all(row["out_of"] == "6" and row["fix-written"] == "manual" for row in rows.values())
    assert all(rows[n]["to_grade"] == "1" for n in HONEST) and all(rows[n]["to_grade"] == "0" for n in NOT_NOTEBOOKS)


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
def test_a_written_answer_too_long_for_a_record_is_cut_and_the_points_kept(graded):
    rows, out, _ = graded
    assert rows["long_answer"]["total"] == "5" and rows["long_answer"]["status"] == "ok", rows["long_answer"]
    text = _feedback(out, "long_answer")
    assert "characters long; read it in the notebook]" in text and len(text) < 100_000


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
def test_cheating_and_attacks_score_no_more_than_the_honest_work(graded, name):
    rows, out, _ = graded
    assert int(rows[name]["total"]) == CHEATS[name][1], (rows[name], _feedback(out, name))


@pytest.mark.slow
def test_a_pickle_bomb_from_the_kernel_is_never_loaded(graded):
    rows, out, ctx = graded
    assert not Path(ctx["pwned"]).exists()
    assert "unusable result" in _feedback(out, "cheat_probe")


@pytest.mark.slow
def test_exit_calls_leave_a_reason(graded):
    rows, _, _ = graded
    assert "kernel died" in rows["cheat_exit"]["status"]


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
def test_filling_the_disk_is_stopped_with_a_reason(graded):
    """The grader measures the job's folder as it runs and stops it past ``MAX_SCRATCH_MB``; /dev/shm,
    which counts towards no job's memory, is a small tmpfs: writing past it is the student's error."""
    from labutils.grading.jobs import MAX_SCRATCH_MB

    rows, out, _ = graded
    fill = rows["disk_fill"]
    assert fill["status"].startswith(f"wrote more than the {MAX_SCRATCH_MB} MB"), fill
    assert (fill["fix-add"], fill["fix-scale"], fill["total"]) == ("2", "0", "2"), fill
    shm = rows["shm_fill"]
    assert shm["total"] == "5" and "No space left on device" in _feedback(out, "shm_fill"), shm


@pytest.mark.slow
@pytest.mark.parametrize(("name", "reason"), sorted(NOT_NOTEBOOKS.items()))
def test_entries_that_are_not_notebooks_get_a_row_with_the_reason(graded, name, reason):
    rows, out, _ = graded
    assert rows[name]["total"] == "0" and reason in rows[name]["status"], rows[name]


@pytest.mark.slow
def test_a_symbolic_link_inside_a_student_folder_is_not_followed(graded):
    rows, _, _ = graded
    row = rows["folder_link"]
    assert row["total"] == "0" and "skipped 90_fixture.ipynb: a symbolic link (not followed)" in row["status"], row


@pytest.mark.slow
def test_two_files_with_one_name_get_a_row_each(graded):
    """The honest notebook keeps its score next to a .txt of the same name (it once scored 0, "ok")."""
    rows, _, _ = graded
    assert (
        rows["dup.ipynb"]["total"] == "5" and "another file has the same name: dup.txt" in rows["dup.ipynb"]["status"]
    )
    assert "dup.ipynb" in rows["dup.txt"]["status"]


# ------------------------------------------------------------------ what the sandbox withholds
@pytest.mark.slow
def test_a_module_planted_for_the_grader_never_reaches_it(graded):
    rows, out, ctx = graded
    assert not any(Path(ctx["cwd"]).iterdir()), "the grader's working folder changed"
    assert "planted_by_student" not in "".join(p.name for p in Path(ctx["base"]).rglob("*.py"))
    assert rows["attack_plant_module"]["total"] == "2"


@pytest.mark.slow
def test_a_classmates_results_cannot_be_rewritten(graded):
    rows, out, _ = graded
    assert rows["victim"]["total"] == rows["full"]["total"] == "5"
    assert int(rows["attack_rewrite_classmates"]["total"]) <= AT_MOST["attack_rewrite_classmates"][1]
    seen = _leak(out, "attack_rewrite_classmates")
    assert seen.count("job-") <= 1, f"the kernel saw other jobs' scratch folders: {seen}"


@pytest.mark.slow
def test_solutions_are_not_readable_through_labutils_or_the_instructors_folder(graded):
    rows, out, _ = graded
    assert _leak(out, "attack_read_solutions") == "[]"
    assert rows["attack_read_solutions"]["fix-scale"] == "0"


@pytest.mark.slow
def test_classmates_are_not_visible_through_proc_or_the_submissions_folder(graded):
    rows, out, _ = graded
    seen = _leak(out, "attack_read_classmates")
    assert "full" not in seen and "cmdline" not in seen and "environ" not in seen, seen
    assert int(seen.split("pids=")[1].split("'")[0]) <= 6, f"the kernel sees other processes: {seen}"


@pytest.mark.slow
def test_the_judges_cannot_be_imported_or_read_from_a_kernel(graded):
    _, out, _ = graded
    assert _leak(out, "attack_import_judges") == "[]"


@pytest.mark.slow
def test_killing_the_grader_or_its_worker_changes_nothing_and_leaves_no_process(graded):
    import psutil

    rows, out, ctx = graded
    assert rows["attack_kill_grader"]["status"] == "ok" and _leak(out, "attack_kill_grader") == "[]"
    row = rows["attack_kill_worker"]
    assert (row["fix-add"], row["fix-scale"]) == ("2", "0") and "killed from inside" in row["status"], row
    survivors = [p.pid for p in psutil.process_iter(["cmdline"]) if ctx["marker"] in " ".join(p.info["cmdline"] or [])]
    assert not survivors, "a process a submission started outlived its grading"


@pytest.mark.slow
def test_the_output_folder_is_out_of_reach(graded):
    rows, out, _ = graded
    # The kernel may well write to the same path: under the sandbox's own /tmp, not the grader's.
    assert (out / "grades.csv").is_file() and not (out / "feedback" / "planted.md").exists()
    assert rows["attack_grades_folder"]["total"] == "2" and rows["full"]["total"] == "5"


@pytest.mark.slow
def test_no_network_from_a_kernel(graded):
    _, out, ctx = graded
    assert _leak(out, "attack_network") == "[]" and ctx["accepted"] == 0


@pytest.mark.slow
def test_every_submission_left_a_record(graded):
    rows, out, _ = graded
    records = list((out / "results").rglob("*.json"))
    graded_rows = [
        r for r in rows.values() if r["status"] == "ok" or "kernel" in r["status"] or "killed" in r["status"]
    ]
    assert len(records) >= len(graded_rows)
    record = json.loads(next(p for p in records if p.parent.name.startswith("full-")).read_text())
    assert record["student"] == "full" and record["budget"] == "ci" and all("seed" in i for i in record["items"][:2])


# ------------------------------------------------------------------------------- a loop alone
@pytest.mark.slow
def test_an_endless_loop_times_out_with_credit_for_what_ran(tmp_path, solutions_dir):
    """Alone, under a short timeout.  The loop sleeps: the deadline treats it as it treats a busy one,
    which would burn a core for the whole timeout beside the rest of the suite."""
    subs = tmp_path / "subs"
    subs.mkdir()
    nbformat.write(with_cell(fixture_solution(), "import time\nwhile True:\n    time.sleep(0.1)"), subs / "loop.ipynb")
    timeout = 40
    code = grade_folder(
        subs, out=tmp_path / "out", timeout=timeout, memory_mb=MEMORY_MB, solutions=solutions_dir, progress=False
    )
    assert code == 0
    with open(tmp_path / "out" / "grades.csv", newline="", encoding="utf-8") as f:
        row = next(csv.DictReader(f))
    assert (row["fix-add"], row["fix-scale"]) == ("2", "0"), row
    assert row["status"].startswith(f"timed out after {timeout} s in code cell"), row
    assert "the notebook stopped before this check could run" in _feedback(tmp_path / "out", "loop")


def test_lab07_files_are_found_beside_the_notebook_in_both_layouts(tmp_path):
    """alice/ holds the notebook and the models; bob.ipynb's are bob.sherlock_rnn.pt / bob_sherlock_gru.pt."""
    import shutil

    root = Path(__file__).resolve().parent.parent
    lab = load_lab(root / "solutions" / "07_sherlock_assignment.ipynb")
    assert lab.from_files and lab.files == ("sherlock_rnn.pt", "sherlock_gru.pt")
    subs = tmp_path / "subs"
    (subs / "alice").mkdir(parents=True)
    shutil.copy(lab.path, subs / "alice" / lab.path.name)
    shutil.copy(lab.path, subs / "bob.ipynb")
    for name, data in (("alice/sherlock_rnn.pt", b"r"), ("bob.sherlock_rnn.pt", b"r"), ("bob_sherlock_gru.pt", b"g")):
        (subs / name).write_bytes(data)
    (subs / "alice" / "sherlock_gru.pt").symlink_to(subs / "bob_sherlock_gru.pt")
    students = {s.name: s for s in discover(subs, {lab.name: lab})}
    assert sorted(students) == ["alice", "bob"], "the models are no rows of their own"
    assert sorted(students["bob"].notebooks[0].files) == ["sherlock_gru.pt", "sherlock_rnn.pt"]
    alice = students["alice"]
    assert list(alice.notebooks[0].files) == ["sherlock_rnn.pt"]
    assert "skipped sherlock_gru.pt: a symbolic link (not followed)" in alice.problems


def test_check_inputs_take_the_budget_they_are_given(monkeypatch):
    from labutils.checks.core import Check
    from labutils.runtime import budget

    check = Check("fix-budget", "budget", (), probe=lambda o, i: {}, judge=lambda i, o: None,
                  make_inputs=lambda rng: {"limit": budget(full=1.0, ci=2.0)})  # fmt: skip
    for env in ("full", "ci"):
        monkeypatch.setenv("LABUTILS_BUDGET", env)
        assert (float(check.inputs(0, budget="ci")["limit"]), float(check.inputs(0, budget="full")["limit"])) == (2, 1)
    assert float(check.inputs(0)["limit"]) == 2.0  # without one: the environment's (ci here)


def test_deep_json_and_odd_entries_are_refused_without_reading(tmp_path):
    from labutils.grading.safefiles import Unreadable, json_depth, read_regular

    assert json_depth(b'{"a": [1, {"b": "[[[["}]}') == 3
    nb, problem = read_notebook(_write(tmp_path / "deep.ipynb", '{"cells": ' + "[" * 50_000 + "]" * 50_000 + "}"))
    assert nb is None and "nests 50001 levels deep" in problem
    os.mkfifo(tmp_path / "pipe.ipynb")
    (tmp_path / "zero.ipynb").symlink_to("/dev/zero")
    for name, reason in (("pipe.ipynb", "is a FIFO"), ("zero.ipynb", "is a symbolic link")):
        with pytest.raises(Unreadable, match=reason):
            read_regular(tmp_path / name, 2**20)


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_a_folder_in_the_way_of_grades_csv_is_moved_aside(tmp_path, solutions_dir):
    from labutils.grading.report import write_outputs

    (tmp_path / "grades.csv").mkdir()
    (tmp_path / "grades.csv" / "x").write_text("planted")
    write_outputs(tmp_path, [], {}, list(load_labs(solutions_dir).values()))
    assert (tmp_path / "grades.csv").is_file()


def test_only_the_tail_of_a_log_is_read(tmp_path):
    from labutils.grading.safefiles import read_tail

    (tmp_path / "worker.log").write_bytes(b"x" * 5_000_000 + b"the end")
    assert read_tail(tmp_path / "worker.log", 7) == b"the end"


def test_an_error_in_the_students_code_reaches_the_feedback_as_the_checks_advice():
    from labutils.grading.judging import _raised
    from labutils.grading.labs import Item

    item = Item("lab01-softmax", 2.0, False, "stable softmax")
    advice = "softmax raised ValueError: operands could not be broadcast. Keep the summed axis: keepdims=True."
    result = _raised(item, {"type": "StudentCodeError", "message": advice, "where": "line 3: s = z.sum(axis=1)"})
    assert result.message == advice + " (at line 3: s = z.sum(axis=1))"
    assert result.points == 0.0
    other = _raised(item, {"type": "KeyError", "message": "'W_xh'", "where": ""})
    assert other.message == "your code raised KeyError: 'W_xh'"


def test_the_line_named_in_the_feedback_is_the_students_not_a_librarys():
    import linecache

    import torch

    from labutils.grading.probe import _student_frame

    namespace = {"torch": torch}
    source = "def classify(x, lengths):\n    return torch.nn.utils.rnn.pack_padded_sequence(x, lengths)\n"
    linecache.cache["<notebook cell>"] = (
        len(source),
        None,
        source.splitlines(True),
        "<notebook cell>",
    )  # as IPython does
    exec(compile(source, "<notebook cell>", "exec"), namespace)
    try:
        try:
            namespace["classify"](torch.zeros(2, 3, 4), torch.tensor([5, 1]))
        except Exception as inner:
            raise RuntimeError("advice") from inner
    except RuntimeError as exc:
        where = _student_frame(exc)
    assert where.startswith("line 2"), where


def test_a_scratch_folder_is_measured_in_disk_blocks_and_entries_also_when_made_unreadable(tmp_path):
    from labutils.grading.jobs import scratch_overgrown

    hidden = tmp_path / "a" / "b"
    hidden.mkdir(parents=True)
    (hidden / "data").write_bytes(os.urandom(3 * 2**20))
    with open(tmp_path / "sparse", "wb") as f:  # 1 GB long, no block written: no disk used
        f.truncate(2**30)
    hidden.chmod(0)
    (tmp_path / "a").chmod(0)
    assert not scratch_overgrown(tmp_path, max_mb=4, max_files=10)
    assert scratch_overgrown(tmp_path, max_mb=2, max_files=10), "3 MB of data in an unreadable folder"
    for i in range(10):
        (tmp_path / f"empty-{i}").touch()
    assert scratch_overgrown(tmp_path, max_mb=4, max_files=10), "14 entries"


def test_a_notebook_of_thousands_of_failing_cells_keeps_a_report_the_grader_reads(tmp_path):
    """100,000 cells, each raising: the report lists 100 of them and counts the rest (it once grew
    past what the grader reads back, and the run was reported as killed from inside)."""
    from labutils.grading.jobs import MAX_REPORT_KB, _report
    from labutils.grading.worker import MAX_LISTED, _run_cells

    class Client:
        def execute_cell(self, cell, index):
            cell.outputs = [{"output_type": "error", "ename": "ValueError", "evalue": "e" * 500}]

    cells = [nbformat.v4.new_code_cell("1/0", id=f"c{i}") for i in range(100_000)]  # unique ids: no warning
    nb = nbformat.v4.new_notebook(cells=cells)
    report = {"status": "ok", "cell": None, "errors": [], "executed": 0, "cell_seconds": []}
    _run_cells(Client(), nb, float("inf"), report)
    assert len(report["errors"]) == len(report["cell_seconds"]) == MAX_LISTED
    assert report["errors_more"] == 100_000 - MAX_LISTED and report["executed"] == 100_000
    (tmp_path / "result.json").write_text(json.dumps(report))
    assert (tmp_path / "result.json").stat().st_size < MAX_REPORT_KB * 2**10
    assert _report(tmp_path / "result.json", "", "", 600)["status"] == "ok"
    (tmp_path / "result.json").write_text("[" * 10)  # spoiled by the notebook: said so, not "killed"
    assert "report was unusable" in _report(tmp_path / "result.json", "", "", 600)["detail"]


def test_an_nbformat_3_notebook_is_read_and_matched_like_any_other(solutions_dir):
    labs = load_labs(solutions_dir)
    raw = nbformat.writes(nbformat.convert(fixture_solution(), 3), version=3).encode()
    assert b'"worksheets"' in raw and b'"cells": [' not in raw[:20]
    from labutils.grading.submissions import parse_notebook

    nb, problem = parse_notebook(raw, "old.ipynb")
    assert not problem and nb.nbformat == 4
    assert match_lab("old", {c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells}, labs)
    run, notes = instrument(nb, labs["90_fixture"], Path("/io"))
    assert not notes and [c.metadata["labutils"].get("probe") for c in run.cells][-1] == "fix-scale"


@pytest.mark.parametrize(
    ("layout", "why"),
    [
        ("out/feedback", "which grading replaces with its own feedback"),
        ("out/results/alice", "which grading replaces with its own results"),
        ("out", "must not be the folder of submissions"),
        ("file", "is a file, not a folder"),
    ],
)
def test_an_output_folder_that_would_replace_the_submissions_is_refused(tmp_path, solutions_dir, layout, why, capsys):
    """``--out DIR`` where the submissions are ``DIR/feedback`` once deleted them with the old feedback."""
    subs = tmp_path / ("subs" if layout == "file" else layout)
    subs.mkdir(parents=True)
    nbformat.write(fixture_solution(), subs / "alice.ipynb")
    out = tmp_path / ("subs/grades.txt" if layout == "file" else "out")
    if layout == "file":
        out.write_text("not a folder")
    before = sorted((p, p.read_bytes()) for p in tmp_path.rglob("*") if p.is_file())
    code = grade_folder(subs, out=out, solutions=solutions_dir, progress=False)
    assert code == 2 and why in capsys.readouterr().err
    assert sorted((p, p.read_bytes()) for p in tmp_path.rglob("*") if p.is_file()) == before


@pytest.mark.parametrize(("option", "value"), [("timeout", 0), ("timeout", -5), ("memory_mb", -1), ("jobs", 0)])
def test_limits_that_make_no_sense_are_refused(tmp_path, solutions_dir, option, value, capsys):
    code = grade_folder(tmp_path, out=tmp_path / "out", solutions=solutions_dir, progress=False, **{option: value})
    assert code == 2 and "must be" in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_a_scratch_folder_nested_beyond_a_path_is_measured_removed_and_its_links_never_entered(tmp_path):
    """A job may nest folders thousands deep (beyond PATH_MAX: a path-based walk missed what lay
    below, and ``shutil.rmtree`` raised RecursionError) and swap a folder for a link to ``/`` while
    the grader measures it (a path-based walk would enter, and chmod, the grader's own folders)."""
    from labutils.grading.jobs import MAX_SCRATCH_DEPTH, remove_scratch, scratch_overgrown

    outside = tmp_path / "outside"
    outside.mkdir(mode=0o755)
    with open(outside / "data", "wb") as f:
        os.posix_fallocate(f.fileno(), 0, 64 * 2**20)
    job = tmp_path / "job"
    job.mkdir()
    (job / "link").symlink_to(outside)
    fd = os.open(job, os.O_RDONLY)
    for _ in range(2100):  # "d/" * 2100: longer than a path may be
        os.mkdir("d", dir_fd=fd)
        fd, parent = os.open("d", os.O_RDONLY, dir_fd=fd), fd
        os.close(parent)
    deep = dict(max_files=10**6, max_depth=10**4)
    assert not scratch_overgrown(job, max_mb=40, **deep), "the link's target is not the job's"
    with open(os.open("big", os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=fd), "wb") as f:
        os.posix_fallocate(f.fileno(), 0, 64 * 2**20)
    os.fchmod(fd, 0)
    os.close(fd)
    assert scratch_overgrown(job, max_mb=40, **deep), "64 MB below what a path can name"
    assert scratch_overgrown(job, max_mb=10**4, max_files=10**6), f"nested deeper than {MAX_SCRATCH_DEPTH}"
    remove_scratch(job)
    assert not job.exists() and (outside / "data").stat().st_size == 64 * 2**20
    assert (outside.stat().st_mode & 0o777) == 0o755
