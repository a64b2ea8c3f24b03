"""A Colab-like kernel: the notebooks run where the course is not installed.

It stands in for Google Colab: a fresh environment with an older Jupyter kernel stack (Colab's
ipykernel 6.17, IPython 7.34, ipywidgets 7.7, jupyter_client 6.1 and classic notebook 6.5), no
JupyterLab and none of the instructor's tools, and no labutils. Lab 01 is copied alone into an
empty folder outside the checkout:

* the student notebook runs top to bottom: its first cell installs labutils from a wheel built
  from the checkout (``LABUTILS_INSTALL`` points the cell at it), non-editable, and leaves the
  kernel stack as it was; the first error is the first exercise's ``NotImplementedError``;
* the solution runs top to bottom with labutils' own folder read-only (a read-only bind mount,
  which holds for root too): every check passes, the texts land in the per-user cache;
* the widgets are built, displayed and used under ipywidgets 7; ``doctor`` tells a hosted kernel.

The heavy, version-agnostic packages (PyTorch, NumPy, matplotlib, ...) are not installed again:
a ``.pth`` file lends them from the test's own environment, as Colab preinstalls them. Only the
kernel stack is installed (tens of seconds, from the package index).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
LAB = "01_rnn_forward_numpy.ipynb"  # cheap: NumPy only, one small text
pytestmark = pytest.mark.slow

#: Colab's kernel stack (googlecolab's runtime pins these or close to them).
COLAB_STACK = ("ipykernel==6.17.1", "ipython==7.34.0", "ipywidgets==7.7.1", "jupyter-client==6.1.12", "notebook==6.5.7")
#: Never lent from the test's environment: the stack above (installed in its Colab versions),
#: what must be absent (JupyterLab, the instructor's nbgrader, labutils itself) and what needs it.
NOT_LENT = {
    canonicalize_name(name)
    for name in ("ipykernel", "ipython", "ipywidgets", "jupyter-client", "widgetsnbextension", "notebook")
    + ("jupyterlab", "nbgrader", "labutils")
}
#: The packages whose versions must not change when the setup cell runs.
STACK_NAMES = ("ipykernel", "ipython", "ipywidgets", "jupyter-client", "notebook", "tornado", "pyzmq")


@dataclass
class Colab:
    python: Path  # the Colab-like environment's interpreter
    site: Path  # its site-packages
    wheel: Path  # labutils, built from the checkout
    home: Path  # HOME of its kernels: the per-user data cache goes under it


def _lend(shared: Path) -> None:
    """Symlink every distribution of this environment but ``NOT_LENT`` into ``shared``."""
    for dist in importlib.metadata.distributions():
        if canonicalize_name(str(dist.metadata["Name"])) in NOT_LENT:
            continue
        base = Path(dist.locate_file(""))
        tops = {f.parts[0] for f in dist.files or [] if f.parts[0] not in ("..", "__pycache__")}
        for top in sorted(tops):
            if not top.endswith(".pth") and (base / top).exists() and not (shared / top).exists():
                (shared / top).symlink_to(base / top)


def _build_wheel(out: Path) -> Path:
    """A wheel of labutils from a copy of the checkout (an in-tree build would write build/ there)."""
    src = out / "src"
    shutil.copytree(ROOT / "labutils", src / "labutils", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    cmd = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(out), str(src)]
    subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=600)
    (wheel,) = out.glob("labutils-*.whl")
    return wheel


def _versions(colab: Colab, names) -> dict[str, str | None]:
    code = (
        "import importlib.metadata as m, json, sys\n"
        "def v(n):\n    try: return m.version(n)\n    except m.PackageNotFoundError: return None\n"
        "print(json.dumps({n: v(n) for n in sys.argv[1:]}))"
    )
    # -I: neither the working folder (a checkout holds labutils.egg-info) nor PYTHON* variables count.
    out = subprocess.run(
        [colab.python, "-I", "-c", code, *names], capture_output=True, text=True, check=True, cwd=colab.home
    ).stdout
    return json.loads(out)


@pytest.fixture(scope="module")
def colab(tmp_path_factory) -> Colab:
    base = tmp_path_factory.mktemp("colab")
    venv, shared = base / "venv", base / "shared"
    shared.mkdir()
    _lend(shared)
    base_python = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base_python, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=300)
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    site = Path(
        subprocess.check_output(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True
        ).strip()
    )
    (site / "lent-by-the-test.pth").write_text(f"{shared}\n")  # pip comes from there too
    install = subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *COLAB_STACK],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if install.returncode != 0:
        pytest.skip(f"could not install the Colab-like kernel stack (no package index?):\n{install.stderr[-2000:]}")
    home = base / "home"
    home.mkdir()
    yield Colab(python, site, _build_wheel(base / "wheel"), home)
    left = _processes_of(venv)
    for proc in left:
        proc.kill()
    assert not left, f"kernels outlived their runs: {[' '.join(p.cmdline()) for p in left]}"


def _processes_of(venv: Path, wait_s: float = 5.0) -> list:
    """Processes still running the environment's interpreter after ``wait_s`` seconds of grace."""
    import psutil

    def running():
        found = []
        for proc in psutil.process_iter():
            try:
                if proc.status() != psutil.STATUS_ZOMBIE and any(str(venv) in part for part in proc.cmdline()):
                    found.append(proc)
            except psutil.Error:  # gone meanwhile, or a zombie
                continue
        return found

    deadline = time.monotonic() + wait_s
    while running() and time.monotonic() < deadline:
        time.sleep(0.2)
    return running()


