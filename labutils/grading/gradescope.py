"""A Gradescope autograder for one lab: ``python -m labutils gradescope LAB OUT.zip``.

Gradescope grades each submission in its own container: it unpacks the autograder's zip into
``/autograder/source/``, runs ``setup.sh`` once when it builds the image, then, for every
submission, puts the student's files in ``/autograder/submission/``, runs
``/autograder/run_autograder`` (a copy of ours) and reads ``/autograder/results/results.json``
(https://gradescope-autograders.readthedocs.io/en/latest/specs/).  The zip holds:

* ``setup.sh``: installs bubblewrap and Python, a virtual environment ``/autograder/venv`` with
  CPU PyTorch and ``labutils`` (from the zip), and the course texts in ``/autograder/data``;
* ``run_autograder``: ``python -m labutils.grading.gradescope /autograder``, i.e. ``main`` here;
* ``autograder.json``: the lab, the time and memory limits, the tests' visibility;
* ``pyproject.toml``, ``README.md``, ``labutils/``: the package, judges included (the grader
  needs them; the sandbox hides them from the submission, as everywhere);
* ``solutions/NN_name.ipynb``: the lab's solution notebook, whose graded cells give the items
  and their points (outside the sandbox too).

``main`` grades the submission exactly as ``python -m labutils grade`` does -- the same
sandbox, the same probes and judges, a fresh secret seed -- as one student named
``submission``, then writes ``results.json``: one test per automatic item (name, score,
max_score, the judge's message as output, visibility), the total as ``score``, the student's
feedback (Markdown) as ``output``, and the seeds in ``extra_data``.  Written answers are not
tests: grade them as manual questions on Gradescope.  ``AUTOGRADER_ROOT`` (or the argument)
moves ``/autograder`` elsewhere, which is how the tests simulate Gradescope.  Where bubblewrap
cannot create a sandbox in Gradescope's container, grading refuses (every test scores 0, the
output says so, and the log shown to instructors says why): it never runs a submission
unconfined next to the solutions.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from .safefiles import Unreadable, name_problem, read_regular, shown, valid_name, walk
from .submissions import JUNK, MAX_HANDIN_MB, MAX_NOTEBOOK_MB

STUDENT = "submission"
VISIBILITIES = ("visible", "after_due_date", "after_published", "hidden")
EXECUTABLE = 0o100755 << 16  # a zip member's Unix mode: a regular file, rwxr-xr-x

SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once, when it builds the autograder's image (Ubuntu).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends bubblewrap python3 python3-venv python3-pip
python3 -m venv /autograder/venv
/autograder/venv/bin/pip install --upgrade pip
/autograder/venv/bin/pip install --index-url https://download.pytorch.org/whl/cpu torch
/autograder/venv/bin/pip install /autograder/source
LABUTILS_DATA_DIR=/autograder/data /autograder/venv/bin/python -m labutils download
# Whether bubblewrap can sandbox a kernel in this container, said in the image's build log:
/autograder/venv/bin/python -c "from labutils.grading.sandbox import find_bwrap; print('sandbox:', find_bwrap())" \\
  || echo "WARNING: no sandbox in this container: every submission will be refused (see docs/GRADING.md)"
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this for every submission, in /autograder.  AUTOGRADER_ROOT and
# LABUTILS_AUTOGRADER_PYTHON move it elsewhere (the course's tests simulate Gradescope so).
set -u
ROOT="${AUTOGRADER_ROOT:-/autograder}"
PYTHON="${LABUTILS_AUTOGRADER_PYTHON:-$ROOT/venv/bin/python}"
export LABUTILS_DATA_DIR="${LABUTILS_DATA_DIR:-$ROOT/data}"
cd "$ROOT"
exec "$PYTHON" -m labutils.grading.gradescope "$ROOT"
"""


