"""Metrics of a scored holdout: overall, per segment, and the decision threshold."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

# Metrics where higher is better all the way: losses are negated ("neg_*") so one rule compares all.
HIGHER_IS_BETTER = {"roc_auc", "pr_auc", "f1", "neg_log_loss", "neg_brier", "neg_rmse", "neg_mae", "r2"}


def choose_threshold(y: np.ndarray, scores: np.ndarray) -> float:
    """The score threshold with the best F1 on ``y`` (the validation days)."""
    from sklearn.metrics import precision_recall_curve

    precision, recall, thresholds = precision_recall_curve(y, scores)
    f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0)
    best = int(np.argmax(f1[:-1])) if len(thresholds) else 0
    return float(thresholds[best]) if len(thresholds) else 0.5


def classification_metrics(y: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    """AUC, PR-AUC, log-loss, Brier and F1 at ``threshold``; AUCs are NaN when one class only."""
    from sklearn.metrics import average_precision_score, brier_score_loss, f1_score, log_loss, roc_auc_score

    y = np.asarray(y).astype(int)
    scores = np.clip(np.asarray(scores, dtype=float), 1e-7, 1 - 1e-7)
    both = len(np.unique(y)) == 2
    log_loss_value = float(log_loss(y, scores, labels=[0, 1]))
    brier = float(brier_score_loss(y, scores, pos_label=1))
    return {
        "roc_auc": float(roc_auc_score(y, scores)) if both else math.nan,
        "pr_auc": float(average_precision_score(y, scores)) if both else math.nan,
        "log_loss": log_loss_value,
        "neg_log_loss": -log_loss_value,
        "brier": brier,
        "neg_brier": -brier,
        "f1": float(f1_score(y, scores >= threshold, zero_division=0)),
        "positive_rate": float(y.mean()) if len(y) else math.nan,
        "minority": float(min(y.sum(), len(y) - y.sum())),  # rows of the rarer class
        "rows": float(len(y)),
    }


def regression_metrics(y: np.ndarray, predictions: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    rmse = float(math.sqrt(mean_squared_error(y, predictions)))
    mae = float(mean_absolute_error(y, predictions))
    return {
        "rmse": rmse,
        "neg_rmse": -rmse,
        "mae": mae,
        "neg_mae": -mae,
        "r2": float(r2_score(y, predictions)) if len(y) > 1 else math.nan,
        "rows": float(len(y)),
    }


def metrics_for(task: str, y: np.ndarray, scores: np.ndarray, threshold: float | None) -> dict[str, float]:
    if task == "binary":
        return classification_metrics(y, scores, 0.5 if threshold is None else threshold)
    return regression_metrics(y, scores)


def segment_values(frame: pd.DataFrame, segment: str) -> pd.Series:
    """Which value of the one-hot encoded ``segment`` each row has (``<segment>_is_<value>`` columns)."""
    prefix = f"{segment}_is_"
    columns = [c for c in frame.columns if c.startswith(prefix)]
    if not columns:
        raise KeyError(f"no one-hot columns {prefix}* for segment '{segment}'")
    onehot = frame[columns].to_numpy()
    names = np.array([c.removeprefix(prefix) for c in columns] + ["unknown"])
    index = np.where(onehot.max(axis=1) > 0, onehot.argmax(axis=1), len(columns))
    return pd.Series(names[index], index=frame.index)


def segment_metrics(
    task: str,
    frame: pd.DataFrame,
    y: np.ndarray,
    scores: np.ndarray,
    threshold: float | None,
    segments: list[str],
) -> dict[str, dict[str, float]]:
    """Metrics per segment value, keyed ``"<segment>=<value>"``."""
    out = {}
    y, scores = np.asarray(y), np.asarray(scores)
    for segment in segments:
        values = segment_values(frame, segment).to_numpy()
        for value in sorted(set(values)):
            mask = values == value
            out[f"{segment}={value}"] = metrics_for(task, y[mask], scores[mask], threshold)
    return out


def flat(metrics: dict[str, float], prefix: str = "") -> dict[str, float]:
    """MLflow metric names (letters, digits, ``_-./ =``) with NaNs left out."""
    return {f"{prefix}{k}": v for k, v in metrics.items() if not (isinstance(v, float) and math.isnan(v))}


def json_safe(value: Any) -> Any:
    """``value`` with NaN and infinities replaced by None (JSON, XCom and MLflow tags refuse them)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def is_number(value: Any) -> bool:
    """A finite number (not None, not NaN)."""
    return isinstance(value, int | float) and math.isfinite(value)
