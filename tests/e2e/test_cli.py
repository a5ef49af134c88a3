"""The `mlops` command line, in-process: init, simulate, demo, status."""

from __future__ import annotations

import json
import os

from mlops.cli import main
from pipelines.validation.validate import data_docs_index


def test_init_is_idempotent(home, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("MLOPS_EXPECTATIONS", str(tmp_path / "expectations"))
    assert main(["init"]) == 0
    first = capsys.readouterr().out
    assert "expectation suite derived" in first
    assert main(["init"]) == 0
    second = capsys.readouterr().out
    assert "connection mlops_source: kept" in second
    assert "expectation suite derived" not in second


def test_demo_then_status(sqlite_source, capsys):
    assert main(["demo", "--days", "3", "--customers", "60", "--seed", "2"]) == 0
    out = capsys.readouterr().out
    assert "6 of 6 runs succeeded" in out  # churn_ingest and churn_features, each day
    assert "2025-01-03" in out and "activity 1 warn" in out  # the per-day table: 60 rows < min_rows_warning
    assert "churn_train skipped (0 labelled days" in out  # Thursday 2025-01-02: no label has arrived
    assert "MLOPS_DATA_DOCS" not in os.environ  # the demo's deferred Data Docs end with it, not the process's
    assert data_docs_index().exists()  # built once at the end of the replay

    assert main(["status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    activity = status["usecases"]["churn"]["datasets"]["activity"]
    assert activity["curated_partitions"] == 3
    assert activity["latest_partition"] == "2025-01-03"
    assert activity["quarantined_open"] == []
    features = status["usecases"]["churn"]["features"]
    assert features["feature_partitions"] == 3
    assert features["latest_materialized"]["interval_end"] == "2025-01-04T00:00:00+00:00"
    assert status["usecases"]["churn"]["model"] is None

    assert main(["status"]) == 0
    assert "activity" in capsys.readouterr().out


def test_simulate_refuses_other_parameters_on_the_same_source(sqlite_source, capsys):
    assert main(["simulate", "--days", "2", "--customers", "40"]) == 0
    assert main(["simulate", "--days", "2", "--customers", "41"]) == 2
    assert "already holds a 'churn' simulation" in capsys.readouterr().err


def test_a_bad_config_is_reported_not_raised(tmp_path, monkeypatch, capsys):
    (tmp_path / "churn.yaml").write_text("name: churn\ntask: multiclass\n")
    monkeypatch.setenv("MLOPS_CONFIGS", str(tmp_path))
    assert main(["status"]) == 2
    err = capsys.readouterr().err
    assert "task: Input should be 'binary' or 'regression'" in err
    assert "owner: Field required" in err


def test_one_bad_config_is_reported_and_the_other_use_cases_still_show(tmp_path, monkeypatch, capsys):
    from pipelines import settings

    for path in settings.configs_dir().glob("*.yaml"):
        (tmp_path / path.name).write_text(path.read_text())
    broken = tmp_path / "store_sales.yaml"
    broken.write_text(broken.read_text().replace("owner:", "ownr:", 1))
    monkeypatch.setenv("MLOPS_CONFIGS", str(tmp_path))
    assert main(["status"]) == 2
    captured = capsys.readouterr()
    assert "use case churn" in captured.out and "use case store_sales" not in captured.out
    assert str(broken) in captured.err and "ownr: Extra inputs are not permitted" in captured.err


def test_init_never_prints_a_connections_password(home, capsys, tmp_path, monkeypatch):
    """Issue 17, defect 3: `mlops init` (run by `mlops ui`, `make ui`, `mlops demo`) printed the source's password."""
    secret = "pr0be-s3cret"
    url = f"postgresql+psycopg2://probe:{secret}@127.0.0.1:5432/probe"
    monkeypatch.setenv(
        "AIRFLOW_CONN_MLOPS_SOURCE", json.dumps({"conn_type": "generic", "extra": {"sqlalchemy_url": url}})
    )
    monkeypatch.setenv("MLOPS_EXPECTATIONS", str(tmp_path / "expectations"))
    assert main(["init"]) == 0
    printed = capsys.readouterr()
    assert "postgresql+psycopg2://probe:***@127.0.0.1:5432/probe" in printed.out
    assert secret not in printed.out + printed.err
