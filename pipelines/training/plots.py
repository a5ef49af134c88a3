"""Figures logged with every candidate: ROC, precision-recall, calibration, feature importance."""

from __future__ import annotations

from typing import Any

import numpy as np


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # no screen: draw to files
    import matplotlib.pyplot as plt

    return plt


def holdout_figures(task: str, y: np.ndarray, scores: np.ndarray, title: str) -> dict[str, Any]:
    """``{file name: figure}`` of a scored holdout."""
    plt = _pyplot()
    figures = {}
    if task == "binary" and len(np.unique(y)) == 2:
        from sklearn.calibration import calibration_curve
        from sklearn.metrics import precision_recall_curve, roc_curve

        fpr, tpr, _ = roc_curve(y, scores)
        fig, ax = plt.subplots(figsize=(5, 4))
        ax.plot(fpr, tpr, label="model")
        ax.plot([0, 1], [0, 1], "--", color="grey", label="chance")
        ax.set(xlabel="false positive rate", ylabel="true positive rate", title=f"ROC, {title}")
        ax.legend()
        figures["roc.png"] = fig

        precision, recall, _ = precision_recall_curve(y, scores)
        fig, ax = plt.subplots(figsize=(5, 4))
        ax.plot(recall, precision)
        ax.axhline(float(np.mean(y)), linestyle="--", color="grey", label="base rate")
        ax.set(xlabel="recall", ylabel="precision", title=f"Precision-recall, {title}")
        ax.legend()
        figures["precision_recall.png"] = fig

        observed, predicted = calibration_curve(y, scores, n_bins=10, strategy="quantile")
        fig, ax = plt.subplots(figsize=(5, 4))
        ax.plot(predicted, observed, marker="o", label="model")
        ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect")
        ax.set(xlabel="mean predicted probability", ylabel="observed rate", title=f"Calibration, {title}")
        ax.legend()
        figures["calibration.png"] = fig
    elif task == "regression":
        fig, ax = plt.subplots(figsize=(5, 4))
        ax.scatter(y, scores, s=3, alpha=0.3)
        low, high = float(np.min(y)), float(np.max(y))
        ax.plot([low, high], [low, high], "--", color="grey")
        ax.set(xlabel="actual", ylabel="predicted", title=f"Predicted vs actual, {title}")
        figures["predicted_vs_actual.png"] = fig
    return figures


def importance_figure(importances: dict[str, float], title: str, top: int = 20, unit: str = "") -> Any:
    plt = _pyplot()
    items = sorted(importances.items(), key=lambda kv: kv[1], reverse=True)[:top][::-1]
    fig, ax = plt.subplots(figsize=(6, 0.25 * len(items) + 1.2))
    ax.barh([k for k, _ in items], [v for _, v in items])
    ax.set(title=f"Feature importance, {title}", xlabel=unit)
    fig.tight_layout()
    return fig


def close(figures: list[Any]) -> None:
    plt = _pyplot()
    for fig in figures:
        plt.close(fig)
