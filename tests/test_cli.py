"""The command line: download from the mirror, the doctor (local and hosted), its conventions."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

import labutils
from labutils import data, doctor
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


def test_unknown_benchmark_is_refused_on_stderr():
    result = _cli("bench", "nothing")
    assert result.returncode == 2 and "numpy-lm" in result.stderr and not result.stdout


def test_version():
    result = _cli("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"labutils {labutils.__version__}"


def test_release_into_a_folder_that_is_not_empty_fails_with_a_clear_message(tmp_path):
    (tmp_path / "mine.txt").write_text("keep me")
    result = _cli("release", str(tmp_path))
    assert result.returncode == 1 and not result.stdout
    assert "exists and is not empty" in result.stderr and "new or empty folder" in result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["mine.txt"] and (tmp_path / "mine.txt").read_text() == "keep me"


def _doctor_lines(capsys) -> dict[str, str]:
    run_doctor()
    out = capsys.readouterr().out
    return {line[6:].split("  ")[0].strip(): line for line in out.splitlines() if line[:4] in ("ok  ", "FAIL", "--  ")}


@pytest.mark.parametrize(
    "env, host",
    [({"COLAB_RELEASE_TAG": "release-colab"}, "Google Colab"), ({"JUPYTERHUB_API_URL": "http://hub/"}, "a JupyterHub")],
)
def test_doctor_does_not_fail_a_hosted_kernel_on_what_only_its_server_knows(monkeypatch, capsys, env, host):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(doctor, "_installed", lambda name: None)  # no JupyterLab in this environment
    lines = _doctor_lines(capsys)
    assert lines["set-up"].endswith(f"{host}: a hosted kernel, whose Jupyter server runs elsewhere")
    for what in ("jupyterlab", "widgets extension"):
        assert lines[what].startswith("--  ") and "not checked here" in lines[what], lines[what]
    assert lines["numpy"].startswith("ok")


def test_doctor_fails_a_local_set_up_without_jupyterlab(monkeypatch, capsys):
    for name in ("COLAB_RELEASE_TAG", "JUPYTERHUB_API_URL", "JUPYTERHUB_USER", "BINDER_LAUNCH_HOST", "JPY_PARENT_PID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(doctor, "_installed", lambda name: None)
    lines = _doctor_lines(capsys)
    assert lines["set-up"].endswith("local, without JupyterLab in this environment")
    assert lines["jupyterlab"].startswith("FAIL") and "course.py lab" in lines["jupyterlab"]


def test_doctor_names_an_unwritable_cache_and_how_to_move_it(monkeypatch, capsys, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv(data.CACHE_ENV, str(blocker / "cache"))  # cannot be created, even by root
    lines = _doctor_lines(capsys)
    assert lines["data cache"].startswith("FAIL") and data.CACHE_ENV in lines["data cache"]