def _kernel_env(colab: Colab, home: Path | None = None) -> dict[str, str]:
    """A Colab-like kernel's environment: nothing of the checkout or of the test's environment."""
    drop = {"PYTHONPATH", "VIRTUAL_ENV", "LABUTILS_DATA_DIR", "XDG_CACHE_HOME", "JUPYTER_PATH", "JPY_PARENT_PID"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(
        HOME=str(home or colab.home),
        PATH=f"{colab.python.parent}{os.pathsep}{env.get('PATH', '')}",
        LABUTILS_INSTALL=str(colab.wheel),
        COLAB_RELEASE_TAG="colab-like-test",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
    )
    return env


def _run(colab: Colab, nb, folder: Path, *, read_only: Path | None = None, allow_errors: bool = False, home=None):
    """Execute ``nb`` in ``folder`` on the Colab-like kernel; ``read_only``: a folder mounted read-only."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    argv = [str(colab.python), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    if read_only is not None:
        # --die-with-parent: when the kernel manager stops bwrap, the kernel inside goes with it. (Not
        # a PID namespace: ipykernel would take its parent there, pid 1, for a dead one and quit.)
        argv = ["bwrap", "--die-with-parent", "--dev-bind", "/", "/"] + [
            "--ro-bind", str(read_only), str(read_only), *argv
        ]  # fmt: skip
    kernels = folder.parent / f"kernels-{folder.name}"
    (kernels / "colab").mkdir(parents=True)
    (kernels / "colab" / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "Colab-like", "language": "python"})
    )
    km = KernelManager(kernel_name="colab", kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernels)]))
    client = NotebookClient(
        nb,
        km=km,
        timeout=600,
        startup_timeout=300,
        allow_errors=allow_errors,
        resources={"metadata": {"path": str(folder)}},
    )
    try:
        client.execute(env=_kernel_env(colab, home))
    finally:  # nbclient shuts down only the kernels it started itself, not one given as km=
        if km.has_kernel:
            km.shutdown_kernel(now=True)
    return nb


def _alone(name: str, source: Path, parent: Path):
    """The notebook copied alone into a new empty folder, read back."""
    folder = parent / name
    folder.mkdir()
    shutil.copy2(source, folder / source.name)
    assert [p.name for p in folder.iterdir()] == [source.name]
    return nbformat.read(folder / source.name, as_version=4), folder


def _text(cell) -> str:
    parts = []
    for out in cell.get("outputs", []):
        if out.output_type == "stream":
            parts.append(out.text)
        elif out.output_type == "error":
            parts.append(f"{out.ename}: {out.evalue}")
        else:
            parts.append(str(out.get("data", {}).get("text/plain", "")))
    return "".join(parts)


def _errors(nb) -> list[tuple[int, str, str]]:
    return [
        (i, out.ename, out.evalue)
        for i, cell in enumerate(nb.cells)
        for out in cell.get("outputs", [])
        if out.output_type == "error"
    ]


@pytest.fixture(scope="module")
def student_run(colab, tmp_path_factory):
    """The untouched student notebook, run top to bottom on a kernel without labutils."""
    absent = ["labutils", "jupyterlab", "nbgrader"]
    assert _versions(colab, absent) == dict.fromkeys(absent), "the Colab-like environment starts without these"
    stack = _versions(colab, STACK_NAMES)
    nb, folder = _alone("content", ROOT / "notebooks" / LAB, tmp_path_factory.mktemp("student"))
    return _run(colab, nb, folder, allow_errors=True), stack


def test_first_cell_installs_labutils_from_the_wheel_and_keeps_the_kernel_stack(colab, student_run):
    nb, stack_before = student_run
    setup = nb.cells[0]
    assert "hosted-setup" in setup.metadata.get("tags", [])
    assert not _errors(nbformat.from_dict({"cells": [setup]})), _text(setup)
    assert f"Installing labutils from {colab.wheel}" in _text(setup)
    assert _versions(colab, STACK_NAMES) == stack_before, "the setup cell changed the platform's Jupyter stack"
    assert _versions(colab, ["ipywidgets"])["ipywidgets"].startswith("7.")
    where = subprocess.run(
        [colab.python, "-c", "import labutils; print(labutils.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        env=_kernel_env(colab),
        cwd=colab.home,
    ).stdout.strip()
    assert Path(where).parent == colab.site / "labutils", f"labutils imported from {where}"
    dist_info = next(colab.site.glob("labutils-*.dist-info"))
    assert not json.loads((dist_info / "direct_url.json").read_text()).get("dir_info", {}).get("editable")
    installed = {line.split(",")[0] for line in (dist_info / "RECORD").read_text().splitlines()}
    written = [
        p.relative_to(colab.site).as_posix()
        for p in (colab.site / "labutils").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    ]
    assert set(written) <= installed, f"the notebook wrote into the package: {sorted(set(written) - installed)}"


def test_student_notebook_runs_up_to_its_first_exercise(student_run):
    """Everything before the first self-check runs; that check meets the stub's NotImplementedError."""
    nb, _ = student_run
    errors = _errors(nb)
    first_check = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and _grade(c).get("grade"))
    assert errors, "the untouched exercises should raise NotImplementedError"
    index, ename, _ = errors[0]
    assert (index, ename) == (first_check, "NotImplementedError"), errors[:3]
    broken = {"ModuleNotFoundError", "ImportError", "PermissionError", "OSError", "DataError", "FileNotFoundError"}
    assert not [e for e in errors if e[1] in broken], errors


