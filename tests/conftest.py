"""Fixtures shared by the unit tests (the environment is set in the root conftest.py)."""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def mirror() -> Path:
    """The course's offline copies of the texts; tests that need real texts skip without them."""
    folder = os.environ.get("LABUTILS_DATA_MIRROR")
    if not folder or not Path(folder).is_dir():
        pytest.skip("set LABUTILS_DATA_MIRROR to the folder of the course texts (CI uses ../shared/data)")
    return Path(folder)
