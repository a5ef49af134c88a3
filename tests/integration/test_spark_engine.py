"""The Spark engine (local mode) against the local engine on a few days of the labelled history (1,200 customers):
the same feature partitions (rows, values, content hash) and the same predictions, shadow scores, canary split,
reasons and skipped entities; and the clear errors when Spark cannot run.

One Spark session for the module (the engine keeps one per process; stopped at the end), two shuffle
partitions, no web UI. Skipped without PySpark, except in CI, which installs the extra (`make test`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os

import numpy as np
import pandas as pd
import pytest

try:
    import pyspark  # noqa: F401
except ImportError:
    if os.environ.get("CI"):
        raise
    pytest.skip("PySpark is not installed: `uv sync --extra spark` (make test installs it)", allow_module_level=True)

from pipelines import settings
from pipelines.engines import spark as engine
from pipelines.engines.spark import SparkTarget, SparkUnavailable
from pipelines.errors import BadInput
from pipelines.features.build import build_feature_partition
from pipelines.features.definitions import FEATURES_ZONE
from pipelines.inference import batch
from pipelines.inference.rows import PREDICTIONS_ZONE
from pipelines.stores import partitions, warehouse
from tests.conftest import LABELLED_START
from tests.labelled import register

pytestmark = [pytest.mark.spark, pytest.mark.xdist_group("spark")]

TARGET = SparkTarget("local[2]", {"spark.sql.shuffle.partitions": "2"}, "the tests")  # local mode: no UI
ONE = dt.timedelta(days=1)


@pytest.fixture(scope="module", autouse=True)
def session():
    yield
    engine.stop()


@pytest.fixture
def on_spark(churn):
    return churn.model_copy(update={"engine": "spark"})


def _path(zone: str, dataset: str, day: dt.datetime):
    return partitions.partition_path(zone, "churn", dataset, partitions.partition_key(day, day + ONE))


def test_features_built_on_spark_are_the_local_engines_partitions(labelled_home, on_spark):
    # Day 1 (no history before it), day 9 (part of the 14-day window), day 17 (all of it).
    for day in (LABELLED_START, LABELLED_START + 8 * ONE, LABELLED_START + 16 * ONE):
        path = _path(FEATURES_ZONE, "activity", day)
        local, info = partitions.read_partition(path), partitions.read_info(path)  # built locally (tests/labelled.py)
        path.unlink()
        result = build_feature_partition(on_spark, day, day + ONE, TARGET)
        pd.testing.assert_frame_equal(partitions.read_partition(path), local, check_exact=True)
        assert partitions.read_info(path) == info and result.info.rows > 1000  # its metadata and content hash too


def test_text_entity_keys_and_a_gap_in_the_history_give_the_local_result_too(home, churn):
    from pipelines.features.engineering import build_features
    from pipelines.features.spark_build import build_features_on_spark

    day = LABELLED_START + 3 * ONE
    rng = np.random.default_rng(3)
    paths = []
    for offset in (0, 2, 3):  # the second day is missing
        start = LABELLED_START + offset * ONE
        frame = pd.DataFrame({"customer_id": [f"c{i:03d}" for i in rng.choice(60, 40, replace=False)]})
        frame["event_timestamp"] = pd.Timestamp(start + dt.timedelta(hours=9)).as_unit("ns")
        for column in churn.source.datasets["activity"].columns[2:]:
            frame[column.name] = rng.choice(column.values, 40) if column.values else rng.integers(0, 9, 40)
        frame.loc[frame.index[:3], "monthly_charges"] = None
        paths.append(home / f"{offset}.parquet")
        frame.to_parquet(paths[-1])
    history = pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)
    local = build_features(history, churn.features, churn.source.datasets["activity"], "customer_id", day, day + ONE)
    on_spark = build_features_on_spark(TARGET, churn, paths, day, day + ONE)
    pd.testing.assert_frame_equal(on_spark, local, check_exact=True)
    assert on_spark["customer_id"].str.startswith("c").all() and len(on_spark) == 40


def _with_unscorable_rows(day: dt.datetime, count: int) -> list[int]:
    """Blank every feature of ``count`` rows of the day's feature partition: they cannot be scored."""
    path = _path(FEATURES_ZONE, "activity", day)
    frame, info = partitions.read_partition(path), partitions.read_info(path)
    features = [c for c in frame.columns if c not in ("customer_id", "feature_timestamp")]
    frame[features] = frame[features].astype("float64")
    frame.loc[frame.index[:count], features] = None
    partitions.write_partition(path, frame, dataclasses.replace(info, content_hash=partitions.content_hash(frame)))
    return frame["customer_id"].iloc[:count].tolist()


