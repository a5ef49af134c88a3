"""churn_drift_monitor through Airflow (dag.test, in-process) on a labelled history, and its failure modes."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from mlops import airflow_admin, inprocess
from pipelines.monitoring import monitor, policy, report
from pipelines.promotion.gate import gate
from pipelines.stores import mlflow_store
from pipelines.stores import monitoring as store
from pipelines.training.dataset import build_training_data, split_by_time
from pipelines.training.train import train_candidates
from tests.conftest import LABELLED_END, LABELLED_START

pytestmark = pytest.mark.usefixtures("labelled_home")  # every test runs on a copy of the labelled history

ONE = dt.timedelta(days=1)
DAY = LABELLED_START + 12 * ONE  # a day with features; labels of its neighbours have not matured by its end


@pytest.fixture(scope="module")
def dag():
    airflow_admin.migrate_db()
    return inprocess.load_dag("churn_drift_monitor")


def _champion(churn) -> str:
    data = build_training_data(churn, LABELLED_END)
    best = train_candidates(churn, data, ["logistic"]).best_result()
    version = mlflow_store.register_challenger(churn, best.model_uri, best.run_id, {"threshold": str(best.threshold)})
    context = {"training_set": str(data.path), "data_hash": data.content_hash, "training_run_id": best.run_id}
    holdout = split_by_time(data.frame, churn.training, churn.entity.name).holdout
    gate(churn, version, holdout, force=True, context=context)
    return version


def test_the_monitor_skips_without_a_champion_then_reports_records_and_decides(dag, churn, warehouse_url):
    nothing = inprocess.run_interval(dag, DAY, DAY + ONE)
    assert nothing.ok and nothing.task_states["wait_for_day"] == "skipped"
    assert nothing.task_states["measure"] == "skipped"
    assert store.read(warehouse_url, store.HISTORY, "churn") == []

    version = _champion(churn)
    outcome = inprocess.run_interval(dag, DAY, DAY + ONE)
    assert outcome.ok, outcome.task_states
    night = store.read_night(warehouse_url, store.HISTORY, "churn", DAY + ONE)
    assert night["champion_version"] == version and night["current"]["rows"] > 0
    assert 0 <= night["drift_share"] <= 1 and len(night["feature_drift"]) == len(monitor.data.model_features(churn))
    assert night["prediction_drift"]["method"] == "psi"
    # No prediction of an earlier day has a matured label yet: the live metric says so instead of guessing.
    assert night["live_metric"] is None and night["live"]["champion_rows"] == 0
    html, js = (monitor.drift_dir("churn") / f"{DAY.date()}.{ext}" for ext in ("html", "json"))
    assert html.stat().st_size > 100_000 and json.loads(js.read_text())["drift_share"] == night["drift_share"]
    # One copy of the report, sharing Evidently's library; MLflow keeps the numbers and names the files.
    assert html.stat().st_size < 3_000_000 and (monitor.drift_dir("churn") / "js").is_dir()
    client = mlflow_store.configure()
    logged = {a.path for a in client.list_artifacts(night["mlflow_run_id"], "drift")}
    assert logged == {f"drift/{DAY.date()}.json"}, logged
    assert str(html) in client.get_run(night["mlflow_run_id"]).data.tags["reports"]
    decision = store.read_night(warehouse_url, store.DECISIONS, "churn", DAY + ONE)
    assert decision["action"] in policy.ACTIONS and decision["reason"]
    expected_trigger = "success" if decision["action"] == policy.TRIGGERED else "skipped"
    assert outcome.task_states["trigger_retrain"] == expected_trigger

    again = inprocess.run_interval(dag, DAY, DAY + ONE)  # a rerun replaces the night's rows
    assert again.ok and len(store.read(warehouse_url, store.HISTORY, "churn")) == 1


def test_a_report_that_fails_to_render_keeps_its_numbers_and_fails_loudly(churn, warehouse_url, monkeypatch):
    _champion(churn)

    def broken(snapshot, path):
        raise OSError("disk full")

    monkeypatch.setattr(report, "_save", broken)
    with pytest.raises(report.ReportRenderError, match="could not be rendered"):
        monitor.measure(churn, DAY, DAY + ONE, warehouse_url, "test")
    recorded = json.loads((monitor.drift_dir("churn") / f"{DAY.date()}.json").read_text())
    assert recorded["drift_share"] is not None
    assert store.read_night(warehouse_url, store.HISTORY, "churn", DAY + ONE)["drift_share"] == recorded["drift_share"]


def test_an_empty_window_is_skipped_with_a_message(churn, labelled_home):
    from pipelines.inference.batch import feature_partition
    from pipelines.stores import partitions

    _champion(churn)
    path = feature_partition(churn, DAY, DAY + ONE)
    frame = partitions.read_partition(path).iloc[:0]
    info = partitions.PartitionInfo.describe(frame, "churn", "activity", DAY, DAY + ONE, status="curated")
    partitions.write_partition(path, frame, info)
    state, message = monitor.readiness(churn, DAY, DAY + ONE)
    assert state == "skip" and "no churn entity was active" in message
    later = DAY + 10 * ONE  # features never built
    assert monitor.readiness(churn, later, later + ONE)[0] == "wait"


def test_the_live_metric_counts_every_version_that_served_the_matured_days(churn, warehouse_url):
    # A long label delay with frequent promotions: by the time labels mature, the version that served those
    # days is no longer the champion. The night still has a live metric: that of the served predictions.
    from pipelines.inference.batch import pin, score_interval

    old = _champion(churn)
    night_end = LABELLED_END
    served_from = night_end - 7 * ONE - churn.monitoring.performance_days * ONE  # labels are 7 days late
    for i in range(churn.monitoring.performance_days):
        day = served_from + i * ONE
        score_interval(churn, pin(churn), day, day + ONE, warehouse_url, "test")
    new = _champion(churn)  # promoted (forced) before any of its own predictions matured
    record = monitor.measure(churn, night_end - ONE, night_end, warehouse_url, "test")
    assert record["champion_version"] == new != old
    assert record["champion_live_metric"] is None and record["live"]["champion_rows"] == 0
    served = record["live"]["by_version"][old]
    assert served["rows"] > 1000 and served["holdout"] == pytest.approx(record["live_holdout_metric"])
    assert record["live_metric"] == pytest.approx(served["roc_auc"])
    assert record["live"]["weighed_rows"] == served["rows"]
    assert f"served by v{old}" in record["live"]["note"]
    assert monitor.evidence_from(record).live_rows == served["rows"]
