"""Grading at the scale of a class, with real kernels: shards merged, hand scores merged, Gradescope, the benchmark.

* two shards (``grade --shard 1/2`` and ``2/2``) merged with ``merge`` give exactly what one run
  with the same seed gives: records, ``grades.csv``, feedback, manual-score sheets;
* a score given by hand in a sheet reaches ``grades.csv`` and the feedback on the next run;
* the Gradescope bundle of lab 01, unpacked into a simulated ``/autograder`` and run as Gradescope
  runs it: the solution scores full marks, the student notebook zero;
* ``bench grading --quick`` grades one lab 01 notebook with both graders.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest
from test_grading import fixture_solution, wrong_scale

from labutils.grading import grade_folder
from labutils.grading.manual import sheet_path
from labutils.grading.results import read_records
from labutils.grading.shards import merge

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
SEED = 4242


def _rows(out: Path) -> dict:
    with open(out / "grades.csv", newline="", encoding="utf-8") as f:
        return {row["student"]: row for row in csv.DictReader(f)}


def _sheet(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _records(out: Path) -> dict:
    """Every record without what differs between two runs of the same grading (when, how long)."""
    return {
        (r["student"], r["lab"]): {k: v for k, v in r.items() if k not in ("graded_at", "seconds")}
        for r in read_records(out)
    }


def _tree(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def class_folder(tmp_path_factory):
    base = tmp_path_factory.mktemp("class")
    solutions, subs = base / "solutions", base / "subs"
    solutions.mkdir()
    subs.mkdir()
    nbformat.write(fixture_solution(), solutions / "90_fixture.ipynb")
    for name, nb in (("alice", fixture_solution()), ("bob", wrong_scale()), ("carol", wrong_scale())):
        nbformat.write(nb, subs / f"{name}.ipynb")
    (subs / "dave.txt").write_text("not a notebook")
    return base, solutions, subs


def _grade(subs, out, solutions, **options) -> int:
    return grade_folder(subs, out=out, solutions=solutions, timeout=120, memory_mb=800, progress=False, **options)


def test_two_shards_merged_equal_one_run(class_folder):
    base, solutions, subs = class_folder
    assert _grade(subs, base / "one", solutions, seed=SEED) == 0
    assert _grade(subs, base / "shard-1", solutions, seed=SEED, shard=(1, 2)) == 0
    assert _grade(subs, base / "shard-2", solutions, seed=SEED, shard=(2, 2)) == 0
    two = [_rows(base / f"shard-{i}") for i in (1, 2)]
    assert sorted([*two[0], *two[1]]) == ["alice", "bob", "carol"], "each notebook graded once, by one shard"
    assert merge([base / "shard-1"], out=base / "half", submissions=subs, solutions=solutions) == 1, "one is missing"
    assert merge([base / "shard-1", base / "shard-2"], out=base / "merged", submissions=subs, solutions=solutions) == 0
    assert _records(base / "merged") == _records(base / "one")
    for name in ("grades.csv", "feedback", "manual"):
        path = base / "one" / name
        assert (_tree(path) if path.is_dir() else path.read_bytes()) == (
            _tree(base / "merged" / name) if path.is_dir() else (base / "merged" / name).read_bytes()
        ), name
    logs = [json.loads(line) for line in (base / "merged" / "runs.jsonl").read_text().splitlines()]
    assert sorted(entry["shard"] for entry in logs) == ["1/2", "2/2"] and {e["run_seed"] for e in logs} == {SEED}


def test_a_score_given_by_hand_reaches_the_grades_and_the_feedback(class_folder):
    base, solutions, subs = class_folder
    out = base / "one"
    if not (out / "grades.csv").exists():
        assert _grade(subs, out, solutions, seed=SEED) == 0
    sheet = sheet_path(out, "90_fixture")
    rows = _sheet(sheet)
    assert [r["student"] for r in rows] == ["alice", "bob", "carol"] and all(r["score"] == "" for r in rows)
    rows[1]["score"], rows[1]["comment"] = "1", "Exactly: one factor for every entry."
    with open(sheet, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    assert _grade(subs, out, solutions, resume=True) == 0  # nothing changed: no kernel runs, outputs rebuilt
    bob = _rows(out)["bob"]
    assert (bob["fix-written"], bob["total"], bob["out_of"], bob["to_grade"]) == ("1", "3", "6", "0")
    feedback = (out / "feedback" / "bob.md").read_text(encoding="utf-8")
    assert "graded by hand, 1 / 1" in feedback and "Exactly: one factor for every entry." in feedback
    assert next(r for r in _sheet(sheet) if r["student"] == "bob")["score"] == "1"


# ------------------------------------------------------------------------------ Gradescope
def _autograder(base: Path, bundle: Path) -> Path:
    """Gradescope's layout: the bundle unpacked in source/, run_autograder copied next to it."""
    root = base / "autograder"
    (root / "submission").mkdir(parents=True)
    with zipfile.ZipFile(bundle) as z:
        z.extractall(root / "source")
    shutil.copy(root / "source" / "run_autograder", root / "run_autograder")
    return root


