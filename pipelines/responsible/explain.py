"""Exact explanations of scores: each feature's contribution to a row's margin.

XGBoost's native TreeSHAP (``pred_contribs=True``) and, for linear models, the
coefficient times the centred feature: both exact, both add up (with the bias) to
the row's margin (log-odds for binary tasks, the estimate for regression). The
``shap`` library would add the same numbers for these two model families at the
cost of numba and llvmlite in the install, so it is not used (docs/responsible.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd


@dataclass
class Explanation:
    features: list[str]
    contributions: np.ndarray  # rows x features, in margin units
    bias: np.ndarray  # per row: the margin with every contribution at zero

    def margin(self) -> np.ndarray:
        return self.contributions.sum(axis=1) + self.bias


def fitted_of(model: Any) -> Any | None:
    """The :class:`~pipelines.training.model.Fitted` estimator behind a loaded pyfunc model (None
    when the model is not one of this project's :class:`ScoringModel`)."""
    try:
        inner = model.unwrap_python_model()
    except Exception:  # not a python_function model of ours
        return None
    return getattr(inner, "fitted", None)


def explain(fitted: Any, frame: pd.DataFrame, features: list[str]) -> Explanation:
    """The contributions of ``features`` (the model's columns, in its order) for each row of ``frame``."""
    matrix = frame[features].to_numpy(dtype=np.float32, na_value=np.nan)
    contributions, bias = fitted.contributions(matrix)
    return Explanation(list(features), contributions, bias)


def global_importance(explanation: Explanation, top: int | None = None) -> dict[str, float]:
    """Mean absolute contribution per feature, largest first (``top`` of them when given)."""
    if not len(explanation.contributions):
        return {}
    means = np.abs(explanation.contributions).mean(axis=0)
    order = np.argsort(-means, kind="stable")[: top or len(means)]
    return {explanation.features[i]: float(means[i]) for i in order}


def mean_contributions(explanation: Explanation) -> dict[str, float]:
    """Mean signed contribution per feature: how far each feature moves the average margin."""
    if not len(explanation.contributions):
        return {}
    means = explanation.contributions.mean(axis=0)
    return {name: float(v) for name, v in zip(explanation.features, means, strict=True)}


def top_reasons(explanation: Explanation, values: pd.DataFrame, count: int) -> list[str]:
    """Per row, its ``count`` largest contributions as JSON: ``[{"feature", "value", "contribution"}]``."""
    if not len(explanation.contributions) or count <= 0:
        return [json.dumps([]) for _ in range(len(explanation.contributions))]
    count = min(count, len(explanation.features))
    contributions = explanation.contributions
    order = np.argsort(-np.abs(contributions), axis=1, kind="stable")[:, :count]
    matrix = values[explanation.features].to_numpy(dtype=float, na_value=np.nan)
    out = []
    for row, picked in enumerate(order):
        out.append(
            json.dumps(
                [
                    {
                        "feature": explanation.features[i],
                        "value": None if np.isnan(matrix[row, i]) else round(float(matrix[row, i]), 6),
                        "contribution": round(float(contributions[row, i]), 6),
                    }
                    for i in picked
                ]
            )
        )
    return out


def score_shift(reference: Explanation, current: Explanation, features: list[str]) -> list[dict[str, Any]]:
    """How much each of ``features`` moved the mean margin from ``reference`` to ``current``, largest
    move first: which drifted features moved the scores most."""
    before, after = mean_contributions(reference), mean_contributions(current)
    moves = [
        {"feature": f, "reference": before[f], "current": after[f], "shift": after[f] - before[f]}
        for f in features
        if f in before and f in after
    ]
    return sorted(moves, key=lambda m: -abs(m["shift"]))
