#!/usr/bin/env python3
"""Set up and run the course with nothing but Python 3.10+ and pip.

    python3 course.py lab     # create .venv, install labutils (editable), register a kernel, open JupyterLab
    python3 course.py test    # the same set-up, then the whole test suite (unit tests + nbval over solutions/)

Set-up is done once and redone only when pyproject.toml or the torch specification changes.
Environment variables:
    TORCH_SPEC       what pip installs for PyTorch (default "torch"; CI uses "torch==2.13.0",
                     a CPU build; "torch --index-url https://download.pytorch.org/whl/cpu" is a
                     small CPU-only install for laptops without a GPU)
    LABUTILS_BUDGET  "full" or "ci"; `test` defaults to "ci" (small data, few steps)
    OMP_NUM_THREADS  `test` defaults it to (CPU cores) / (test workers), at least 1: two workers
                     whose kernels each start one thread per core oversubscribe the CPU, and
                     PyTorch's thread pool then waits on descheduled threads (on a 2-core machine a
                     training step took 30 s instead of 0.05 s alone)
Only the standard library is used here, so this file runs before anything is installed.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
KERNEL = "rnn-course"


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def run(*cmd, **kw) -> None:
    print("+", " ".join(map(str, cmd)), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, cwd=ROOT, **kw)


def setup() -> Path:
    """Create the environment and install what the course needs; idempotent."""
    if sys.version_info < (3, 10):  # noqa: UP036 - this file may be run by an older Python
        sys.exit(f"The course needs Python 3.10 or newer; this is {sys.version.split()[0]}.")
    torch_spec = os.environ.get("TORCH_SPEC", "torch")
    stamp_text = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + torch_spec.encode()).hexdigest()
    stamp = VENV / ".course-installed"
    if not venv_python().exists():
        run(sys.executable, "-m", "venv", VENV)
    py = venv_python()
    if not stamp.exists() or stamp.read_text() != stamp_text:
        run(py, "-m", "pip", "install", "--upgrade", "pip")
        run(py, "-m", "pip", "install", *shlex.split(torch_spec))
        run(py, "-m", "pip", "install", "-e", ".[dev]")
        run(py, "-m", "ipykernel", "install", "--user", "--name", KERNEL, "--display-name", "Python (RNN course)")
        stamp.write_text(stamp_text)
    return py


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"lab", "test", "setup"}:
        print(__doc__)
        return 2
    py = setup()
    command, rest = argv[0], argv[1:]
    if command == "lab":
        return subprocess.call([str(py), "-m", "jupyter", "lab", "notebooks", *rest], cwd=ROOT)
    if command == "test":
        env = dict(os.environ)
        workers = 2
        env.setdefault("LABUTILS_BUDGET", "ci")
        env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // workers)))  # kernels inherit it
        command = [str(py), "-m", "pytest", "-n", str(workers), "--dist", "loadscope", *rest]
        return subprocess.call(command, cwd=ROOT, env=env)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
