#!/usr/bin/env python3
"""Set up and run the course with nothing but Python 3.10+ and pip.

    python3 course.py lab     # create .venv, install what a student needs, register a kernel, open JupyterLab
    python3 course.py setup   # the same, without opening JupyterLab
    python3 course.py test    # everything (the instructor's tools, the test tools), then the whole test suite

`lab` installs labutils (editable) with its `[lab]` extra: PyTorch, NumPy, matplotlib, ipywidgets,
JupyterLab, and none of the instructor's tools (nbgrader and its JupyterLab menus). `test`
installs the `[dev]` extra, which holds everything. Set-up is done once and redone only when
pyproject.toml, the PyTorch specification or the extras change.

Environment variables:
    TORCH_SPEC       what pip installs for PyTorch. Default: sized to the machine -- on Linux
                     without an NVIDIA GPU the CPU-only build (the standard one brings several
                     GB of CUDA libraries), elsewhere the standard build ("torch"). CI uses
                     "torch==2.13.0", a local CPU wheel.
    LABUTILS_BUDGET  "full" or "ci"; `test` defaults to "ci" (small data, few steps)
    OMP_NUM_THREADS  `test` defaults it to (CPU cores) / (test workers), at least 1: two workers
                     whose kernels each start one thread per core oversubscribe the CPU, and
                     PyTorch's thread pool then waits on descheduled threads (on a 2-core machine a
                     training step took 30 s instead of 0.05 s alone)
Only the standard library is used here, so this file runs before anything is installed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
KERNEL = "rnn-course"
CPU_TORCH = "torch --index-url https://download.pytorch.org/whl/cpu"
EXTRAS = {"lab": "lab", "setup": "lab", "test": "dev"}  # command -> the extra it installs
# JupyterLab's first start asks whether to fetch Jupyter news: a question students need not answer.
NEWS_PLUGIN = "@jupyterlab/apputils-extension:announcements"


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def run(*cmd, **kw) -> None:
    print("+", " ".join(map(str, cmd)), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, cwd=ROOT, **kw)


def has_nvidia_gpu() -> bool:
    """Whether this machine has an NVIDIA GPU with a driver (what the CUDA build of PyTorch needs)."""
    return shutil.which("nvidia-smi") is not None or Path("/proc/driver/nvidia/version").exists()


def torch_spec(environ=os.environ, platform: str = sys.platform, gpu: bool | None = None) -> str:
    """``TORCH_SPEC`` if set; else the CPU-only build on Linux without an NVIDIA GPU; else ``torch``.

    Only Linux needs the choice: PyPI's default wheel there bundles CUDA, while on macOS and
    Windows it is already the small build.
    """
    if environ.get("TORCH_SPEC"):
        return environ["TORCH_SPEC"]
    if platform.startswith("linux") and not (has_nvidia_gpu() if gpu is None else gpu):
        return CPU_TORCH
    return "torch"


def _stamp(extra: str, spec: str) -> dict:
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + spec.encode()).hexdigest()
    return {"digest": digest, "extras": sorted({extra} | ({"lab"} if extra == "dev" else set()))}


def needs_install(stamp_file: Path, wanted: dict) -> bool:
    """True unless the environment was set up from the same pyproject.toml and PyTorch spec, with
    at least the extras wanted now (an environment set up for `test` also serves `lab`)."""
    try:
        done = json.loads(stamp_file.read_text())
    except (OSError, ValueError):
        return True
    return done.get("digest") != wanted["digest"] or not set(wanted["extras"]) <= set(done.get("extras", []))


def setup(extra: str = "lab") -> Path:
    """Create the environment and install labutils with ``extra``; idempotent."""
    if sys.version_info < (3, 10):  # noqa: UP036 - this file may be run by an older Python
        sys.exit(f"The course needs Python 3.10 or newer; this is {sys.version.split()[0]}.")
    spec = torch_spec()
    wanted = _stamp(extra, spec)
    stamp = VENV / ".course-installed"
    if not venv_python().exists():
        run(sys.executable, "-m", "venv", VENV)
    py = venv_python()
    if needs_install(stamp, wanted):
        run(py, "-m", "pip", "install", "--upgrade", "pip")
        run(py, "-m", "pip", "install", *shlex.split(spec))
        run(py, "-m", "pip", "install", "-e", f".[{extra}]")
        run(py, "-m", "ipykernel", "install", "--user", "--name", KERNEL, "--display-name", "Python (RNN course)")
        run(py, "-m", "jupyter", "labextension", "disable", "--level=sys_prefix", NEWS_PLUGIN)
        stamp.write_text(json.dumps(wanted))
    return py


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in EXTRAS:
        print(__doc__)
        return 2
    command, rest = argv[0], argv[1:]
    py = setup(EXTRAS[command])
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
