"""Grade submitted notebooks: ``python -m labutils grade SUBMISSIONS --out DIR``.

The safety model in one paragraph: each submitted notebook runs in its own worker process and
kernel, in a scratch folder, under a wall-clock deadline and a memory limit, with its outputs
discarded.  The kernel only *computes*: for each automatic item the grader draws fresh inputs
(secret seed) and adds a cell that calls the item's ``Check.probe`` on the student's objects and
saves the raw results as ``.npz``.  The *verdict* is reached here, in the grader's process, by
``Check.judge`` on those arrays (loaded without pickle, size-checked) and the inputs the grader
kept.  So nothing the notebook does to its own kernel -- redefining checks, patching NumPy,
editing test cells, printing "all tests passed", exiting -- can make a wrong function pass.
The CSV and feedback are written at the end, when every kernel is dead.  See docs/GRADING.md.

Modules: ``labs`` (graded items from the solutions), ``submissions`` (finding and preparing
notebooks), ``worker`` and ``kernel`` (the limited run), ``probe`` (the one piece that runs in the
kernel), ``runner`` (judging), ``report`` (CSV and feedback).  This file imports nothing heavy:
the kernel imports ``labutils.grading.probe`` through it.
"""

from __future__ import annotations

from pathlib import Path


def grade_folder(
    submissions,
    *,
    out,
    timeout: float = 600,
    memory_mb: int = 4096,
    jobs: int = 2,
    solutions=None,
    seed: int | None = None,
    progress: bool = True,
) -> int:
    """Grade every submission in ``submissions``; write ``out/grades.csv`` and ``out/feedback/``.

    ``timeout`` (seconds) and ``memory_mb`` limit each notebook; ``jobs`` notebooks run at once.
    ``solutions`` is the folder of solution notebooks (default: the course's ``solutions/``);
    ``seed`` makes the drawn inputs reproducible (default: a secret seed per notebook and item).
    Returns 0 when grading ran (whatever the scores), 2 on a usage error.
    """
    import sys
    import tempfile
    import time
    from concurrent.futures import ThreadPoolExecutor, as_completed

    from tqdm.auto import tqdm

    from ..notebooks import SOLUTIONS
    from .labs import load_labs
    from .report import write_outputs
    from .runner import draw_inputs, judge_run, kernel_env, run_notebook
    from .submissions import discover

    submissions, out = Path(submissions), Path(out)
    if not submissions.is_dir():
        print(f"{submissions} is not a folder of submissions", file=sys.stderr)
        return 2
    labs = load_labs(Path(solutions) if solutions else SOLUTIONS)
    if not labs:
        print(f"no solution notebook with graded cells in {solutions or SOLUTIONS}", file=sys.stderr)
        return 2
    start = time.monotonic()
    students = discover(submissions, labs, exclude=out)
    notebooks = [nb for student in students for nb in student.notebooks]
    in_play = sorted({nb.lab.name for nb in notebooks}) or sorted(labs)
    env = kernel_env(jobs)
    results = {}
    with tempfile.TemporaryDirectory(prefix="labutils-grade-") as scratch:
        inputs = {id(nb): draw_inputs(nb.lab, seed, nb.student) for nb in notebooks}
        bar = tqdm(total=len(notebooks), desc="grading", unit="notebook", disable=not progress)
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            futures = {
                pool.submit(
                    run_notebook,
                    nb,
                    inputs[id(nb)],
                    timeout=timeout,
                    memory_mb=memory_mb,
                    env=env,
                    scratch_root=Path(scratch),
                ): nb
                for nb in notebooks
            }
            for future in as_completed(futures):
                nb = futures[future]
                result = judge_run(nb, inputs[id(nb)], future.result(), timeout=timeout, memory_mb=memory_mb)
                results[(nb.student, nb.lab.name)] = result
                bar.set_postfix_str(nb.student[:20], refresh=False)
                bar.update()
        bar.close()
    csv_path = write_outputs(out, students, results, [labs[name] for name in in_play])
    stopped = sum(1 for r in results.values() if r.reasons)
    unreadable = sum(1 for s in students if s.problems)
    print(
        f"graded {len(notebooks)} notebook(s) of {len(students)} student(s) in {time.monotonic() - start:.0f} s "
        f"({stopped} stopped early, {unreadable} with unreadable files); wrote {csv_path} and {out / 'feedback'}/"
    )
    return 0
