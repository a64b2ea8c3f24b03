"""The formats instructors use, without running a kernel: rosters, Canvas downloads, exports, manual scores.

* Canvas bulk-download names as Canvas's ``ContentZipper`` writes them, resubmissions included;
* a roster read from a Canvas gradebook export; ``collect`` arranging a hostile download;
* the Canvas gradebook CSV checked against the rules of Canvas's ``GradebookImporter``, and
  Gradescope's grade-export layout;
* the manual-score sheets: written, kept across runs, merged, refused when wrong;
* shards dealt out evenly; Gradescope's ``results.json`` built from a record.

Records are made with ``results.to_record`` from hand-built ``JobResult`` s of the fixture lab
of ``test_grading.py``; the runs that grade real kernels are in ``test_grading_scale.py``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import zipfile
from pathlib import Path

import nbformat
import pytest
from test_grading import fixture_solution

from labutils.grading.collect import collect, write_manifest
from labutils.grading.exports import canvas_table, collect_scores, export, gradescope_table
from labutils.grading.gradescope import STUDENT, build_bundle, results_json
from labutils.grading.judging import ItemResult, ItemStatus, JobResult
from labutils.grading.labs import load_lab
from labutils.grading.manual import ManualSheetError, read_marks, read_sheet, sheet_path, write_sheets
from labutils.grading.results import to_record, write_record
from labutils.grading.roster import RosterError, parse_canvas_name, parse_roster
from labutils.grading.shards import ShardError, parse_shard, select
from labutils.grading.submissions import Notebook
from labutils.notebooks import SOLUTIONS

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    folder = tmp_path_factory.mktemp("solutions")
    nbformat.write(fixture_solution(), folder / "90_fixture.ipynb")
    return load_lab(folder / "90_fixture.ipynb")


def result_of(lab, student: str, add: float, scale: float, answer: str | None = "my answer") -> JobResult:
    """A graded fixture submission: its points for add (of 2) and scale (of 3), and its written answer."""
    items = []
    for item in lab.items:
        if item.manual:
            items.append(ItemResult(item, ItemStatus.MANUAL, None, answer=answer))
        else:
            points = add if item.grade_id == "fix-add" else scale
            status = ItemStatus.PASSED if points == item.points else ItemStatus.FAILED
            items.append(ItemResult(item, status, points, "ok" if points else "scale(x) returns 3 x"))
    return JobResult(student, lab, items=items)


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def graded_out(tmp_path: Path, lab, results: list[JobResult]) -> Path:
    out = tmp_path / "out"
    for result in results:
        seeds = {i.grade_id: 7 for i in lab.auto_items}
        write_record(out, to_record(result, source="x", sha256="abc", budget="ci", run_seed=1, seeds=seeds))
    return out


# ----------------------------------------------------------------------------- Canvas names
@pytest.mark.parametrize(
    ("name", "user", "attachment", "file", "revision", "late"),
    [
        ("smithjohn_12345_67890_01_rnn_forward_numpy.ipynb", "12345", 67890, "01_rnn_forward_numpy.ipynb", 0, False),
        ("smithjohn_LATE_12345_67891_01_rnn_forward_numpy-1.ipynb", "12345", 67891, "01_rnn_forward_numpy.ipynb", 1, 1),
        ("smithjohn_12345_67890-2_01_rnn_forward_numpy.ipynb", "12345", 67890, "01_rnn_forward_numpy.ipynb", 2, False),
        ("obrienmary_7_8_sherlock_gru-3.pt", "7", 8, "sherlock_gru.pt", 3, False),
        ("anon_xk2p9_555_07_sherlock_assignment.ipynb", "anon_xk2p9", 555, "07_sherlock_assignment.ipynb", 0, False),
        ("LATE_anon_xk2p9_556_notes.txt", "anon_xk2p9", 556, "notes.txt", 0, True),
    ],
)
def test_canvas_download_names_are_parsed(name, user, attachment, file, revision, late):
    parsed = parse_canvas_name(name)
    assert (parsed.user_id, parsed.attachment, parsed.file, parsed.revision, int(parsed.late)) == (
        user,
        attachment,
        file,
        revision,
        late,
    )


@pytest.mark.parametrize("name", ["alice.ipynb", "01_rnn_forward_numpy.ipynb", "smith_john.ipynb", "x_12_notes"])
def test_other_names_are_not_canvas_names(name):
    assert parse_canvas_name(name) is None


# ----------------------------------------------------------------------------- rosters
CANVAS_EXPORT = (
    "\ufeffStudent,ID,SIS User ID,SIS Login ID,Section,Lab 1 (48213),Current Score\n"
    "    Points Possible,,,,,9,(read only)\n"
    '"Smith, John",12345,S001,jsmith,Section A,8,88\n'
    '"O\'Brien, Mary",777,S002,mobrien,Section B,,\n'
    '"=HYPERLINK(""http://x""), Eve",999,S003,eve,Section A,,\n'
)


def test_a_canvas_gradebook_export_is_a_roster():
    roster = parse_roster(CANVAS_EXPORT)
    assert [p.key for p in roster.people] == ["jsmith", "mobrien", "eve"]
    smith = roster.people[0]
    assert (smith.canvas_id, smith.sis_user_id, smith.section, smith.first_last) == (
        "12345",
        "S001",
        "Section A",
        ("John", "Smith"),
    )
    assert roster.find("smithjohn_12345_67890_01_rnn_forward_numpy.ipynb") is smith  # by the Canvas user id
    assert roster.find("jsmith") is smith and roster.find("S001") is smith and roster.find("jsmith.ipynb") is smith
    assert roster.find("nobody") is None and roster.find("smithjohn_5_6_x.ipynb") is None


def test_a_name_that_fits_two_students_is_nobodys():
    roster = parse_roster("Name,Email,submission\nA,a@x.edu,shared\nB,b@y.edu,shared;bee\n")
    assert roster.find("shared") is None and len(roster.ambiguous("shared")) == 2
    assert roster.find("bee").display_name == "B" and roster.find("a").display_name == "A"  # e-mail's local part


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "empty"),
        ("Student,Section\nSmith,A\n", "names no identifying column"),
        ("Student,SIS Login ID\nA,dup\nB,dup\n", "share the identifier 'dup'"),
    ],
)
def test_an_unusable_roster_says_what_to_change(text, words):
    with pytest.raises(RosterError, match=words):
        parse_roster(text)


# ----------------------------------------------------------------------------- collect
def _canvas_zip(path: Path) -> None:
    """A download as Canvas builds it, with resubmissions, lab 07's files and hostile entries."""
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("smithjohn_12345_100_01_rnn_forward_numpy.ipynb", "first upload")
        z.writestr("smithjohn_LATE_12345_180_01_rnn_forward_numpy-1.ipynb", "newer upload")
        z.writestr("smithjohn_12345_101_sherlock_gru.pt", "old gru")
        z.writestr("smithjohn_12345_190_sherlock_gru-1.pt", "new gru")
        z.writestr("smithjohn_12345_191_sherlock_rnn.pt", "rnn")
        z.writestr("obrienmary_777_200_..ipynb", "dots")
        z.writestr("ghost_4242_300_07_sherlock_assignment.ipynb", "not in the roster")
        z.writestr("../../escaped_1_2_x.ipynb", "path traversal")
        z.writestr("notes.txt", "not a Canvas name")
        link = zipfile.ZipInfo("smithjohn_12345_400_link.ipynb")
        link.external_attr = 0o120777 << 16
        z.writestr(link, "/etc/passwd")


