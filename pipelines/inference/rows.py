"""The rows batch inference writes: predictions, shadow predictions, their partitions' descriptions,
the list of entities it could not score, and a canary's serving split of a chunk."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipelines import settings
from pipelines.config import UseCase
from pipelines.stores import partitions

PREDICTIONS_ZONE = "predictions"
DATASETS = {"champion": "scores", "shadow": "shadow"}  # predictions/<use case>/<dataset>/<key>.parquet
# The role of the version that scored a row: the champion and a canary serve (``predictions``); a
# challenger is shadow-scored only (``shadow_predictions``), and so is each side of a canary for the
# entities the other serves.
CHAMPION, CANARY, CHALLENGER = "champion", "canary", "challenger"


def empty_predictions() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "usecase": pd.Series(dtype=str),
            "entity_id": pd.Series(dtype=str),
            "as_of": pd.Series(dtype="datetime64[ns, UTC]"),
            "interval_start": pd.Series(dtype="datetime64[ns, UTC]"),
            "score": pd.Series(dtype=float),
            "decision": pd.Series(dtype="Int64"),
            "model_name": pd.Series(dtype=str),
            "model_version": pd.Series(dtype=str),
            "stage": pd.Series(dtype=str),
            "training_run_id": pd.Series(dtype=str),
            "feature_service": pd.Series(dtype=str),
            "airflow_run_id": pd.Series(dtype=str),
            # JSON text of the top reasons (explain.top_reasons), null when off or not explained. Arrow's
            # string type even when a chunk has only nulls: a partition's first chunk types its file.
            "reasons": pd.Series(dtype="string"),
        }
    )


def predictions(
    usecase: UseCase,
    model: Any,
    stage: str,
    features: pd.DataFrame,
    scores: Any,
    start: dt.datetime,
    end: dt.datetime,
    airflow_run_id: str,
    reasons: list[str] | None = None,
) -> pd.DataFrame:
    """One row per entity of ``features`` scored by the pinned ``model`` in the role ``stage``, with
    its top ``reasons`` (JSON text per row) when they were computed, else null."""
    scores = np.asarray(scores, dtype=float)
    decision = (
        pd.array((scores >= model.threshold).astype(int), dtype="Int64")
        if model.threshold is not None
        else pd.array([None] * len(scores), dtype="Int64")
    )
    return pd.DataFrame(
        {
            "usecase": usecase.name,
            "entity_id": features[usecase.entity.name].astype(str).to_numpy(),
            "as_of": pd.Timestamp(end),
            "interval_start": pd.Timestamp(start),
            "score": scores,
            "decision": decision,
            "model_name": model.name,
            "model_version": model.version,
            "stage": stage,
            "training_run_id": model.training_run_id,
            "feature_service": model.feature_service,
            "airflow_run_id": airflow_run_id,
            "reasons": pd.array([None] * len(scores) if reasons is None else reasons, dtype="string"),
        }
    ).astype(empty_predictions().dtypes.to_dict())


def serving_split(champion: pd.DataFrame, canary: pd.DataFrame, mask: np.ndarray) -> dict[str, pd.DataFrame]:
    """A chunk scored by both sides of a canary (same rows, same order): the canary serves the rows
    of ``mask`` and the champion the rest (``champion``: the served rows); each side's rows the
    other serves are its shadow scores (``shadow``), so every entity has both scores. Each row keeps
    every column of its side, its reasons included, and the chunk's order: what is written does not
    depend on where an interval was cut into chunks (the Spark engine cuts it elsewhere)."""
    dtypes = empty_predictions().dtypes.to_dict()

    def merge(served: pd.DataFrame, other: pd.DataFrame) -> pd.DataFrame:
        both = pd.concat([served.reset_index(drop=True)[~mask], other.reset_index(drop=True)[mask]])
        return both.sort_index(kind="stable").reset_index(drop=True).astype(dtypes)

    return {"champion": merge(champion, canary), "shadow": merge(canary, champion)}


def info(usecase: UseCase, kind: str, start: dt.datetime, end: dt.datetime, file: Any) -> partitions.PartitionInfo:
    return partitions.PartitionInfo(
        usecase=usecase.name,
        dataset=DATASETS[kind],
        key=partitions.partition_key(start, end),
        interval_start=start.isoformat(),
        interval_end=end.isoformat(),
        rows=file.rows,
        content_hash=file.content_hash,
        empty=file.rows == 0,
        status=PREDICTIONS_ZONE,
    )


def write_skipped(usecase: UseCase, key: str, ids: list) -> Path | None:
    """List the entities that were not scored; none: remove an older run's list of this interval."""
    path = settings.data_dir(PREDICTIONS_ZONE, usecase.name, "skipped") / f"{key}.json"
    if not ids:
        path.unlink(missing_ok=True)
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps({"interval": key, "reason": "no feature values", "entities": ids}, default=str))
    tmp.replace(path)
    return path
