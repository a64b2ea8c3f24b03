"""Grading runs at the scale of a class: records written as graded, resume, regrade one, seeds, exit codes.

On the fixture lab of ``test_grading.py`` (a kernel per notebook, a few seconds each): a run over
two students writes one record per student; a resumed run grades only what changed; one student
is regraded and merged; a seed reproduces a student's inputs; the exit code says when grading
itself failed; and without a sandbox tool the grader refuses unless told ``unsafe_no_sandbox``.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import nbformat
import pytest
from test_grading import FIXTURES, fixture_solution, wrong_scale

from labutils.__main__ import build_parser
from labutils.grading import grade_folder
from labutils.grading.results import item_seed, record_path
from labutils.grading.sandbox import SandboxUnavailable

pytestmark = pytest.mark.slow


@pytest.fixture
def lab(tmp_path):
    """A solutions folder with the fixture lab, and two students: alice (full marks) and bob (2 of 5)."""
    solutions, subs = tmp_path / "solutions", tmp_path / "subs"
    solutions.mkdir()
    subs.mkdir()
    nbformat.write(fixture_solution(), solutions / "90_fixture.ipynb")
    nbformat.write(fixture_solution(), subs / "alice.ipynb")
    nbformat.write(wrong_scale(), subs / "bob.ipynb")
    return solutions, subs, tmp_path / "out"


def _grade(lab, **options) -> int:
    solutions, subs, out = lab
    return grade_folder(subs, out=out, solutions=solutions, timeout=120, memory_mb=800, progress=False, **options)


def _rows(out: Path) -> dict:
    with open(out / "grades.csv", newline="", encoding="utf-8") as f:
        return {row["student"]: row for row in csv.DictReader(f)}


def _record(out: Path, student: str) -> dict:
    return json.loads(record_path(out, student, "90_fixture").read_text())


def test_records_resume_and_regrading_one_student(lab):
    solutions, subs, out = lab
    assert _grade(lab, seed=11) == 0
    assert {k: v["total"] for k, v in _rows(out).items()} == {"alice": "5", "bob": "2"}
    first = {name: _record(out, name) for name in ("alice", "bob")}
    assert first["bob"]["run_seed"] == 11 and first["bob"]["items"][1]["status"] == "failed"
    # Resumed: nothing changed, nothing is regraded, the CSV is rebuilt from the records.
    (out / "grades.csv").unlink()
    assert _grade(lab, resume=True) == 0
    assert _record(out, "bob")["graded_at"] == first["bob"]["graded_at"] and _rows(out)["bob"]["total"] == "2"
    # Bob hands in a fix: a resumed run regrades him alone.
    nbformat.write(fixture_solution(), subs / "bob.ipynb")
    assert _grade(lab, resume=True) == 0
    assert _record(out, "bob")["sha256"] != first["bob"]["sha256"] and _rows(out)["bob"]["total"] == "5"
    assert _record(out, "alice") == first["alice"]
    # One late student regraded and merged: the others' records and rows stay.
    nbformat.write(wrong_scale(), subs / "carol.ipynb")
    assert _grade(lab, student="carol") == 0
    assert {k: v["total"] for k, v in _rows(out).items()} == {"alice": "5", "bob": "5", "carol": "2"}
    assert _record(out, "alice") == first["alice"]
    assert _grade(lab, student="nobody") == 2


def test_a_seed_reproduces_a_students_inputs(lab):
    """Each item's seed is logged; regrading with the run's seed draws the same inputs again."""
    solutions, subs, out = lab
    assert _grade(lab) == 0  # a secret seed
    logged = _record(out, "bob")
    runs = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    assert runs[-1]["run_seed"] == logged["run_seed"]
    seeds = [item["seed"] for item in logged["items"] if "seed" in item]
    assert seeds == [item_seed(logged["run_seed"], "bob", "90_fixture", gid) for gid in ("fix-add", "fix-scale")]
    assert _grade(lab, seed=logged["run_seed"], student="bob") == 0
    again = _record(out, "bob")
    assert [i.get("seed") for i in again["items"]] == [i.get("seed") for i in logged["items"]]
    assert [i.get("message") for i in again["items"]] == [i.get("message") for i in logged["items"]]
    assert [i["seed"] for i in _record(out, "alice")["items"][:2]] != seeds


def test_the_exit_code_says_when_grading_itself_failed(lab, monkeypatch):
    """A sandbox that cannot start (here: told to show a folder that does not exist) fails every job."""
    from labutils.grading import sandbox

    real = sandbox.sandbox_for

    def broken(*args, **kwargs):
        box = real(*args, **kwargs)
        box.readonly.append(Path("/nonexistent/labutils-test"))
        return box

    monkeypatch.setattr("labutils.grading.grader.sandbox_for", broken)
    assert _grade(lab) == 1
    row = _rows(lab[2])["alice"]
    assert row["total"] == "0" and "grading failed: the sandbox did not start" in row["status"], row
    assert _record(lab[2], "alice")["grading_failed"] is True


def test_without_a_sandbox_tool_the_grader_refuses_unless_told_unsafe(lab, monkeypatch, capsys):
    def missing():
        raise SandboxUnavailable("no sandbox tool: bwrap is not installed; install bubblewrap")

    monkeypatch.setattr("labutils.grading.grader.find_bwrap", missing)
    assert _grade(lab) == 2
    assert "refusing to grade without a sandbox: no sandbox tool" in capsys.readouterr().err
    assert not (lab[2] / "grades.csv").exists()
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(FIXTURES), os.environ.get("PYTHONPATH", "")]))
    assert _grade(lab, unsafe_no_sandbox=True, student="alice") == 0
    assert _rows(lab[2])["alice"]["total"] == "5"


def test_the_grade_command_takes_the_new_options():
    args = build_parser().parse_args(
        ["grade", "subs", "--out", "o", "--solutions", "s", "--seed", "5", "--student", "bob", "--resume"]
    )
    assert (args.solutions, args.seed, args.student, args.resume, args.unsafe_no_sandbox) == (
        "s",
        5,
        "bob",
        True,
        False,
    )
    assert build_parser().parse_args(["grade", "subs", "--out", "o", "--unsafe-no-sandbox"]).unsafe_no_sandbox


def test_the_command_never_imports_a_module_lying_in_its_working_folder(lab, tmp_path):
    """``python -m`` puts the working folder first on sys.path; the grade command takes it off."""
    import subprocess
    import sys

    solutions, subs, out = lab
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    marker = tmp_path / "imported"
    for name in ("psutil", "tqdm"):  # both imported by the grader only once grading starts
        (cwd / f"{name}.py").write_text(f"open({str(marker)!r}, 'w').write({name!r})\nraise ImportError('planted')\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).parents[1]), str(FIXTURES)]))
    # As ``python -m labutils grade ...``, after registering the fixture's checks (``-c``, as ``-m``,
    # puts the working folder first on sys.path).
    args = ["grade", str(subs), "--out", str(out), "--solutions", str(solutions), "--student", "alice"]
    code = f"import sys, gradefix_checks; from labutils.__main__ import main; sys.exit(main({args!r}))"
    done = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert not marker.exists(), f"the grader imported {marker.read_text()} from its working folder"
    assert _rows(out)["alice"]["total"] == "5"


@pytest.mark.parametrize("env", [None, "ci", "full"], ids=["unset", "ci", "full"])
def test_kernels_run_the_ci_budget_whatever_the_graders_environment(lab, monkeypatch, env):
    """The grader names the kernels' budget itself: a cell that asserts it runs without error."""
    from test_grading import with_cell

    monkeypatch.delenv("CI", raising=False)
    if env is None:
        monkeypatch.delenv("LABUTILS_BUDGET", raising=False)
    else:
        monkeypatch.setenv("LABUTILS_BUDGET", env)
    solutions, subs, out = lab
    source = "import labutils\nassert labutils.budget_name() == 'ci', 'the kernel runs ' + labutils.budget_name()"
    nbformat.write(with_cell(fixture_solution(), source), subs / "alice.ipynb")
    assert _grade(lab, student="alice") == 0
    assert "Errors raised" not in (out / "feedback" / "alice.md").read_text() and _rows(out)["alice"]["total"] == "5"
