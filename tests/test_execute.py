"""``python -m labutils execute``: run a notebook in a budget and store scrubbed outputs.

The scrubbing rules are tested on texts; the command itself on small notebooks written here, in a
temporary project folder (a kernel starts in seconds; none of them trains anything).
"""

import contextlib
import io
import os
import stat
import tempfile
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from labutils import execute as ex
from labutils.__main__ import main
from labutils.scrub import (
    PathScrubber,
    compared_text,
    leftovers,
    load_sanitizers,
    progress_text,
    resolve_terminal,
    strip_warnings,
)

ROOT = Path(__file__).resolve().parent.parent
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


def _notebook(*cells) -> nbformat.NotebookNode:
    return new_notebook(cells=list(cells), metadata={"kernelspec": KERNELSPEC})


def _project(tmp: Path) -> Path:
    """A project folder (pyproject.toml) with a notebook folder inside; returns the latter."""
    (tmp / "pyproject.toml").write_text("", encoding="utf-8")
    folder = tmp / "solutions"
    folder.mkdir()
    (folder / "marker.txt").write_text("", encoding="utf-8")
    return folder


def _cli(*args) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["execute", *args])
    return code, out.getvalue(), err.getvalue()


def _text(cell) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


# --- the scrubbing rules, on texts ----------------------------------------------------------------


def test_warnings_are_removed_with_their_source_line_and_reported():
    text = (
        "before\n"
        "/opt/venv/lib/python3.11/site-packages/IPython/core/pylabtools.py:158: UserWarning: Creating legend\n"
        "  fig.canvas.print_figure(bytes_io, **kw)\n"
        "/tmp/ipykernel_7/123.py:2: DeprecationWarning: old API\n"
        "  warnings.warn('old API', DeprecationWarning)\n"
        "C:\\venv\\Lib\\torch\\nn.py:9: FutureWarning: soon\n"
        "after\n"
    )
    kept, found = strip_warnings(text)
    assert kept == "before\nafter\n"
    assert found == ["UserWarning: Creating legend", "DeprecationWarning: old API", "FutureWarning: soon"]
    assert strip_warnings("no warning here: 3 steps\n") == ("no warning here: 3 steps\n", [])


def test_a_progress_bar_on_a_stream_keeps_its_final_state():
    assert resolve_terminal("a 0/3\ra 1/3\ra 3/3\nnext\n") == "a 3/3\nnext\n"
    assert resolve_terminal("abx\x08c\n") == "abc\n"
    assert resolve_terminal("line\r\n") == "line\r\n"  # a Windows line end is no carriage return


def test_paths_of_this_machine_become_relative(tmp_path):
    folder = _project(tmp_path)
    scrub = PathScrubber(folder)
    home = Path.home()
    cases = {
        f"saved {folder}/sherlock_gru.pt": "saved sherlock_gru.pt",
        f"cwd {folder}": "cwd .",
        f"7 texts verified in {tmp_path}/data/cache": "7 texts verified in ../data/cache",
        f"{home}/.cache/x.txt": "~/.cache/x.txt",
        "/srv/venv/lib/python3.11/site-packages/IPython/core/pylabtools.py:158": "IPython/core/pylabtools.py:158",
    }
    for text, wanted in cases.items():
        assert scrub(text)[0] == wanted, text
    assert scrub(f"{tempfile.gettempdir()}/other/x")[0] == "$TMPDIR/other/x"
    untouched = [
        "https://www.gutenberg.org/cache/epub/1661/pg1661.txt",
        " 71/71 [08:11<00:00,  4.27s/batch, loss=4.840]",
        f"{home}ish/x",  # another folder whose name starts with the same letters
        "1/2 and and/or",
    ]
    for text in untouched:
        assert scrub(text) == (text, 0), text


def _bar_state(left: str, value: float, total: float, right: str) -> dict:
    return {
        "box": {"model_name": "HBoxModel", "state": {"children": ["IPY_MODEL_l", "IPY_MODEL_p", "IPY_MODEL_r"]}},
        "l": {"model_name": "HTMLModel", "state": {"value": left}},
        "p": {"model_name": "FloatProgressModel", "state": {"value": value, "max": total}},
        "r": {"model_name": "HTMLModel", "state": {"value": right}},
    }


