"""Time split, metrics and the promotion policy: plain functions on small frames, no MLflow."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from pipelines.config import PromotionSpec
from pipelines.promotion.policy import Evaluation, decide
from pipelines.training import metrics
from pipelines.training.dataset import (
    REFERENCE_DAY,
    TrainingDataError,
    check_labels,
    check_split,
    split_by_time,
    with_split,
)
from pipelines.training.train import UnknownCandidate, check_candidates


def _frame(days: int, per_day: int = 4) -> pd.DataFrame:
    day = pd.date_range("2025-01-01", periods=days, freq="D", tz="UTC").repeat(per_day)
    return pd.DataFrame(
        {
            "customer_id": np.tile(np.arange(per_day), days),  # the same entities every day
            REFERENCE_DAY: day,
            "churned": np.tile([0, 1], days * per_day // 2),
            "x": 1.0,
        }
    )


def _split(frame: pd.DataFrame, spec) -> object:
    """The time split alone (every entity on both sides), as these tests count rows by days."""
    return split_by_time(frame, spec.model_copy(update={"held_out_entities": 0}), "customer_id")


def test_split_by_time_keeps_whole_days_in_order(churn):
    spec = churn.training.model_copy(update={"validation_days": 2, "holdout_days": 3})
    split = _split(_frame(10).sample(frac=1, random_state=0), spec)
    assert split.days("holdout") == ["2025-01-08", "2025-01-09", "2025-01-10"]
    assert split.days("validation") == ["2025-01-06", "2025-01-07"]
    assert split.days("train")[-1] == "2025-01-05"
    assert len(split.train) + len(split.validation) + len(split.holdout) == 40
    assert split.summary()["holdout"]["rows"] == 12


def test_no_entity_is_both_fitted_on_and_judged_on(churn):
    """A label that spans days (churn within 7 days) is shared by an entity's neighbouring days: a model
    judged on entities it was fitted on scores labels it has seen. The held-out entities are the same
    in every run and every order of rows."""
    spec = churn.training.model_copy(update={"validation_days": 2, "holdout_days": 3})
    assert spec.held_out_entities == 0.3  # the default
    frame = _frame(10, per_day=2000)
    split = split_by_time(frame.sample(frac=1, random_state=1), spec, "customer_id")
    fitted, judged = (
        set(split.train["customer_id"]),
        set(split.validation["customer_id"]) | set(split.holdout["customer_id"]),
    )
    assert not fitted & judged and fitted | judged == set(range(2000))
    assert 0.27 < len(judged) / 2000 < 0.33
    assert split.days("holdout") == ["2025-01-08", "2025-01-09", "2025-01-10"]
    assert split.days("train")[-1] == "2025-01-05" and split.days("validation") == ["2025-01-06", "2025-01-07"]
    again = split_by_time(frame, spec, "customer_id")
    assert set(again.holdout["customer_id"]) == set(split.holdout["customer_id"])


def test_too_few_days_to_split_says_how_many_are_needed(churn):
    spec = churn.training.model_copy(update={"validation_days": 2, "holdout_days": 3})
    with pytest.raises(TrainingDataError, match="has 5 labelled days; a time split needs at least 6"):
        split_by_time(_frame(5), spec, "customer_id")


def test_a_single_class_window_is_refused(churn):
    frame = _frame(10).assign(churned=0)
    split = _split(frame, churn.training.model_copy(update={"validation_days": 2, "holdout_days": 3}))
    with pytest.raises(TrainingDataError, match=r"only label churned=\[0\]"):
        check_labels(split, "churned", "binary")


def test_a_holdout_smaller_than_the_gate_asks_is_refused_naming_the_days_and_the_label_column(churn):
    usecase = with_split(churn, validation_days=2, holdout_days=3)
    split = _split(_frame(10, per_day=200), usecase.training)
    check_split(split, usecase)  # 600 rows: enough for min_holdout_rows 500
    small = _split(_frame(10, per_day=4), usecase.training)
    with pytest.raises(TrainingDataError) as err:
        check_split(small, usecase)
    text = str(err.value)
    assert (
        "2025-01-08..2025-01-10) has 12 rows" in text
        and f"asks for {churn.training.promotion.min_holdout_rows}" in text
    )
    assert "'reference_date' (label.reference_time) in UTC" in text
    assert "hold 4 labelled rows of the 30% of entities never fitted on" in text


def test_a_run_can_split_its_window_otherwise_without_changing_the_config(churn):
    fresh = with_split(churn, validation_days=1, holdout_days=1)
    assert (fresh.training.validation_days, fresh.training.holdout_days) == (1, 1)
    assert fresh.training.promotion == churn.training.promotion and churn.training.holdout_days == 3
    assert with_split(churn, None, None) is churn
    assert _split(_frame(10), fresh.training).days("holdout") == ["2025-01-10"]


def test_unknown_candidates_are_named_with_the_configured_ones(churn):
    assert check_candidates(churn, None) == ["logistic", "xgboost"]
    assert check_candidates(churn, ["xgboost"]) == ["xgboost"]
    with pytest.raises(UnknownCandidate, match=r"\['lightgbm'\].*defines \['logistic', 'xgboost'\]"):
        check_candidates(churn, ["xgboost", "lightgbm"])


def test_metrics_and_threshold():
    y = np.array([0, 0, 1, 1, 0, 1])
    scores = np.array([0.1, 0.2, 0.8, 0.7, 0.3, 0.9])
    threshold = metrics.choose_threshold(y, scores)
    assert 0.3 < threshold <= 0.7
    m = metrics.classification_metrics(y, scores, threshold)
    assert m["roc_auc"] == 1.0 and m["f1"] == 1.0 and m["rows"] == 6 and m["minority"] == 3
    one_class = metrics.classification_metrics(np.zeros(3), np.array([0.1, 0.2, 0.3]), 0.5)
    assert math.isnan(one_class["roc_auc"])
    assert metrics.json_safe({"a": [math.nan, 1.0], "b": math.inf}) == {"a": [None, 1.0], "b": None}


def test_segments_come_from_one_hot_columns():
    frame = pd.DataFrame({"plan_is_basic": [1, 0, 0], "plan_is_premium": [0, 1, 0]})
    assert metrics.segment_values(frame, "plan").tolist() == ["basic", "premium", "unknown"]


SPEC = PromotionSpec(
    margin=0.01, floor=0.6, calibration_tolerance=0.01, segment_floor=0.55, segment_tolerance=0.05, min_holdout_rows=100
)


def _eval(version: str, auc: float, brier: float = 0.1, segments: dict | None = None, **kw) -> Evaluation:
    seg = {k: {"roc_auc": v, "rows": 500.0, "minority": 50.0} for k, v in (segments or {}).items()}
    return Evaluation(version, {"roc_auc": auc, "brier": brier}, seg, rows=kw.pop("rows", 1000), **kw)


@pytest.mark.parametrize(
    ("challenger", "champion", "promote", "reason"),
    [
        (_eval("2", 0.80), _eval("1", 0.75), True, "beats champion v1"),
        (_eval("2", 0.75), _eval("1", 0.75), False, "margin"),  # equal is not better
        (_eval("2", 0.755), _eval("1", 0.75), False, "margin"),  # better, but not by the margin
        (_eval("2", 0.70), _eval("1", 0.75), False, "margin"),
        (
            _eval("2", 0.80, segments={"region=west": 0.60}),
            _eval("1", 0.75, segments={"region=west": 0.70}),
            False,
            "segment region=west",
        ),
        (_eval("2", 0.80, segments={"region=west": 0.50}), _eval("1", 0.75), False, "below floor 0.55"),
        (_eval("2", 0.80, brier=0.2), _eval("1", 0.75, brier=0.1), False, "calibration"),
        (_eval("2", 0.80, rows=50), _eval("1", 0.75), False, "holdout_size"),
        (_eval("2", 0.58), None, False, "floor"),
        (_eval("1", 0.65), None, True, "first model"),
        (_eval("1", 0.90, rows=3), None, False, "holdout_size: 3 holdout rows vs minimum"),  # one rule for all
        (_eval("2", 0.80, error="ValueError: boom"), None, False, "does not load or score"),
        (_eval("2", 0.65), _eval("1", math.nan, error="OSError: gone"), False, "champion_scores"),
    ],
    ids=[
        "better",
        "equal",
        "within-margin",
        "worse",
        "better-but-one-segment-worse",
        "segment-below-floor",
        "worse-calibration",
        "holdout-too-small",
        "below-floor",
        "first-model",
        "first-model-holdout-too-small",
        "does-not-score",
        "champion-unscorable",
    ],
)
def test_promotion_policy(challenger, champion, promote, reason):
    decision = decide(challenger, champion, SPEC, "roc_auc", "binary")
    assert decision.promote is promote
    assert reason in decision.reason


def test_small_segments_are_reported_not_judged():
    tiny = _eval("2", 0.80, segments={"region=west": 0.10})
    tiny.segments["region=west"]["minority"] = 3.0
    assert decide(tiny, _eval("1", 0.75, segments={"region=west": 0.9}), SPEC, "roc_auc", "binary").promote


def test_force_promotes_a_worse_model_but_never_one_that_does_not_score():
    forced = decide(_eval("2", 0.50), _eval("1", 0.75), SPEC, "roc_auc", "binary", force=True)
    assert forced.promote and forced.forced and "despite" in forced.reason
    broken = decide(_eval("2", 0.9, error="RuntimeError: x"), _eval("1", 0.75), SPEC, "roc_auc", "binary", force=True)
    assert not broken.promote


@pytest.mark.parametrize("kind", ["ridge", "xgboost"])
def test_regression_candidates_fit_and_are_measured(kind):
    from pipelines.config import CandidateSpec
    from pipelines.training.candidates import fit

    rng = np.random.default_rng(0)
    x = rng.random((600, 3)).astype(np.float32)
    y = 3 * x[:, 0] - 2 * x[:, 1] + rng.normal(0, 0.05, 600)
    spec = CandidateSpec(kind=kind, params={"n_estimators": 50} if kind == "xgboost" else {})
    fitted, again = (fit(spec, "regression", 7, x[:400], y[:400], x[400:500], y[400:500])[0] for _ in range(2))
    m = metrics.metrics_for("regression", y[500:], fitted.score(x[500:]), None)
    assert m["r2"] > 0.8 and m["neg_rmse"] == -m["rmse"] and m["rows"] == 100
    contributions, bias = fitted.contributions(x[500:])
    assert contributions.shape == (100, 3) and np.allclose(
        contributions.sum(axis=1) + bias, fitted.score(x[500:]), atol=1e-4
    )
    assert np.array_equal(fitted.score(x[500:]), again.score(x[500:]))  # fixed seeds: same model
