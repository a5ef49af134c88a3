"""Candidate model families: a scikit-learn baseline and XGBoost, for binary and regression tasks.

Fitted on the training days, early-stopped (XGBoost) on the validation days;
seeds fixed, so the same data gives the same model.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xgboost as xgb
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from pipelines.config import CandidateSpec
from pipelines.training.model import Fitted


def fit(
    spec: CandidateSpec,
    task: str,
    seed: int,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_valid: np.ndarray,
    y_valid: np.ndarray,
) -> tuple[Fitted, dict[str, Any]]:
    """Fit one candidate; returns it and the parameters it was fitted with (for tracking)."""
    if spec.kind == "xgboost":
        return _fit_xgboost(spec.params, task, seed, x_train, y_train, x_valid, y_valid)
    return _fit_linear(spec, task, seed, x_train, y_train)


def _fit_linear(spec: CandidateSpec, task: str, seed: int, x: np.ndarray, y: np.ndarray) -> tuple[Fitted, dict]:
    if spec.kind == "logistic":
        params = {"C": 1.0, "max_iter": 2000} | spec.params | {"random_state": seed}
        model = LogisticRegression(**params)
    else:
        params = {"alpha": 1.0} | spec.params | {"random_state": seed}
        model = Ridge(**params)
    pipeline = Pipeline(
        [
            ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
            ("scale", StandardScaler()),
            ("model", model),
        ]
    )
    pipeline.fit(x, y)
    return Fitted(spec.kind, task, pipeline), params


def _fit_xgboost(
    given: dict[str, Any],
    task: str,
    seed: int,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_valid: np.ndarray,
    y_valid: np.ndarray,
) -> tuple[Fitted, dict]:
    params = dict(given)
    rounds = int(params.pop("n_estimators", 300))
    patience = int(params.pop("early_stopping_rounds", 20))
    booster_params = (
        {
            "objective": "binary:logistic" if task == "binary" else "reg:squarederror",
            "eval_metric": "logloss" if task == "binary" else "rmse",
            "tree_method": "hist",
            "max_depth": 4,
            "learning_rate": 0.1,
        }
        | params
        | {"seed": seed}
    )
    # QuantileDMatrix bins the features once and keeps no float copy: bounded memory for big windows.
    train = xgb.QuantileDMatrix(x_train, label=y_train)
    valid = xgb.QuantileDMatrix(x_valid, label=y_valid, ref=train)
    booster = xgb.train(
        booster_params,
        train,
        num_boost_round=rounds,
        evals=[(valid, "validation")],
        early_stopping_rounds=patience,
        verbose_eval=False,
    )
    best = int(booster.best_iteration) if hasattr(booster, "best_iteration") else rounds - 1
    logged = booster_params | {"n_estimators": rounds, "early_stopping_rounds": patience, "best_iteration": best}
    return Fitted("xgboost", task, booster, best_iteration=best), logged