def test_collect_arranges_a_canvas_download_one_folder_per_student(tmp_path):
    download, into = tmp_path / "submissions.zip", tmp_path / "work" / "subs"
    _canvas_zip(download)
    result = collect(download, into, parse_roster(CANVAS_EXPORT))
    files = sorted(p.relative_to(into).as_posix() for p in into.rglob("*") if p.is_file())
    assert files == [
        "canvas-4242/07_sherlock_assignment.ipynb",
        "jsmith/01_rnn_forward_numpy.ipynb",
        "jsmith/sherlock_gru.pt",
        "jsmith/sherlock_rnn.pt",
        "mobrien/ipynb",
    ]
    assert (into / "jsmith" / "01_rnn_forward_numpy.ipynb").read_text() == "newer upload"
    assert (into / "jsmith" / "sherlock_gru.pt").read_text() == "new gru"
    assert result.unmatched == ["canvas-4242"] and result.count("superseded") == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["submissions.zip", "work"], "nothing written outside"
    assert not (tmp_path / "escaped_1_2_x.ipynb").exists()
    write_manifest(tmp_path / "manifest.csv", result)
    rows = {r["file"]: r for r in read_csv(tmp_path / "manifest.csv")}
    escaped = rows["../../escaped_1_2_x.ipynb"]
    assert escaped["action"] == "skipped" and "folder" in escaped["reason"]
    assert "symbolic link" in rows["smithjohn_12345_400_link.ipynb"]["reason"]
    assert rows["smithjohn_LATE_12345_180_01_rnn_forward_numpy-1.ipynb"]["late"] == "yes"
    assert rows["smithjohn_12345_100_01_rnn_forward_numpy.ipynb"]["action"] == "superseded"
    assert rows["notes.txt"]["reason"].startswith("not a Canvas download name")


