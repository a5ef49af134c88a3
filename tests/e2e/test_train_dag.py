"""churn_train twice and churn_rollback through Airflow (dag.test, in-process) on a labelled history."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from mlops import airflow_admin, inprocess
from mlops.cli import main
from pipelines.promotion.decisions import decisions_dir_for
from pipelines.stores import mlflow_store
from tests.conftest import LABELLED_END

WEEK = dt.timedelta(days=7)
# Weekly runs end on Thursdays 00:00 (training.schedule); the windows end where the labels are.
RUN_END = dt.datetime(2025, 1, 16, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def dags():
    airflow_admin.migrate_db()
    return inprocess.load_dag("churn_train"), inprocess.load_dag("churn_rollback")


def _train(dag, weeks_back: int = 0, **conf):
    # dag.test keys a run by its logical date; each case gets its own week, so no run is reused.
    end = RUN_END - weeks_back * WEEK
    return inprocess.run_interval(dag, end - WEEK, end, conf=conf)


def _rollback(dag, **conf):
    with inprocess.params_restored(dag):
        return dag.test(run_conf=conf)


def test_train_twice_then_roll_back_through_airflow(dags, labelled_home, capsys):
    train, rollback = dags
    first = _train(train, window_end=(LABELLED_END - 2 * dt.timedelta(days=1)).isoformat(), reason="first")
    assert first.ok, first.task_states
    client = mlflow_store.configure()
    assert mlflow_store.alias_version(client, "churn", "champion") == "1"
    v1 = client.get_model_version("churn", "1")
    assert v1.tags["decision"] == "promoted" and "Model card:" in v1.description
    parent = client.get_run(v1.tags["parent_run_id"])
    assert parent.data.tags["airflow_dag_id"] == "churn_train"
    assert parent.data.tags["airflow_run_id"] == first.run_id
    assert parent.data.tags["trigger_reason"] == "first"

    second = _train(
        train,
        weeks_back=1,
        window_end=LABELLED_END.isoformat(),
        candidates=["xgboost"],
        force_promote=True,
        reason="newer data",
    )
    assert second.ok, second.task_states
    record = json.loads((decisions_dir_for("churn") / "v2.json").read_text())
    assert record["decision"] == "promoted" and record["forced"] and record["compared_with"] == "1"
    assert record["trigger_reason"] == "newer data" and record["airflow_run_id"] == second.run_id
    assert client.get_model_version("churn", "2").tags["candidate"] == "xgboost"
    assert mlflow_store.alias_version(client, "churn", "previous") == "1"

    assert _rollback(rollback, reason="v2 misbehaves").state == "success"
    assert mlflow_store.alias_version(client, "churn", "champion") == "1"
    assert client.get_model_version("churn", "1").tags["rollback_reason"] == "v2 misbehaves"
    assert _rollback(rollback, reason="clicked twice").state == "success"  # harmless
    assert mlflow_store.alias_version(client, "churn", "champion") == "1"

    capsys.readouterr()  # what the runs above logged (warnings of the libraries) is not the status
    assert main(["status", "--json"]) == 0
    model = json.loads(capsys.readouterr().out)["usecases"]["churn"]["model"]
    assert model["versions"] == 2 and model["aliases"] == {
        "champion": "1",
        "challenger": "2",
        "canary": None,
        "previous": None,
    }
    assert model["latest_decision"]["kind"] == "rollback"

    from pipelines.config import get_usecase
    from pipelines.reporting.models import model_history

    history = model_history(get_usecase("churn"))
    assert [h["version"] for h in history] == ["1", "2"] and history[0]["decision"] == "promoted"
    assert history[0]["primary_metric"] == "roc_auc" and history[1]["compared_with"] == "1"


def test_bad_requests_fail_without_retries_and_change_nothing(dags, labelled_home):
    train, rollback = dags
    unknown = _train(train, window_end=LABELLED_END.isoformat(), candidates=["lightgbm"])
    assert unknown.task_states["check_request"] == "failed" and unknown.try_numbers["check_request"] == 1
    too_small = _train(train, weeks_back=1, window_end=LABELLED_END.isoformat(), window_days=3)
    assert too_small.task_states["training_set"] == "failed" and too_small.try_numbers["training_set"] == 1
    run = _rollback(rollback, target_version=99, reason="typo")
    assert run.state == "failed"
    assert mlflow_store.configure().search_registered_models() == []
