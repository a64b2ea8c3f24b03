"""``python -m labutils bench grading``: notebooks graded per core-minute, ours beside nbgrader's ``autograde``.

For lab 01 and lab 07 the benchmark makes ``copies`` submissions of the lab's solution notebook
and grades them twice in the same run, on the same notebooks:

* **ours**: ``python -m labutils grade SUBS --out OUT --jobs CORES`` (a bubblewrap sandbox per
  notebook, the kernel run up to the last check in the CI budget; lab 07 is not run at all: the
  grader loads the two saved models and measures them, held-out bits per character over the
  last 5% of the canon and a sampled passage).  Lab 07's hand-in is two models of the lab 07
  solution's full-budget configuration (``LAB07_MODELS``: a 1 x 512 RNN, a 2 x 384 GRU), saved
  as the notebook saves them (``save_lab07_models``): what a student who follows the solution
  hands in costs the grader that much, whatever the scores.
* **nbgrader**: ``nbgrader autograde`` over a course folder holding the same notebooks (after
  ``generate_assignment``, which is not timed).  nbgrader grades by executing the whole notebook
  in one kernel, one notebook after another; its kernels get the same environment as ours (the
  CI budget, one thread each), so lab 07's notebook trains two small models at CI sizes and its
  checks judge those: the cheapest nbgrader can be, and not a judgement of the models the student
  trained (grading those by running the notebook means their full training, about ten minutes).

Each command runs under ``python -m labutils.bench.grading --measure``, a child subreaper that
reaps every process the command leaves behind (bubblewrap's inner process included), so that
``getrusage(RUSAGE_CHILDREN)`` counts the CPU time of all of it.  The rate is notebooks per
**CPU-minute** actually used (``*_per_core_min``): on a shared machine, wall time measures the
neighbours too.  Wall times are reported beside.  ``ratio`` is ours over nbgrader's.  The
projections say what a class of ``CLASS`` submissions costs on 2 and on 32 cores, *extrapolated*
from the measured rate as if every core ran at it (grading parallelises per notebook: ``--jobs``
on one machine, ``--shard`` across machines; nbgrader's ``autograde`` is serial, so it would
need as many course folders).  Small ``copies`` count the fixed start-up of each command (reading
the solutions, starting nbgrader's database) in full: the rates are then lower bounds.
"""

from __future__ import annotations

import contextlib
import csv
import ctypes
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ..notebooks import SOLUTIONS

LAB01_NAME, LAB07_NAME = "01_rnn_forward_numpy", "07_sherlock_assignment"
#: The two models the lab 07 solution trains at full budget (keep in step with solutions/07_*.ipynb
#: and ``bench.trainer.LAB07``: a test compares them).
LAB07_MODELS = {
    "rnn": dict(embed_dim=64, hidden_size=512, num_layers=1, cell="rnn", nonlinearity="tanh"),
    "gru": dict(embed_dim=64, hidden_size=384, num_layers=2, cell="gru", nonlinearity="tanh"),
}
#: What lab 07's save cell records besides the sizes (the spec check reads them).
HPARAMS = {"train_chars": 4_000_000, "seq_len": 64, "lr": 2e-3, "optimizer": "adam", "epochs": 1}
RNN_STEPS = 250
CLASS = 500
CORES = (2, 32)
REAP_S = 60  # how long the measuring process waits for stragglers after the command exits


# ------------------------------------------------------------------------------ measuring
def measure_command(argv: list[str], cwd: Path, env: dict) -> dict:
    """Run ``argv`` as a child subreaper's child; ``{"wall_s", "cpu_s", "returncode"}`` of everything it ran."""
    ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    with open(Path(cwd) / "command.log", "wb") as log:
        code = subprocess.run(argv, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, check=False).returncode
    wall = time.monotonic() - start
    deadline = time.monotonic() + REAP_S
    while time.monotonic() < deadline:  # orphans were re-parented here; reaping adds their CPU time
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            time.sleep(0.1)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": wall, "cpu_s": cpu, "returncode": code}