def test_collect_refuses_a_folder_in_use_and_skips_links_in_an_unpacked_download(tmp_path):
    download = tmp_path / "download"
    download.mkdir()
    (download / "smithjohn_12345_100_01_lab.ipynb").write_text("work")
    (download / "smithjohn_12345_101_sherlock_gru.pt").symlink_to("/etc/passwd")
    result = collect(download, tmp_path / "subs")
    assert [e.action for e in result.entries] == ["copied", "skipped"]
    assert (tmp_path / "subs" / "canvas-12345" / "01_lab.ipynb").read_text() == "work"
    with pytest.raises(ValueError, match="not an empty folder"):
        collect(download, tmp_path / "subs")


# ----------------------------------------------------------------------------- manual scores
def _fill(path: Path, scores: dict[str, str], comment: str = "") -> None:
    rows = read_csv(path)
    for row in rows:
        if row["student"] in scores:
            row["score"], row["comment"] = scores[row["student"]], comment
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_manual_sheets_list_the_answers_keep_the_scores_and_refuse_bad_ones(tmp_path, lab):
    out = tmp_path / "out"
    results = {(s, lab.name): result_of(lab, s, 2, 3, answer=a) for s, a in (("jsmith", "=1+1"), ("mobrien", "x"))}
    (path,) = write_sheets(out, results, [lab])
    rows = read_csv(path)
    assert [(r["student"], r["score"], r["answer"], r["out_of"]) for r in rows] == [
        ("jsmith", "", "'=1+1", "1"),
        ("mobrien", "", "x", "1"),
    ]
    _fill(path, {"jsmith": "0.5"}, "half right")
    results[("jsmith", lab.name)] = result_of(lab, "jsmith", 2, 3, answer="a new answer")
    del results[("mobrien", lab.name)]
    write_sheets(out, results, [lab])
    rows = {r["student"]: r for r in read_csv(path)}
    assert (rows["jsmith"]["score"], rows["jsmith"]["comment"]) == ("0.5", "half right")
    assert rows["jsmith"]["note"] == "answer changed after it was scored"
    assert "mobrien" in rows, "a row the instructor may have scored is never dropped"
    marks, bad = read_marks(out, [lab])
    assert marks[("jsmith", lab.name, "fix-written")].score == 0.5 and not bad
    for wrong, words in (("two", "is not a number"), ("1.5", "outside 0 to 1")):
        _fill(path, {"jsmith": wrong})
        with pytest.raises(ManualSheetError, match=f"line 2: the score .* {words}"):
            read_sheet(path, lab)
        marks, bad = read_marks(out, [lab])
        assert not marks and words in bad[lab.name], "a wrong sheet is not used at all"


# ----------------------------------------------------------------------------- exports
def _canvas_import(table: list[list[str]]) -> dict[str, dict[str, str]]:
    """What Canvas's GradebookImporter reads from an upload: it checks the header the same way."""
    header = table[0]
    assert len(header) > 3 and "Student" in header[0] and "ID" in header[1]
    assert header[2:5] == ["SIS User ID", "SIS Login ID", "Section"]
    assert "Points Possible" in table[1][0]
    return {row[1]: dict(zip(header[5:], row[5:])) for row in table[2:]}


def test_exports_for_canvas_and_gradescope_carry_auto_and_hand_scores(tmp_path, lab):
    results = [result_of(lab, "jsmith", 2, 3), result_of(lab, "smithjohn_999_5_90_fixture.ipynb", 2, 0)]
    out = graded_out(tmp_path, lab, results)
    write_sheets(out, {(r.student, lab.name): r for r in results}, [lab])
    _fill(sheet_path(out, lab.name), {"jsmith": "1"})
    roster = parse_roster(CANVAS_EXPORT)
    scores = collect_scores(out, roster, [lab])
    assert scores.by_row == {3: {lab.name: 6.0}, 5: {lab.name: 2.0}} and scores.to_grade == 1
    canvas = _canvas_import(canvas_table(roster, scores, [lab], {lab.name: "Fixture (48999)"}))
    assert canvas == {"12345": {"Fixture (48999)": "6"}, "999": {"Fixture (48999)": "2"}}, "no row, no change"
    table = gradescope_table(roster, scores, [lab], {})
    assert table[0] == ["First Name", "Last Name", "SID", "Email", "Sections"] + [
        "90_fixture",
        "90_fixture - Max Points",
        "90_fixture - Submission Time",
        "90_fixture - Lateness (H:M:S)",
    ]
    assert table[1] == ["John", "Smith", "S001", "", "Section A", "6", "6", "", "00:00:00"]
    assert table[2] == ["Mary", "O'Brien", "S002", "", "Section B", "", "6", "", "00:00:00"], "not submitted"