def _run_autograder(root: Path, notebook: Path) -> dict:
    from labutils.data import cache_dir

    for old in (root / "submission").iterdir():
        old.unlink()
    shutil.copy(notebook, root / "submission" / notebook.name)
    env = dict(os.environ, AUTOGRADER_ROOT=str(root), LABUTILS_AUTOGRADER_PYTHON=sys.executable)
    env |= {"PYTHONPATH": str(root / "source"), "LABUTILS_DATA_DIR": str(cache_dir())}  # the bundle's labutils
    done = subprocess.run(["bash", str(root / "run_autograder")], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return json.loads((root / "results" / "results.json").read_text())


def test_the_gradescope_bundle_grades_a_solution_full_and_a_stub_zero(tmp_path):
    bundle = tmp_path / "lab01.zip"
    done = subprocess.run(
        [sys.executable, "-m", "labutils", "gradescope", "01", str(bundle)], capture_output=True, text=True, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    root = _autograder(tmp_path, bundle)
    full = _run_autograder(root, ROOT / "solutions" / "01_rnn_forward_numpy.ipynb")
    assert full["score"] == sum(t["max_score"] for t in full["tests"]) == 8, full["output"]
    assert all(t["score"] == t["max_score"] and t["visibility"] == "visible" for t in full["tests"])
    assert full["extra_data"]["graded"] and set(full["extra_data"]["seeds"]) == {
        "lab01-softmax",
        "lab01-cell-forward",
        "lab01-forward",
    }
    stub = _run_autograder(root, ROOT / "notebooks" / "01_rnn_forward_numpy.ipynb")
    assert stub["score"] == 0 and all("NotImplementedError" in t["output"] for t in stub["tests"]), stub["tests"]
    assert "Automatic score: **0 / 8**" in stub["output"]


def test_the_grading_benchmark_runs_both_graders():
    from labutils.bench.grading import CLASS, run

    figures = run(quick=True)
    assert figures["lab01_notebooks"] == 1
    assert figures["lab01_ours_mean_score"] == figures["lab01_nbgrader_mean_score"] == 8, "both graded it in full"
    for name in ("ours", "nbgrader"):
        rate = figures[f"lab01_{name}_per_core_min"]
        assert figures[f"lab01_{name}_cpu_s"] > 1 and rate > 0
        assert figures[f"lab01_{name}_{CLASS}_on_32_cores_min"] == pytest.approx(CLASS / (rate * 32), rel=0.05)
    ratio = figures["lab01_ours_per_core_min"] / figures["lab01_nbgrader_per_core_min"]
    assert figures["lab01_ratio"] == pytest.approx(ratio, rel=0.02)
