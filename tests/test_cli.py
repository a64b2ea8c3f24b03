"""The command line: download from the mirror, then the doctor reports every check passing."""

import os
import subprocess
import sys
from pathlib import Path

from labutils import data
from labutils.doctor import run_doctor

ROOT = Path(__file__).resolve().parent.parent


def _cli(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "labutils", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=600,
    )


def test_download_all_fills_the_cache_then_doctor_is_happy(mirror, tmp_path, monkeypatch, capsys):
    env = {data.CACHE_ENV: str(tmp_path / "cache"), data.MIRROR_ENV: str(mirror)}
    monkeypatch.setenv(data.CACHE_ENV, env[data.CACHE_ENV])
    assert run_doctor() == 1 and "not downloaded" in capsys.readouterr().out  # nothing cached yet (in process: cheaper)
    result = _cli("download", "--all", env=env)
    assert result.returncode == 0, result.stderr
    for text in data.REGISTRY.values():
        cached = tmp_path / "cache" / text.filename
        assert data.sha256_of(cached) == text.sha256, text.name
    doctor = _cli("doctor", env=env)
    assert doctor.returncode == 0, doctor.stdout
    for what in ("torch", "device", "widgets extension", "data sherlock_canon"):
        assert any(line.startswith("ok") and what in line for line in doctor.stdout.splitlines()), what


def test_download_of_an_unknown_text_fails_with_the_known_names(tmp_path):
    result = _cli("download", "no_such_book", env={data.CACHE_ENV: str(tmp_path)})
    assert result.returncode == 1 and "time_machine" in result.stderr


def test_unknown_benchmark_is_refused():
    result = _cli("bench", "nothing")
    assert result.returncode == 2 and "numpy-lm" in result.stdout
