"""The grading run: find the submissions, grade each one (one path), write results as they come.

``grade_notebook`` is the one path for one submission: draw each item's inputs from its seed,
in the lab's budget, run the job in its sandbox (``jobs``), judge the outputs (``judging``) and
return the record (``results``).  ``grade_folder`` runs it for every submission, several at a
time, writes each record the moment it is ready, then (re)writes ``grades.csv`` and the
feedback from the records.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from .jobs import Settings, remove_scratch, run_job
from .judging import JobResult, RunStop, judge_run
from .labs import Lab, load_labs
from .results import from_record, item_seed, read_record, to_record, write_record
from .safefiles import shown
from .sandbox import SandboxUnavailable, find_bwrap, sandbox_for
from .submissions import Notebook, Student, discover

#: The budget kernels run in: every lab's notebook, executed by the grader, at CI sizes.
KERNEL_BUDGET = "ci"
#: The budget of labs judged from handed-in files: the student trained at full size.
FILES_BUDGET = "full"


@dataclass
class Options:
    """What ``python -m labutils grade`` was asked (see ``build_parser`` in ``labutils.__main__``)."""

    timeout: float = 600
    memory_mb: int = 4096
    jobs: int = 2
    solutions: Path | None = None
    seed: int | None = None
    progress: bool = True
    unsafe_no_sandbox: bool = False
    resume: bool = False
    student: str | None = None
    shard: tuple[int, int] | None = None  # (I, N): grade the I-th of N shares (``shards.select``)


def lab_budget(lab: Lab) -> str:
    """The budget a lab's thresholds are drawn in: that of the run they judge."""
    return FILES_BUDGET if lab.from_files else KERNEL_BUDGET


