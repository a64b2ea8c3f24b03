"""A real JupyterLab and a headless Chromium for the browser tests.

The ``jupyter_lab`` fixture starts one JupyterLab per test session -- under pytest-xdist, one per
worker process, each on its own free port and temporary folder -- on 127.0.0.1 with a random
token, serving a temporary copy of ``notebooks/`` and ``solutions/`` so that running cells never
rewrites the project's files. Its configuration, settings and workspaces live in the temporary
folder as well: a person's own JupyterLab set-up cannot change what the tests see.

Chromium is Debian's package (``apt-get install chromium``), driven by Playwright for Python
through ``executable_path``; Playwright's own browser downloads are never used. Without a
Chromium binary or without Playwright every browser test is skipped with a reason that
``pytest -ra`` prints.

Loading JupyterLab's page costs tens of seconds on a busy 2-core machine, so one tab loads it
once per session and every test works in that tab (``page``): it opens its notebooks, and
afterwards they are closed and their kernels shut down. ``lab_tab(disabled=[...])`` loads a
second tab with front-end extensions switched off, for the test proving that the widget
assertions notice a missing widgets front-end.

Screenshots go to ``build/screenshots/`` (git-ignored) so that a person can look at them.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "build" / "screenshots"

# Chromium flags: no sandbox (CI runs as root in a container), no GPU, and nothing that phones
# home -- the CI machine is offline and every such request would only add noise and delay.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

# Plugins switched off in every test server. The news/update announcements would ask for
# permission in a toast and try to reach the internet; they are not part of what students use.
ALWAYS_DISABLED = ["@jupyterlab/apputils-extension:announcements"]

# JupyterLab user settings of every test server. Autosave is off: the tests never save, and an
# autosave (every 120 s by default) during a long test on a loaded machine once wrote the
# explorer's widget outputs into lab 07; the next test to open lab 07 then rendered widget views
# whose models no kernel held ("Error: widget model not found" in the console).
USER_SETTINGS = {"@jupyterlab/docmanager-extension/plugin": {"autosave": False}}

# Limits (milliseconds) for a loaded 2-core CI machine; a passing run never waits them out.
PAGE_LOAD_MS = 240_000
DEFAULT_MS = 60_000


def pytest_collection_modifyitems(items):
    """Every test in this folder drives a browser: mark it so ``-m "not browser"`` skips them."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the item so that fixtures can tell whether the test failed."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


