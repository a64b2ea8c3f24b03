"""labutils' public API: every name it advertises imports, and the lazy table matches the files.

``labutils.__all__`` lists the NumPy-only helpers imported by ``import labutils``;
``labutils._LAZY`` lists every module and subpackage, loaded on first use as ``labutils.NAME``.
"""

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import labutils

PACKAGE = Path(labutils.__file__).parent


def modules_on_disk() -> set[str]:
    """The package's modules (``name.py``) and subpackages (folders with ``__init__.py``)."""
    files = {p.stem for p in PACKAGE.glob("*.py") if not p.name.startswith("_")}
    folders = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    return files | folders


@pytest.mark.parametrize("name", labutils.__all__)
def test_every_name_in_all_is_there(name):
    assert getattr(labutils, name) is not None
    namespace = {}
    exec("from labutils import *", namespace)
    assert name in namespace


@pytest.mark.parametrize("name", labutils._LAZY)
def test_every_lazy_module_imports(name):
    module = getattr(labutils, name)
    assert module is importlib.import_module(f"labutils.{name}")
    assert name in dir(labutils)


def test_the_lazy_table_lists_every_module_and_nothing_else():
    assert set(labutils._LAZY) == modules_on_disk()


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'imdb'"):
        labutils.imdb  # noqa: B018


def test_import_labutils_does_not_import_torch():
    """The NumPy labs start without PyTorch: only the lazy modules bring it in."""
    code = "import sys, labutils; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=PACKAGE.parent).returncode == 0
