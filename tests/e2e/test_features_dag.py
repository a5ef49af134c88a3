"""churn_ingest then churn_features through Airflow (dag.test, in-process) on a temporary $MLOPS_HOME."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from mlops import airflow_admin, inprocess
from pipelines.simulation.churn import World
from pipelines.simulation.writer import write_simulation
from pipelines.stores import feature_store, partitions

WORLD = World(start=dt.date(2025, 1, 1), customers=120, seed=4, label_delay_days=2)
DAYS = [dt.datetime(2025, 1, d, tzinfo=dt.UTC) for d in (1, 2, 3)]
ONE = dt.timedelta(days=1)


@pytest.fixture(scope="module")
def dags():
    airflow_admin.migrate_db()
    return inprocess.load_dag("churn_ingest"), inprocess.load_dag("churn_features")


@pytest.fixture
def source(sqlite_source, churn):
    write_simulation(sqlite_source, churn, WORLD, 4)
    return sqlite_source


def _online(ids):
    store = feature_store.get_store()
    return feature_store.online_features(store, "churn_v1", "customer_id", ids).sort_values("customer_id")


def test_ingest_then_features_for_three_days_and_a_rerun_changes_nothing(dags, source):
    ingest, features = dags
    for day in DAYS:
        assert inprocess.run_interval(ingest, day, day + ONE).ok
        outcome = inprocess.run_interval(features, day, day + ONE)
        assert outcome.ok, outcome.task_states
        assert outcome.task_states["check_skew"] == "success"
    path = partitions.partition_path("features", "churn", "activity", "2025-01-02")
    ids = partitions.read_partition(path)["customer_id"].tolist()[:10]
    online = _online(ids)
    assert online["active_days_7d"].notna().all()
    mtime = path.stat().st_mtime_ns

    rerun = inprocess.run_interval(features, DAYS[1], DAYS[1] + ONE)
    assert rerun.ok
    assert path.stat().st_mtime_ns == mtime
    # Materializing an older interval again must not roll the online store back for today's customers.
    later = partitions.read_partition(partitions.partition_path("features", "churn", "activity", "2025-01-03"))
    todays = later["customer_id"].tolist()[:10]
    assert (_online(todays)["tenure_days_latest"].to_numpy() == later["tenure_days_latest"][:10].to_numpy()).all()


def test_features_of_a_quarantined_day_fail_without_retrying(dags, source):
    ingest, features = dags
    engine = sa.create_engine(source)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE customer_activity SET tenure_days = -1 WHERE customer_id = 5"))
    engine.dispose()
    assert not inprocess.run_interval(ingest, DAYS[0], DAYS[0] + ONE).ok
    outcome = inprocess.run_interval(features, DAYS[0], DAYS[0] + ONE)
    assert outcome.state == "failed"
    assert outcome.task_states["build_features"] == "failed"
    assert outcome.try_numbers["build_features"] == 1
    assert outcome.task_states["materialize"] == "upstream_failed"


def test_a_corrupt_curated_partition_fails_without_retrying_and_names_the_file(dags, source):
    """Issue 17, defect 6: permanent failures (a corrupt partition) were retried with delays."""
    ingest, features = dags
    assert inprocess.run_interval(ingest, DAYS[0], DAYS[0] + ONE).ok
    curated = partitions.partition_path(partitions.CURATED, "churn", "activity", DAYS[0].date().isoformat())
    curated.write_bytes(b"PAR1 not a parquet file")
    outcome = inprocess.run_interval(features, DAYS[0], DAYS[0] + ONE)
    assert outcome.task_states["build_features"] == "failed" and outcome.try_numbers["build_features"] == 1