def chromium_executable() -> str | None:
    """Debian's Chromium, or ``chromium`` found on PATH; None when neither exists."""
    for candidate in ("/usr/bin/chromium", shutil.which("chromium")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LabServer:
    """A running JupyterLab: its URL, token, served folder, private config folder and log file."""

    url: str
    token: str
    root_dir: Path
    config_dir: Path
    log_path: Path
    process: subprocess.Popen | None = field(repr=False)

    def lab_url(self) -> str:
        """The browser URL of JupyterLab in a workspace of its own, new and therefore empty.

        A tab of its own workspace restores no document of another tab, and JupyterLab does
        not reload it into an ``auto-*`` workspace as it does a second tab of one workspace.
        """
        return f"{self.url}/lab/workspaces/tests-{secrets.token_hex(4)}?token={self.token}"

    def api(self, method: str, path: str):
        """Call the server's REST API; returns the decoded JSON reply (None when empty)."""
        request = urllib.request.Request(f"{self.url}/api/{path}", method=method)
        request.add_header("Authorization", f"token {self.token}")
        with urllib.request.urlopen(request, timeout=60) as reply:
            body = reply.read()
        return json.loads(body) if body else None

    def shutdown_kernels(self, wait: bool = True) -> None:
        """End every session (and its kernel), as closing the notebooks and their kernels would.

        ``wait=False`` asks for it in a background thread: a kernel takes seconds to stop on a
        loaded machine, and the next test need not wait for that.
        """

        ids = [session["id"] for session in self.api("GET", "sessions")]  # now, not those of the next test

        def shutdown():
            for session_id in ids:
                with contextlib.suppress(OSError):  # already gone, or the server stopped meanwhile
                    self.api("DELETE", f"sessions/{session_id}")

        if wait:
            shutdown()
        else:
            threading.Thread(target=shutdown, name="shutdown-kernels", daemon=True).start()

    def set_disabled_extensions(self, names) -> None:
        """Write ``labconfig/page_config.json`` as ``jupyter labextension disable`` would.

        The server reads this file whenever it serves the JupyterLab page, so it applies to
        tabs loaded afterwards; tabs already open keep the extensions they loaded.
        """
        labconfig = self.config_dir / "labconfig"
        labconfig.mkdir(parents=True, exist_ok=True)
        disabled = {name: True for name in [*ALWAYS_DISABLED, *names]}
        (labconfig / "page_config.json").write_text(json.dumps({"disabledExtensions": disabled}))

    def wait_ready(self, timeout: float = 240.0) -> None:
        """Wait until the server's REST API answers (it has been started by ``start_lab``)."""
        deadline = time.monotonic() + timeout
        while True:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with code {self.process.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/status?token={self.token}", timeout=5) as reply:
                    if reply.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"JupyterLab did not answer within {timeout:.0f} s:\n{self.log_tail()}")
            time.sleep(0.3)

    def log_tail(self, n: int = 40) -> str:
        lines = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(lines[-n:])

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def write_user_settings(settings_dir: Path, settings: dict[str, dict]) -> None:
    """Write ``{plugin id: {setting: value}}`` where JupyterLab's settings editor would."""
    for plugin, values in settings.items():
        path = settings_dir / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


def start_lab(workdir: Path, disabled_extensions=(), wait: bool = True) -> LabServer:
    """Start JupyterLab serving ``workdir/root``; with ``wait``, wait until its REST API answers.

    ``workdir`` also receives the server's private config, settings, workspaces and runtime
    folders; ``disabled_extensions`` are switched off (``LabServer.set_disabled_extensions``).
    Without ``wait``, call ``server.wait_ready()`` before using it.
    """
    root_dir = workdir / "root"
    root_dir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(16)
    port = _free_port()
    log_path = workdir / "jupyterlab.log"
    server = LabServer(f"http://127.0.0.1:{port}", token, root_dir, workdir / "config", log_path, None)
    server.set_disabled_extensions(disabled_extensions)
    write_user_settings(workdir / "settings", USER_SETTINGS)

    env = dict(os.environ)
    env.update(
        LABUTILS_BUDGET="ci",  # the small sizes: running a lab's cells must take seconds
        JUPYTER_CONFIG_DIR=str(server.config_dir),
        JUPYTERLAB_SETTINGS_DIR=str(workdir / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(workdir / "workspaces"),
        JUPYTER_RUNTIME_DIR=str(workdir / "runtime"),
        PYTHONUNBUFFERED="1",
        # One PyTorch thread per kernel: the kernel shares the machine with Chromium and the
        # server, and on a busy 2-core machine two spinning OpenMP threads make a small model
        # train many times slower (a 16-unit GRU's forward pass: about 1 ms with one thread,
        # 50-200 ms with two, measured on the CI-sized VM under load).
        OMP_NUM_THREADS="1",
    )
    # A kernel that inherits MPLBACKEND=Agg would draw nothing inline; ipykernel chooses its
    # inline backend itself when the variable is unset.
    env.pop("MPLBACKEND", None)
    # LABUTILS_DATA_MIRROR (the offline texts) passes through unchanged from the environment.
    cmd = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--no-browser",
        "--allow-root",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.token={token}",
        f"--ServerApp.root_dir={root_dir}",
        "--ServerApp.open_browser=False",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        # window.jupyterapp: the tests open and close documents through JupyterLab's own
        # commands (what the file browser does on a double click) instead of reloading the page.
        "--LabApp.expose_app_in_browser=True",
    ]
    log = open(log_path, "w")  # noqa: SIM115 -- kept open for the server's lifetime
    # The kernels start in the notebook's folder; labutils is importable because the venv holds
    # it (editable install), exactly as for a student who ran `python3 course.py lab`.
    server.process = subprocess.Popen(cmd, cwd=root_dir, env=env, stdout=log, stderr=subprocess.STDOUT)
    if wait:
        server.wait_ready()
    return server


def copy_course_notebooks(root_dir: Path) -> None:
    """Copy notebooks/ and solutions/ (notebooks only, no checkpoints) under ``root_dir``."""
    for folder in ("notebooks", "solutions"):
        src = ROOT / folder
        if src.is_dir():
            shutil.copytree(src, root_dir / folder, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = chromium_executable()
    if path is None:
        pytest.skip("Chromium not installed (apt-get install chromium): browser tests need /usr/bin/chromium")
    return path


@pytest.fixture(scope="session")
def jupyter_lab(chromium_path, tmp_path_factory):
    """One JupyterLab for the session (per xdist worker), serving a copy of the course notebooks.

    For quick iterations on these tests, ``python tests/browser/conftest.py`` starts a server
    that stays up and prints a JSON file name; with ``BROWSER_TESTS_LAB=<that file>`` the tests
    reuse that server (with whatever notebooks it had when it started) instead of starting one.
    """
    reuse = os.environ.get("BROWSER_TESTS_LAB")
    if reuse:
        info = json.loads(Path(reuse).read_text())
        paths = {k: Path(info[k]) for k in ("root_dir", "config_dir", "log_path")}
        yield LabServer(info["url"], info["token"], process=None, **paths)
        return
    workdir = tmp_path_factory.mktemp("jupyterlab")
    copy_course_notebooks(workdir / "root")
    # BROWSER_TESTS_DISABLED_EXTENSIONS=@jupyter-widgets/jupyterlab-manager runs the whole suite
    # without the widgets front-end (comma-separated JupyterLab extension names): the widget
    # tests must then fail. Only this temporary server is affected.
    disabled = [x for x in os.environ.get("BROWSER_TESTS_DISABLED_EXTENSIONS", "").split(",") if x]
    # Not waiting here: Chromium starts meanwhile (browser_context); _lab_tab waits for both.
    server = start_lab(workdir, disabled_extensions=disabled, wait=False)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser_context(chromium_path, tmp_path_factory):
    """Headless Debian Chromium with a fresh profile, driven by Playwright."""
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is a dev dependency (pip install -e .[dev])"
    )
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile),
            executable_path=chromium_path,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000},
        )
        context.set_default_timeout(DEFAULT_MS)
        context.set_default_navigation_timeout(PAGE_LOAD_MS)
        yield context
        context.close()


