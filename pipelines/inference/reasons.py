"""The top reasons of each score batch inference writes (``inference.reasons``): the exact explanation
of the model that scored a chunk, cached per interval and best effort (a score never waits on its reasons)."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from pipelines.responsible import explain

log = logging.getLogger(__name__)


def reasons_of(
    explainers: dict[str, Any],
    kind: str,
    model: Any,
    matrix: pd.DataFrame,
    values: pd.DataFrame,
    columns: list[str],
    count: int,
) -> list[str] | None:
    """The top ``count`` reasons of each row of ``matrix`` (the float32 columns ``model`` scored) as JSON
    text, with the feature values of ``values`` (the same rows as read), or None when the model cannot
    be explained. ``explainers`` caches each kind's explainer for the interval; one that fails is
    logged once and dropped, and never blocks the scores."""
    if kind not in explainers:
        explainers[kind] = explain.explainer(model, columns)
        if explainers[kind] is None:
            log.warning("the %s model is not one of this project's: its scores have no reasons", kind)
    if explainers[kind] is None:
        return None
    fitted, features = explainers[kind]
    try:
        return explain.top_reasons(explain.explain(fitted, matrix, features), values, count)
    except Exception as exc:  # reasons are best effort: the score is what downstream needs
        log.warning("the %s model's scores cannot be explained (%s: %s): no reasons this run", kind,
                    type(exc).__name__, str(exc)[:300])  # fmt: skip
        explainers[kind] = None
        return None