def _grade(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def test_solution_passes_every_check_with_the_package_read_only(colab, student_run, tmp_path):
    if shutil.which("bwrap") is None and os.geteuid() == 0:
        pytest.skip("bubblewrap is needed to make labutils read-only for root (apt-get install bubblewrap)")
    package = colab.site / "labutils"
    nb, folder = _alone("content", ROOT / "solutions" / LAB, tmp_path)
    home = tmp_path / "home"  # an empty per-user cache: the text must be saved somewhere writable
    home.mkdir()
    checks = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and _grade(c).get("grade")]
    nb.cells.append(nbformat.v4.new_code_cell(PROBE))
    if os.geteuid() == 0:
        _run(colab, nb, folder, read_only=package, home=home)
    else:  # an ordinary user cannot write into a folder without write bits
        subprocess.run(["chmod", "-R", "a-w", str(package)], check=True)
        try:
            _run(colab, nb, folder, home=home)
        finally:
            subprocess.run(["chmod", "-R", "u+w", str(package)], check=True)
    assert not _errors(nb)
    assert checks and all("all checks passed" in _text(nb.cells[i]) for i in checks), [
        _text(nb.cells[i]) for i in checks
    ]
    probe = json.loads(_text(nb.cells[-1]).strip().splitlines()[-1])
    assert probe["package"] == str(package) and probe["write"].startswith(("OSError", "PermissionError")), probe
    assert probe["cache"] == str(home / ".cache" / "labutils") and probe["cached"] == ["pg35.txt"], probe
    assert probe["absent"] == ["jupyterlab", "nbgrader"], probe
    assert probe["ipywidgets"].startswith("7."), probe