# ------------------------------------------------------------------------------ the bundle
def pick_lab(ref: str, labs: dict):
    """The lab named ``ref``: its file stem, its number ("01") or a path to its notebook."""
    ref = Path(str(ref)).stem
    found = [lab for lab in labs.values() if ref in (lab.name, lab.number)]
    if len(found) != 1:
        raise ValueError(f"no single graded lab {ref!r}; the solutions have: {', '.join(labs) or 'none'}")
    return found[0]


def _add(archive: zipfile.ZipFile, name: str, data: bytes, *, executable: bool = False) -> None:
    info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))  # fixed: the same inputs, the same zip
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = EXECUTABLE if executable else 0o100644 << 16
    archive.writestr(info, data)


def _package_files(package: Path):
    """The package's files, as ``(path, name in the zip)``: no caches or compiled files."""
    for path in sorted(package.rglob("*")):
        rel = path.relative_to(package.parent)
        if path.is_file() and "__pycache__" not in rel.parts and path.suffix not in (".pyc", ".pyo"):
            yield path, rel.as_posix()


def build_bundle(lab_ref: str, out_zip, *, solutions=None, timeout=600, memory_mb=4096, visibility="visible"):
    """Write the autograder zip of one lab; returns its path."""
    import labutils

    from ..notebooks import SOLUTIONS
    from .labs import load_labs

    if visibility not in VISIBILITIES:
        raise ValueError(f"visibility {visibility!r}: choose one of {', '.join(VISIBILITIES)}")
    lab = pick_lab(lab_ref, load_labs(Path(solutions) if solutions else SOLUTIONS))
    package = Path(labutils.__file__).resolve().parent
    project = package.parent
    if not (project / "pyproject.toml").is_file():
        raise ValueError(f"no pyproject.toml next to {package}: build the bundle from the course's folder")
    config = {"lab": lab.name, "timeout": timeout, "memory_mb": memory_mb, "visibility": visibility}
    out_zip = Path(out_zip)
    out_zip.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".zip", dir=out_zip.parent)
    os.close(fd)
    with zipfile.ZipFile(tmp, "w") as archive:
        _add(archive, "setup.sh", SETUP_SH.encode(), executable=True)
        _add(archive, "run_autograder", RUN_AUTOGRADER.encode(), executable=True)
        _add(archive, "autograder.json", json.dumps(config, indent=1).encode())
        for name in ("pyproject.toml", "README.md"):
            if (project / name).is_file():
                _add(archive, name, (project / name).read_bytes())
        for path, name in _package_files(package):
            _add(archive, name, path.read_bytes())
        _add(archive, f"solutions/{lab.path.name}", lab.path.read_bytes())
    os.replace(tmp, out_zip)
    return out_zip


# ------------------------------------------------------------------------------ in the container
def copy_submission(source: Path, target: Path) -> list[str]:
    """Copy the student's regular files (folders kept, links and odd names skipped); returns what was skipped."""
    skipped = []
    target.mkdir(parents=True)
    try:
        entries = walk(source)
    except (OSError, Unreadable) as exc:
        return [f"the submission was not read: {exc}"]
    for entry in entries:
        rel = entry.path.relative_to(source)
        if any(part in JUNK for part in rel.parts) or entry.kind == "folder":
            continue
        odd = next((part for part in rel.parts if not valid_name(part)), None)
        if entry.kind != "file" or odd is not None:
            skipped.append(f"{shown(str(rel))}: {entry.kind if odd is None else 'its name ' + name_problem(odd)}")
            continue
        limit = (MAX_NOTEBOOK_MB if entry.name.endswith(".ipynb") else MAX_HANDIN_MB) * 2**20
        try:
            data = read_regular(entry.path, limit)
        except Unreadable as exc:
            skipped.append(str(exc))
            continue
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        (target / rel).write_bytes(data)
    return skipped


