"""Which parts of the course are not yet verified end to end (shared by conftest.py and the tests).

Notebooks listed here are written but have not yet been executed and verified in the CI budget
(their solutions carry no stored outputs). nbval, the student-notebook runs and the grader's
calibration skip them, visibly, until a session verifies them and empties this set.
"""

UNVERIFIED_LABS: set[str] = set()
UNVERIFIED_REASON = "lab not yet verified end to end in the CI budget (see the open issue's note)"

# Optional notebooks (the appendix): an exercise with a self-check, but no graded cell. The grader's
# calibration, which runs every graded lab's student version up to its first exercise, leaves them
# out; tests/test_notebooks.py checks instead that their code before the first exercise is the
# solution's, which nbval runs.
OPTIONAL_LABS: set[str] = {"08_appendix_fast_gru.ipynb"}

# The browser suite (tests/browser) runs whenever Debian's Chromium and Playwright for Python are
# installed; otherwise it is skipped with this reason (shown by -ra), naming what is missing.
BROWSER_REASON = (
    "browser tests need Chromium (/usr/bin/chromium: apt-get install chromium) and Playwright for "
    "Python (pip install -e .[dev]); missing: {missing}"
)

# Tests known to fail, by pytest node id, each with the reason shown in the report. conftest.py
# marks them xfail(strict=True): they still run, and one that starts passing fails the run
# (XPASS), so that its line here is deleted rather than left to hide a later regression.
KNOWN_FAILING: dict[str, str] = {}
