"""The sandbox every submission runs in: bubblewrap (``bwrap``), an existing, audited tool.

``Sandbox.wrap(argv, scratch)`` turns a command into one that runs under ``bwrap`` with

* its own PID, network, IPC, UTS and cgroup namespaces (``--unshare-all``): it sees and can
  signal only its own processes, and has no network but its own loopback;
* ``--die-with-parent`` and ``--new-session``: it dies with the grader, and cannot reach the
  grader's terminal;
* no capabilities (bwrap drops them all, also when the grader runs as root);
* a file system made of read-only views of only what Python needs -- the system's ``/usr``
  and libraries, the Python installation and the virtual environment, the ``labutils``
  package with ``labutils/checks/judges/`` hidden under an empty read-only folder, the data
  cache, a few files of ``/etc`` -- plus the job's own scratch folder, the one place it can
  write (``/tmp`` is a folder inside it).  Nothing else exists in there: not ``solutions/``,
  not the other submissions, not the grader's output or working folder;
* an environment built from nothing (``--clearenv``) but what the job passes.

``find_bwrap()`` says whether the tool is there and works; the grader refuses to run without
it unless told ``--unsafe-no-sandbox``.
"""

from __future__ import annotations

import functools
import os
import shutil
import site
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

#: Files of /etc a Python process may read (the dynamic linker's cache, names of users and
#: time zones); never all of /etc, which holds secrets that root may read.
ETC_FILES = (
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/localtime",
    "/etc/nsswitch.conf",
    "/etc/passwd",
    "/etc/group",
    "/etc/hosts",
    "/etc/mime.types",
)
SHM_MB = 64  # the sandbox's /dev/shm, a tmpfs whose pages would otherwise count towards no limit
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
INSTALL_HINT = (
    "install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap; Fedora: dnf install bubblewrap), "
    "or, only for submissions you trust, pass --unsafe-no-sandbox"
)


class SandboxUnavailable(RuntimeError):
    """bwrap is missing or cannot create namespaces here (the message says what to do)."""


