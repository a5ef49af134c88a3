"""The model a use case registers: a fitted estimator behind MLflow's pyfunc interface.

Every candidate, whatever its library, is logged as a :class:`ScoringModel`, so
the promotion gate, batch inference and the drift monitor score any version the
same way: ``mlflow.pyfunc.load_model(uri).predict(features)`` returns one score
per row (the positive class's probability, or the regression estimate), with the
feature columns checked against the logged signature.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd

SCORE = "score"


@dataclass
class Fitted:
    """A fitted estimator of one candidate kind, and how it scores a float32 matrix."""

    kind: str  # logistic, ridge (scikit-learn pipelines) or xgboost (a Booster)
    task: str
    estimator: Any
    best_iteration: int | None = None

    def score(self, matrix: np.ndarray) -> np.ndarray:
        if self.kind == "xgboost":
            return np.asarray(self.estimator.inplace_predict(matrix, iteration_range=self._rounds()), dtype=float)
        if self.task == "binary":
            return self.estimator.predict_proba(matrix)[:, 1]
        return np.asarray(self.estimator.predict(matrix), dtype=float)

    def margin(self, matrix: np.ndarray) -> np.ndarray:
        """The raw output before the link: log-odds (binary) or the estimate itself (regression)."""
        if self.kind == "xgboost":
            return np.asarray(
                self.estimator.inplace_predict(matrix, iteration_range=self._rounds(), predict_type="margin"),
                dtype=float,
            )
        if self.task == "binary":
            return np.asarray(self.estimator.decision_function(matrix), dtype=float)
        return np.asarray(self.estimator.predict(matrix), dtype=float)

    def contributions(self, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each feature's exact contribution to each row's margin, and the bias: a row's contributions
        plus its bias add up to its margin. XGBoost: its native TreeSHAP (``pred_contribs``); linear
        models: coefficient times the feature centred (and scaled) as the model saw it."""
        if self.kind == "xgboost":
            import xgboost as xgb

            out = self.estimator.predict(xgb.DMatrix(matrix), pred_contribs=True, iteration_range=self._rounds())
            return np.asarray(out[:, :-1], dtype=float), np.asarray(out[:, -1], dtype=float)
        centred = self.estimator[:-1].transform(matrix)
        coef = np.ravel(self.estimator[-1].coef_)
        intercept = float(np.ravel(self.estimator[-1].intercept_)[0])
        return centred * coef, np.full(len(matrix), intercept)

    def _rounds(self) -> tuple[int, int]:
        return (0, self.best_iteration + 1) if self.best_iteration is not None else (0, 0)


class ScoringModel(mlflow.pyfunc.PythonModel):
    """Scores a frame of the feature service's columns; the threshold travels with the model."""

    def __init__(self, fitted: Fitted, features: list[str], threshold: float | None):
        self.fitted = fitted
        self.features = list(features)
        self.threshold = threshold

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        matrix = model_input[self.features].to_numpy(dtype=np.float32, na_value=np.nan)
        return pd.DataFrame({SCORE: self.fitted.score(matrix)})
