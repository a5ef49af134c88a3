"""The responsible gate's parts as plain functions: group metrics, behavioural tests, explanations,
the guardrails in the policy, and their settings' bad input."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from pipelines import settings
from pipelines.config import CandidateSpec, ConfigError, PromotionSpec, load_usecase
from pipelines.config.responsible import BehaviourSpec, FairnessSpec
from pipelines.promotion.policy import Evaluation, decide
from pipelines.responsible import behaviour, explain, fairness
from pipelines.training.candidates import fit

REPO_CONFIG = settings.REPO_ROOT / "configs" / "churn.yaml"
SPEC = PromotionSpec(floor=0.6, margin=0.0, min_holdout_rows=1)
FAIR = FairnessSpec(
    sensitive=["region"],
    metrics={"demographic_parity_difference": {"limit": 0.3, "tolerance": 0.05}},
    min_group_rows=50,
    min_group_minority=5,
)


def _groups(rows_per_group: dict[str, int], seed: int = 0) -> pd.DataFrame:
    """A frame with one-hot ``region_is_*`` columns, ``rows_per_group`` rows of each region."""
    names = list(rows_per_group)
    region = np.repeat(names, list(rows_per_group.values()))
    frame = pd.DataFrame({f"region_is_{n}": (region == n).astype(int) for n in names})
    frame["x"] = np.random.default_rng(seed).random(len(frame))
    return frame


def test_demographic_parity_is_the_gap_in_positive_decisions_and_small_groups_are_named():
    frame = _groups({"north": 200, "south": 200, "west": 20})
    y = np.tile([0, 1], len(frame) // 2)
    scores = np.where(frame["region_is_south"] == 1, 0.9, 0.1)  # every south row flagged, no north row
    out = fairness.group_metrics("binary", frame, y, scores, 0.5, FAIR)["region"]
    assert out["gaps"]["demographic_parity_difference"] == pytest.approx(1.0)
    assert out["too_small"] == {"demographic_parity_difference": ["west"]}
    assert sorted(out["judged"]["demographic_parity_difference"]) == ["north", "south"]
    assert out["groups"]["west"]["rows"] == 20
    assert fairness.flat({"region": out}) == {"fairness/region/demographic_parity_difference": pytest.approx(1.0)}


def test_with_fewer_than_two_groups_big_enough_no_gap_is_claimed():
    frame = _groups({"north": 200, "south": 30})
    y = np.tile([0, 1], len(frame) // 2)
    out = fairness.group_metrics("binary", frame, y, np.full(len(frame), 0.7), 0.5, FAIR)["region"]
    assert out["gaps"] == {"demographic_parity_difference": None}
    assert out["too_small"] == {"demographic_parity_difference": ["south"]}


def test_regression_gap_is_the_spread_of_group_errors_over_the_overall_error():
    frame = _groups({"north": 100, "south": 100})
    y = np.zeros(len(frame))
    predictions = np.where(frame["region_is_south"] == 1, 3.0, 1.0)  # MAE 3 in south, 1 in north, 2 overall
    spec = FairnessSpec(sensitive=["region"], metrics={"mae_gap": {"limit": 0.5}}, min_group_rows=50)
    out = fairness.group_metrics("regression", frame, y, predictions, None, spec)["region"]
    assert out["gaps"]["mae_gap"] == pytest.approx(1.0)
    assert out["groups"]["south"]["mae"] == pytest.approx(3.0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_group_figures_and_gaps_are_fairlearns(seed):
    """The figures are computed column-wise for speed; Fairlearn's MetricFrame and difference
    functions, on the same rows, are the reference (a group without positives included)."""
    from fairlearn.metrics import (
        MetricFrame,
        count,
        demographic_parity_difference,
        equalized_odds_difference,
        false_positive_rate,
        selection_rate,
        true_positive_rate,
    )

    rng = np.random.default_rng(seed)
    frame = _groups({"north": 400, "south": 300, "east": 200, "west": 60}, seed)
    y = (rng.random(len(frame)) < 0.3 + 0.2 * frame["region_is_south"]).astype(int)
    y[frame["region_is_west"].to_numpy() == 1] = 0  # no positives: its TPR is undefined
    scores = np.clip(rng.random(len(frame)) * 0.8 + 0.3 * y, 0, 1)
    spec = FairnessSpec(
        sensitive=["region"],
        metrics={"demographic_parity_difference": {"limit": 1}, "equalized_odds_difference": {"limit": 1}},
        min_group_rows=50,
        min_group_minority=1,
    )
    out = fairness.group_metrics("binary", frame, y, scores, 0.45, spec)["region"]
    predicted = (scores >= 0.45).astype(int)
    groups = fairness.segment_values(frame, "region").to_numpy()
    figures = {"rows": count, "selection_rate": selection_rate, "true_positive_rate": true_positive_rate,
               "false_positive_rate": false_positive_rate}  # fmt: skip
    with warnings.catch_warnings():  # Fairlearn warns about the undefined rate
        warnings.simplefilter("ignore")
        expected = MetricFrame(metrics=figures, y_true=y, y_pred=predicted, sensitive_features=groups).by_group
        judged = np.isin(groups, out["judged"]["equalized_odds_difference"])
        eo = equalized_odds_difference(y[judged], predicted[judged], sensitive_features=groups[judged])
        dp = demographic_parity_difference(y, predicted, sensitive_features=groups)
    for group, row in expected.iterrows():
        for name, value in row.items():
            assert out["groups"][group][name] == (None if pd.isna(value) else pytest.approx(float(value))), (
                group,
                name,
            )
    assert out["judged"]["equalized_odds_difference"] == ["east", "north", "south"]  # west has no positives
    assert out["gaps"]["equalized_odds_difference"] == pytest.approx(eo)
    assert out["gaps"]["demographic_parity_difference"] == pytest.approx(dp)


def _evaluation(version: str, auc: float, dp: float | None, tests: list[dict] | None = None) -> Evaluation:
    gaps = {"demographic_parity_difference": dp}
    return Evaluation(
        version=version,
        metrics={"roc_auc": auc, "brier": 0.1},
        rows=1000,
        fairness={
            "region": {
                "gaps": gaps,
                "judged": {"demographic_parity_difference": ["north", "south"]},
                "too_small": {"demographic_parity_difference": ["west"]},
            }
        },
        behaviour=tests or [],
    )


def test_an_unfair_challenger_is_rejected_with_the_gap_and_a_fair_one_passes():
    champion = _evaluation("1", 0.70, 0.10)
    widened = decide(_evaluation("2", 0.80, 0.20), champion, SPEC, "roc_auc", "binary", fairness=FAIR)
    assert not widened.promote
    assert (
        "fairness region demographic_parity_difference" in widened.reason and "wider than champion v1" in widened.reason
    )
    over = decide(_evaluation("2", 0.80, 0.35), None, SPEC, "roc_auc", "binary", fairness=FAIR)  # the first model too
    assert not over.promote and "above the limit 0.3" in over.reason
    fair = decide(_evaluation("2", 0.80, 0.12), champion, SPEC, "roc_auc", "binary", fairness=FAIR)
    assert fair.promote
    check = next(c for c in fair.checks if c.name.startswith("fairness"))
    assert check.passed and "too small to judge: west" in check.detail


def test_a_gap_that_cannot_be_judged_is_reported_not_passed_or_failed():
    decision = decide(
        _evaluation("2", 0.80, None), _evaluation("1", 0.7, 0.1), SPEC, "roc_auc", "binary", fairness=FAIR
    )
    check = next(c for c in decision.checks if c.name.startswith("fairness"))
    assert decision.promote and check.judged is False and "not judged" in check.detail


def test_a_failed_behavioural_test_rejects_with_its_name_and_a_small_slice_does_not():
    tests = [
        {"name": "more_tickets", "kind": "directional", "status": "fail", "detail": "12% of rows fell"},
        {"name": "new_customers", "kind": "slice", "status": "too_small", "detail": "8 rows"},
    ]
    decision = decide(_evaluation("2", 0.9, 0.1, tests), None, SPEC, "roc_auc", "binary")
    assert not decision.promote and "behaviour more_tickets: directional: 12% of rows fell" in decision.reason
    small = next(c for c in decision.checks if c.name == "behaviour new_customers")
    assert small.passed and small.judged is False


def _linear_data(n: int = 2000, seed: int = 3) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"tickets": rng.poisson(1.0, n).astype(float), "noise": rng.random(n), "x": rng.random(n)})
    logit = -1 + 1.2 * frame["tickets"] + 2 * frame["x"]
    return frame, (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)


def _candidate(kind: str) -> CandidateSpec:
    return CandidateSpec(kind=kind, params={"n_estimators": 60, "max_depth": 2} if kind == "xgboost" else {})


TESTS = BehaviourSpec(
    invariance=[
        {"name": "noise_does_not_matter", "features": ["noise"], "scale": 1.1, "tolerance": 0.05, "max_share": 0.05}
    ],
    directional=[
        {"name": "more_tickets", "features": ["tickets"], "add": 1, "direction": "increasing", "max_share": 0.01}
    ],
    slices=[
        {"name": "many_tickets", "where": {"tickets": [3, None]}, "floor": 0.5, "min_rows": 20},
        {"name": "huge_x", "where": {"x": [5, None]}, "floor": 0.5},
    ],
)


@pytest.mark.parametrize("kind", ["logistic", "xgboost"])
def test_behavioural_tests_pass_on_a_sound_model_and_catch_a_broken_one(kind):
    frame, y = _linear_data()
    columns = list(frame.columns)
    x = frame.to_numpy(np.float32)
    fitted, _ = fit(_candidate(kind), "binary", 1, x, y, x, y)

    def predict(f: pd.DataFrame) -> np.ndarray:
        return fitted.score(f[columns].to_numpy(np.float32))

    results = {r.name: r for r in behaviour.run_tests(TESTS, "binary", "roc_auc", predict, frame, y, 0.5)}
    assert results["more_tickets"].status == "pass", results["more_tickets"].detail
    assert results["noise_does_not_matter"].status == "pass", results["noise_does_not_matter"].detail
    assert results["many_tickets"].status == "pass" and results["huge_x"].status == "too_small"

    def inverted(f: pd.DataFrame) -> np.ndarray:  # a model that learned the tickets backwards, mostly
        return np.clip(predict(f) - 0.2 * f["tickets"].to_numpy(), 0, 1)

    broken = {r.name: r for r in behaviour.run_tests(TESTS, "binary", "roc_auc", inverted, frame, y, 0.5)}
    assert broken["more_tickets"].status == "fail" and "scores never fall" in broken["more_tickets"].detail


@pytest.mark.parametrize(
    ("kind", "task"),
    [("logistic", "binary"), ("xgboost", "binary"), ("ridge", "regression"), ("xgboost", "regression")],
)
def test_each_rows_contributions_add_up_to_its_margin(kind, task):
    frame, y = _linear_data()
    if task == "regression":
        y = (2 * frame["tickets"] + frame["x"]).to_numpy()
    frame.loc[::7, "x"] = np.nan  # missing values are explained too (imputed, or the trees' default branch)
    x = frame.to_numpy(np.float32)
    fitted, _ = fit(_candidate(kind), task, 1, x, y, x, y)
    explanation = explain.explain(fitted, frame, list(frame.columns))
    assert np.allclose(explanation.margin(), fitted.margin(x), atol=1e-4)
    if task == "binary":  # the margin is the log-odds of the score
        assert np.allclose(1 / (1 + np.exp(-explanation.margin())), fitted.score(x), atol=1e-4)
    importance = explain.global_importance(explanation)
    assert next(iter(importance)) in ("tickets", "x") and importance["noise"] < importance["tickets"]
    reasons = [json.loads(r) for r in explain.top_reasons(explanation, frame, 2)]
    first = reasons[0]
    assert len(first) == 2 and abs(first[0]["contribution"]) >= abs(first[1]["contribution"])
    assert first[0]["contribution"] == pytest.approx(
        explanation.contributions[0, list(frame.columns).index(first[0]["feature"])], abs=1e-5
    )


def _write(tmp_path: Path, change) -> Path:
    raw = yaml.safe_load(REPO_CONFIG.read_text())
    change(raw["training"])
    path = tmp_path / "churn.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda t: t["fairness"]["sensitive"].append("religion"),
            "training.fairness.sensitive.2: unknown sensitive attribute 'religion'",
        ),
        (
            lambda t: t["behaviour"]["directional"][0]["features"].append("tickets_per_day"),
            "training.behaviour.directional.0: test 'more_tickets_never_lower_churn' names 'tickets_per_day'",
        ),
        (
            lambda t: t["fairness"]["metrics"]["equalized_odds_difference"].update(tolerance=1.5),
            "training.fairness.metrics.equalized_odds_difference.tolerance",
        ),
        (
            lambda t: t["fairness"]["metrics"].update(mae_gap={"limit": 1}),
            "training.fairness.metrics.mae_gap: not a binary",
        ),
        (
            lambda t: t["behaviour"]["slices"][0]["where"].update(churn_score=[0, 1]),
            "training.behaviour.slices.0: test 'first_year_customers' names 'churn_score'",
        ),
        (
            lambda t: t["fairness"]["metrics"].update(demographic_parity_difference={}),
            "give a limit, a tolerance or both",
        ),
        (
            lambda t: t["behaviour"]["invariance"][0].update(add=1),
            "give exactly one of add or scale",
        ),
    ],
)
def test_bad_responsible_settings_fail_on_load_naming_the_field(tmp_path, change, expected):
    with pytest.raises(ConfigError) as err:
        load_usecase(_write(tmp_path, change))
    assert expected in str(err.value), str(err.value)
