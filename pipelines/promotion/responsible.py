"""The responsible part of a version's evaluation: group metrics by sensitive attribute, behavioural
tests and global explanations, added to its :class:`Evaluation` (the gate's record carries them)."""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import pandas as pd

from pipelines.config import UseCase
from pipelines.promotion.policy import Evaluation
from pipelines.responsible import behaviour, explain, fairness
from pipelines.training.dataset import spec_of

log = logging.getLogger(__name__)

TOP_FEATURES = 10  # global importance kept in the record and the model card


def assess(
    result: Evaluation,
    usecase: UseCase,
    model: Any,
    holdout: pd.DataFrame,
    y: np.ndarray,
    scores: np.ndarray,
    threshold: float | None,
    challenger: bool,
) -> None:
    """Add ``model``'s fairness figures (any version) and, for a ``challenger``, its behavioural
    test results and global importance to ``result``, with the seconds they took."""
    from pipelines.promotion.gate import model_input_columns

    spec = spec_of(usecase)
    t0 = time.perf_counter()
    if spec.fairness is not None:
        result.fairness = fairness.group_metrics(usecase.task, holdout, y, scores, threshold, spec.fairness)
    if challenger:
        columns = model_input_columns(model, usecase)
        if spec.behaviour is not None:

            def predict(frame: pd.DataFrame) -> np.ndarray:
                return (
                    np.asarray(model.predict(frame[columns].astype(np.float32)))
                    .reshape(len(frame), -1)[:, 0]
                    .astype(float)
                )

            tests = behaviour.run_tests(
                spec.behaviour, usecase.task, spec.primary_metric, predict, holdout, y, threshold
            )
            result.behaviour = [t.to_dict() for t in tests]
        fitted = explain.fitted_of(model)
        try:
            if fitted is None:
                raise TypeError("not a model of this project's")
            result.importance = explain.importance(fitted, holdout, columns, TOP_FEATURES)
        except Exception as exc:  # an explanation informs people; it is not a check, so it never blocks
            log.warning("version %s cannot be explained (%s: %s)", result.version, type(exc).__name__, exc)
    result.responsible_seconds = time.perf_counter() - t0
