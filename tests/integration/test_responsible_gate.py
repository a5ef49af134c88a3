"""The responsible gate on a real MLflow registry, and the behaviour of models trained by the
pipeline's own code on a fixed training set (so a change that breaks model behaviour fails CI).

Every test starts from a copy of the labelled history (``labelled_home``) with an empty registry.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from pipelines.promotion import gate
from pipelines.responsible import behaviour, explain, fairness
from pipelines.stores import mlflow_store
from pipelines.training import candidates, card
from pipelines.training.dataset import build_training_data, split_by_time
from tests.conftest import LABELLED_END as END
from tests.integration.test_training import _holdout, _train_and_register

TICKETS = ["support_tickets_sum_7d", "support_tickets_sum_14d"]


def _usecase(churn, **fairness_changes):
    """churn with its fairness groups judged on the tests' small holdout (few churners per group):
    demographic parity, which needs rows only, not churners."""
    spec = churn.training.fairness.model_copy(
        update={
            "metrics": {
                "demographic_parity_difference": churn.training.fairness.metrics["demographic_parity_difference"]
            }
        }
        | fairness_changes
    )
    return churn.model_copy(update={"training": churn.training.model_copy(update={"fairness": spec})})


def _register(usecase, data, names=("logistic",)):
    return _train_and_register(usecase, data, list(names))


def _with_champion(usecase, data) -> tuple[pd.DataFrame, str]:
    """The holdout, and a first champion trained on ``data`` (the logistic candidate)."""
    holdout = _holdout(usecase, data)
    _, first = _register(usecase, data)
    assert gate.gate(usecase, first, holdout)["decision"] == "promoted"
    return holdout, first


def test_the_gate_records_fairness_behaviour_and_explanations_and_the_card_shows_them(labelled_home, churn):
    usecase = _usecase(churn)
    data = build_training_data(usecase, END)
    outcome, version = _register(usecase, data, ("logistic", "xgboost"))
    record = gate.gate(usecase, version, _holdout(usecase, data))
    assert record["decision"] == "promoted", record["reason"]
    mine = record["challenger"]
    assert set(mine["fairness"]) == {"region", "plan"}
    assert mine["fairness"]["region"]["gaps"]["demographic_parity_difference"] is not None
    assert {t["name"] for t in mine["behaviour"]} == {
        "call_minutes_do_not_matter",
        "more_tickets_never_lower_churn",
        "first_year_customers",
    }
    assert len(mine["importance"]) == 10 and mine["responsible_seconds"] > 0
    names = {c["name"] for c in record["checks"]}
    assert (
        "behaviour more_tickets_never_lower_churn" in names and "fairness region demographic_parity_difference" in names
    )
    tags = mlflow_store.configure().get_model_version("churn", version).tags
    assert "more_tickets_never_lower_churn: pass" in tags["behaviour"] and json.loads(tags["fairness"])["plan"]
    run = mlflow_store.configure().get_run(outcome.best_result().run_id)
    assert any(k.startswith("fairness/region/") for k in run.data.metrics)
    text = card.publish(usecase, version, record, outcome.split).with_suffix(".md").read_text()
    assert "## Fairness" in text and "## Explanations" in text and "demographic_parity_difference" in text
    assert f"`{max(mine['importance'], key=mine['importance'].get)}`" in text


def test_a_deliberately_unfair_challenger_is_rejected_with_the_gap(labelled_home, churn):
    usecase = _usecase(churn)
    data = build_training_data(usecase, END)
    holdout, first = _with_champion(usecase, data)
    # Taught that every customer of the south churns: it flags the south, whatever they do.
    south = data.frame["region_is_south"] == 1
    unfair = dataclasses.replace(data, frame=data.frame.assign(churned=np.where(south, 1, data.frame["churned"])))
    _, version = _register(usecase, unfair)
    record = gate.gate(usecase, version, holdout)
    assert record["decision"] == "rejected"
    assert "fairness region demographic_parity_difference" in record["reason"], record["reason"]
    failed = {c["name"] for c in record["checks"] if not c["passed"]}
    assert "fairness region demographic_parity_difference" in failed
    gaps = record["challenger"]["fairness"]["region"]["gaps"]
    assert gaps["demographic_parity_difference"] > 0.3  # the limit; the champion's gap is far below
    assert mlflow_store.alias_version(mlflow_store.configure(), "churn", "champion") == first


def test_a_behaviour_breaking_challenger_is_rejected_with_the_test_name(labelled_home, churn):
    usecase = _usecase(churn)
    data = build_training_data(usecase, END)
    holdout, _ = _with_champion(usecase, data)
    # Trained on support tickets with their sign flipped: more tickets now lower the score.
    flipped = dataclasses.replace(data, frame=data.frame.assign(**{c: -data.frame[c] for c in TICKETS}))
    _, version = _register(usecase, flipped)
    record = gate.gate(usecase, version, holdout)
    assert record["decision"] == "rejected"
    assert "behaviour more_tickets_never_lower_churn: directional" in record["reason"], record["reason"]
    test = next(t for t in record["challenger"]["behaviour"] if t["name"] == "more_tickets_never_lower_churn")
    assert test["status"] == "fail" and test["value"] > 0.01  # max_share: 1% of the rows


@pytest.mark.parametrize("kind", ["logistic", "xgboost"])
def test_models_trained_on_the_fixed_set_pass_the_behavioural_tests(labelled_home, churn, kind):
    """The behavioural tests of configs/churn.yaml on each candidate the pipeline's own code trains
    from the tests' fixed labelled history: a change to features, training or scoring that breaks
    what a churn model must do fails here, in `make test`."""
    spec = churn.training
    data = build_training_data(churn, END)
    split = split_by_time(data.frame, spec, churn.entity.name)
    x = {p: getattr(split, p)[data.features].to_numpy(np.float32) for p in ("train", "validation")}
    y = {p: getattr(split, p)[data.label].to_numpy() for p in ("train", "validation", "holdout")}
    candidate = next(c for c in spec.candidates.values() if c.kind == kind)
    fitted, _ = candidates.fit(
        candidate, churn.task, spec.seed, x["train"], y["train"], x["validation"], y["validation"]
    )

    def predict(frame: pd.DataFrame) -> np.ndarray:
        return fitted.score(frame[data.features].to_numpy(np.float32, na_value=np.nan))

    results = behaviour.run_tests(
        spec.behaviour, churn.task, spec.primary_metric, predict, split.holdout, y["holdout"], 0.2
    )
    assert [r.status for r in results] == ["pass"] * 3, [r.detail for r in results]
    scores = predict(split.holdout)
    groups = fairness.group_metrics(
        churn.task, split.holdout, y["holdout"], scores, 0.2, _usecase(churn).training.fairness
    )
    for attribute, figures in groups.items():
        for metric, value in figures["gaps"].items():
            assert value is None or value <= spec.fairness.metrics[metric].limit, (attribute, metric, value)
    explanation = explain.explain(fitted, split.holdout, data.features)
    assert np.allclose(
        explanation.margin(), fitted.margin(split.holdout[data.features].to_numpy(np.float32)), atol=1e-4
    )
    importance = explain.global_importance(explanation)
    assert set(importance) == set(data.features) and list(importance.values()) == sorted(
        importance.values(), reverse=True
    )
