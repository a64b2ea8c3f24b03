"""A real JupyterLab and a headless Chromium for the browser tests.

The ``jupyter_lab`` fixture starts one JupyterLab per test session (per xdist worker) on
127.0.0.1, a free port and a random token, serving a temporary copy of ``notebooks/`` and
``solutions/`` so that running cells never rewrites the project's files. Its configuration,
settings and workspaces live in the temporary folder as well: a person's own JupyterLab set-up
cannot change what the tests see, and a test may start a second server with an extension
disabled (``start_lab``) to prove that the widget assertions notice a missing front-end.

Chromium is Debian's package (``apt-get install chromium``), driven by Playwright for Python
through ``executable_path``; Playwright's own browser downloads are never used. Without a
Chromium binary every browser test is skipped with a reason that ``pytest -ra`` prints.

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
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "build" / "screenshots"
WIDGETS_MANAGER = "@jupyter-widgets/jupyterlab-manager"

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
    """A running JupyterLab: its URL, token, served folder and log file."""

    url: str
    token: str
    root_dir: Path
    log_path: Path
    process: subprocess.Popen | None = field(repr=False)

    def lab_url(self, path: str = "") -> str:
        """The browser URL that opens ``path`` (relative to the root dir) in JupyterLab.

        ``reset`` starts from an empty workspace, so tabs opened by an earlier test are not
        restored (each would start a kernel of its own).
        """
        tail = f"/tree/{path}" if path else ""
        return f"{self.url}/lab{tail}?reset&token={self.token}"

    def api(self, method: str, path: str):
        """Call the server's REST API; returns the decoded JSON reply (None when empty)."""
        request = urllib.request.Request(f"{self.url}/api/{path}", method=method)
        request.add_header("Authorization", f"token {self.token}")
        with urllib.request.urlopen(request, timeout=30) as reply:
            body = reply.read()
        return json.loads(body) if body else None

    def shutdown_kernels(self) -> None:
        """End every session (and its kernel), as closing the notebooks would."""
        for session in self.api("GET", "sessions"):
            self.api("DELETE", f"sessions/{session['id']}")

    def log_tail(self, n: int = 40) -> str:
        lines = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(lines[-n:])

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def start_lab(workdir: Path, disabled_extensions: list[str] = (), timeout: float = 180.0) -> LabServer:
    """Start JupyterLab serving ``workdir/root`` and wait until its REST API answers.

    ``workdir`` also receives the server's private config, settings, workspaces and runtime
    folders; ``disabled_extensions`` are switched off in its ``labconfig/page_config.json``
    exactly as ``jupyter labextension disable`` would do it.
    """
    root_dir = workdir / "root"
    root_dir.mkdir(parents=True, exist_ok=True)
    config_dir = workdir / "config"
    (config_dir / "labconfig").mkdir(parents=True, exist_ok=True)
    disabled = {name: True for name in [*ALWAYS_DISABLED, *disabled_extensions]}
    (config_dir / "labconfig" / "page_config.json").write_text(json.dumps({"disabledExtensions": disabled}))

    token = secrets.token_hex(16)
    port = _free_port()
    env = dict(os.environ)
    env.update(
        LABUTILS_BUDGET="ci",  # the small sizes: a "Run All" must finish in seconds
        JUPYTER_CONFIG_DIR=str(config_dir),
        JUPYTERLAB_SETTINGS_DIR=str(workdir / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(workdir / "workspaces"),
        JUPYTER_RUNTIME_DIR=str(workdir / "runtime"),
        PYTHONUNBUFFERED="1",
    )
    # The root conftest sets MPLBACKEND=Agg for unit tests; a kernel that inherits it would draw
    # nothing inline. ipykernel chooses the inline backend itself when the variable is unset.
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
    ]
    log_path = workdir / "jupyterlab.log"
    log = open(log_path, "w")  # noqa: SIM115 -- kept open for the server's lifetime
    # The kernels start in the notebook's folder; labutils is importable because the venv holds
    # it (editable install), exactly as for a student who ran `python3 course.py lab`.
    process = subprocess.Popen(cmd, cwd=root_dir, env=env, stdout=log, stderr=subprocess.STDOUT)
    server = LabServer(f"http://127.0.0.1:{port}", token, root_dir, log_path, process)
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with code {process.returncode}:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(f"{server.url}/api/status?token={token}", timeout=2) as reply:
                if reply.status == 200:
                    return server
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"JupyterLab did not answer within {timeout:.0f} s:\n{server.log_tail()}")
        time.sleep(0.3)


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
    """One JupyterLab for the session, serving a copy of the course notebooks.

    For quick iterations on these tests, ``python tests/browser/conftest.py`` starts a server
    that stays up and prints a JSON file name; with ``BROWSER_TESTS_LAB=<that file>`` the tests
    reuse that server (with whatever notebooks it had when it started) instead of starting one.
    """
    reuse = os.environ.get("BROWSER_TESTS_LAB")
    if reuse:
        info = json.loads(Path(reuse).read_text())
        yield LabServer(info["url"], info["token"], Path(info["root_dir"]), Path(info["log_path"]), process=None)
        return
    workdir = tmp_path_factory.mktemp("jupyterlab")
    copy_course_notebooks(workdir / "root")
    # BROWSER_TESTS_DISABLED_EXTENSIONS=@jupyter-widgets/jupyterlab-manager proves the widget
    # tests fail without the widgets front-end (comma-separated JupyterLab extension names).
    disabled = [x for x in os.environ.get("BROWSER_TESTS_DISABLED_EXTENSIONS", "").split(",") if x]
    server = start_lab(workdir, disabled_extensions=disabled)
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
        # Generous limits: a loaded 2-core CI machine can be slow; passing runs never wait them out.
        context.set_default_timeout(60_000)
        context.set_default_navigation_timeout(180_000)
        yield context
        context.close()


@pytest.fixture
def page(browser_context, jupyter_lab, request):
    """A fresh tab; console errors and uncaught exceptions are recorded on ``page.errors``.

    Afterwards the tab is closed (after a screenshot ``<test>-FAILED.png`` if the test failed)
    and the kernels it started are shut down.
    """
    tab = browser_context.new_page()
    tab.errors = []
    tab.on("console", lambda msg: tab.errors.append(f"console.{msg.type}: {msg.text}") if msg.type == "error" else None)
    tab.on("pageerror", lambda exc: tab.errors.append(f"pageerror: {exc}"))
    yield tab
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
        with contextlib.suppress(Exception):  # a screenshot must not hide the test's own failure
            tab.screenshot(path=str(SCREENSHOTS / f"{name}-FAILED.png"))
    tab.close()
    jupyter_lab.shutdown_kernels()


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
    path = Path(tempfile.mkdtemp(prefix="scratch-", dir=jupyter_lab.root_dir))
    return path


if __name__ == "__main__":
    # A long-lived server for developing these tests (see the jupyter_lab fixture).
    work = Path(tempfile.mkdtemp(prefix="browser-tests-lab-"))
    copy_course_notebooks(work / "root")
    lab = start_lab(work)
    info = {"url": lab.url, "token": lab.token, "root_dir": str(lab.root_dir), "log_path": str(lab.log_path)}
    (work / "lab.json").write_text(json.dumps(info))
    print(f"BROWSER_TESTS_LAB={work / 'lab.json'}  (pid {lab.process.pid}; Ctrl-C stops it)", flush=True)
    try:
        lab.process.wait()
    except KeyboardInterrupt:
        lab.stop()
