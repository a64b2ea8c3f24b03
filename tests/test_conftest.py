"""The root conftest.py: the known failures of tests/lab_status.py are strict xfails."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

LAB_STATUS = """
UNVERIFIED_LABS = set()
BROWSER_REASON = "no browser: {missing}"
KNOWN_FAILING = {
    "tests/test_listed.py::test_still_fails": "a known failure",
    "tests/test_listed.py::test_fixed_since": "a known failure that was fixed",
}
"""

LISTED = """
def test_still_fails():
    assert False

def test_fixed_since():
    assert True

def test_not_listed():
    assert True
"""


def test_a_known_failure_that_passes_fails_the_run(tmp_path):
    """KNOWN_FAILING marks xfail(strict=True): an XPASS is reported as a failure, not hidden."""
    shutil.copy(ROOT / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "lab_status.py").write_text(LAB_STATUS)
    (tmp_path / "tests" / "test_listed.py").write_text(LISTED)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", "tests"],
        cwd=tmp_path,
        env=dict(os.environ, PYTEST_DISABLE_PLUGIN_AUTOLOAD="1"),  # pytest alone: faster, and enough
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "1 failed, 1 passed, 1 xfailed" in run.stdout, run.stdout + run.stderr
    assert "FAILED tests/test_listed.py::test_fixed_since" in run.stdout
    assert "XFAIL tests/test_listed.py::test_still_fails - a known failure" in run.stdout
