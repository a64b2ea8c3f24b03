"""The only grading code that runs in a submission's kernel: call a check's probe, save raw outputs.

The grader adds one cell per automatic item, right after the student's test cell::

    __import__("labutils.grading.probe", fromlist=["run"]).run(GRADE_ID, MODULE, INPUTS, OUT, globals())

``run`` reads the inputs the grader drew (a ``.npz`` file), calls ``Check.run_probe`` on the
notebook's objects and writes the outputs to ``OUT.npz`` -- or, when the student's code raises,
the exception's type and message to ``OUT.json``.  It decides nothing: the grader judges the
arrays in its own process.  A submission may patch this module, NumPy or the checks in its
kernel; all it can change is the arrays its own code hands back, which is what is judged anyway.
"""

from __future__ import annotations

import importlib
import json
import os
import traceback


def _student_frame(exc: BaseException) -> str:
    """The innermost traceback line of the notebook's own code, for the feedback.

    A check wraps an error of the student's code in a ``StudentCodeError`` raised from it, so the
    chain of causes is searched, innermost first; library frames (labutils, NumPy, PyTorch, the
    standard library) never count as the student's.
    """
    from labutils.checks.feedback import is_student_file

    chain = []
    while exc is not None and exc not in chain:
        chain.append(exc)
        exc = exc.__cause__
    for error in reversed(chain):
        for frame in reversed(traceback.extract_tb(error.__traceback__)):
            if is_student_file(frame.filename):
                return f"line {frame.lineno}: {frame.line}" if frame.line else ""
    return ""


def run(grade_id: str, module: str, inputs_path: str, out_stem: str, namespace: dict) -> None:
    import numpy as np

    try:
        importlib.import_module(module)
        from labutils.checks.core import REGISTRY

        check = REGISTRY[grade_id]
        with np.load(inputs_path, allow_pickle=False) as data:
            inputs = {key: data[key] for key in data.files}
        objects = {name: namespace[name] for name in check.needs if name in namespace}
        outputs = check.run_probe(objects, inputs)
        tmp = out_stem + ".tmp.npz"
        np.savez(tmp, **outputs)
        os.replace(tmp, out_stem + ".npz")
    except BaseException as exc:  # noqa: BLE001 -- also SystemExit from the student's code
        report = {"type": type(exc).__name__, "message": str(exc)[:2000], "where": _student_frame(exc)[:300]}
        with open(out_stem + ".json", "w", encoding="utf-8") as f:
            json.dump(report, f)
