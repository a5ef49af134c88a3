"""A second use case by YAML alone: store_sales (regression) simulated, ingested, featured, trained,
promoted and scored through its own DAGs (dag.test, in-process), with no use-case-specific code."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest

from mlops import airflow_admin, inprocess
from mlops.cli import main
from pipelines import settings
from pipelines.config import get_usecase
from pipelines.features.build import build_feature_partition
from pipelines.ingestion.ingest import ingest_interval
from pipelines.promotion.decisions import decisions_dir
from pipelines.simulation import synthetic
from pipelines.simulation.writer import world_for, write_simulation
from pipelines.stores import mlflow_store, warehouse

ONE = dt.timedelta(days=1)
START = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
DAYS = 11  # 2025-01-01 .. 01-11; labels (3 days late) of 8 reference days are known on 01-12:
TRAIN_END = START + DAYS * ONE  # 2 training, 3 validation and 3 holdout days
THURSDAY = dt.datetime(2025, 1, 9, tzinfo=dt.UTC)  # a tick of training.schedule; the form's window_end is later
THROUGH_DAGS = 3  # the newest days go through the ingest and features DAGs; older ones through the same
# pipeline functions the DAG tasks call (a DAG run costs a few seconds; the history is only a precondition)


@pytest.fixture(scope="module")
def dags():
    airflow_admin.migrate_db()
    stages = ("ingest", "features", "train", "batch_inference")
    return {stage: inprocess.load_dag(f"store_sales_{stage}") for stage in stages}


def test_a_regression_use_case_from_yaml_alone_runs_end_to_end(dags, sqlite_source, warehouse_url, capsys):
    usecase = get_usecase("store_sales")
    world = world_for(usecase, START.date())  # simulation section: synthetic generator, 300 stores
    assert isinstance(world, synthetic.World)
    write_simulation(sqlite_source, usecase, world, DAYS)

    for i in range(DAYS):
        start = START + i * ONE
        if i < DAYS - THROUGH_DAGS:
            for dataset in usecase.source.datasets:
                ingest_interval(sqlite_source, usecase, dataset, start, start + ONE)
            build_feature_partition(usecase, start, start + ONE)
            continue
        for stage in ("ingest", "features"):
            outcome = inprocess.run_interval(dags[stage], start, start + ONE)
            assert outcome.ok, (stage, start, outcome.task_states)

    trained = inprocess.run_interval(
        dags["train"], THURSDAY - 7 * ONE, THURSDAY, conf={"window_end": TRAIN_END.isoformat(), "reason": "e2e"}
    )
    assert trained.ok, trained.task_states
    record = json.loads((decisions_dir(usecase) / "v1.json").read_text())
    assert record["decision"] == "promoted" and record["primary_metric"] == "neg_rmse"
    holdout = record["challenger"]["metrics"]
    assert holdout["neg_rmse"] == -holdout["rmse"] and holdout["rmse"] < 5  # labels' noise is 3
    assert holdout["r2"] > 0.7
    assert set(record["challenger"]["segments"]) >= {"region=south", "store_format=large"}
    client = mlflow_store.configure()
    assert mlflow_store.alias_version(client, "store_sales", "champion") == "1"
    card = (settings.reports_dir() / "store_sales" / "model_cards" / "v1.md").read_text()
    assert "| rmse |" in card and "the predicted `sales_next_3d`" in card
    # The responsible gate on a regression: the spread of group errors and the declared behaviour.
    judged = record["challenger"]
    assert [(t["name"], t["status"]) for t in judged["behaviour"]] == [
        ("higher_prices_never_raise_sales", "pass"),
        ("large_stores", "pass"),
    ]
    assert judged["fairness"]["region"]["gaps"]["mae_gap"] is not None and "## Fairness" in card

    last = START + (DAYS - 1) * ONE
    scored = inprocess.run_interval(dags["batch_inference"], last, last + ONE)
    assert scored.ok, scored.task_states
    rows = warehouse.read_interval(warehouse_url, warehouse.PREDICTIONS, "store_sales", last + ONE)
    assert len(rows) == world.entities and set(rows["model_version"]) == {"1"}
    assert rows["decision"].isna().all()  # a regression has no threshold: the score is the prediction
    assert set(rows["feature_service"]) == {"store_sales_v1"}
    assert rows["reasons"].notna().all()  # inference.reasons: 3, beside each forecast
    # The score is the predicted sales: close to the simulator's noise-free target of the day.
    activity = synthetic.day_activity(world, synthetic.entity_traits(world), DAYS - 1)
    expected = synthetic.target_values(world, activity, drifted=False, noise=np.zeros(len(activity)))
    joined = rows.assign(store_id=rows["entity_id"].astype(int)).merge(
        pd.DataFrame({"store_id": activity["store_id"], "expected": expected}), on="store_id"
    )
    assert np.corrcoef(joined["score"], joined["expected"])[0, 1] > 0.9
    assert (joined["score"] - joined["expected"]).abs().mean() < 5

    capsys.readouterr()  # the runs' output
    assert main(["status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)["usecases"]
    assert set(status) >= {"churn", "store_sales"}
    assert status["store_sales"]["model"]["aliases"]["champion"] == "1"
    assert status["store_sales"]["predictions"]["rows"] == world.entities
    assert "store_sales_batch_inference" in status["store_sales"]["dags"]