def test_a_progress_widget_reads_as_its_final_state():
    state = _bar_state("training:\u2007100%", 71, 71, "\u200771/71\u2007[08:11&lt;00:00,\u2007loss=4.840]")
    assert progress_text("box", state) == "training: 100%|██████████| 71/71 [08:11<00:00, loss=4.840]"
    half = _bar_state("training:\u200750%", 5, 10, "\u20075/10")
    assert progress_text("box", half) == "training: 50%|█████     | 5/10"
    no_total = _bar_state("training:", 1, 1, "\u2007196/?\u2007[00:03]")
    assert progress_text("box", no_total) == "training: 196/? [00:03]"
    state["box"]["model_name"] = "VBoxModel"  # some other widget
    assert progress_text("box", state) is None and progress_text("missing", state) is None


def test_leftovers_name_what_no_rule_could_fix():
    nb = _notebook(
        new_code_cell("x", outputs=[new_output("stream", name="stdout", text="cache in /work/other/data\n")]),
        new_code_cell("y", outputs=[new_output("stream", name="stderr", text="RuntimeWarning: overflow\n")]),
        new_code_cell("z", outputs=[new_output("stream", name="stdout", text="all fine, 3/4 done\n")]),
    )
    assert leftovers(nb) == [(0, "/work/"), (1, "RuntimeWarning:")]


def test_compared_cells_differ_only_where_nbval_would_see_it():
    sanitizers = load_sanitizers(ex.SANITIZE_FILE)
    assert sanitizers, "tests/nbval_sanitize.cfg, which nbval uses too, should be read"

    def cell(text, compared=True):
        source = "# NBVAL_CHECK_OUTPUT\nprint()" if compared else "print()"
        return new_code_cell(source, outputs=[new_output("stream", name="stdout", text=text)])

    stored = _notebook(cell("took 5 ms\n"), cell("loss 3.2\n"), cell("loss 3.2\n", compared=False))
    new = _notebook(cell("took 3 ms\n"), cell("loss 1.1\n"), cell("loss 1.1\n", compared=False))
    changed = ex.compare_compared_cells(stored, new)
    assert [index for index, _ in changed] == [1]
    assert "-stdout: loss 3.2" in changed[0][1] and "+stdout: loss 1.1" in changed[0][1]
    assert compared_text(cell("a\rb\n"), []) == compared_text(cell("b\n"), [])