def measured(argv: list[str], cwd: Path, env: dict) -> dict:
    """``measure_command`` in its own process (so that this one never becomes a subreaper)."""
    runner = [sys.executable, "-m", "labutils.bench.grading", "--measure", str(cwd), "--", *argv]
    done = subprocess.run(runner, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"measuring {argv[:4]} failed: {done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["returncode"] != 0:
        tail = (Path(cwd) / "command.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{' '.join(argv[:4])} ... exited with {result['returncode']}:\n{tail}")
    return result


# ------------------------------------------------------------------------------ the submissions
def _train_rnn(vocab, text: str):
    """The hand-in's RNN, trained just enough to pass the held-out and sample checks (or they would
    stop before the GRU is measured); with its History."""
    import torch

    from ..models import CharRNN
    from ..text import stream_batches
    from ..train import fit, make_optimizer

    ids = vocab.encode(text[: RNN_STEPS * 32 * 64 + 1])
    torch.manual_seed(0)
    model = CharRNN(len(vocab), **LAB07_MODELS["rnn"])
    optimizer = make_optimizer(model, "adam", 2e-3)
    history = fit(model, lambda: stream_batches(ids, 32, 64), epochs=1, optimizer=optimizer, clip=1.0,
                  stateful=True, progress=False, device="cpu")  # fmt: skip
    return model, history


def save_lab07_models(folder: Path) -> None:
    """Lab 07's hand-in at the solution's full-budget sizes, saved as its save cell saves them.

    The RNN is trained (``RNN_STEPS`` steps, kept in the system's temporary folder for the next
    run); the GRU's weights are random: the grader computes its held-out bits and samples it all
    the same, before comparing them with the thresholds.
    """
    import torch

    from ..checks import lab07
    from ..models import CharRNN
    from ..train import History, save_checkpoint

    cache = Path(tempfile.gettempdir()) / f"labutils-bench-lab07-{RNN_STEPS}-{torch.__version__}"
    cache.mkdir(exist_ok=True)
    vocab = lab07.canon_vocab()
    if not (cache / lab07.SAVED["rnn"]).is_file():
        model, history = _train_rnn(vocab, lab07.canon())
        hparams = {**HPARAMS, **LAB07_MODELS["rnn"], "train_chars": RNN_STEPS * 32 * 64}
        save_checkpoint(cache / lab07.SAVED["rnn"], model, vocab=vocab, hparams=hparams, history=history,
                        sample_temperature=0.3)  # fmt: skip
    shutil.copy(cache / lab07.SAVED["rnn"], folder / lab07.SAVED["rnn"])
    torch.manual_seed(0)
    gru = CharRNN(len(vocab), **LAB07_MODELS["gru"])
    history = History(steps=list(range(1, 11)), train_loss=[4.5 - 0.2 * i for i in range(10)], tokens_seen=20480)
    hparams = {**HPARAMS, **LAB07_MODELS["gru"]}
    save_checkpoint(folder / lab07.SAVED["gru"], gru, vocab=vocab, hparams=hparams, history=history,
                    sample_temperature=0.8)  # fmt: skip


def make_submissions(lab: str, copies: int, base: Path) -> tuple[Path, Path]:
    """``copies`` submissions of ``lab``: one folder per student for ours, nbgrader's course folder."""
    solution = SOLUTIONS / f"{lab}.ipynb"
    ours, course = base / "submissions", base / "course"
    extras = base / "handin"
    extras.mkdir(parents=True)
    if lab == LAB07_NAME:
        save_lab07_models(extras)
    (course / "source" / "ps").mkdir(parents=True)
    shutil.copy(solution, course / "source" / "ps" / solution.name)
    for i in range(1, copies + 1):
        for folder in (ours / f"s{i:03d}", course / "submitted" / f"s{i:03d}" / "ps"):
            folder.mkdir(parents=True)
            shutil.copy(solution, folder / solution.name)
            for extra in extras.iterdir():
                shutil.copy(extra, folder / extra.name)
    return ours, course


# ------------------------------------------------------------------------------ the two graders
def kernel_environment(jobs: int) -> dict:
    """The environment both graders run in: ours sets its kernels' own; nbgrader's kernels inherit this."""
    from ..grading.grader import kernel_env

    env = {**os.environ, **kernel_env(jobs)}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])  # nbgrader's alembic
    return env


