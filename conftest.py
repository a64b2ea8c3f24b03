"""Root pytest set-up, seen by tests/ and by nbval over solutions/ alike."""

import os
import sys
from pathlib import Path

import pytest

# Notebooks executed by nbval inherit this environment: small sizes unless told otherwise.
os.environ.setdefault("LABUTILS_BUDGET", "ci")
# No MPLBACKEND here: kernels would inherit it and draw nothing inline.  Without a display,
# matplotlib picks the Agg backend by itself in the unit tests.
# tqdm bars write to stderr, which nbval does not compare; keep them narrow in logs.
os.environ.setdefault("TQDM_NCOLS", "80")

sys.path.insert(0, str(Path(__file__).resolve().parent / "tests"))
from lab_status import BROWSER_REASON, KNOWN_FAILING, UNVERIFIED_LABS  # noqa: E402


def pytest_ignore_collect(collection_path, config):
    """Leave unverified solution notebooks out of nbval (reported at the end of the session)."""
    if collection_path.parent.name == "solutions" and collection_path.name in UNVERIFIED_LABS:
        return True
    return None


# The scopes that take longest on a 2-core CI machine, longest first, scheduled first so that no
# xdist worker ends the run alone with a long one. Everything else keeps pytest's order; the
# cells of a notebook always keep theirs.
HEAVY_SCOPES = (
    "tests/test_grading_labs.py",  # grades every real lab twice (solution; untouched, which runs it up to the stubs)
    "tests/test_grading.py",  # one grading run over ~30 honest and hostile fixture notebooks, then a loop alone
    "tests/test_grading_scale.py",  # shards and merge, a simulated Gradescope, bench grading: a dozen kernels
    "tests/test_checks_lab07.py",  # trains two small models that pass the full budget's thresholds
    "tests/browser",  # one JupyterLab and one browser tab for the whole folder
    "tests/test_nbgrader_client.py",  # nbgrader generates every lab and autogrades four, whole notebooks
    "tests/test_notebooks.py",  # generate --check, twice
    "tests/test_bench_numpy_lm.py",
    "tests/test_cli.py",
    "tests/test_hosted.py",  # builds a Colab-like environment, then runs lab 01 there
    "solutions/07_sherlock_assignment.ipynb",
    "solutions/06_char_generation.ipynb",
)


def scope_of(nodeid: str) -> str:
    """The xdist scheduling unit of a test: its module, or the whole browser folder."""
    path = nodeid.split("::")[0]
    return "tests/browser" if path.startswith("tests/browser/") else path


def _heaviness(item) -> int:
    scope = scope_of(item.nodeid)
    return HEAVY_SCOPES.index(scope) if scope in HEAVY_SCOPES else len(HEAVY_SCOPES)


def pytest_collection_modifyitems(config, items):
    items.sort(key=_heaviness)  # stable: the order inside a scope is kept
    for item in items:
        reason = KNOWN_FAILING.get(item.nodeid)
        if reason:
            item.add_marker(pytest.mark.xfail(reason=reason, strict=True))
    browser_tests = [item for item in items if "tests/browser" in str(item.path).replace(os.sep, "/")]
    missing = _browser_missing() if browser_tests else ""
    for item in browser_tests if missing else []:
        item.add_marker(pytest.mark.skip(reason=BROWSER_REASON.format(missing=missing)))


def _browser_missing() -> str:
    """What the browser tests lack: "chromium", "playwright", both, or "" when nothing."""
    import importlib.util
    import shutil

    missing = []
    if not (os.access("/usr/bin/chromium", os.X_OK) or shutil.which("chromium")):
        missing.append("chromium")
    if importlib.util.find_spec("playwright") is None:
        missing.append("playwright")
    return ", ".join(missing)


def pytest_report_header(config):
    if UNVERIFIED_LABS:
        return f"left out of nbval until verified: {', '.join(sorted(UNVERIFIED_LABS))}"
    return None


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist, absent without it
def pytest_xdist_make_scheduler(config, log):
    """With ``--dist loadscope``: the same, but all of tests/browser is one unit (one worker, one
    JupyterLab). Each worker that runs a browser test would start its own JupyterLab and load its
    page, the slowest part of a browser test; grouping the folder pays for that once.
    """
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class BrowserTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            return scope_of(nodeid)

    return BrowserTogether(config, log)
