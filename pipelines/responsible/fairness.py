"""Group metrics by sensitive attribute, Fairlearn's definitions computed column-wise.

Groups are the values of a one-hot encoded attribute (``region_is_north`` ...). A
group with fewer rows than ``min_group_rows`` (or, binary, fewer of the rarer class
than ``min_group_minority``, for equalized odds) is reported as too small and left out of the gaps, so
a handful of rows never passes or fails a model. Binary tasks: demographic parity
difference and equalized odds difference of the decisions at the model's threshold;
regression: ``mae_gap``, the largest minus the smallest group MAE over the overall MAE.

The figures are Fairlearn's (``MetricFrame`` with ``selection_rate``, ``true_positive_rate``,
``false_positive_rate``; ``demographic_parity_difference``, ``equalized_odds_difference``),
computed with one grouped sum per figure: Fairlearn's own evaluation stacks every row
into an array of its own, 20 s for a 100,000-row holdout. A test holds both equal.
"""

from __future__ import annotations

import math
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
    binary = task == "binary"
    predicted = (scores >= (0.5 if threshold is None else threshold)).astype(int) if binary else scores
    by_group = _by_group(binary, y, predicted, groups)
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


def _by_group(binary: bool, y: np.ndarray, predicted: np.ndarray, groups: np.ndarray) -> pd.DataFrame:
    """Each group's rows and figures (Fairlearn's ``MetricFrame.by_group``), groups in sorted order.

    A rate without its denominator (the TPR of a group without positives) is 0, as scikit-learn's
    normalized confusion matrix (behind Fairlearn's rates) gives it; such a group is not judged
    on equalized odds (``min_group_minority``)."""
    frame = pd.DataFrame({"group": groups, "y": y, "predicted": predicted})
    if not binary:
        frame["error"] = (frame["y"] - frame["predicted"]).abs()
        sums = frame.groupby("group", sort=True).agg(rows=("y", "size"), mae=("error", "mean"))
        return sums.astype({"rows": "int64"})
    frame = frame.assign(positive=frame["y"] == 1, selected=frame["predicted"] == 1).assign(
        hit=lambda f: f["positive"] & f["selected"], false_alarm=lambda f: ~f["positive"] & f["selected"]
    )
    sums = frame.groupby("group", sort=True).agg(
        rows=("y", "size"), selected=("selected", "sum"), positive=("positive", "sum"), hit=("hit", "sum"),
        false_alarm=("false_alarm", "sum"),
    )  # fmt: skip
    negative = sums["rows"] - sums["positive"]
    with np.errstate(invalid="ignore", divide="ignore"):
        return pd.DataFrame(
            {
                "rows": sums["rows"].astype("int64"),
                "selection_rate": sums["selected"] / sums["rows"],
                "true_positive_rate": (sums["hit"] / sums["positive"]).where(sums["positive"] > 0, 0.0),
                "false_positive_rate": (sums["false_alarm"] / negative).where(negative > 0, 0.0),
            }
        )


def _gap(name: str, y: np.ndarray, predicted: np.ndarray, groups: np.ndarray, judged: list[str]) -> float | None:
    """One group metric over the rows of the ``judged`` groups: the largest group figure minus the
    smallest (equalized odds: the larger of that for the TPR and for the FPR; ``mae_gap``: over
    the overall MAE)."""
    keep = np.isin(groups, judged)
    y, predicted, groups = y[keep], predicted[keep], groups[keep]
    if name == "mae_gap":
        maes = _by_group(False, y, predicted, groups)["mae"]
        overall = float(np.mean(np.abs(y - predicted)))
        return (float(maes.max()) - float(maes.min())) / overall if overall > 0 else 0.0
    figures = _by_group(True, y, predicted, groups)
    spread = figures.max() - figures.min()
    if name == "demographic_parity_difference":
        return _number(spread["selection_rate"])
    return _number(max(spread["true_positive_rate"], spread["false_positive_rate"]))


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