def _written(warehouse_url: str, day: dt.datetime) -> dict[str, pd.DataFrame]:
    out = {kind: partitions.read_partition(_path(PREDICTIONS_ZONE, kind, day)) for kind in ("scores", "shadow")}
    for table in (warehouse.PREDICTIONS, warehouse.SHADOW):
        out[table] = warehouse.read_interval(warehouse_url, table, "churn", day + ONE)
    return out


def test_scores_from_spark_udf_equal_the_local_engines(labelled_home, churn, on_spark, warehouse_url):
    register(churn, "logistic", promote=True)
    register(churn, "xgboost", promote=False)
    champion, challenger = batch.pin_pair(churn)
    plain, canary_day = LABELLED_START + 11 * ONE, LABELLED_START + 12 * ONE
    blank = _with_unscorable_rows(canary_day, 3)
    canary = {"version": challenger.version, "rollout_id": "r1", "fraction": 0.3}
    for day, split in ((plain, None), (canary_day, canary)):
        written, outcomes = {}, {}
        for usecase in (churn, on_spark):
            outcomes[usecase.engine] = batch.score_interval(
                usecase, champion, day, day + ONE, warehouse_url, "test", challenger, 500, split, TARGET
            )
            written[usecase.engine] = _written(warehouse_url, day)
        local, spark = outcomes["local"], outcomes["spark"]
        assert (spark.scored, spark.shadow_scored, spark.skipped, spark.canary_served) == (
            local.scored, local.shadow_scored, local.skipped, local.canary_served
        )  # fmt: skip
        assert local.scored > 1000 and local.shadow_scored == local.scored
        for name, frame in written["local"].items():  # same rows in the same order, reasons included
            pd.testing.assert_frame_equal(written["spark"][name], frame, check_exact=False, atol=1e-6, rtol=0)
    assert spark.canary_served > 0 and spark.skipped == 3
    skipped = settings.data_dir(PREDICTIONS_ZONE, "churn", "skipped") / f"{canary_day.date()}.json"
    assert json.loads(skipped.read_text())["entities"] == blank


def test_a_wrong_or_unreachable_master_or_no_java_is_named_before_any_work(labelled_home, on_spark, monkeypatch):
    day = LABELLED_START + 5 * ONE
    path = _path(FEATURES_ZONE, "activity", day)
    before = path.stat().st_mtime_ns
    with pytest.raises(SparkUnavailable, match=r"'spark//nowhere' \(from the tests\) is not a Spark master URL") as bad:
        build_feature_partition(on_spark, day, day + ONE, SparkTarget("spark//nowhere", {}, "the tests"))
    assert isinstance(bad.value, BadInput)  # the task fails at once, without retries
    with pytest.raises(SparkUnavailable, match=r"spark://127\.0\.0\.1:9 .* does not answer"):
        build_feature_partition(on_spark, day, day + ONE, SparkTarget("spark://127.0.0.1:9", {}, "the tests"))
    assert path.stat().st_mtime_ns == before  # nothing was written
    monkeypatch.setenv("JAVA_HOME", str(labelled_home))  # a folder without bin/java
    with pytest.raises(SparkUnavailable, match=r"needs Java 17 or newer"):
        engine.check_target(SparkTarget("local[1]"))