def _record_errors(tab) -> None:
    """Collect console errors and uncaught exceptions of ``tab`` in ``tab.errors``."""
    tab.errors = []
    tab.on("console", lambda msg: tab.errors.append(f"console.error: {msg.text}") if msg.type == "error" else None)
    tab.on("pageerror", lambda exc: tab.errors.append(f"pageerror: {exc}"))


def load_lab(tab, server: LabServer) -> None:
    """Load JupyterLab in ``tab`` and wait until the application has started and restored."""
    from labpage import wait_app_ready  # the tests' page helpers, next to this file

    tab.goto(server.lab_url(), wait_until="domcontentloaded")
    wait_app_ready(tab, timeout=PAGE_LOAD_MS)


@pytest.fixture(scope="session")
def _lab_tab(jupyter_lab, browser_context):
    """The tab that loads JupyterLab once for the whole session."""
    tab = browser_context.new_page()
    _record_errors(tab)
    jupyter_lab.wait_ready()
    load_lab(tab, jupyter_lab)
    yield tab
    tab.close()


@pytest.fixture
def page(_lab_tab, jupyter_lab, request):
    """The JupyterLab tab, with an empty main area and ``page.errors`` holding this test's errors.

    Afterwards (with a screenshot ``<test>-FAILED.png`` if the test failed) every open document
    is closed without saving and every kernel is shut down.
    """
    from labpage import close_all_documents

    close_all_documents(_lab_tab)
    _lab_tab.errors.clear()
    before = _notebook_stamps(jupyter_lab.root_dir)
    yield _lab_tab
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
        with contextlib.suppress(Exception):  # a screenshot must not hide the test's own failure
            _lab_tab.screenshot(path=str(SCREENSHOTS / f"{name}-FAILED.png"))
    close_all_documents(_lab_tab)
    jupyter_lab.shutdown_kernels(wait=False)
    after = _notebook_stamps(jupyter_lab.root_dir)
    changed = sorted(path for path, stamp in before.items() if after.get(path, stamp) != stamp)
    assert not changed, (
        f"the test left these served notebooks changed on disk (tests never save; a saved copy "
        f"with outputs would be what the next test opens): {changed}"
    )