PROBE = """\
import importlib.util, json, os
from pathlib import Path

import ipywidgets
import labutils

package = Path(labutils.__file__).parent
try:
    (package / "probe.txt").write_text("x")
    write = "written"
except OSError as exc:
    write = f"{type(exc).__name__}: {exc}"
cache = labutils.data.cache_dir()
absent = [name for name in ("jupyterlab", "nbgrader") if importlib.util.find_spec(name) is None]
cached = sorted(p.name for p in cache.glob("*.txt"))
print(json.dumps({"package": str(package), "write": write, "cache": str(cache), "cached": cached, "absent": absent,
                  "ipywidgets": ipywidgets.__version__}))
"""


WIDGETS = [
    """\
import ipywidgets
import labutils as lu
from labutils.models import CharRNN
from labutils.widgets.explorer import explorer_widget
from labutils.widgets.gradients import gradient_explorer
from labutils.widgets.hidden import hidden_widget
from labutils.widgets.sampler import sampler_widget

lu.seed_everything(0)
TEXT = "It is a capital mistake to theorize before one has data. " * 120
vocab = lu.CharVocab(TEXT)
model = CharRNN(len(vocab), embed_dim=8, hidden_size=16, num_layers=1)
print("ipywidgets", ipywidgets.__version__)""",
    """\
box = gradient_explorer()
before = box.children[-1].value
box.children[0].children[0].value = 1.3  # the spectral radius slider: the picture is redrawn
assert box.children[-1].value != before
box""",
    """\
sampler = sampler_widget(model, vocab, prime="It is", length=30)
sampler.button.click()
assert "Sample" in sampler.output.value and "It is" in sampler.output.value, sampler.output.value
sampler""",
    """\
viewer = hidden_widget(model, vocab, "It is a capital mistake")
viewer.rank.value = 3
assert viewer.label.value.startswith("unit"), viewer.label.value
viewer""",
    """\
app = explorer_widget(TEXT, cell="gru", embed_dim=8, hidden_size=16, num_layers=1, seq_len=16, batch_size=4,
                      lr=1e-2, train_chars=3000, epochs=1, sample_length=20)
app.train_button.click()
run = app.wait(timeout=600)
assert run.status == "finished", run.message
bar = app.progress_box.children[0].children[1]  # tqdm's progress bar, an ipywidgets 7 FloatProgress
assert bar.value == bar.max == run.history.steps[-1], (bar.value, bar.max)
assert "Sample" in app.sample.value
app""",
]


def test_widgets_render_and_work_under_ipywidgets_7(colab, student_run, tmp_path):
    folder = tmp_path / "content"
    folder.mkdir()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src) for src in WIDGETS])
    _run(colab, nb, folder)
    assert not _errors(nb)
    assert "ipywidgets 7." in _text(nb.cells[0])
    for cell in nb.cells[1:]:
        views = [o for o in cell.outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
        assert views and views[0]["data"]["application/vnd.jupyter.widget-view+json"]["model_id"], cell.source


def test_doctor_reports_a_hosted_kernel_without_failing_on_the_server_side(colab, student_run):
    result = subprocess.run(
        [colab.python, "-m", "labutils", "doctor"],
        capture_output=True,
        text=True,
        env=_kernel_env(colab),
        cwd=colab.home,
    )
    lines = {line.split()[1]: line for line in result.stdout.splitlines() if line[:4] in ("ok  ", "FAIL", "--  ")}
    assert "Google Colab: a hosted kernel" in lines["set-up"], result.stdout
    assert lines["jupyterlab"].startswith("--") and "not checked here" in lines["jupyterlab"], result.stdout
    assert lines["widgets"].startswith("--"), result.stdout  # "widgets extension"
    assert lines["ipywidgets"].startswith("ok") and "7.7" in lines["ipywidgets"], result.stdout
