"""The engine setting and the Spark target: read from the connection or the environment, refused clearly when
it cannot work (no JVM is started here: tests/integration/test_spark_engine.py runs Spark itself)."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest

from pipelines.engines.spark import (
    SparkTarget,
    SparkUnavailable,
    check_target,
    environment_target,
    target_from_connection,
)


def _conn(host="", port=None, extra=None):
    return SimpleNamespace(host=host, port=port, extra_dejson=extra or {})


@pytest.mark.parametrize(
    ("host", "port", "master"),
    [
        ("local[2]", None, "local[2]"),
        ("spark://master.example", 7077, "spark://master.example:7077"),
        ("master.example", 7077, "spark://master.example:7077"),  # a bare host is a standalone master
        ("yarn", None, "yarn"),
        ("k8s://https://api.example", 443, "k8s://https://api.example:443"),
        ("", None, "local[2]"),
    ],
)
def test_the_connection_names_the_master(host, port, master):
    assert target_from_connection(_conn(host, port)).master == master


def test_the_connection_extra_is_spark_configuration():
    extra = {"conf": {"spark.executor.memory": "4g"}, "spark.executor.cores": 2, "deploy-mode": "client"}
    target = target_from_connection(_conn("yarn", extra=extra))
    assert dict(target.conf) == {"spark.executor.memory": "4g", "spark.executor.cores": "2"}
    assert target.source == "connection mlops_spark"


def test_without_a_connection_the_environment_then_local_mode(monkeypatch):
    monkeypatch.delenv("MLOPS_SPARK_MASTER", raising=False)
    assert environment_target() == SparkTarget("local[2]")
    monkeypatch.setenv("MLOPS_SPARK_MASTER", "spark://10.0.0.5:7077")
    assert environment_target().master == "spark://10.0.0.5:7077"


def test_a_use_case_runs_locally_unless_its_file_says_spark(churn):
    assert churn.engine == "local"
    assert churn.model_copy(update={"engine": "spark"}).engine == "spark"


def test_what_is_not_a_master_url_is_named_with_what_was_expected():
    expected = r"'spark//nowhere' \(from connection mlops_spark\) is not a Spark master URL: expected local\[N\]"
    with pytest.raises(SparkUnavailable, match=expected):
        check_target(SparkTarget("spark//nowhere", {}, "connection mlops_spark"))


def test_without_pyspark_the_error_names_the_extra_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyspark", None)  # as if the extra were not installed
    with pytest.raises(SparkUnavailable, match=r"needs PySpark.*uv sync --extra spark"):
        check_target(SparkTarget())


def test_a_task_reads_the_target_from_the_mlops_spark_connection_only_for_spark_use_cases(churn, monkeypatch):
    import json

    from dagkit import spark_target

    on_spark = churn.model_copy(update={"engine": "spark"})
    assert spark_target(on_spark) is None  # no connection: the engine's own fallback decides
    conn = {"conn_type": "spark", "host": "spark://10.0.0.5", "port": 7077, "extra": {"conf": {"spark.cores.max": "8"}}}
    monkeypatch.setenv("AIRFLOW_CONN_MLOPS_SPARK", json.dumps(conn))
    expected = SparkTarget("spark://10.0.0.5:7077", {"spark.cores.max": "8"}, "connection mlops_spark")
    assert spark_target(on_spark) == expected
    assert spark_target(churn) is None  # the local engine needs no cluster
