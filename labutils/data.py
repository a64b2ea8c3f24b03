"""The course texts: a registry, a verified download cache, Gutenberg stripping and splits.

``load_text("time_machine")`` is all a lab needs.  Behind it:

* ``REGISTRY`` records, for each text, its file name, address, size and sha256 (those of the
  course's reference copies) and a licence note.
* ``fetch(name)`` returns the path of a verified copy in the cache, downloading it if needed.
  pooch does the work: a progress bar, a timeout, retries, a download into a temporary file that
  is moved into place only once its sha256 matches -- so a killed or truncated download never
  leaves a file that later counts as valid.
* ``LABUTILS_DATA_MIRROR=/some/folder`` makes ``fetch`` copy from a local folder instead of the
  network (the same verification applies); CI points it at the course's offline copies.
* The cache is a per-user folder (pooch's ``os_cache``: ``~/.cache/labutils`` on Linux,
  ``~/Library/Caches/labutils`` on macOS, ``%LOCALAPPDATA%\\labutils\\labutils\\Cache`` on
  Windows), never the package's own folder, which may be read-only (a shared hub, a system
  install).  ``LABUTILS_DATA_DIR`` moves it.  A cache that already holds verified copies may be
  read-only; a filesystem error (a folder that cannot be created or written, a full disk) becomes a
  ``DataError`` that says where the cache is and how to move it.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

MIRROR_ENV = "LABUTILS_DATA_MIRROR"
CACHE_ENV = "LABUTILS_DATA_DIR"
ACCEPT_ENV = "LABUTILS_ACCEPT_CHANGED"
TIMEOUT_S = 30
RETRIES = 2

_PD = "Public domain in the USA."
_PG = "Project Gutenberg eBook; " + _PD + " Gutenberg's licence applies to redistribution under its trademark."


@dataclass(frozen=True)
class Text:
    """One course text.  ``size`` and ``sha256`` describe the course's reference copy."""

    name: str
    title: str
    filename: str
    url: str
    size: int
    sha256: str
    licence: str
    gutenberg_id: int | None = None
    strip: bool = True  # strip a Project Gutenberg header/footer when present


def _pg(name, title, gid, size, sha256):
    url = f"https://www.gutenberg.org/cache/epub/{gid}/pg{gid}.txt"
    return Text(name, title, f"pg{gid}.txt", url, size, sha256, _PG, gutenberg_id=gid)


REGISTRY: dict[str, Text] = {
    t.name: t
    for t in [
        _pg(
            "war_and_peace",
            "War and Peace (Leo Tolstoy, tr. Maude)",
            2600,
            3359396,
            "aa4a454fb73861c0c84c662ed1fa3ddd71bbd7a237783932c05d5f3b2cdd6718",
        ),
        _pg(
            "time_machine",
            "The Time Machine (H. G. Wells)",
            35,
            200870,
            "0359cedc583179f3e417605eb36efc1dc97b042a76ea67fac1e8c11109b0e2c9",
        ),
        _pg(
            "alice",
            "Alice's Adventures in Wonderland (Lewis Carroll)",
            11,
            151095,
            "f17aa0bf7466424a8b357b688678666bad7a0148963ef349016a3098faa6bd1e",
        ),
        _pg(
            "adventures_of_sherlock_holmes",
            "The Adventures of Sherlock Holmes (Arthur Conan Doyle)",
            1661,
            575796,
            "e21895308fe6da6919abc53e2cf77d81f914887897546153cc5d49b2eadefe50",
        ),
        _pg(
            "sign_of_the_four",
            "The Sign of the Four (Arthur Conan Doyle)",
            2097,
            236850,
            "1213c9ad08d95865f917b178e783b9980304a44949029141103076e376ffd71f",
        ),
        Text(
            "sherlock_canon",
            "The complete Sherlock Holmes canon (Arthur Conan Doyle)",
            "cano.txt",
            "https://sherlock-holm.es/stories/plain-text/cano.txt",
            3868219,
            "a402700fbf9140578927b0453ec9dc4a1f04be9029f259e752eafd9f59cefae3",
            _PD + " Collected as 'cano.txt' (collection version 3.1).",
            strip=False,
        ),
        Text(
            "tiny_shakespeare",
            "Tiny Shakespeare (Karpathy's char-rnn corpus)",
            "tinyshakespeare.txt",
            "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
            1115394,
            "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
            _PD + " Excerpts of Shakespeare's plays.",
            strip=False,
        ),
    ]
}


class DataError(RuntimeError):
    """A course text could not be provided; the message says why and what to do."""


