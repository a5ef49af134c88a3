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


def explainer(model: Any, columns: list[str] | None = None) -> tuple[Any, list[str]] | None:
    """The fitted estimator behind a loaded pyfunc model and the features it takes, in its order
    (else ``columns``); None when the model is not one of this project's."""
    fitted = fitted_of(model)
    if fitted is None:
        return None
    return fitted, list(getattr(model.unwrap_python_model(), "features", None) or columns or [])


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


IMPORTANCE_ROWS = 20_000  # a global importance of a larger frame is averaged over a fixed sample of this many rows


def importance(fitted: Any, frame: pd.DataFrame, features: list[str], top: int | None = None) -> dict[str, float]:
    """:func:`global_importance` of ``fitted`` on ``frame``, or on a fixed sample of
    :data:`IMPORTANCE_ROWS` of its rows (exact tree explanations cost ~100x scoring: docs/benchmarks.md)."""
    if len(frame) > IMPORTANCE_ROWS:
        frame = frame.sample(IMPORTANCE_ROWS, random_state=0)
    return global_importance(explain(fitted, frame, features), top)


def ranked(importance: dict[str, float]) -> list[tuple[str, float]]:
    """A global importance as (feature, value) pairs, largest first (records stored as JSON with
    sorted keys lose the order)."""
    return sorted(importance.items(), key=lambda item: -item[1])


def mean_contributions(explanation: Explanation) -> dict[str, float]:
    """Mean signed contribution per feature: how far each feature moves the average margin."""
    if not len(explanation.contributions):
        return {}
    means = explanation.contributions.mean(axis=0)
    return {name: float(v) for name, v in zip(explanation.features, means, strict=True)}


def top_reasons(explanation: Explanation, values: pd.DataFrame, count: int) -> list[str]:
    """Per row, its ``count`` largest contributions as JSON: ``[{"feature", "value", "contribution"}]``,
    largest first. Built column-wise with Arrow's string kernels (not a ``json.dumps`` per row)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    rows = len(explanation.contributions)
    if not rows or count <= 0:
        return ["[]"] * rows
    contributions = explanation.contributions
    count = min(count, len(explanation.features))
    order = np.argsort(-np.abs(contributions), axis=1, kind="stable")[:, :count]
    picked = np.round(np.take_along_axis(contributions, order, axis=1), 6)
    matrix = values[explanation.features].to_numpy(dtype=float, na_value=np.nan)
    shown = np.round(np.take_along_axis(matrix, order, axis=1), 6)
    names = pa.array([json.dumps(name) for name in explanation.features])
    pieces: list = [pa.scalar("[")]
    for rank in range(count):
        value = pc.fill_null(pc.cast(pa.array(shown[:, rank], from_pandas=True), pa.string()), "null")
        contribution = pc.cast(pa.array(picked[:, rank]), pa.string())
        opening = '{"feature": ' if rank == 0 else ', {"feature": '
        pieces += [opening, names.take(order[:, rank]), ', "value": ', value, ', "contribution": ', contribution, "}"]
    pieces.append("]")
    return pc.binary_join_element_wise(*pieces, "").to_pylist()


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
