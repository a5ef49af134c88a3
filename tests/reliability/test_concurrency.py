"""Runs of one DAG at once on one state: the same interval twice, and two backfills that overlap
(issue 17: defect 7, "two ingests of the same day at once end one of them with Task Instance not
found"). Each runs in a process of its own, as two terminals or two replays would."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import subprocess
import sys

import pytest

from mlops import airflow_admin
from pipelines import settings
from pipelines.simulation.churn import World
from pipelines.simulation.writer import write_simulation
from tests.conftest import _REPO

WORLD = World(start=dt.date(2025, 1, 1), customers=300, seed=5, label_delay_days=2)


@pytest.fixture
def source(sqlite_source, churn):
    airflow_admin.migrate_db()
    write_simulation(sqlite_source, churn, WORLD, 8)
    return sqlite_source


def _start(first: str, last: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "tests.reliability.run_days", "churn_ingest", first, last]
    return subprocess.Popen(command, cwd=_REPO, env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _finish(proc: subprocess.Popen) -> list[dict]:
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, out.decode()[-3000:] + err.decode()[-3000:]
    return [json.loads(line) for line in out.decode().splitlines() if line.startswith("{")]


def _curated(churn) -> dict[str, str]:
    folder = settings.data_dir("curated", churn.name, "activity")
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.parquet"))}


def _runs(day: str) -> list[str]:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    logical = dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC) + dt.timedelta(days=1)
    with create_session() as session:
        runs = session.query(DagRun).filter(DagRun.dag_id == "churn_ingest", DagRun.logical_date == logical).all()
        return [str(r.state) for r in runs]


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