def cache_dir() -> Path:
    """The folder holding verified downloads: ``$LABUTILS_DATA_DIR``, else the per-user cache."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    import pooch

    return Path(pooch.os_cache("labutils"))


def get_text(name: str) -> Text:
    if name not in REGISTRY:
        raise DataError(f"unknown text {name!r}; the course has: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _accepted_hash_file(text: Text, folder: Path) -> Path:
    return folder / f"{text.filename}.accepted-sha256"


def _known_hash(text: Text, folder: Path) -> str:
    """The sha256 to verify against: the registry's, unless the user accepted a changed file."""
    accepted = _accepted_hash_file(text, folder)
    if accepted.exists():
        return accepted.read_text().strip()
    return text.sha256


def _mirror_downloader(source: Path):
    """A pooch downloader that copies ``source`` (a file in the mirror folder) instead of the URL."""

    def copy(url, output_file, pooch):  # noqa: ARG001 - pooch's downloader signature
        if not source.exists():
            raise FileNotFoundError(source)
        with open(source, "rb") as src, open(output_file, "wb") as dst:
            shutil.copyfileobj(src, dst)

    return copy


def _http_downloader(text: Text, progress: bool):
    import pooch
    from tqdm.auto import tqdm

    bar = tqdm(total=text.size, unit="B", unit_scale=True, desc=text.filename, leave=False) if progress else False
    return pooch.HTTPDownloader(progressbar=bar, timeout=TIMEOUT_S)


def fetch(
    name: str,
    *,
    progress: bool = True,
    accept_changed: bool | None = None,
    url: str | None = None,
    retries: int = RETRIES,
) -> Path:
    """Return the path of a verified local copy of text ``name``, downloading it if needed.

    ``accept_changed=True`` (or ``LABUTILS_ACCEPT_CHANGED=1``) accepts an upstream file whose
    sha256 differs from the registry's and remembers its hash in the cache.  ``url`` overrides
    the registry's address (the tests use a local server).
    """
    import pooch
    import requests

    pooch.get_logger().setLevel("WARNING")  # we say where the file comes from ourselves
    text = get_text(name)
    folder = _cache_folder(text)
    if accept_changed is None:
        accept_changed = os.environ.get(ACCEPT_ENV, "") not in ("", "0")
    source_url = url or text.url
    mirror = os.environ.get(MIRROR_ENV)
    known = _known_hash(text, folder)
    fetcher = pooch.create(
        path=folder,
        base_url="",
        registry={text.filename: f"sha256:{known}"},
        urls={text.filename: source_url},
        retry_if_failed=retries,
    )
    downloader, where = _downloader(text, mirror, source_url, progress)
    try:
        return Path(fetcher.fetch(text.filename, downloader=downloader))
    except ValueError as exc:  # pooch: hash mismatch (a changed, truncated or corrupted file)
        if "hash" not in str(exc).lower():
            raise
        if accept_changed and not mirror:
            return _accept_changed(text, folder, source_url, progress)
        raise DataError(_changed_message(text, where, folder)) from None
    except requests.exceptions.RequestException as exc:
        raise DataError(_missing_message(text, where, folder, exc)) from None
    except OSError as exc:
        if _is_cache_error(exc, folder):
            raise DataError(_cache_message(text, folder, exc)) from None
        raise DataError(_missing_message(text, where, folder, exc)) from None


def _downloader(text: Text, mirror: str | None, source_url: str, progress: bool):
    """``(pooch downloader, where it reads from)``: the mirror folder when it holds the file, else the web."""
    if mirror and (Path(mirror) / text.filename).exists():
        return _mirror_downloader(Path(mirror) / text.filename), f"the mirror folder {mirror}"
    return _http_downloader(text, progress), source_url


def _cache_folder(text: Text) -> Path:
    """``cache_dir()``, created if needed; a ``DataError`` that says how to move it if it cannot be."""
    folder = cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(_cache_message(text, folder, exc)) from None
    return folder


def _accept_changed(text: Text, folder: Path, url: str, progress: bool) -> Path:
    import pooch

    try:
        path = Path(
            pooch.retrieve(
                url, known_hash=None, fname=text.filename, path=folder, downloader=_http_downloader(text, progress)
            )
        )
        _accepted_hash_file(text, folder).write_text(sha256_of(path) + "\n")
    except OSError as exc:
        raise DataError(_cache_message(text, folder, exc)) from None
    return path


# errno values that say "this folder cannot take the file", whichever file it was
_CACHE_ERRNOS = {getattr(errno, n, None) for n in ("EACCES", "EPERM", "EROFS", "ENOSPC", "EDQUOT", "ENOTDIR")} - {None}


