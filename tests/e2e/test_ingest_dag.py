"""The real churn_ingest DAG, run by Airflow (dag.test, in-process) on a temporary $MLOPS_HOME."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import sqlalchemy as sa

from mlops import airflow_admin, inprocess, task_logs
from pipelines.simulation.churn import World
from pipelines.simulation.writer import write_simulation
from pipelines.stores import partitions
from tests.conftest import set_source_connection

WORLD = World(start=dt.date(2025, 1, 1), customers=300, seed=5, label_delay_days=2)
DAYS = [dt.datetime(2025, 1, d, tzinfo=dt.UTC) for d in (3, 4, 5)]
ONE_DAY = dt.timedelta(days=1)


@pytest.fixture(scope="module")
def ingest_dag():
    airflow_admin.migrate_db()
    return inprocess.load_dag("churn_ingest")


@pytest.fixture
def source(sqlite_source, churn):
    write_simulation(sqlite_source, churn, WORLD, 6)
    return sqlite_source


def _key(day: dt.datetime) -> str:
    return day.date().isoformat()


def _asset_events(uri: str, run_id: str) -> int:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        return session.scalar(
            sa.select(sa.func.count())
            .select_from(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetModel.uri == uri, AssetEvent.source_run_id == run_id)
        )


def _duration(run_id: str) -> dt.timedelta:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        run = session.scalar(sa.select(DagRun).where(DagRun.dag_id == "churn_ingest", DagRun.run_id == run_id))
        return run.end_date - run.start_date


def test_three_days_ingest_and_a_rerun_changes_nothing(ingest_dag, source):
    first_run = f"manual__{(DAYS[0] + ONE_DAY).isoformat()}"
    events_before = _asset_events("mlops://churn/curated/activity", first_run)
    outcomes = [inprocess.run_interval(ingest_dag, day, day + ONE_DAY) for day in DAYS]
    assert outcomes[0].run_id == first_run
    assert _duration(first_run) < dt.timedelta(minutes=5)  # from its first task's start, not its 2025 logical date
    assert [o.state for o in outcomes] == ["success"] * 3, [o.task_states for o in outcomes]
    for day in DAYS:
        for dataset in ("activity", "labels"):
            info = partitions.read_info(partitions.partition_path("curated", "churn", dataset, _key(day)))
            assert info is not None and info.status == "curated" and info.rows > 0
    assert _asset_events("mlops://churn/curated/activity", first_run) == events_before + 1

    path = partitions.partition_path("curated", "churn", "activity", _key(DAYS[1]))
    before = (partitions.read_info(path), path.stat().st_mtime_ns)
    rerun = inprocess.run_interval(ingest_dag, DAYS[1], DAYS[1] + ONE_DAY)
    assert rerun.ok
    assert (partitions.read_info(path), path.stat().st_mtime_ns) == before


def test_a_day_with_bad_rows_is_quarantined_and_fails_without_retrying(ingest_dag, source):
    good = inprocess.run_interval(ingest_dag, DAYS[0], DAYS[0] + ONE_DAY)
    assert good.ok
    engine = sa.create_engine(source)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE customer_activity SET region = 'atlantis' "
                "WHERE event_timestamp >= '2025-01-04' AND event_timestamp < '2025-01-05' AND customer_id < 20"
            )
        )
    engine.dispose()
    events_before = _asset_events("mlops://churn/curated/activity", f"manual__{(DAYS[1] + ONE_DAY).isoformat()}")
    bad = inprocess.run_interval(ingest_dag, DAYS[1], DAYS[1] + ONE_DAY)
    assert bad.state == "failed"
    assert bad.task_states["ingest_activity"] == "failed"
    assert bad.try_numbers["ingest_activity"] == 1  # bad data: no retries
    assert bad.task_states["ingest_labels"] == "success"
    assert partitions.partition_path("quarantine", "churn", "activity", _key(DAYS[1])).exists()
    assert not partitions.partition_path("curated", "churn", "activity", _key(DAYS[1])).exists()
    assert partitions.read_info(partitions.partition_path("curated", "churn", "activity", _key(DAYS[0]))).rows > 0
    assert _asset_events("mlops://churn/curated/activity", bad.run_id) == events_before  # no new event
    # Each task's log is where the Airflow UI reads it, as a worker writes it: JSON lines, the failure's reason in it.
    failed_log = task_logs.log_path("churn_ingest", bad.run_id, "ingest_activity", 1)
    lines = [json.loads(line) for line in failed_log.read_text().splitlines()]
    assert {"timestamp", "level", "event"} <= set(lines[0]) and any(line["level"] == "error" for line in lines)
    assert any("quarantine" in line["event"] for line in lines), [line["event"] for line in lines]
    assert "rows" in task_logs.log_path("churn_ingest", bad.run_id, "ingest_labels", 1).read_text()
    after = inprocess.run_interval(ingest_dag, DAYS[2], DAYS[2] + ONE_DAY)
    assert after.ok  # one bad day does not block the next


def test_an_unreachable_source_fails_after_airflow_retries(ingest_dag, home, monkeypatch):
    set_source_connection(monkeypatch, "postgresql+psycopg2://nobody@127.0.0.1:1/none")
    outcome = inprocess.run_interval(ingest_dag, DAYS[0], DAYS[0] + ONE_DAY)
    assert outcome.state == "failed"
    assert outcome.try_numbers["ingest_activity"] == 3  # retries=2 applied
    for attempt in (1, 2, 3):  # one log per try, as the UI lists them
        assert task_logs.log_path("churn_ingest", outcome.run_id, "ingest_activity", attempt).stat().st_size > 0
    assert not partitions.list_partitions("curated", "churn", "activity")


def test_todays_interval_fails_at_once_and_a_shrinking_rerun_needs_the_forms_allow_shrink(ingest_dag, source):
    today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    unfinished = inprocess.run_interval(ingest_dag, today, today + ONE_DAY)
    assert unfinished.state == "failed" and unfinished.try_numbers["ingest_activity"] == 1  # no retries
    log = task_logs.log_path("churn_ingest", unfinished.run_id, "ingest_activity", 1).read_text()
    assert "has not ended yet" in log

    assert inprocess.run_interval(ingest_dag, DAYS[0], DAYS[0] + ONE_DAY).ok
    engine = sa.create_engine(source)
    with engine.begin() as conn:  # the day's rows are gone from the source
        conn.execute(sa.text("DELETE FROM customer_activity WHERE event_timestamp >= '2025-01-03'"))
    engine.dispose()
    stopped = inprocess.run_interval(ingest_dag, DAYS[0], DAYS[0] + ONE_DAY)
    assert stopped.task_states["ingest_activity"] == "failed" and stopped.try_numbers["ingest_activity"] == 1
    assert partitions.read_info(partitions.partition_path("curated", "churn", "activity", _key(DAYS[0]))).rows > 0
    allowed = inprocess.run_interval(ingest_dag, DAYS[0], DAYS[0] + ONE_DAY, conf={"allow_shrink": True})
    assert allowed.ok
    assert partitions.read_info(partitions.partition_path("curated", "churn", "activity", _key(DAYS[0]))).rows == 0
