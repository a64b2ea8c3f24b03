"""Probe the files a submission handed in (lab 07's saved models): ``python -m labutils.grading.fileprobe JOB``.

For a lab whose every automatic item is judged from files (``Check.files``), the grader does
not run the notebook.  This process, started in the same sandbox as a kernel would be, with the
same memory and file-size limits, calls each item's ``Check.run_file_probe`` on the copies of
the handed-in files and writes its outputs as ``.npz`` (or the exception as ``.json``), exactly
as ``probe.run`` does in a kernel.  The file probes read hostile files (``torch.load`` with
``weights_only=True``, after a size cap); the verdicts are reached outside, by the judges.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
from pathlib import Path


def _write_error(out_stem: Path, exc: BaseException) -> None:
    report = {"type": type(exc).__name__, "message": str(exc)[:2000], "where": ""}
    Path(f"{out_stem}.json").write_text(json.dumps(report), encoding="utf-8")


def probe_item(grade_id: str, module: str, files: Path, io_dir: Path) -> None:
    """Run one item's file probe; its outputs or its error go to ``io_dir/GRADE_ID.out.*``."""
    import numpy as np

    out_stem = io_dir / f"{grade_id}.out"
    try:
        importlib.import_module(module)
        from labutils.checks.core import REGISTRY

        check = REGISTRY[grade_id]
        with np.load(io_dir / f"{grade_id}.in.npz", allow_pickle=False) as data:
            inputs = {key: data[key] for key in data.files}
        paths = {name: files / name for name in check.files if (files / name).is_file()}
        outputs = check.run_file_probe(paths, inputs)
        np.savez(io_dir / f"{grade_id}.tmp.npz", **outputs)
        (io_dir / f"{grade_id}.tmp.npz").replace(f"{out_stem}.npz")
    except BaseException as exc:  # noqa: BLE001 -- a hostile file may raise anything
        _write_error(out_stem, exc)


def main() -> int:
    from .kernel import apply_limits

    job = json.loads(Path(sys.argv[1]).read_text())
    os.environ["LABUTILS_GRADE_MEMORY_MB"] = str(job.get("memory_mb", 0))
    apply_limits()
    start = time.monotonic()
    for item in job["items"]:
        probe_item(item["grade_id"], item["module"], Path(job["files"]), Path(job["io"]))
    report = {"status": "ok", "cell": None, "errors": [], "seconds": round(time.monotonic() - start, 2)}
    Path(job["result"]).write_text(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
