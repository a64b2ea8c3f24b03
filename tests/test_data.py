"""labutils.data: verified downloads (against a real HTTP server on 127.0.0.1), mirror, stripping, splits."""

import hashlib
import http.server
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from labutils import data
from labutils.data import DataError, Text

ROOT = Path(__file__).resolve().parent.parent
BODY = ("It was the best of times, it was the worst of times.\n" * 200).encode()


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves /good.txt whole, /corrupt.txt with one byte changed, /truncated.txt cut in half."""

    def do_GET(self):  # noqa: N802 - http.server's name
        self.server.hits[self.path] = self.server.hits.get(self.path, 0) + 1
        if self.path == "/good.txt":
            payload, length = BODY, len(BODY)
        elif self.path == "/corrupt.txt":
            payload = bytearray(BODY)
            payload[100] ^= 0xFF
            payload, length = bytes(payload), len(BODY)
        elif self.path == "/truncated.txt":
            payload, length = BODY[: len(BODY) // 2], len(BODY)  # promises more than it sends
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        self.wfile.write(payload)
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args):  # keep test output quiet
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.hits = {}
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def tiny(monkeypatch, tmp_path, server):
    """Register a small text served by the local server; the cache and no mirror in tmp."""
    monkeypatch.setenv(data.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(data.MIRROR_ENV, raising=False)
    monkeypatch.delenv(data.ACCEPT_ENV, raising=False)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    text = Text(
        "tiny",
        "A tiny text",
        "tiny.txt",
        f"{base}/good.txt",
        len(BODY),
        hashlib.sha256(BODY).hexdigest(),
        "test data",
        strip=False,
    )
    monkeypatch.setitem(data.REGISTRY, "tiny", text)
    return base


def test_download_verifies_and_caches(tiny, tmp_path, server):
    path = data.fetch("tiny", progress=False, retries=0)
    assert path == tmp_path / "cache" / "tiny.txt"
    assert path.read_bytes() == BODY
    data.fetch("tiny", progress=False, retries=0)  # second call: served from the cache
    assert server.hits["/good.txt"] == 1


def test_truncated_download_fails_clearly_and_caches_nothing(tiny, tmp_path):
    with pytest.raises(DataError) as info:
        data.fetch("tiny", url=f"{tiny}/truncated.txt", progress=False, retries=1)
    assert "tiny.txt" in str(info.value)
    assert not any((tmp_path / "cache").iterdir()), "a failed download left a file in the cache"


def test_corrupted_download_says_file_changed_and_how_to_proceed(tiny, tmp_path):
    with pytest.raises(DataError) as info:
        data.fetch("tiny", url=f"{tiny}/corrupt.txt", progress=False, retries=0)
    message = str(info.value)
    assert "does not match" in message and "--accept-changed" in message and data.MIRROR_ENV in message
    assert not (tmp_path / "cache" / "tiny.txt").exists()


def test_accept_changed_keeps_the_new_file_and_remembers_its_hash(tiny, tmp_path):
    path = data.fetch("tiny", url=f"{tiny}/corrupt.txt", progress=False, retries=0, accept_changed=True)
    assert path.read_bytes() != BODY
    # Later fetches verify against the accepted hash instead of downloading again.
    assert data.fetch("tiny", url=f"{tiny}/corrupt.txt", progress=False, retries=0) == path


def test_no_network_and_no_mirror_names_the_file_and_where_to_put_it(tiny, tmp_path):
    with pytest.raises(DataError) as info:
        data.fetch("tiny", url="http://127.0.0.1:9/tiny.txt", progress=False, retries=0)
    message = str(info.value)
    assert "tiny.txt" in message and str(tmp_path / "cache") in message and data.MIRROR_ENV in message


def test_mirror_is_used_and_verified(tiny, tmp_path, monkeypatch, server):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "tiny.txt").write_bytes(BODY)
    monkeypatch.setenv(data.MIRROR_ENV, str(mirror))
    assert data.fetch("tiny", progress=False).read_bytes() == BODY
    assert not server.hits, "the mirror was set but the network was used"


def test_corrupt_mirror_file_is_refused(tiny, tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "tiny.txt").write_bytes(BODY[:-1])
    monkeypatch.setenv(data.MIRROR_ENV, str(mirror))
    with pytest.raises(DataError, match="does not match"):
        data.fetch("tiny", progress=False)
    assert not (tmp_path / "cache" / "tiny.txt").exists()


def test_a_corrupted_cache_file_is_replaced(tiny, tmp_path):
    cached = data.fetch("tiny", progress=False, retries=0)
    cached.write_bytes(b"garbage")
    assert data.fetch("tiny", progress=False, retries=0).read_bytes() == BODY


def test_unknown_text_lists_the_known_ones():
    with pytest.raises(DataError, match="time_machine"):
        data.fetch("no_such_book")


@pytest.mark.parametrize(
    "raw",
    [
        "Title: X\r\n*** START OF THE PROJECT GUTENBERG EBOOK X ***\r\n\r\nBody line.\r\nMore.\r\n\r\n"
        "*** END OF THE PROJECT GUTENBERG EBOOK X ***\r\nLicence...",
        "header\n*** START OF THIS PROJECT GUTENBERG EBOOK X ***\nBody line.\nMore.\n"
        "*** END OF THIS PROJECT GUTENBERG EBOOK X ***\n",
    ],
)
def test_strip_gutenberg_keeps_only_the_body(raw):
    assert data.strip_gutenberg(raw.replace("\r\n", "\n")) == "Body line.\nMore."


def test_strip_gutenberg_leaves_body_only_text_alone():
    assert data.strip_gutenberg("Just a book.\n") == "Just a book.\n"


def test_split_is_contiguous_and_disjoint():
    text = "abcdefghij" * 10
    train, val = data.train_val_split(text, 0.1)
    assert train + val == text and len(val) == 10
    with pytest.raises(ValueError):
        data.train_val_split(text, 1.5)


@pytest.mark.parametrize(
    "name, n_chars, n_distinct",
    [  # facts from ../shared/data/MANIFEST.md, measured independently of this code
        ("war_and_peace", 3_208_272, 104),
        ("time_machine", 179_692, 75),
        ("sherlock_canon", 3_868_118, 97),
        ("tiny_shakespeare", 1_115_394, 65),
    ],
)
def test_load_text_matches_the_manifest(mirror, monkeypatch, tmp_path, name, n_chars, n_distinct):
    monkeypatch.setenv(data.CACHE_ENV, str(tmp_path))
    text = data.load_text(name, progress=False)
    assert (len(text), len(set(text))) == (n_chars, n_distinct)
    assert "PROJECT GUTENBERG" not in text[:2000].upper()
    assert data.load_text(name, max_chars=1000, progress=False) == text[:1000]


def test_registry_matches_the_mirror(mirror):
    for text in data.REGISTRY.values():
        path = Path(mirror) / text.filename
        assert path.stat().st_size == text.size, text.name
        assert data.sha256_of(path) == text.sha256, text.name


# ------------------------------------------------------------------- where the cache lives
def test_default_cache_is_per_user_not_beside_the_package(monkeypatch, tmp_path):
    monkeypatch.delenv(data.CACHE_ENV, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    folder = data.cache_dir()
    package = Path(data.__file__).resolve().parent.parent
    assert not folder.resolve().is_relative_to(package), f"{folder} is inside the course folder {package}"
    assert folder == __import__("pooch").os_cache("labutils")
    if sys.platform.startswith("linux"):
        assert folder == tmp_path / "xdg" / "labutils"
    monkeypatch.setenv(data.CACHE_ENV, str(tmp_path / "elsewhere"))
    assert data.cache_dir() == tmp_path / "elsewhere"


def test_a_cache_that_cannot_be_created_gives_a_data_error_that_says_how_to_move_it(tiny, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv(data.CACHE_ENV, str(blocker / "cache"))  # fails for root too: a file is in the way
    with pytest.raises(DataError) as info:
        data.fetch("tiny", progress=False, retries=0)
    message = str(info.value)
    assert str(blocker / "cache") in message and data.CACHE_ENV in message and "NotADirectoryError" in message


def _in_read_only(folder: Path, code: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a Python whose view of ``folder`` is a read-only mount (root included)."""
    env = {**os.environ, data.CACHE_ENV: str(folder), "PYTHONPATH": str(ROOT)}
    env.pop(data.MIRROR_ENV, None)
    cmd = ["bwrap", "--dev-bind", "/", "/", "--ro-bind", str(folder), str(folder), sys.executable, "-c", code]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap (apt-get install bubblewrap)")
def test_a_read_only_cache_serves_verified_copies_and_explains_a_missing_one(tiny, tmp_path):
    full, empty = tmp_path / "full", tmp_path / "empty"
    empty.mkdir()
    (full / "tiny.txt").parent.mkdir()
    (full / "tiny.txt").write_bytes(BODY)
    register = (
        "from labutils import data; "
        f"data.REGISTRY['tiny'] = data.Text('tiny', 'A tiny text', 'tiny.txt', {data.REGISTRY['tiny'].url!r}, "
        f"{len(BODY)}, {hashlib.sha256(BODY).hexdigest()!r}, 'test data', strip=False)\n"
    )
    served = _in_read_only(full, register + "print(len(data.load_text('tiny', progress=False)))")
    assert served.returncode == 0 and served.stdout.strip() == str(len(BODY)), served.stderr
    refused = _in_read_only(empty, register + "data.fetch('tiny', progress=False, retries=0)")
    assert refused.returncode != 0 and "DataError: Cannot save tiny.txt" in refused.stderr, refused.stderr[-800:]
    assert "Read-only file system" in refused.stderr and data.CACHE_ENV in refused.stderr
