"""Which parts of the course are not yet verified end to end (shared by conftest.py and the tests).

Notebooks listed here are written but have not yet been executed and verified in the CI budget
(their solutions carry no stored outputs). nbval, the student-notebook runs and the grader's
calibration skip them, visibly, until a session verifies them and empties this set.
"""

UNVERIFIED_LABS = {"06_char_generation.ipynb", "07_sherlock_assignment.ipynb"}
UNVERIFIED_REASON = "lab not yet verified end to end in the CI budget (see the open issue's note)"

# The browser suite (tests/browser) has not yet passed on a quiet machine; it runs only when
# LABUTILS_BROWSER_TESTS=1 and is otherwise skipped with this reason, shown by -ra.
BROWSER_REASON = "browser tests not yet verified: set LABUTILS_BROWSER_TESTS=1 to run them (issue 6 is open)"