def kernel_env(jobs: int) -> dict[str, str]:
    """Environment of every job: the kernels' budget, one share of the cores, no plots shown."""
    threads = str(max(1, (os.cpu_count() or 1) // max(1, jobs)))
    return {
        "LABUTILS_BUDGET": KERNEL_BUDGET,
        "MPLBACKEND": "Agg",
        "OMP_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
        "OPENBLAS_NUM_THREADS": threads,
        "TQDM_DISABLE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    }


def grade_notebook(notebook: Notebook, settings: Settings, run_seed: int) -> dict:
    """Grade one submitted notebook; return its record (nothing is written here)."""
    from labutils.checks import get_check

    start, lab = time.monotonic(), notebook.lab
    budget = lab_budget(lab)
    seeds = {item.grade_id: item_seed(run_seed, notebook.student, lab.name, item.grade_id) for item in lab.auto_items}
    inputs = {gid: get_check(gid).inputs(seed, budget=budget) for gid, seed in seeds.items()}
    raw = run_job(notebook, inputs, settings)
    result = judge_run(notebook, inputs, raw, timeout=settings.timeout, memory_mb=settings.memory_mb)
    result.seconds = time.monotonic() - start
    source = shown(str(notebook.path))
    return to_record(result, source=source, sha256=notebook.sha256, budget=budget, run_seed=run_seed, seeds=seeds)


def _failed_record(notebook: Notebook, exc: BaseException, run_seed: int) -> dict:
    """The record of a submission the grader itself could not grade (a bug, a full disk...)."""
    result = JobResult(notebook.student, notebook.lab, stop=RunStop.FAILED)
    result.reasons.append(f"grading failed: {type(exc).__name__}: {str(exc)[:300]}")
    return to_record(result, source=shown(str(notebook.path)), sha256="", budget="", run_seed=run_seed, seeds={})


def make_settings(options: Options, labs: dict[str, Lab], scratch_root: Path) -> Settings:
    """The jobs' settings; raises ``SandboxUnavailable`` when there is no sandbox and unsafe was not asked."""
    env = kernel_env(options.jobs)
    if options.unsafe_no_sandbox:
        import labutils

        root = str(Path(labutils.__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
        return Settings(options.timeout, options.memory_mb, None, env, scratch_root)
    modules = sorted({item.module for lab in labs.values() for item in lab.auto_items})
    sandbox = sandbox_for(find_bwrap(), modules, env)
    return Settings(options.timeout, options.memory_mb, sandbox, env, scratch_root)


def _prefetch_texts(labs: dict[str, Lab]) -> None:
    """Put every course text in the data cache now, for the course's labs: kernels see it read-only."""
    if not any(item.module.startswith("labutils.") for lab in labs.values() for item in lab.auto_items):
        return
    with contextlib.suppress(Exception):
        from labutils.data import download_all

        download_all(progress=False)


def to_grade(students: list[Student], out: Path, options: Options) -> list[Notebook]:
    """The notebooks this run grades: all, one student's (``--student``), one shard's (``--shard``),
    or of those what changed (``--resume``)."""
    from .shards import select

    notebooks = [nb for s in students for nb in s.notebooks if options.student in (None, s.name)]
    if options.shard is not None:
        notebooks = select(notebooks, options.shard)
    if options.resume:
        notebooks = [nb for nb in notebooks if not _done(out, nb)]
    return notebooks


def _done(out: Path, notebook: Notebook) -> bool:
    record = read_record(out, notebook.student, notebook.lab.name)
    return bool(record) and record.get("sha256") == notebook.sha256 and not record.get("grading_failed")


def grade_all(notebooks: list[Notebook], settings: Settings, out: Path, run_seed: int, options: Options) -> int:
    """Grade ``notebooks`` ``options.jobs`` at a time, writing each record when ready; returns failures."""
    from tqdm.auto import tqdm

    failed = 0
    bar = tqdm(total=len(notebooks), desc="grading", unit="notebook", disable=not options.progress)
    with ThreadPoolExecutor(max_workers=max(1, options.jobs)) as pool:
        futures = {pool.submit(grade_notebook, nb, settings, run_seed): nb for nb in notebooks}
        for future in as_completed(futures):
            nb = futures[future]
            try:
                record = future.result()
            except Exception as exc:  # noqa: BLE001 -- one submission's failure never stops the run
                record = _failed_record(nb, exc, run_seed)
            try:
                write_record(out, record)
            except (OSError, ValueError) as exc:  # a full disk: say so, go on with the others
                print(f"could not write the result of {nb.student}: {exc}", file=sys.stderr)
                record["grading_failed"] = True
            failed += bool(record["grading_failed"])
            bar.set_postfix_str(nb.student[:20], refresh=False)
            bar.update()
    bar.close()
    return failed


def collect_results(out: Path, students: list[Student], labs: list[Lab]) -> dict[tuple[str, str], JobResult]:
    """Every record in ``out`` for the students and labs of this folder, as ``JobResult`` s."""
    results = {}
    for student in students:
        for notebook in student.notebooks:
            record = read_record(out, notebook.student, notebook.lab.name)
            if record is not None and notebook.lab in labs:
                results[(student.name, notebook.lab.name)] = from_record(record, notebook.lab)
    return results


def finish(out: Path, students: list[Student], labs: list[Lab]) -> Path:
    """Rebuild ``grades.csv``, the feedback and the manual-score sheets from the records in ``out``,
    with the scores the instructor gave by hand; returns the path of ``grades.csv``."""
    from .manual import apply_marks, read_marks, write_sheets
    from .report import write_outputs

    results = collect_results(out, students, labs)
    marks, bad = read_marks(out, labs)
    for lab_name, why in bad.items():
        print(f"warning: the manual scores of {lab_name} were not used and its sheet was left as it is: {why}",
              file=sys.stderr)  # fmt: skip
    apply_marks(results, marks)
    csv_path = write_outputs(out, students, results, labs)
    write_sheets(out, results, labs, skip=bad)
    return csv_path


def labs_in_play(students: list[Student], labs: dict[str, Lab]) -> list[Lab]:
    """The labs the submissions hold (every lab when they hold none), in the solutions' order."""
    names = {nb.lab.name for s in students for nb in s.notebooks}
    return [lab for name, lab in labs.items() if name in names] or list(labs.values())


def log_run(out: Path, run_seed: int, options: Options, count: int) -> None:
    """Append this run's seed and options to ``out/runs.jsonl``, the instructor's log."""
    entry = {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "run_seed": run_seed, "notebooks": count}
    entry |= {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(options).items() if k != "progress"}
    if options.shard is not None:
        entry["shard"] = f"{options.shard[0]}/{options.shard[1]}"
    with open(Path(out) / "runs.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")


def grade_folder(submissions, *, out, **kwargs) -> int:
    """Grade every submission in ``submissions``; write ``out/results/``, ``out/grades.csv``, ``out/feedback/``.

    Keyword arguments are the fields of ``Options``.  Returns 0 when every submission was
    graded (whatever the scores), 1 when grading itself failed for some, 2 on a usage error
    (or when no sandbox is available and ``unsafe_no_sandbox`` was not given).
    """
    from ..notebooks import SOLUTIONS

    options = Options(**kwargs)
    submissions, out = Path(submissions), Path(out)
    if not submissions.is_dir():
        return _usage(f"{submissions} is not a folder of submissions")
    problem = folders_problem(submissions, out) or options_problem(options)
    if problem:
        return _usage(problem)
    labs = load_labs(Path(options.solutions) if options.solutions else SOLUTIONS)
    if not labs:
        return _usage(f"no solution notebook with graded cells in {options.solutions or SOLUTIONS}")
    start = time.monotonic()
    out.mkdir(parents=True, exist_ok=True)
    students = discover(submissions, labs, exclude=out)
    if options.student is not None and options.student not in {s.name for s in students}:
        return _usage(f"no student {options.student!r} in {submissions}")
    run_seed = options.seed if options.seed is not None else secrets.randbits(63)
    notebooks = to_grade(students, out, options)
    _prefetch_texts(labs)  # before the sandbox is drawn up: it shows the data cache if it exists
    scratch = Path(tempfile.mkdtemp(prefix="labutils-grade-"))
    try:  # every job's scratch folder lies in there, and is deleted with ``remove_scratch``
        try:
            settings = make_settings(options, labs, scratch)
        except SandboxUnavailable as exc:
            return _usage(f"refusing to grade without a sandbox: {exc}")
        log_run(out, run_seed, options, len(notebooks))
        failed = grade_all(notebooks, settings, out, run_seed, options)
    finally:
        remove_scratch(scratch)
    if options.shard is not None:  # a shard's outputs show its own students; ``merge`` shows all
        from .shards import select

        mine = {nb.student for nb in select([nb for s in students for nb in s.notebooks], options.shard)}
        students = [s for s in students if s.name in mine]
    csv_path = finish(out, students, labs_in_play(students, labs))
    print(
        f"graded {len(notebooks)} notebook(s) of {len(students)} student(s) in {time.monotonic() - start:.0f} s "
        f"(run seed {run_seed}; {failed} not graded because grading failed); wrote {csv_path} and {out / 'feedback'}/"
    )
    return 1 if failed else 0


#: What a run writes in its output folder, replacing what was there (see ``report``, ``manual``, ``results``).
OUTPUTS = ("grades.csv", "feedback", "manual", "results", "runs.jsonl")


def folders_problem(submissions: Path, out: Path) -> str:
    """Why ``out`` cannot take the outputs of grading ``submissions`` ("" when it can).

    The output folder must be a folder (or not exist yet), and the submissions must not lie in
    what a run replaces there (``OUT/feedback/`` is rebuilt at every run: submissions in it would
    be deleted).  An output folder inside the submissions is fine: it is left out of them.
    """
    if os.path.lexists(out) and not out.is_dir():
        return f"--out {out} is a file, not a folder: name a folder for the grades (it is made if missing)"
    subs, where = submissions.resolve(), out.resolve()
    if subs == where:
        return "the output folder must not be the folder of submissions: name another folder with --out"
    for name in OUTPUTS:
        if subs == where / name or (where / name) in subs.parents:
            return (
                f"the submissions lie in {out / name}, which grading replaces with its own {name}: "
                f"they would be lost; name another output folder with --out"
            )
    return ""


def options_problem(options: Options) -> str:
    """Why the run's limits make no sense ("" when they do)."""
    if not options.timeout > 0:
        return f"--timeout must be a positive number of seconds, not {options.timeout:g}"
    if options.memory_mb < 0:
        return f"--memory must be a number of megabytes (0: no limit), not {options.memory_mb}"
    if options.jobs < 1:
        return f"--jobs must be 1 or more, not {options.jobs}"
    return ""


def _usage(message: str) -> int:
    print(message, file=sys.stderr)
    return 2