def _tests(lab, record: dict | None, why: str, visibility: str) -> list[dict]:
    saved = {entry.get("grade_id"): entry for entry in (record or {}).get("items", [])}
    tests = []
    for number, item in enumerate(lab.auto_items, start=1):
        entry = saved.get(item.grade_id, {})
        score = float(entry.get("points") or 0) if record and not record.get("grading_failed") else 0.0
        output = str(entry.get("message") or why or "not graded")
        status = entry.get("status", "not run")
        tests.append(
            {"name": f"{item.title} ({item.grade_id}): {status}", "number": str(number), "score": score,
             "max_score": float(item.points), "output": output, "visibility": visibility}
        )  # fmt: skip
    return tests


def results_json(out: Path, lab, config: dict, problems: list[str]) -> dict:
    """Gradescope's results.json for the one student graded in ``out``."""
    from .results import read_record

    record = read_record(out, STUDENT, lab.name)
    feedback_path = out / "feedback" / f"{STUDENT}.md"
    feedback = feedback_path.read_text(encoding="utf-8") if feedback_path.is_file() else ""
    failed = record is None or bool(record.get("grading_failed"))
    why = "; ".join(problems) or "no notebook of this lab was found in the submission"
    if record is not None and record.get("grading_failed"):
        why = "; ".join(record.get("reasons", [])) or "grading failed"
    if failed and (record is not None or not feedback):
        feedback = (
            f"**This submission could not be graded**: {why}.\n\n"
            "If that is not about your files, the autograder itself failed: your instructor can see why and regrade."
        )
    tests = _tests(lab, record, why if failed else "", config.get("visibility", "visible"))
    extra = {"lab": lab.name, "graded": not failed}
    if record is not None:
        extra |= {k: record.get(k) for k in ("run_seed", "sha256", "budget", "stop", "grading_failed")}
        extra["seeds"] = {i.get("grade_id"): i.get("seed") for i in record.get("items", []) if "seed" in i}
    return {
        "score": sum(t["score"] for t in tests),
        "output": feedback,
        "output_format": "md",
        "stdout_visibility": "hidden",
        "tests": tests,
        "extra_data": extra,
    }


def grade_submission(root: Path) -> dict:
    """Grade ``root/submission`` with the lab of ``root/source``; returns results.json's content."""
    from .grader import grade_folder
    from .labs import load_labs

    source = root / "source"
    config = json.loads((source / "autograder.json").read_text(encoding="utf-8"))
    lab = load_labs(source / "solutions")[config["lab"]]
    with tempfile.TemporaryDirectory(prefix="labutils-gradescope-") as tmp:
        subs, out = Path(tmp) / "submissions", Path(tmp) / "out"
        problems = copy_submission(root / "submission", subs / STUDENT)
        code = grade_folder(
            subs, out=out, solutions=source / "solutions", jobs=1, progress=False,
            timeout=float(config.get("timeout", 600)), memory_mb=int(config.get("memory_mb", 4096)),
        )  # fmt: skip
        if code == 2:
            problems.append("the autograder refused to run (see its log): no sandbox in this container?")
        return results_json(out, lab, config, problems)


def main(argv=None) -> int:
    """``python -m labutils.grading.gradescope [ROOT]``: what ``run_autograder`` runs."""
    sys.path[:] = [p for p in sys.path if p not in ("", os.getcwd())]  # nothing from the working folder
    argv = sys.argv[1:] if argv is None else argv
    root = Path(argv[0] if argv else os.environ.get("AUTOGRADER_ROOT", "/autograder"))
    start = time.monotonic()
    results = grade_submission(root)
    results["execution_time"] = round(time.monotonic() - start)
    folder = root / "results"
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / ".results.json.tmp"
    tmp.write_text(json.dumps(results, indent=1), encoding="utf-8")
    os.replace(tmp, folder / "results.json")
    print(f"score {results['score']:g}; extra_data {json.dumps(results['extra_data'])}")  # shown to instructors
    return 0


if __name__ == "__main__":
    sys.exit(main())
