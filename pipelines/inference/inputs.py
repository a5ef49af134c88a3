"""The features batch inference reads: the interval's feature partition, the columns the model's
feature service names, in chunks, from the use case's engine (locally, or with the scores Spark
computed on its executors: :mod:`pipelines.inference.spark_scoring`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pandas as pd

from pipelines.config import UseCase
from pipelines.errors import BadInput
from pipelines.features.definitions import FEATURES_ZONE
from pipelines.stores import feature_store, partitions

if TYPE_CHECKING:
    from pipelines.engines.spark import SparkTarget


class MissingFeatures(BadInput):
    """The interval has no feature partition: its features were never built."""


def feature_partition(usecase: UseCase, start: dt.datetime, end: dt.datetime) -> Path:
    """The feature partition of ``[start, end)``: one row per entity active in it.

    Raises:
        MissingFeatures: the interval's features were never built.
    """
    assert usecase.features is not None
    key = partitions.partition_key(start, end)
    path = partitions.partition_path(FEATURES_ZONE, usecase.name, usecase.features.dataset, key)
    if not path.exists():
        raise MissingFeatures(
            f"no feature partition for {usecase.name} {key}: run {usecase.dag_id('features')} for it first"
        )
    return path


def feature_chunks(
    usecase: UseCase, service: str, start: dt.datetime, end: dt.datetime, chunk_rows: int
) -> Iterator[pd.DataFrame]:
    """The features of the entities active in ``[start, end)`` as of ``end``, ``chunk_rows`` at a time:
    the entity key and the columns ``service`` serves (from the Feast registry)."""
    path, names = served_columns(usecase, service, start, end)
    yield from partitions.iter_chunks(path, [usecase.entity.name, *names], chunk_rows)


def served_columns(usecase: UseCase, service: str, start: dt.datetime, end: dt.datetime) -> tuple[Path, list[str]]:
    """The interval's feature partition and the feature columns ``service`` serves (from the Feast registry)."""
    from pipelines.features.build import check_definitions

    check_definitions(usecase)
    names = feature_store.service_features(feature_store.get_store(), service)
    return feature_partition(usecase, start, end), names


class Chunk(NamedTuple):
    """Features of some of an interval's active entities, and the scores the engine already computed."""

    features: pd.DataFrame  # the entity key and the service's columns
    scores: dict[str, np.ndarray] | None = None  # per model: one score per row with a feature value (spark)
    seconds: float = 0.0  # the engine's time to compute them


def scored_chunks(
    usecase: UseCase,
    models: dict[str, Any],
    uris: dict[str, str],
    service: str,
    start: dt.datetime,
    end: dt.datetime,
    chunk_rows: int,
    spark: SparkTarget | None = None,
) -> Iterator[Chunk]:
    """The features of the entities active in ``[start, end)``, ``chunk_rows`` at a time, from the use case's
    engine: locally, the partition's chunks, for the models to score here; on Spark, chunks with the scores
    ``mlflow.pyfunc.spark_udf`` computed on the executors for each model (``uris``) that fits the features."""
    if usecase.engine == "spark":
        from pipelines.inference.spark_scoring import spark_chunks

        yield from spark_chunks(spark, usecase, models, uris, *served_columns(usecase, service, start, end), chunk_rows)
    else:
        yield from map(Chunk, feature_chunks(usecase, service, start, end, chunk_rows))