def _notebook_stamps(root: Path) -> dict[str, tuple[int, int]]:
    """(size, mtime in ns) of every notebook under ``root`` (checkpoints aside), by relative path."""
    stamps = {}
    for path in root.rglob("*.ipynb"):
        if ".ipynb_checkpoints" in path.parts:
            continue
        with contextlib.suppress(OSError):  # a scratch notebook removed meanwhile
            stat = path.stat()
            stamps[str(path.relative_to(root))] = (stat.st_size, stat.st_mtime_ns)
    return stamps


@pytest.fixture
def lab_tab(jupyter_lab, browser_context):
    """``with lab_tab(disabled=[...]) as tab:`` a second JupyterLab tab without those extensions.

    The server's page config names them only while the tab loads and is restored right after
    (also when loading fails), so the session's main tab and later tests are not affected.
    """

    @contextlib.contextmanager
    def open_tab(disabled=()):
        tab = browser_context.new_page()
        _record_errors(tab)
        jupyter_lab.wait_ready()
        try:
            jupyter_lab.set_disabled_extensions(disabled)
            try:
                load_lab(tab, jupyter_lab)
            finally:
                jupyter_lab.set_disabled_extensions(_session_disabled())
            yield tab
        finally:
            with contextlib.suppress(Exception):
                tab.close()
            jupyter_lab.shutdown_kernels(wait=False)

    return open_tab


def _session_disabled() -> list[str]:
    return [x for x in os.environ.get("BROWSER_TESTS_DISABLED_EXTENSIONS", "").split(",") if x]


@pytest.fixture
def shoot(request):
    """``shoot(page, "step")`` saves build/screenshots/<test name>-<NN>-<step>.png and returns the path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    for old in SCREENSHOTS.glob(f"{name}-*.png"):
        old.unlink()
    counter = iter(range(1, 100))

    def save(tab, step: str, **kw) -> Path:
        path = SCREENSHOTS / f"{name}-{next(counter):02d}-{step}.png"
        tab.screenshot(path=str(path), **kw)
        return path

    return save


@pytest.fixture
def scratch_dir(jupyter_lab) -> Path:
    """A fresh folder inside the served root for notebooks a test writes itself."""
    return Path(tempfile.mkdtemp(prefix="scratch-", dir=jupyter_lab.root_dir))


if __name__ == "__main__":
    # A long-lived server for developing these tests (see the jupyter_lab fixture).
    work = Path(tempfile.mkdtemp(prefix="browser-tests-lab-"))
    copy_course_notebooks(work / "root")
    lab = start_lab(work)
    info = {
        "url": lab.url,
        "token": lab.token,
        "root_dir": str(lab.root_dir),
        "config_dir": str(lab.config_dir),
        "log_path": str(lab.log_path),
    }
    (work / "lab.json").write_text(json.dumps(info))
    print(f"BROWSER_TESTS_LAB={work / 'lab.json'}  (pid {lab.process.pid}; Ctrl-C stops it)", flush=True)
    try:
        lab.process.wait()
    except KeyboardInterrupt:
        lab.stop()
