"""churn_batch_inference through Airflow (dag.test, in-process) on a labelled history with trained models."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest

from mlops import airflow_admin, inprocess
from pipelines.features.definitions import FEATURES_ZONE
from pipelines.inference import batch, inputs
from pipelines.stores import mlflow_store, partitions, warehouse
from tests.conftest import LABELLED_END, LABELLED_START
from tests.labelled import register

pytestmark = pytest.mark.usefixtures("labelled_home")  # every test runs on a copy of the labelled history

ONE = dt.timedelta(days=1)
DAYS = [LABELLED_START + (10 + i) * ONE for i in range(5)]  # days with features, scored as of their end


@pytest.fixture(scope="module")
def dag():
    airflow_admin.migrate_db()
    return inprocess.load_dag("churn_batch_inference")


def _run(dag, day):
    return inprocess.run_interval(dag, day, day + ONE)


def _rows(url, day, table=warehouse.PREDICTIONS):
    return warehouse.read_interval(url, table, "churn", day + ONE)


def test_inference_pins_one_version_reruns_cleanly_and_shadows_only_a_distinct_challenger(
    dag, churn, warehouse_url, monkeypatch
):
    none_yet = _run(dag, DAYS[0])
    assert none_yet.task_states["pin_models"] == "failed" and none_yet.try_numbers["pin_models"] == 1
    assert _rows(warehouse_url, DAYS[0]).empty

    v1 = register(churn, "logistic", promote=True)
    for day in DAYS[:3]:
        outcome = _run(dag, day)
        assert outcome.ok, outcome.task_states
        rows = _rows(warehouse_url, day)
        active = partitions.read_partition(
            partitions.partition_path(FEATURES_ZONE, "churn", "activity", partitions.partition_key(day, day + ONE))
        )
        assert sorted(rows["entity_id"]) == sorted(active["customer_id"].astype(str))
        assert set(rows["model_version"]) == {v1} and rows["score"].between(0, 1).all()
        assert set(rows["feature_service"]) == {"churn_v1"} and rows["decision"].isin([0, 1]).all()
    assert _rows(warehouse_url, DAYS[0], warehouse.SHADOW).empty  # the challenger is the champion

    path = partitions.partition_path("predictions", "churn", "scores", partitions.partition_key(DAYS[1], DAYS[1] + ONE))
    before, info = _rows(warehouse_url, DAYS[1]), partitions.read_info(path)
    assert _run(dag, DAYS[1]).ok  # a rerun: same rows, no duplicates, same partition content
    pd.testing.assert_frame_equal(_rows(warehouse_url, DAYS[1]), before)
    assert partitions.read_info(path).content_hash == info.content_hash

    v2 = register(churn, "xgboost", promote=False)  # a challenger that is not the champion
    assert _run(dag, DAYS[3]).ok
    assert set(_rows(warehouse_url, DAYS[3])["model_version"]) == {v1}
    shadow = _rows(warehouse_url, DAYS[3], warehouse.SHADOW)
    assert set(shadow["model_version"]) == {v2} and len(shadow) == len(_rows(warehouse_url, DAYS[3]))

    client = mlflow_store.configure()
    real = batch.score_interval

    def promote_during_the_run(usecase, champion, *args, **kwargs):
        client.set_registered_model_alias("churn", "champion", v2)  # after pin_models, before scoring
        return real(usecase, champion, *args, **kwargs)

    monkeypatch.setattr(batch, "score_interval", promote_during_the_run)
    assert _run(dag, DAYS[4]).ok
    assert set(_rows(warehouse_url, DAYS[4])["model_version"]) == {v1}  # one version throughout: the pinned one
    monkeypatch.setattr(batch, "score_interval", real)

    assert _run(dag, DAYS[4]).ok  # after the promotion: later rows carry v2, earlier ones keep v1
    assert set(_rows(warehouse_url, DAYS[4])["model_version"]) == {v2}
    assert set(_rows(warehouse_url, DAYS[0])["model_version"]) == {v1}


def test_an_empty_interval_is_an_explicit_zero_and_an_unreachable_warehouse_is_retried(
    dag, churn, warehouse_url, monkeypatch
):
    register(churn, "logistic", promote=True)
    empty_day = LABELLED_END  # no activity simulated: write its (empty) feature partition
    source = partitions.partition_path(
        FEATURES_ZONE, "churn", "activity", partitions.partition_key(DAYS[0], DAYS[0] + ONE)
    )
    frame, info = partitions.read_partition(source).iloc[:0], partitions.read_info(source)
    empty = partitions.PartitionInfo.describe(frame, "churn", "activity", empty_day, empty_day + ONE, "features",
                                              definition=info.definition)  # fmt: skip
    partitions.write_partition(partitions.partition_path(FEATURES_ZONE, "churn", "activity", empty.key), frame, empty)
    outcome = _run(dag, empty_day)
    assert outcome.ok, outcome.task_states
    assert _rows(warehouse_url, empty_day).empty
    written = partitions.read_info(partitions.partition_path("predictions", "churn", "scores", empty.key))
    assert written.rows == 0 and written.empty

    monkeypatch.setenv("AIRFLOW_CONN_MLOPS_WAREHOUSE", json.dumps({"conn_type": "generic", "extra": {
        "sqlalchemy_url": "postgresql+psycopg2://postgres@127.0.0.1:1/nowhere"}}))  # fmt: skip
    down = _run(dag, DAYS[0])
    assert down.task_states["score"] == "failed" and down.try_numbers["score"] == 3  # retried, then failed


def test_the_features_read_for_scoring_equal_feasts_point_in_time_retrieval(labelled_home, churn):
    from pipelines.features.serving import EVENT_TIMESTAMP
    from pipelines.stores import feature_store

    day = DAYS[2]
    ours = pd.concat(list(inputs.feature_chunks(churn, "churn_v1", day, day + ONE, chunk_rows=70)), ignore_index=True)
    assert len(ours) > 70  # several chunks
    rows = pd.DataFrame({"customer_id": ours["customer_id"], EVENT_TIMESTAMP: pd.Timestamp(day + ONE)})
    feast = feature_store.historical_features(feature_store.get_store(), "churn_v1", rows)
    columns = list(ours.columns)
    pd.testing.assert_frame_equal(
        ours.sort_values("customer_id", ignore_index=True),
        feast[columns].sort_values("customer_id", ignore_index=True),
        check_dtype=False,
    )
