"""``python -m labutils doctor``: is this machine ready for the course?  One line per check.

Each line is ``ok``, ``FAIL`` (with what to do) or ``--`` (not checked here).  The doctor first
tells where it runs: a local set-up (``python3 course.py lab``, conda, Binder), where the Jupyter
server runs from this same environment, or a hosted kernel (Colab, a JupyterHub, any kernel whose
server lives elsewhere).  On a hosted kernel JupyterLab and its widgets extension belong to the
server, which this environment cannot see: they are reported as not checked rather than failed.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import os
import platform
import sys
from pathlib import Path

#: What a lab's kernel imports (labutils' own dependencies), checked everywhere.
PACKAGES = ["numpy", "torch", "matplotlib", "tqdm", "pooch", "ipywidgets", "labutils"]

OK, FAIL, NOT_CHECKED = "ok", "FAIL", "--"


def _version(name: str) -> str | None:
    """The version of an installed package; importing it, so that a broken install shows as missing."""
    try:
        module = importlib.import_module(name)
    except ImportError:
        return None
    return getattr(module, "__version__", "installed")


def _installed(name: str) -> str | None:
    """The installed version of a server-side package, without importing it (an import is slow)."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def where() -> str:
    """Where this runs: "Google Colab", "a JupyterHub", "Binder", "a Jupyter kernel" or "local"."""
    if "COLAB_RELEASE_TAG" in os.environ or "google.colab" in sys.modules:
        return "Google Colab"
    if "JUPYTERHUB_API_URL" in os.environ or "JUPYTERHUB_USER" in os.environ:
        return "a JupyterHub"
    if "BINDER_LAUNCH_HOST" in os.environ or "BINDER_REPO_URL" in os.environ:
        return "Binder"
    if "JPY_PARENT_PID" in os.environ:  # set by Jupyter for its kernels (and their subprocesses)
        return "a Jupyter kernel"
    return "local"


def widgets_extension() -> Path | None:
    """The JupyterLab front-end extension of ipywidgets, if installed (its package.json)."""
    try:
        from jupyter_core.paths import jupyter_path
    except ImportError:
        return None
    for folder in jupyter_path("labextensions"):
        candidate = Path(folder) / "@jupyter-widgets" / "jupyterlab-manager" / "package.json"
        if candidate.exists():
            return candidate
    return None


def _setup(host: str, lab: str | None) -> str:
    """The set-up line: which kind of environment the checks below describe."""
    if lab:
        kind = "local" if host in ("local", "a Jupyter kernel") else host
        return f"{kind}: JupyterLab runs from this environment"
    if host == "local":
        return "local, without JupyterLab in this environment"
    return f"{host}: a hosted kernel, whose Jupyter server runs elsewhere"


def _server_side(host: str, lab: str | None) -> list[tuple[str, str, str]]:
    """JupyterLab and the widgets extension: checked where the server runs from this environment."""
    if lab is None and host != "local":
        why = f"not checked here: on {host} the Jupyter server runs outside this kernel's environment"
        return [(NOT_CHECKED, "jupyterlab", why), (NOT_CHECKED, "widgets extension", why)]
    results = [(OK, "jupyterlab", lab) if lab else (FAIL, "jupyterlab", "missing: run `python3 course.py lab`")]
    ext = widgets_extension()
    if ext:
        results.append((OK, "widgets extension", f"{json.loads(ext.read_text())['version']} ({ext.parent})"))
    else:
        advice = "missing: pip install 'ipywidgets>=8.1' (it brings jupyterlab_widgets)"
        results.append((FAIL, "widgets extension", advice))
    return results


def _data() -> list[tuple[str, str, str]]:
    """The cache folder (writable?) and each text in it (verified?)."""
    from .data import CACHE_ENV, REGISTRY, _known_hash, cache_dir, sha256_of

    folder = cache_dir()
    existing = folder if folder.exists() else next((p for p in folder.parents if p.exists()), folder)
    writable = existing.is_dir() and os.access(existing, os.W_OK)
    present = [t for t in REGISTRY.values() if (folder / t.filename).exists()]
    if writable or len(present) == len(REGISTRY):
        results = [(OK, "data cache", f"{folder}" + ("" if writable else " (read-only, every text in it)"))]
    else:
        results = [(FAIL, "data cache", f"{folder} cannot be written: set {CACHE_ENV} to a folder you can write to")]
    for text in REGISTRY.values():
        path = folder / text.filename
        if not path.exists():
            advice = f"not downloaded: run `python -m labutils download {text.name}`"
            results.append((FAIL, f"data {text.name}", advice))
        elif sha256_of(path) != _known_hash(text, folder):
            results.append((FAIL, f"data {text.name}", f"{path} fails its sha256 check: delete it and download again"))
        else:
            results.append((OK, f"data {text.name}", f"verified ({path})"))
    return results


def checks() -> list[tuple[str, str, str]]:
    """Every check as ``(status, what, detail)``; status is ``ok``, ``FAIL`` or ``--`` (not checked)."""
    host, lab = where(), _installed("jupyterlab")
    results = [
        (OK if sys.version_info >= (3, 10) else FAIL, "python", f"{platform.python_version()} ({sys.executable})"),
        (OK, "set-up", _setup(host, lab)),
    ]
    for name in PACKAGES:
        version = _version(name)
        install = "run `python3 course.py lab`" if host == "local" else "run the notebook's first cell"
        results.append((OK, name, version) if version else (FAIL, name, f"missing: {install}"))
    try:
        from .runtime import budget_name, device

        results.append((OK, "device", f"{device()} (CUDA, then MPS, then CPU)"))
        results.append((OK, "budget", budget_name()))
    except Exception as exc:  # noqa: BLE001 - report, don't crash the doctor
        results.append((FAIL, "device", f"{type(exc).__name__}: {exc}"))
    return results + _server_side(host, lab) + _data()


def run_doctor() -> int:
    results = checks()
    width = max(len(what) for _, what, _ in results)
    for status, what, detail in results:
        print(f"{status:4s}  {what:{width}s}  {detail}")
    failed = sum(status == FAIL for status, _, _ in results)
    skipped = sum(status == NOT_CHECKED for status, _, _ in results)
    passed = len(results) - failed - skipped
    print(
        f"\n{passed} of {len(results)} checks passed"
        + (f", {skipped} not checked here" if skipped else "")
        + ("." if not failed else f". Fix the {failed} FAIL lines above.")
    )
    return 1 if failed else 0