def test_export_writes_formula_safe_files_and_names_who_is_missing(tmp_path, lab, capsys):
    out = graded_out(tmp_path, lab, [result_of(lab, "eve", 2, 3), result_of(lab, "stranger", 0, 0)])
    (tmp_path / "roster.csv").write_text(CANVAS_EXPORT, encoding="utf-8")
    solutions = lab.path.parent
    code = export(out, roster=tmp_path / "roster.csv", canvas=tmp_path / "c.csv", solutions=solutions)
    assert code == 1 and "not in the roster: stranger" in capsys.readouterr().err
    with open(tmp_path / "c.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert len(rows) == 3 and rows[2][0].startswith("'=HYPERLINK") and rows[2][5] == "5"
    assert export(out, roster=tmp_path / "roster.csv", canvas=tmp_path / "c.csv", labs=["07"], solutions=solutions) == 2
    assert "--lab '07'" in capsys.readouterr().err
    _fill_bad = sheet_path(out, lab.name)
    write_sheets(out, {("eve", lab.name): result_of(lab, "eve", 2, 3)}, [lab])
    _fill(_fill_bad, {"eve": "lots"})
    code = export(out, roster=tmp_path / "roster.csv", gradescope=tmp_path / "g.csv", solutions=solutions)
    assert code == 2 and "is not a number" in capsys.readouterr().err and not (tmp_path / "g.csv").exists()


# ----------------------------------------------------------------------------- shards
def test_shards_deal_every_lab_out_evenly_and_cover_all(lab):
    other = type(lab)(name="91_other", path=lab.path)
    notebooks = [Notebook(f"s{i:02d}", Path("x"), lab=lab if i % 3 else other) for i in range(23)]
    shares = [select(notebooks, (i, 4)) for i in range(1, 5)]
    assert sorted(nb.student for share in shares for nb in share) == sorted(nb.student for nb in notebooks)
    for name in (lab.name, other.name):
        counts = [sum(nb.lab.name == name for nb in share) for share in shares]
        assert max(counts) - min(counts) <= 1, counts
    assert select(list(reversed(notebooks)), (2, 4)) == shares[1], "the order of discovery does not matter"


@pytest.mark.parametrize("text", ["0/4", "5/4", "2", "a/b", "1/0"])
def test_a_wrong_shard_is_refused(text):
    with pytest.raises(ShardError, match="--shard"):
        parse_shard(text)
    assert parse_shard("4/4") == (4, 4)


# ----------------------------------------------------------------------------- Gradescope
def test_results_json_has_one_test_per_automatic_item(tmp_path, lab):
    out = graded_out(tmp_path, lab, [result_of(lab, STUDENT, 2, 0)])
    results = results_json(out, lab, {"visibility": "after_due_date"}, [])
    assert results["score"] == 2 and results["output_format"] == "md"
    assert [(t["score"], t["max_score"], t["visibility"]) for t in results["tests"]] == [
        (2.0, 2.0, "after_due_date"),
        (0.0, 3.0, "after_due_date"),
    ]
    assert results["tests"][1]["output"] == "scale(x) returns 3 x" and results["extra_data"]["run_seed"] == 1
    empty = results_json(tmp_path / "nothing", lab, {}, ["x.ipynb is not a notebook"])
    assert empty["score"] == 0 and "x.ipynb is not a notebook" in empty["output"] and not empty["extra_data"]["graded"]
    json.dumps(results)


def test_the_bundle_holds_what_gradescope_runs(tmp_path):
    path = build_bundle("01", tmp_path / "lab01.zip")
    with zipfile.ZipFile(path) as z:
        names = set(z.namelist())
        modes = {info.filename: info.external_attr >> 16 for info in z.infolist()}
        config = json.loads(z.read("autograder.json"))
        run = z.read("run_autograder").decode()
    assert {"setup.sh", "run_autograder", "pyproject.toml", "labutils/grading/gradescope.py"} <= names
    package = ROOT / "labutils"
    on_disk = {p.relative_to(ROOT).as_posix() for p in package.rglob("*.py") if "__pycache__" not in p.parts}
    assert on_disk <= names and "labutils/checks/judges/__init__.py" in names, "the grader judges in the container"
    assert [n for n in names if n.startswith("solutions/")] == ["solutions/01_rnn_forward_numpy.ipynb"]
    assert not any("__pycache__" in n for n in names)
    assert modes["run_autograder"] & 0o111 and modes["setup.sh"] & 0o111
    assert config == {"lab": "01_rnn_forward_numpy", "timeout": 600, "memory_mb": 4096, "visibility": "visible"}
    assert "python -m labutils.grading.gradescope" in run.replace('"$PYTHON" ', "python ")
    with pytest.raises(ValueError, match="no single graded lab"):
        build_bundle("99", tmp_path / "x.zip")
    assert os.path.getsize(path) < 2_000_000 and io.BytesIO(path.read_bytes()).read(2) == b"PK"


def test_the_benchmarks_lab07_hand_in_has_the_solutions_sizes(monkeypatch):
    """bench grading's two models are the ones the lab 07 solution trains in the full budget."""
    import types

    import labutils as lu
    from labutils.bench.grading import LAB07_MODELS
    from labutils.bench.trainer import LAB07

    monkeypatch.setenv("LABUTILS_BUDGET", "full")
    path = SOLUTIONS / "07_sherlock_assignment.ipynb"
    cell = next(c for c in nbformat.read(path, 4).cells if "gru_hparams = dict(" in c.source)
    namespace = {"lu": types.SimpleNamespace(budget=lu.budget), "train_ids": range(1000)}
    exec(cell.source, namespace)
    for name in ("rnn", "gru"):
        hp = namespace[f"{name}_hparams"]
        sizes = {k: LAB07_MODELS[name][k] for k in ("embed_dim", "hidden_size", "num_layers")}
        assert sizes == {k: hp[k] for k in sizes}, f"update labutils/bench/grading.py's LAB07_MODELS[{name!r}]"
    assert LAB07_MODELS["gru"] == LAB07


def test_with_one_lab_graded_a_lone_notebook_of_any_name_is_that_labs(tmp_path, lab):
    """Gradescope's uploads keep the student's file name; a notebook stripped of its metadata still counts."""
    from labutils.grading.labs import load_labs
    from labutils.grading.submissions import discover

    nb = fixture_solution()
    for cell in nb.cells:
        cell.metadata.pop("nbgrader", None)
    (tmp_path / "subs" / "submission").mkdir(parents=True)
    nbformat.write(nb, tmp_path / "subs" / "submission" / "my work.ipynb")
    (student,) = discover(tmp_path / "subs", load_labs(lab.path.parent))
    assert [n.lab.name for n in student.notebooks] == [lab.name]
    assert "the only lab graded here" in student.notebooks[0].notes[0]
    nbformat.write(nb, tmp_path / "subs" / "submission" / "scratch.ipynb")
    (student,) = discover(tmp_path / "subs", load_labs(lab.path.parent))
    assert not student.notebooks and len(student.problems) == 2, "two candidates: neither is guessed"


def test_merge_keeps_the_record_of_the_files_as_they_are_now(tmp_path, lab):
    """Of two records of one submission, the one of its current files wins, then one whose grading did not fail."""
    from labutils.grading.shards import best_records

    def record(shard: str, sha256: str, at: str, failed: bool = False) -> None:
        rec = to_record(result_of(lab, "alice", 2, 3), source="x", sha256=sha256, budget="ci", run_seed=1, seeds={})
        write_record(tmp_path / shard, rec | {"graded_at": at, "grading_failed": failed})

    record("a", "current", "2020-01-01T00:00:00")
    record("b", "older-files", "2030-01-01T00:00:00")
    wanted = {("alice", lab.name): Notebook("alice", Path("x"), lab=lab, sha256="current")}
    assert best_records([tmp_path / "a", tmp_path / "b"], wanted)[("alice", lab.name)]["sha256"] == "current"
    assert best_records([tmp_path / "b", tmp_path / "a"], wanted)[("alice", lab.name)]["sha256"] == "current"
    record("c", "current", "2030-01-01T00:00:00", failed=True)
    best = best_records([tmp_path / "a", tmp_path / "c"], wanted)[("alice", lab.name)]
    assert not best["grading_failed"], "a failed grading never replaces a good one"
