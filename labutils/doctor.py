"""``python -m labutils doctor``: is this machine ready for the course?  One line per check."""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import platform
import sys
from pathlib import Path

PACKAGES = ["numpy", "torch", "matplotlib", "tqdm", "pooch", "ipywidgets", "jupyterlab", "nbformat", "labutils"]


# Server-side packages the notebooks never import: their installed version is enough, and
# importing JupyterLab's server stack would cost seconds for nothing.
NOT_IMPORTED = {"jupyterlab"}


def _version(name: str) -> str | None:
    """The version of an installed package; importing it, so that a broken install shows as missing."""
    if name in NOT_IMPORTED:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return None
    try:
        module = importlib.import_module(name)
    except ImportError:
        return None
    return getattr(module, "__version__", "installed")


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


def checks() -> list[tuple[bool, str, str]]:
    """Every check as ``(ok, what, detail)``."""
    from .data import REGISTRY, _known_hash, cache_dir, sha256_of

    results = [(sys.version_info >= (3, 10), "python", f"{platform.python_version()} ({sys.executable})")]
    for name in PACKAGES:
        version = _version(name)
        results.append((version is not None, name, version or "missing: run `python course.py lab` to install"))
    try:
        from .runtime import budget_name, device

        results.append((True, "device", f"{device()} (CUDA, then MPS, then CPU)"))
        results.append((True, "budget", budget_name()))
    except Exception as exc:  # noqa: BLE001 - report, don't crash the doctor
        results.append((False, "device", f"{type(exc).__name__}: {exc}"))
    ext = widgets_extension()
    detail = (
        f"{json.loads(ext.read_text())['version']} ({ext.parent})" if ext else "missing: pip install jupyterlab_widgets"
    )
    results.append((ext is not None, "widgets extension", detail))
    folder = cache_dir()
    for text in REGISTRY.values():
        path = folder / text.filename
        if not path.exists():
            results.append(
                (False, f"data {text.name}", f"not downloaded: run `python -m labutils download {text.name}`")
            )
        elif sha256_of(path) != _known_hash(text, folder):
            results.append((False, f"data {text.name}", f"{path} fails its sha256 check: delete it and download again"))
        else:
            results.append((True, f"data {text.name}", f"verified ({path})"))
    return results


def run_doctor() -> int:
    results = checks()
    width = max(len(what) for _, what, _ in results)
    for ok, what, detail in results:
        print(f"{'ok  ' if ok else 'FAIL'}  {what:{width}s}  {detail}")
    failed = sum(not ok for ok, _, _ in results)
    print(
        f"\n{len(results) - failed} of {len(results)} checks passed."
        + ("" if not failed else " Fix the FAIL lines above.")
    )
    return 1 if failed else 0
