"""Runs of one DAG at once on one state: the same interval twice, and two backfills that overlap
(issue 17: defect 7, "two ingests of the same day at once end one of them with Task Instance not
found"). Each runs in a process of its own, as two terminals or two replays would, on an Airflow
metadata DB of the test's own (a copy of the session's), so that what they do to it stays here."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from mlops import airflow_admin
from pipelines import settings
from pipelines.simulation.churn import World
from pipelines.simulation.writer import write_simulation
from tests.conftest import _REPO

WORLD = World(start=dt.date(2025, 1, 1), customers=300, seed=5, label_delay_days=2)


@pytest.fixture
def airflow_db(home, monkeypatch) -> Path:
    """The runs' own Airflow home: the session's settings and a consistent copy (SQLite's backup)
    of its migrated metadata DB; the processes the test starts get it through AIRFLOW_HOME."""
    airflow_admin.migrate_db()
    session_home = Path(os.environ["AIRFLOW_HOME"])
    own = home / "airflow"
    own.mkdir()
    shutil.copy2(session_home / "airflow.cfg", own / "airflow.cfg")  # its fernet key with it
    with (
        closing(sqlite3.connect(session_home / "airflow.db")) as src,
        closing(sqlite3.connect(own / "airflow.db")) as dst,
    ):
        src.backup(dst)
    monkeypatch.setenv("AIRFLOW_HOME", str(own))
    return own / "airflow.db"


@pytest.fixture
def source(sqlite_source, churn, airflow_db):
    write_simulation(sqlite_source, churn, WORLD, 8)
    return sqlite_source


def _start(first: str, last: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "tests.reliability.run_days", "churn_ingest", first, last]
    return subprocess.Popen(command, cwd=_REPO, env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _integrity() -> str:
    """SQLite's own check of the runs' metadata DB, for a failure message."""
    with closing(sqlite3.connect(Path(os.environ["AIRFLOW_HOME"]) / "airflow.db")) as db:
        return "; ".join(row[0] for row in db.execute("PRAGMA integrity_check(5)"))


def _finish(proc: subprocess.Popen) -> list[dict]:
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, out.decode()[-3000:] + err.decode()[-3000:] + f"\nintegrity_check: {_integrity()}"
    return [json.loads(line) for line in out.decode().splitlines() if line.startswith("{")]


def _curated(churn) -> dict[str, str]:
    folder = settings.data_dir("curated", churn.name, "activity")
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.parquet"))}


def _runs(day: str) -> list[str]:
    """The states of the runs of ``day``'s interval in the runs' metadata DB."""
    logical = (dt.date.fromisoformat(day) + dt.timedelta(days=1)).isoformat()
    with closing(sqlite3.connect(Path(os.environ["AIRFLOW_HOME"]) / "airflow.db")) as db:
        rows = db.execute("SELECT state, logical_date FROM dag_run WHERE dag_id = 'churn_ingest'").fetchall()
    return [state for state, date in rows if str(date).startswith(logical)]


def test_the_same_interval_at_once_and_overlapping_backfills_end_as_one_backfill_would(source, churn):
    """Three processes at once: two backfills over overlapping days and a run of one day they both hold.
    Before the fix, two runs of one interval at once ended one of them with "Task Instance not found"."""
    procs = [_start("2025-01-02", "2025-01-04"), _start("2025-01-03", "2025-01-05"), _start("2025-01-04", "2025-01-04")]
    outcomes = [_finish(p) for p in procs]
    assert all(run["state"] == "success" for o in outcomes for run in o), outcomes
    together = _curated(churn)
    assert list(together) == [f"2025-01-0{d}.parquet" for d in range(2, 6)]
    assert all(_runs(f"2025-01-0{d}") == ["success"] for d in range(2, 6))  # one run per interval, the last
    _finish(_start("2025-01-04", "2025-01-04"))  # a rerun alone writes the same bytes
    assert _curated(churn) == together


def test_materialization_beside_online_reads_and_a_training_set_build(labelled_history, tmp_path):
    """Feast materializes four days while another process reads the online store and a third builds a
    training set: no read fails (before the fix, every read during a materialization did), the build is
    the one a quiet store gives, and the online store ends equal to the offline data."""
    import shutil

    from tests.reliability import faults

    home = tmp_path / "var"
    shutil.copytree(labelled_history, home, symlinks=True)
    (home / ".home").write_text(f"{labelled_history}\n")
    faults.run(home, "tests.reliability.writers:relocated")
    faults.run(home, "tests.reliability.writers:setup_materialized_before")
    quiet = faults.run(home, "tests.reliability.writers:write_training_set").result

    targets = ["materialize_week", "read_online_repeatedly", "write_training_set"]
    started = {t: faults.start(home, f"tests.reliability.writers:{t}") for t in targets}
    outcomes = {t: faults.finish(s, home, t).result for t, s in started.items()}
    assert outcomes["materialize_week"] >= 4
    assert outcomes["read_online_repeatedly"] == {"reads": 20, "failed": 0, "errors": []}
    assert outcomes["write_training_set"] == quiet
    assert faults.run(home, "tests.reliability.writers:skew_after_week").result > 0  # raises on any skew
