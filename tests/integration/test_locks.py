"""The server profile's locks: PostgreSQL advisory locks hold between processes, shared ones
coexist, and a holder killed with SIGKILL releases its lock (the server sees the session end)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from pipelines import locks

HOLD = """
import sys, time
from pipelines import locks
with locks.named_lock("registry", "churn", shared=sys.argv[1] == "shared"):
    print("held", flush=True)
    time.sleep(60)
"""


def _holder(url: str, mode: str) -> subprocess.Popen:
    env = {**os.environ, locks.LOCKS_URL_ENV: url}
    process = subprocess.Popen([sys.executable, "-c", HOLD, mode], env=env, stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "held"
    return process


def _try(url: str, shared: bool = False, wait: float = 1.0) -> bool:
    """Whether this process gets the lock within ``wait`` seconds (it waits in a thread)."""
    import threading

    got = threading.Event()
    release = threading.Event()

    def take():
        with locks.advisory_lock(url, "mlops/registry/churn", shared=shared):
            got.set()
            release.wait(10)

    thread = threading.Thread(target=take, daemon=True)
    thread.start()
    ok = got.wait(wait)
    release.set()
    if ok:
        thread.join(5)
    return ok


def test_an_advisory_lock_excludes_another_process_until_its_holder_is_killed(postgres_url, monkeypatch):
    monkeypatch.setenv(locks.LOCKS_URL_ENV, postgres_url)
    holder = _holder(postgres_url, "exclusive")
    try:
        assert not _try(postgres_url), "a second holder got the lock"
        assert not _try(postgres_url, shared=True), "a shared holder got an exclusive lock"
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        deadline = time.monotonic() + 10
        while not _try(postgres_url, wait=0.5):
            assert time.monotonic() < deadline, "the lock of a killed process was not released"
    finally:
        holder.kill()
        holder.wait()


def test_shared_advisory_locks_coexist_and_keep_an_exclusive_one_out(postgres_url):
    holder = _holder(postgres_url, "shared")
    try:
        assert _try(postgres_url, shared=True)
        assert not _try(postgres_url, shared=False)
    finally:
        holder.kill()
        holder.wait()


def test_without_a_locks_url_the_locks_are_files_under_the_state(tmp_path, monkeypatch):
    monkeypatch.delenv(locks.LOCKS_URL_ENV, raising=False)
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path))
    with locks.named_lock("registry", "churn"):
        assert (tmp_path / "locks" / "registry" / "churn.lock").exists()


def test_lock_keys_are_stable_and_distinct():
    assert locks.advisory_key("mlops/feast") == locks.advisory_key("mlops/feast")
    assert locks.advisory_key("mlops/feast") != locks.advisory_key("mlops/gx")
    assert -(2**63) <= locks.advisory_key("mlops/feast") < 2**63


def test_no_store_takes_a_file_lock_of_its_own():
    """Every lock of the pipeline goes through named_lock, so none stays a file lock on the servers."""
    from pipelines import settings

    offenders = [
        str(path.relative_to(settings.REPO_ROOT))
        for path in (settings.REPO_ROOT / "pipelines").rglob("*.py")
        if path.name != "locks.py" and ("fcntl" in path.read_text() or "file_lock(" in path.read_text())
    ]
    assert offenders == []