def run_ours(submissions: Path, base: Path, jobs: int, env: dict) -> dict:
    out = base / "ours-out"
    argv = [sys.executable, "-m", "labutils", "grade", str(submissions), "--out", str(out), "--jobs", str(jobs)]
    result = measured(argv, base, env)
    with open(out / "grades.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    result["score"] = sum(float(r["total"]) for r in rows) / max(1, len(rows))
    result["graded"] = sum(r["status"] == "ok" for r in rows)
    return result


def run_nbgrader(course: Path, env: dict) -> dict:
    nbgrader = [sys.executable, "-m", "nbgrader"]
    root = f"--CourseDirectory.root={course}"
    generate = subprocess.run([*nbgrader, "generate_assignment", "ps", "--force", root], cwd=course, env=env,
                              capture_output=True, text=True, check=False)  # fmt: skip
    if generate.returncode != 0:
        raise RuntimeError(f"nbgrader generate_assignment failed:\n{generate.stderr[-3000:]}")
    argv = [*nbgrader, "autograde", "ps", "--force", root, "--ExecutePreprocessor.timeout=1200"]
    result = measured(argv, course, env)
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        scores = [s.score for s in gradebook.assignment_submissions("ps")]
    result["score"] = sum(scores) / max(1, len(scores))
    result["graded"] = len(scores)
    return result


def figures(prefix: str, copies: int, ours: dict, theirs: dict) -> dict:
    """Rates, ratio and projections of one lab, named ``PREFIX_*``."""
    out = {f"{prefix}_notebooks": copies}
    for name, run in (("ours", ours), ("nbgrader", theirs)):
        rate = copies / (run["cpu_s"] / 60)
        out |= {f"{prefix}_{name}_wall_s": round(run["wall_s"], 1), f"{prefix}_{name}_cpu_s": round(run["cpu_s"], 1)}
        out |= {f"{prefix}_{name}_per_core_min": round(rate, 2), f"{prefix}_{name}_mean_score": round(run["score"], 2)}
        for cores in CORES:
            out[f"{prefix}_{name}_{CLASS}_on_{cores}_cores_min"] = round(CLASS / (rate * cores), 1)
    out[f"{prefix}_ratio"] = round(out[f"{prefix}_ours_per_core_min"] / out[f"{prefix}_nbgrader_per_core_min"], 2)
    return out


def machine() -> dict:
    model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as f:
        model = next((line.split(":", 1)[1].strip() for line in f if "model name" in line), "")
    return {"cpu_model": model, "cores": os.cpu_count() or 1, "load_average_1min": round(os.getloadavg()[0], 2)}


def run(quick: bool = False, copies: int | None = None) -> dict:
    """Grade ``copies`` copies of lab 01 and of lab 07 (quick: one copy of lab 01 only) with both graders."""
    jobs = os.cpu_count() or 1
    plan = {"lab01": (LAB01_NAME, copies or (1 if quick else 4))}
    if not quick:
        plan["lab07"] = (LAB07_NAME, max(1, (copies or 4) // 2))
    env = kernel_environment(jobs)
    results = {"jobs": jobs, **{f"start_{k}": v for k, v in machine().items()}}
    with tempfile.TemporaryDirectory(prefix="labutils-bench-grading-") as tmp:
        for prefix, (lab, n) in plan.items():
            base = Path(tmp) / prefix
            submissions, course = make_submissions(lab, n, base)
            print(f"{prefix}: {n} notebook(s), ours with --jobs {jobs}, then nbgrader autograde", flush=True)
            ours = run_ours(submissions, base, jobs, env)
            theirs = run_nbgrader(course, env)
            results |= figures(prefix, n, ours, theirs)
    results["end_load_average_1min"] = round(os.getloadavg()[0], 2)
    return results


if __name__ == "__main__" and sys.argv[1:2] == ["--measure"]:
    print(json.dumps(measure_command(sys.argv[4:], Path(sys.argv[2]), dict(os.environ))))