@functools.lru_cache(maxsize=1)
def find_bwrap() -> str:
    """The path of a working ``bwrap``; raises ``SandboxUnavailable`` naming the problem."""
    path = shutil.which("bwrap") or ("/usr/bin/bwrap" if os.access("/usr/bin/bwrap", os.X_OK) else None)
    if path is None:
        raise SandboxUnavailable(f"no sandbox tool: bwrap is not installed; {INSTALL_HINT}")
    probe = [path, "--unshare-all", "--die-with-parent", *_system_binds(), "--proc", "/proc", "--", "/bin/true"]
    try:
        done = subprocess.run(probe, capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SandboxUnavailable(f"bwrap does not run here ({exc}); {INSTALL_HINT}") from None
    if done.returncode != 0:
        why = done.stderr.decode("utf-8", "replace").strip()[:300]
        raise SandboxUnavailable(
            f"bwrap cannot create a sandbox on this machine ({why}); user namespaces may be disabled "
            f"(sysctl kernel.unprivileged_userns_clone=1 or run as root); {INSTALL_HINT}"
        )
    return path


@functools.lru_cache(maxsize=4)
def _size(bwrap: str, megabytes: int) -> tuple[str, ...]:
    """``--size`` for the next ``--tmpfs`` where this bwrap has it (0.7 and later), else nothing."""
    try:
        usage = subprocess.run([bwrap, "--help"], capture_output=True, text=True, timeout=30, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ()
    return ("--size", str(megabytes * 2**20)) if "--size" in usage else ()


def _system_binds() -> list[str]:
    """Read-only views of the system folders, keeping a merged /usr's links as links."""
    args: list[str] = []
    for folder in SYSTEM_DIRS:
        if os.path.islink(folder):
            args += ["--symlink", os.readlink(folder), folder]
        elif os.path.isdir(folder):
            args += ["--ro-bind", folder, folder]
    return args


def python_roots() -> list[Path]:
    """Folders the Python running the grader imports from, without the source tree around labutils.

    The installation (``sys.base_prefix``), the environment (``sys.prefix``) and every
    ``site-packages`` folder on ``sys.path``; not the working folder or ``PYTHONPATH`` entries,
    which may be a checkout holding ``solutions/``.
    """
    roots = {Path(sys.base_prefix), Path(sys.prefix), Path(sys.exec_prefix)}
    roots |= {Path(sys.executable).resolve().parent.parent}
    for entry in [*sys.path, *site.getsitepackages(), site.getusersitepackages()]:
        if entry and Path(entry).name in ("site-packages", "dist-packages") and Path(entry).is_dir():
            roots.add(Path(entry))
    resolved = {p.resolve() for p in roots if p.exists()} | {p for p in roots if p.exists()}
    return sorted(resolved)


@dataclass
class Sandbox:
    """What every job's sandbox shows: read-only folders and files, hidden folders, the environment.

    ``readonly``: paths shown read-only at the same place; ``hidden``: folders inside those
    replaced by an empty read-only folder (the judges); ``env``: the whole environment.
    """

    bwrap: str
    readonly: list[Path] = field(default_factory=list)
    hidden: list[Path] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

    def wrap(self, argv: list[str], scratch: Path, cwd: Path) -> list[str]:
        """``argv`` as a command that runs in the sandbox; ``scratch`` is its only writable folder."""
        scratch = Path(scratch)
        (scratch / "tmp").mkdir(exist_ok=True)
        args = [self.bwrap, "--unshare-all", "--die-with-parent", "--new-session", *_system_binds()]
        for path in ETC_FILES:
            args += ["--ro-bind-try", path, path]
        args += ["--proc", "/proc", "--dev", "/dev", *_size(self.bwrap, SHM_MB), "--tmpfs", "/dev/shm"]
        # /tmp, then the scratch folder (which may lie under the host's /tmp), then the read-only
        # views (labutils or the environment may too): a later mount shadows an earlier one.
        args += ["--bind", str(scratch / "tmp"), "/tmp", "--bind", str(scratch), str(scratch)]
        for path in self.readonly:
            args += ["--ro-bind", str(path), str(path)]
        for path in self.hidden:
            args += ["--tmpfs", str(path), "--remount-ro", str(path)]
        args += ["--chdir", str(cwd), "--clearenv"]
        for key, value in sorted(self.env.items()):
            args += ["--setenv", key, value]
        return [*args, "--", *argv]


def _module_root(name: str) -> tuple[Path, Path]:
    """(what to show, the folder to put on ``PYTHONPATH``) for an importable module ``name``."""
    import importlib

    module = sys.modules.get(name) or importlib.import_module(name)
    origin = Path(module.__file__).resolve()
    shown = origin.parent if origin.name == "__init__.py" else origin
    root = shown.parent
    for _ in name.split(".")[1:]:
        root = root.parent
    return shown, root


def sandbox_for(bwrap: str, modules: list[str], env: dict[str, str]) -> Sandbox:
    """The sandbox of a grading run: Python, ``labutils`` without its judges, the check modules, the data.

    ``modules`` are the modules that register the graded checks: those outside ``labutils`` (a
    course's own checks) are shown one file or package each.  ``env`` is the jobs' environment;
    ``PATH``, ``HOME``, ``PYTHONPATH`` and the data cache's ``LABUTILS_DATA_DIR`` are added.
    """
    import labutils
    from labutils.data import cache_dir

    package = Path(labutils.__file__).resolve().parent
    readonly, pythonpath = [*python_roots(), package], [package.parent]
    for name in modules:
        if name.split(".")[0] != "labutils":
            shown, root = _module_root(name)
            readonly.append(shown)
            pythonpath.append(root)
    cache = cache_dir().expanduser().resolve()
    if cache.is_dir():
        readonly.append(cache)
    env = dict(env)
    env |= {
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"]),
        "HOME": "/tmp",
        "USER": "student",
        "LANG": "C.UTF-8",
        "MPLCONFIGDIR": "/tmp/matplotlib",
        "PYTHONPATH": os.pathsep.join(dict.fromkeys(str(p) for p in pythonpath)),
        "LABUTILS_DATA_DIR": str(cache),
    }
    readonly = sorted(dict.fromkeys(readonly), key=lambda p: len(p.parts))
    return Sandbox(bwrap, readonly=readonly, hidden=[package / "checks" / "judges"], env=env)