def _is_cache_error(exc: OSError, folder: Path) -> bool:
    """Whether ``exc`` comes from writing into the cache rather than from reaching the source."""
    if exc.filename is not None:
        try:
            return Path(exc.filename).resolve().is_relative_to(folder.resolve())
        except (OSError, ValueError):
            return False
    return isinstance(exc, PermissionError) or exc.errno in _CACHE_ERRNOS


def _cache_message(text: Text, folder: Path, exc: OSError) -> str:
    return (
        f"Cannot save {text.filename} in the course's data cache {folder}: {type(exc).__name__}: {exc}\n"
        f"Point {CACHE_ENV} at a folder you can write to, for example in a terminal\n"
        f"    export {CACHE_ENV}=$HOME/rnn-course-data\n"
        f'or in a notebook, before the first text is loaded: import os; os.environ["{CACHE_ENV}"] = "/some/folder".\n'
        f"Copies already verified there are used as they are, so an instructor may also fill a shared, "
        f"read-only folder once (`python -m labutils download --all` with {CACHE_ENV} set) and point everyone at it."
    )


def _changed_message(text: Text, where: str, folder: Path) -> str:
    return (
        f"The copy of {text.filename} from {where} does not match the course's reference copy "
        f"(sha256 {text.sha256[:12]}..., {text.size:,} bytes), so nothing was saved.\n"
        "Either the download was cut short or corrupted -- run the same command again -- or the "
        "source has revised the file (Project Gutenberg does this from time to time).\n"
        "To use the revised text anyway (results may differ slightly from the course's), run\n"
        f"    python -m labutils download {text.name} --accept-changed\n"
        f"or set {ACCEPT_ENV}=1.  To use the course's copy, put it in {folder} or point "
        f"{MIRROR_ENV} at a folder that holds it."
    )


def _missing_message(text: Text, where: str, folder: Path, exc: Exception) -> str:
    return (
        f"Could not get {text.filename} ({text.title}) from {where}: {type(exc).__name__}: {exc}\n"
        f"Without a network, copy {text.filename} ({text.size:,} bytes, sha256 {text.sha256}) into\n"
        f"    {folder}\n"
        f"or set {MIRROR_ENV} to a folder that contains it; its address is {text.url}"
    )


# ------------------------------------------------------------------------- reading text
_START = re.compile(r"^\*\*\*\s*START OF (THE|THIS) PROJECT GUTENBERG EBOOK.*?\*\*\*[ \t]*$", re.M | re.I)
_END = re.compile(r"^\*\*\*\s*END OF (THE|THIS) PROJECT GUTENBERG EBOOK.*$", re.M | re.I)


def strip_gutenberg(text: str) -> str:
    """Return the body between Project Gutenberg's START and END marker lines.

    Text without the markers (a body-only copy) is returned unchanged, so the function is safe
    on both the course's copies and the files Gutenberg serves today.
    """
    start = _START.search(text)
    if start:
        text = text[start.end() :]
    end = _END.search(text)
    if end:
        text = text[: end.start()]
    if start or end:
        text = text.strip("\n")  # the blank lines around the body belong to the frame
    return text


def load_text(name: str, max_chars: int | None = None, *, progress: bool = True) -> str:
    """The text ``name`` as one string: verified, decoded, LF line ends, Gutenberg frame removed.

    Texts registered with ``strip=False`` (the Sherlock canon, Tiny Shakespeare) come exactly
    as distributed.  ``max_chars`` keeps only the first characters.
    """
    path = fetch(name, progress=progress)
    with open(path, encoding="utf-8-sig", newline="") as fh:  # utf-8-sig drops a BOM if present
        text = fh.read().replace("\r\n", "\n")
    if get_text(name).strip:
        text = strip_gutenberg(text)
    if max_chars is not None:
        if max_chars <= 0:
            raise ValueError(f"max_chars must be positive, got {max_chars}")
        text = text[:max_chars]
    return text


def train_val_split(text, val_fraction: float = 0.1):
    """Split a sequence into a training part and the held-out *last* ``val_fraction``.

    The two parts are contiguous and never overlap: ``train + val == text``.  Holding out the
    end (rather than random characters) keeps the validation text unseen as *context* too.
    """
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be between 0 and 1, got {val_fraction}")
    if len(text) < 2:
        raise ValueError("the text is too short to split: it needs at least 2 items")
    n_val = max(1, int(round(len(text) * val_fraction)))
    return text[:-n_val], text[-n_val:]


def download_all(names=None, *, progress: bool = True) -> dict[str, Path]:
    """Fetch several texts (default: all); return ``{name: path}``."""
    return {name: fetch(name, progress=progress) for name in (names or sorted(REGISTRY))}
