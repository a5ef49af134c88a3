"""Training, registration, the promotion gate, rollback and model cards on a real MLflow store.

Every test starts from a copy of a labelled history (``labelled_home`` in conftest)
with an empty MLflow registry.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import multiprocessing
import os
from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest

from pipelines.config import get_usecase
from pipelines.promotion import gate, rollback
from pipelines.promotion.decisions import decisions_dir
from pipelines.stores import mlflow_store
from pipelines.training import card
from pipelines.training.dataset import TrainingDataError, build_training_data, split_by_time
from pipelines.training.train import NoCandidateTrained, train_candidates
from tests.conftest import LABELLED_END as END
from tests.conftest import LABELLED_START as START

ONE = dt.timedelta(days=1)


def _train_and_register(usecase, data, names=None):
    outcome = train_candidates(usecase, data, names, tags={"trigger_reason": "test"})
    best = outcome.best_result()
    version = mlflow_store.register_challenger(
        usecase, best.model_uri, best.run_id, {"candidate": best.name, "threshold": str(best.threshold)}
    )
    return outcome, version


def _holdout(usecase, data) -> pd.DataFrame:
    return split_by_time(data.frame, usecase.training, usecase.entity.name).holdout


def test_first_training_is_tracked_registered_promoted_and_carded(labelled_home, churn):
    data = build_training_data(churn, END)
    assert data.path.exists() and data.label_rows == len(data.frame) > 2000
    outcome, version = _train_and_register(churn, data)
    client = mlflow_store.configure()

    parent = client.get_run(outcome.parent_run_id)
    assert parent.data.tags["best_candidate"] == outcome.best
    assert parent.inputs.dataset_inputs[0].dataset.digest == data.content_hash[:20]
    children = client.search_runs([outcome.experiment_id], f"tags.mlflow.parentRunId = '{outcome.parent_run_id}'")
    assert sorted(r.data.tags["candidate"] for r in children) == ["logistic", "xgboost"]
    for run in children:
        assert {"holdout/roc_auc", "holdout/pr_auc", "holdout/log_loss", "holdout/brier", "holdout/f1"} <= set(
            run.data.metrics
        )
        assert any(k.startswith("holdout_segment/region/") for k in run.data.metrics)
        assert run.data.tags["git_commit"] and run.data.tags["feature_service"] == "churn_v1"
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
        assert artifacts == {f"plots/{n}.png" for n in ("roc", "precision_recall", "calibration", "feature_importance")}

    record = gate.gate(churn, version, _holdout(churn, data))
    assert record["decision"] == "promoted" and "first model" in record["reason"]
    assert mlflow_store.alias_version(client, "churn", "champion") == version
    assert mlflow_store.alias_version(client, "churn", "challenger") == version
    tags = client.get_model_version("churn", version).tags
    assert tags["decision"] == "promoted" and tags["compared_with"] == "none"
    assert json.loads(Path(tags["decision_record"]).read_text())["version"] == version

    html = card.publish(churn, version, record, outcome.split)
    text = html.with_suffix(".md").read_text()
    for section in (
        "Intended use",
        "Data",
        "Features",
        "Metrics on the holdout",
        "Per segment",
        "Promotion decision",
        "Known limitations",
    ):
        assert f"## {section}" in text or f"### {section}" in text
    mv = client.get_model_version("churn", version)
    assert "model_card/v1.html" in mv.description
    assert {a.path for a in client.list_artifacts(mv.run_id, "model_card")} == {
        "model_card/v1.md",
        "model_card/v1.html",
    }

    again = gate.gate(churn, version, _holdout(churn, data))  # a retried task: same decision, nothing moves
    assert again["decided_at"] == record["decided_at"]


def test_the_same_data_gives_the_same_models(labelled_home, churn):
    data = build_training_data(churn, END)
    first = train_candidates(churn, data)
    second = train_candidates(churn, data)
    for a, b in zip(first.results, second.results, strict=True):
        assert a.holdout == b.holdout


def test_a_challenger_trained_on_shuffled_labels_is_rejected(labelled_home, churn):
    data = build_training_data(churn, END)
    _, v1 = _train_and_register(churn, data)
    gate.gate(churn, v1, _holdout(churn, data))
    rng = np.random.default_rng(0)
    shuffled = data.frame.assign(churned=rng.permutation(data.frame["churned"].to_numpy()))
    _, v2 = _train_and_register(churn, dataclasses.replace(data, frame=shuffled))
    record = gate.gate(churn, v2, _holdout(churn, data))
    assert record["decision"] == "rejected" and record["compared_with"] == v1
    assert "margin" in record["reason"]
    client = mlflow_store.configure()
    assert mlflow_store.alias_version(client, "churn", "champion") == v1
    assert client.get_model_version("churn", v2).tags["decision"] == "rejected"


class Exploding(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        raise RuntimeError("this model cannot score")


def test_a_challenger_that_raises_when_scoring_is_rejected_even_when_forced(labelled_home, churn):
    data = build_training_data(churn, END)
    _, v1 = _train_and_register(churn, data)
    gate.gate(churn, v1, _holdout(churn, data))
    client = mlflow_store.configure()
    with mlflow.start_run(experiment_id=mlflow_store.experiment_id("churn")) as run:
        info = mlflow.pyfunc.log_model(name="model", python_model=Exploding(), pip_requirements=[])
    v2 = mlflow_store.register_challenger(churn, info.model_uri, run.info.run_id, {})
    record = gate.gate(churn, v2, _holdout(churn, data), force=True)
    assert record["decision"] == "rejected" and "cannot score" in record["reason"]
    assert mlflow_store.alias_version(client, "churn", "champion") == v1


def test_a_champion_moved_during_evaluation_is_evaluated_again(labelled_home, churn, monkeypatch):
    data = build_training_data(churn, END)
    holdout = _holdout(churn, data)
    weak = data.frame.assign(churned=np.random.default_rng(2).permutation(data.frame["churned"].to_numpy()))
    _, v1 = _train_and_register(churn, dataclasses.replace(data, frame=weak), ["logistic"])
    gate.gate(churn, v1, holdout, force=True)
    _, v2 = _train_and_register(churn, data, ["logistic"])
    _, v3 = _train_and_register(churn, data, ["logistic"])  # the same model as v2
    client = mlflow_store.configure()
    real = gate.evaluate
    calls = []

    def evaluate_while_another_run_promotes(client_, usecase, version, frame, threshold, **kwargs):
        calls.append(version)
        if version == v1 and calls.count(v1) == 1:  # another training promotes v2 meanwhile
            client.set_registered_model_alias("churn", "champion", v2)
        return real(client_, usecase, version, frame, threshold, **kwargs)

    monkeypatch.setattr(gate, "evaluate", evaluate_while_another_run_promotes)
    record = gate.gate(churn, v3, holdout)
    # v3 beat v1, but v1 was no longer champion at the move: nothing moved, v3 judged again against v2
    assert calls == [v3, v1, v2]
    assert record["compared_with"] == v2 and record["decision"] == "rejected"  # same model: not better
    assert mlflow_store.alias_version(client, "churn", "champion") == v2


def _gate_in_another_process(home: str, version: str, training_set: str) -> str:
    os.environ["MLOPS_HOME"] = home
    usecase = get_usecase("churn")
    frame = pd.read_parquet(training_set)
    return gate.gate(usecase, version, split_by_time(frame, usecase.training, usecase.entity.name).holdout)["decision"]


def test_two_runs_promoting_at_once_never_both_promote(labelled_home, churn):
    data = build_training_data(churn, END)
    rng = np.random.default_rng(1)
    weak = data.frame.assign(churned=rng.permutation(data.frame["churned"].to_numpy()))
    _, v1 = _train_and_register(churn, dataclasses.replace(data, frame=weak), ["logistic"])
    gate.gate(churn, v1, _holdout(churn, data), force=True)
    _, v2 = _train_and_register(churn, data, ["logistic"])
    _, v3 = _train_and_register(churn, data, ["logistic"])  # the same model again: not better than v2
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        decisions = pool.starmap(_gate_in_another_process, [(str(labelled_home), v, str(data.path)) for v in (v2, v3)])
    assert sorted(decisions) == ["promoted", "rejected"]
    client = mlflow_store.configure()
    winner = v2 if decisions[0] == "promoted" else v3
    assert mlflow_store.alias_version(client, "churn", "champion") == winner
    assert mlflow_store.alias_version(client, "churn", "previous") == v1


def test_rollback_moves_the_champion_back_once_and_refuses_unknown_versions(labelled_home, churn):
    data = build_training_data(churn, END)
    holdout = _holdout(churn, data)
    _, v1 = _train_and_register(churn, data, ["logistic"])
    gate.gate(churn, v1, holdout)
    _, v2 = _train_and_register(churn, data, ["xgboost"])
    gate.gate(churn, v2, holdout, force=True)
    client = mlflow_store.configure()
    assert mlflow_store.alias_version(client, "churn", "previous") == v1

    with pytest.raises(rollback.RollbackError, match=r"no version 99 \(versions: \[1, 2\]\)"):
        rollback.rollback(churn, "99", "typo", "tester")
    assert mlflow_store.alias_version(client, "churn", "champion") == v2

    record = rollback.rollback(churn, None, "v2 misbehaves", "tester")
    assert record["changed"] and record["version"] == v1 and record["from_version"] == v2
    assert mlflow_store.alias_version(client, "churn", "champion") == v1
    assert mlflow_store.alias_version(client, "churn", "rolled_back") == v2
    tags = client.get_model_version("churn", v1).tags
    assert tags["rollback_by"] == "tester" and tags["rollback_reason"] == "v2 misbehaves"
    assert not rollback.rollback(churn, None, "again", "tester")["changed"]  # twice is harmless
    assert not rollback.rollback(churn, v1, "again", "tester")["changed"]
    assert mlflow_store.alias_version(client, "churn", "champion") == v1
    assert len(list(decisions_dir(churn).glob("rollback-*.json"))) == 1


def test_too_small_a_window_says_how_many_rows_it_found_and_needs(labelled_home, churn):
    with pytest.raises(TrainingDataError, match=r"has \d+ labelled rows .* needs at least 2000"):
        build_training_data(churn, START + 10 * ONE, window_days=3)
    client = mlflow_store.configure()
    assert client.search_registered_models() == []


def test_a_candidate_that_fails_does_not_stop_the_others(labelled_home, churn):
    broken = churn.training.model_copy(deep=True)
    broken.candidates["logistic"].params["C"] = -1.0  # scikit-learn refuses it at fit time
    usecase = churn.model_copy(update={"training": broken})
    data = build_training_data(usecase, END)
    outcome = train_candidates(usecase, data)
    status = {r.name: r.status for r in outcome.results}
    assert status == {"logistic": "failed", "xgboost": "trained"} and outcome.best == "xgboost"
    failed = mlflow_store.configure().get_run(next(r.run_id for r in outcome.results if r.status == "failed"))
    assert failed.info.status == "FAILED" and "C" in failed.data.tags["error"]

    broken.candidates["xgboost"].params["max_depth"] = -3
    with pytest.raises(NoCandidateTrained, match="every candidate failed"):
        train_candidates(usecase, data)


def test_a_retry_ends_the_runs_its_killed_try_left_running(labelled_home, churn):
    # A worker killed mid-training leaves its MLflow runs RUNNING: nothing ends them. The retry does.
    from pipelines.training.train import experiment_name

    client = mlflow_store.configure()
    exp = mlflow_store.experiment_id(experiment_name(churn))
    tags = {"airflow_run_id": "drift_retrain__2025-01-18__2025-01-18"}
    left = client.create_run(exp, tags=tags).info.run_id
    other = client.create_run(exp, tags={"airflow_run_id": "manual__another"}).info.run_id
    outcome = train_candidates(churn, build_training_data(churn, END), ["logistic"], tags=tags)
    assert client.get_run(left).info.status == "KILLED" and client.get_run(left).data.tags["abandoned"]
    assert client.get_run(other).info.status == "RUNNING"  # another Airflow run's: not this retry's to end
    assert client.get_run(outcome.parent_run_id).info.status == "FINISHED"
