"""Group metrics by sensitive attribute, with Fairlearn's ``MetricFrame``.

Groups are the values of a one-hot encoded attribute (``region_is_north`` ...). A
group with fewer rows than ``min_group_rows`` (or, binary, fewer of the rarer class
than ``min_group_minority``, for equalized odds) is reported as too small and left out of the gaps, so
a handful of rows never passes or fails a model. Binary tasks: demographic parity
difference and equalized odds difference of the decisions at the model's threshold;
regression: ``mae_gap``, the largest minus the smallest group MAE over the overall MAE.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd

from pipelines.config.responsible import FairnessSpec
from pipelines.training.metrics import segment_values


def group_metrics(
    task: str,
    frame: pd.DataFrame,
    y: np.ndarray,
    scores: np.ndarray,
    threshold: float | None,
    spec: FairnessSpec,
) -> dict[str, dict[str, Any]]:
    """Per sensitive attribute: each group's figures, the groups too small to judge, and the gaps
    (None when fewer than two groups are big enough)."""
    y, scores = np.asarray(y), np.asarray(scores, dtype=float)
    out = {}
    for attribute in spec.sensitive:
        groups = segment_values(frame, attribute).to_numpy()
        out[attribute] = _attribute(task, y, scores, threshold, groups, spec)
    return out


def _attribute(
    task: str, y: np.ndarray, scores: np.ndarray, threshold: float | None, groups: np.ndarray, spec: FairnessSpec
) -> dict[str, Any]:
    from fairlearn.metrics import MetricFrame, count, false_positive_rate, selection_rate, true_positive_rate
    from sklearn.metrics import mean_absolute_error

    binary = task == "binary"
    predicted = (scores >= (0.5 if threshold is None else threshold)).astype(int) if binary else scores
    if binary:
        figures = {
            "rows": count,
            "selection_rate": selection_rate,
            "true_positive_rate": true_positive_rate,
            "false_positive_rate": false_positive_rate,
        }
    else:
        figures = {"rows": count, "mae": mean_absolute_error}
    with warnings.catch_warnings():  # a group without positives has no TPR: NaN, and a warning
        warnings.simplefilter("ignore")
        by_group = MetricFrame(
            metrics=figures, y_true=y, y_pred=predicted, sensitive_features=pd.Series(groups, name="group")
        ).by_group
    report, big_enough, both_classes = {}, [], []
    for group, row in by_group.iterrows():
        mask = groups == group
        minority = int(min(y[mask].sum(), mask.sum() - y[mask].sum())) if binary else None
        if int(row["rows"]) >= spec.min_group_rows:
            big_enough.append(str(group))
            if minority is None or minority >= spec.min_group_minority:
                both_classes.append(str(group))
        report[str(group)] = {k: _number(v) for k, v in row.items()} | ({"minority": minority} if binary else {})
    gaps: dict[str, float | None] = {}
    judged: dict[str, list[str]] = {}
    for name in spec.metrics:
        # Rates conditioned on the label (equalized odds) need both classes in a group; the rest, its rows.
        judged[name] = both_classes if name == "equalized_odds_difference" else big_enough
        gaps[name] = _gap(name, y, predicted, groups, judged[name]) if len(judged[name]) >= 2 else None
    too_small = {name: sorted(set(report) - set(groups_)) for name, groups_ in judged.items()}
    return {"groups": report, "judged": judged, "too_small": too_small, "gaps": gaps}


def _gap(name: str, y: np.ndarray, predicted: np.ndarray, groups: np.ndarray, judged: list[str]) -> float | None:
    """One group metric over the rows of the ``judged`` groups."""
    from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference

    keep = np.isin(groups, judged)
    y, predicted, groups = y[keep], predicted[keep], groups[keep]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if name == "demographic_parity_difference":
            return _number(demographic_parity_difference(y, predicted, sensitive_features=groups))
        if name == "equalized_odds_difference":
            return _number(equalized_odds_difference(y, predicted, sensitive_features=groups))
    maes = [float(np.mean(np.abs(y[groups == g] - predicted[groups == g]))) for g in judged]
    overall = float(np.mean(np.abs(y - predicted)))
    return (max(maes) - min(maes)) / overall if overall > 0 else 0.0


def _number(value: Any) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def flat(fairness: dict[str, dict[str, Any]]) -> dict[str, float]:
    """MLflow metrics of :func:`group_metrics`: ``fairness/<attribute>/<metric>`` (judged gaps only)."""
    return {
        f"fairness/{attribute}/{metric}": value
        for attribute, figures in fairness.items()
        for metric, value in figures["gaps"].items()
        if value is not None
    }
