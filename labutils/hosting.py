"""Where the course lives online: one address, and everything built from it.

``pyproject.toml`` names the public GitHub repository that students use, once, as
``[project.urls] Repository = "https://github.com/OWNER/NAME"`` (``.../tree/BRANCH`` picks a
branch other than ``main``).  From that address come:

* the pip requirement that the first cell of every notebook installs on a kernel without
  ``labutils`` (Colab, a bare JupyterHub): an archive of the branch, so no git is needed;
* README's "Open in Colab" links, its Binder badge and its nbgitpuller link for a JupyterHub.

``python -m labutils hosted`` writes the first cell into every solution notebook and the links
into README.md (then ``python -m labutils generate`` carries the cell into ``notebooks/``);
``--check`` writes nothing and names what is out of date.
"""

from __future__ import annotations

import re
import sys
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLACEHOLDER_OWNER = "YOUR-GITHUB-ACCOUNT"  # what pyproject.toml says until an instructor sets it
INSTALL_ENV = "LABUTILS_INSTALL"  # overrides the setup cell's pip requirement (tests: a wheel)
SETUP_TAG = "hosted-setup"  # the cell tag that marks the setup cell

#: The hosting platform's Jupyter stack: the setup cell passes each installed one to pip as
#: ``name==its version``, so pip can add what labutils needs beside them but never replace one
#: (Colab warns that upgrading these can crash its runtime).
HELD = (
    "ipykernel",
    "ipython",
    "ipywidgets",
    "jupyter_client",
    "jupyter_server",
    "jupyterlab",
    "notebook",
    "prompt_toolkit",
    "pyzmq",
    "tornado",
)

_GITHUB = re.compile(r"^https://github\.com/([\w.-]+)/([\w.-]+?)(?:\.git)?(?:/tree/([\w./-]+?))?/?$")


@dataclass(frozen=True)
class Address:
    """A branch of a GitHub repository, and the links that lead students to it."""

    owner: str
    name: str
    branch: str = "main"

    @property
    def url(self) -> str:
        return f"https://github.com/{self.owner}/{self.name}"

    @property
    def is_placeholder(self) -> bool:
        return self.owner == PLACEHOLDER_OWNER

    @property
    def requirement(self) -> str:
        """What ``pip install`` takes: the branch's archive, built into a wheel on the spot."""
        return f"labutils @ {self.url}/archive/refs/heads/{self.branch}.zip"

    def colab_url(self, notebook: str) -> str:
        """Opens ``notebooks/<notebook>`` of the branch in Google Colab."""
        return (
            f"https://colab.research.google.com/github/{self.owner}/{self.name}/blob/{self.branch}/notebooks/{notebook}"
        )

    @property
    def binder_url(self) -> str:
        """Builds the repository on mybinder.org (binder/) and opens JupyterLab on notebooks/."""
        return f"https://mybinder.org/v2/gh/{self.owner}/{self.name}/{self.branch}?urlpath=lab/tree/notebooks"

    def nbgitpuller_url(self, hub: str = "https://YOUR-JUPYTERHUB") -> str:
        """A link that clones (later: updates) the repository into a hub user's home and opens lab 00."""
        query = urllib.parse.urlencode(
            {"repo": self.url, "branch": self.branch, "urlpath": f"lab/tree/{self.name}/notebooks/00_setup.ipynb"}
        )
        return f"{hub}/hub/user-redirect/git-pull?{query}"


def parse_address(url: str) -> Address:
    """``https://github.com/OWNER/NAME`` (optionally ``/tree/BRANCH``) as an ``Address``."""
    match = _GITHUB.match(url.strip())
    if not match:
        raise ValueError(
            f"the course's address {url!r} is not a GitHub repository address such as "
            "https://github.com/OWNER/NAME or https://github.com/OWNER/NAME/tree/BRANCH "
            "(Colab opens notebooks from GitHub only); fix [project.urls] Repository in pyproject.toml"
        )
    owner, name, branch = match.groups()
    return Address(owner, name, branch or "main")