def test_an_atomic_write_leaves_the_old_file_whole_when_writing_fails(tmp_path, monkeypatch):
    path = tmp_path / "nb.ipynb"
    nbformat.write(_notebook(new_code_cell("old")), path)
    path.chmod(0o640)
    before = path.read_bytes()

    def half_then_crash(nb, fh):
        fh.write('{"cells": [')
        raise KeyboardInterrupt

    monkeypatch.setattr(ex.nbformat, "write", half_then_crash)
    with pytest.raises(KeyboardInterrupt):
        ex.write_atomic(_notebook(new_code_cell("new")), path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nb.ipynb"]  # no temporary file left

    monkeypatch.undo()
    ex.write_atomic(_notebook(new_code_cell("new")), path)
    assert nbformat.read(path, as_version=4).cells[0].source == "new"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nb.ipynb"]


def test_the_command_refuses_what_is_not_a_notebook(tmp_path):
    code, _, err = _cli(str(tmp_path / "missing.ipynb"))
    assert code == 1 and "is not a notebook file" in err
    with pytest.raises(SystemExit) as exit_info, contextlib.redirect_stderr(io.StringIO()):
        main(["execute", "--budget", "huge", str(tmp_path / "x.ipynb")])
    assert exit_info.value.code == 2


# --- the command on a small notebook --------------------------------------------------------------

CELLS = {
    "budget": 'import os, sys, warnings\nprint("budget:", os.environ["LABUTILS_BUDGET"])',
    "where": 'print(sorted(os.listdir(".")))\nprint(os.getcwd())\nprint(os.path.expanduser("~/thing"))\n'
    "import numpy\nprint(numpy.__file__)",
    "warn": 'warnings.warn("careful now", UserWarning)\nwarnings.warn("old", DeprecationWarning)\nprint("after")',
    "bar": 'for i in range(4):\n    sys.stderr.write(f"\\rprogress {i}/3")\nsys.stderr.write("\\n");',
    "empty": "",
    "widget": 'from tqdm.auto import tqdm\nfor _ in tqdm(range(3), desc="training"):\n    pass',
    "compared": '# NBVAL_CHECK_OUTPUT\nprint("budget", os.environ["LABUTILS_BUDGET"])',
    "same": '# NBVAL_CHECK_OUTPUT\nprint("shape (2, 3)")',
}


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """A notebook run by ``python -m labutils execute`` in the full budget: (path, notebook, stdout)."""
    folder = _project(tmp_path_factory.mktemp("project"))
    stored_before = {
        "compared": [new_output("stream", name="stdout", text="budget ci\n")],
        "same": [new_output("stream", name="stdout", text="shape (2, 3)\n")],
    }
    cells = [new_markdown_cell("# A notebook")]
    cells += [new_code_cell(src, outputs=stored_before.get(key, [])) for key, src in CELLS.items()]
    path = folder / "lab.ipynb"
    nbformat.write(_notebook(*cells), path)
    assert os.environ["LABUTILS_BUDGET"] == "ci"  # so that "full" in the kernel comes from the command
    code, out, err = _cli(str(path))
    assert code == 0, out + err
    return path, nbformat.read(path, as_version=4), out


def _cell(nb, key):
    return nb.cells[1 + list(CELLS).index(key)]


@pytest.mark.slow
def test_the_budget_reaches_the_kernel_and_the_metadata(executed):
    _, nb, out = executed
    assert _text(_cell(nb, "budget")) == "budget: full\n"
    assert set(nb.metadata.labutils) == {"budget", "seconds"}
    assert nb.metadata.labutils["budget"] == "full" and isinstance(nb.metadata.labutils["seconds"], int)
    assert "full budget" in out and "stored" in out


@pytest.mark.slow
def test_every_code_cell_ran_in_order_in_the_notebooks_folder(executed):
    _, nb, _ = executed
    counts = [c.execution_count for c in nb.cells if c.cell_type == "code" and c.source.strip()]
    assert counts == list(range(1, len(CELLS)))  # the empty cell is not run
    assert _cell(nb, "empty").execution_count is None
    assert _text(_cell(nb, "where")).splitlines()[:2] == ["['lab.ipynb', 'marker.txt']", "."]
    assert all("execution" not in c.metadata for c in nb.cells)  # nbclient's timestamps: no dates


@pytest.mark.slow
def test_stored_outputs_hold_no_path_and_no_warning(executed):
    _, nb, out = executed
    assert leftovers(nb) == []
    assert _text(_cell(nb, "where")).splitlines()[2:] == ["~/thing", "numpy/__init__.py"]
    assert _text(_cell(nb, "warn")) == "after\n"
    assert "removed from cell 3: UserWarning: careful now" in out
    assert "removed from cell 3: DeprecationWarning: old" in out


@pytest.mark.slow
def test_progress_bars_are_stored_at_their_final_state(executed):
    _, nb, _ = executed
    assert _text(_cell(nb, "bar")) == "progress 3/3\n"
    (display,) = [o for o in _cell(nb, "widget").outputs if o.output_type == "display_data"]
    assert display.data["text/plain"].startswith("training: 100%|██████████| 3/3 [")


@pytest.mark.slow
def test_compared_cells_that_change_with_the_budget_are_reported(executed):
    _, _, out = executed
    report = out[out.index("# NBVAL_CHECK_OUTPUT cells") :]
    assert "cell 7:" in report and "-stdout: budget ci" in report and "+stdout: budget full" in report
    assert "cell 8:" not in report


@pytest.mark.slow
def test_compare_runs_another_budget_and_writes_nothing(executed):
    path, _, _ = executed
    before = path.read_bytes()
    code, out, _ = _cli("--budget", "ci", "--compare", str(path))
    assert code == 1, out
    assert "not written" in out and "-stdout: budget full" in out and "+stdout: budget ci" in out
    assert path.read_bytes() == before


@pytest.mark.slow
def test_the_first_error_stops_the_run_and_changes_nothing(tmp_path):
    folder = _project(tmp_path)
    bad, good = folder / "bad.ipynb", folder / "good.ipynb"
    nbformat.write(
        _notebook(
            new_markdown_cell("# Fails"),
            new_code_cell("print(1)"),
            new_code_cell("1 / 0"),
            new_code_cell("open('ran', 'w')"),
        ),
        bad,
    )
    nbformat.write(_notebook(new_code_cell("print(2)")), good)
    before = {p: p.read_bytes() for p in (bad, good)}
    code, out, err = _cli(str(bad), str(good))
    assert code == 1
    assert "bad.ipynb: cell 2 ('1 / 0') failed with ZeroDivisionError" in err and "left unchanged" in err
    assert not (folder / "ran").exists()  # no cell after the error ran
    assert {p: p.read_bytes() for p in (bad, good)} == before  # and the next notebook did not run
    assert "good.ipynb" not in out
    assert sorted(p.name for p in folder.iterdir()) == ["bad.ipynb", "good.ipynb", "marker.txt"]