def read_address(pyproject: Path = ROOT / "pyproject.toml") -> Address:
    """The address configured in ``pyproject.toml`` (``[project.urls] Repository``)."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib  # labutils[instructor] installs it there
    config = tomllib.loads(Path(pyproject).read_text(encoding="utf-8"))
    url = config.get("project", {}).get("urls", {}).get("Repository")
    if not url:
        raise ValueError(f"{pyproject} has no [project.urls] Repository: set it to the course's GitHub address")
    return parse_address(url)


def setup_cell_source(address: Address) -> str:
    """The first cell of every notebook: installs labutils where the kernel lacks it, else nothing."""
    return f"""\
# Colab or a JupyterHub: this cell installs the course's helper package, labutils, when this
# kernel does not have it. On your own set-up (python3 course.py lab) or on Binder it does nothing.
import importlib.util
import os
import sys

COURSE = "{address.requirement}"
HELD = "{" ".join(HELD)}"

if importlib.util.find_spec("labutils") is None:
    import contextlib
    import importlib.metadata
    import site
    import subprocess

    source = os.environ.get("{INSTALL_ENV}", COURSE)
    pins = []  # the platform's Jupyter stack stays as it is: pip may add packages beside it, never replace one
    for name in HELD.split():
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            pins.append(f"{{name}}=={{importlib.metadata.version(name)}}")
    print(f"Installing labutils from {{source}} ...")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", source, *pins], check=True)
    site.addsitedir(site.getusersitepackages())  # where pip puts it when the environment is read-only
    importlib.invalidate_caches()"""


# ------------------------------------------------------------------------------ README
README_BEGIN = "<!-- hosted-links: written by `python -m labutils hosted` from pyproject.toml; do not edit -->"
README_END = "<!-- end of hosted-links -->"
COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
BINDER_BADGE = "https://mybinder.org/badge_logo.svg"


def readme_links(address: Address, notebooks: list[str]) -> str:
    """The README block: a Binder badge, one "Open in Colab" link per lab, the nbgitpuller link."""
    lines = [README_BEGIN]
    if address.is_placeholder:
        lines.append(
            f"> **Instructors:** these links use the placeholder account `{PLACEHOLDER_OWNER}`. Set "
            "`[project.urls] Repository` in `pyproject.toml` to your fork, then run `python -m labutils hosted`."
        )
        lines.append("")
    lines.append(f"[![Binder]({BINDER_BADGE})]({address.binder_url}) JupyterLab on Binder, nothing to install")
    lines.append("")
    lines.append("| lab | Colab |")
    lines.append("|---|---|")
    for name in notebooks:
        lines.append(f"| `{Path(name).stem}` | [![Open In Colab]({COLAB_BADGE})]({address.colab_url(name)}) |")
    lines.append("")
    lines.append("On a JupyterHub with nbgitpuller, this link (with your hub's address) copies the labs into")
    lines.append("each student's home and opens lab 00; clicking it again later brings in updates:")
    lines.append("")
    lines.append("```text")
    lines.append(address.nbgitpuller_url())
    lines.append("```")
    lines.append(README_END)
    return "\n".join(lines)


def with_readme_links(readme: str, block: str) -> str:
    """``readme`` with its hosted-links block replaced by ``block``."""
    start, end = readme.find(README_BEGIN), readme.find(README_END)
    if start < 0 or end < start:
        raise ValueError(
            f"README.md has no hosted-links block: put the two lines\n{README_BEGIN}\n{README_END}\n"
            "where the Colab and Binder links should go"
        )
    return readme[:start] + block + readme[end + len(README_END) :]


def apply(root: Path = ROOT, *, check: bool = False) -> list[str]:
    """Put the setup cell first in every solution and the links into README.md.

    Returns what was out of date (``check=True`` writes nothing).  The solutions' other cells and
    stored outputs are kept; run ``python -m labutils generate`` afterwards.
    """
    import nbformat

    from .notebooks import ensure_setup_cell

    root = Path(root)
    address = read_address(root / "pyproject.toml")
    source = setup_cell_source(address)
    changed = []
    for path in sorted((root / "solutions").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        if ensure_setup_cell(nb, source):
            changed.append(f"solutions/{path.name}")
            if not check:
                nbformat.write(nb, path)
    readme = root / "README.md"
    notebooks = sorted(p.name for p in (root / "solutions").glob("*.ipynb"))  # notebooks/ mirrors them
    text = readme.read_text(encoding="utf-8")
    wanted = with_readme_links(text, readme_links(address, notebooks))
    if wanted != text:
        changed.append("README.md")
        if not check:
            readme.write_text(wanted, encoding="utf-8")
    return changed
