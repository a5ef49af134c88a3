"""Batch scores computed on Spark (``engine: spark``): ``mlflow.pyfunc.spark_udf`` over an interval's feature partition.

Spark reads the partition (the entity key and the columns of the feature service), sets apart the rows
without any feature value (never scored, as locally), and adds one score column per model: its
``spark_udf`` applied to the columns of its signature, cast to float32 as the local engine casts them. The
rows come back to the driver in chunks, in the partition's order and with their features
(:func:`pipelines.engines.spark.to_driver`), so that :func:`pipelines.inference.batch.score_interval` checks
signatures, explains scores, splits a canary's entities and writes exactly as it does for the local engine.
"""

from __future__ import annotations

import functools
import operator
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipelines.config import UseCase
from pipelines.engines import spark as engine
from pipelines.stores import partitions

if TYPE_CHECKING:
    from pipelines.inference.inputs import Chunk

SCORE = "__score_"  # prefix of the score columns, one per model kind


def spark_chunks(
    target: engine.SparkTarget | None,
    usecase: UseCase,
    models: dict[str, Any],
    uris: dict[str, str],
    path: Path,
    names: list[str],
    chunk_rows: int,
) -> Iterator[Chunk]:
    """The features of the partition at ``path`` (``names``), ``chunk_rows`` at a time, each chunk with the
    scores of every model (loaded: ``models``; registered: ``uris``) that fits them, computed by Spark on
    ``target``. First come the rows without any feature value, with no scores.

    Raises:
        SignatureMismatch: the champion does not fit the features (before any work on the cluster).
        SparkUnavailable: the engine cannot run here.
    """
    import mlflow.pyfunc
    from pyspark.sql import functions as F

    from pipelines.inference.batch import SignatureMismatch, check_signature
    from pipelines.inference.inputs import Chunk

    entity = usecase.entity.name
    sample = next(partitions.iter_chunks(path, [entity, *names], 1000), None)
    if sample is None:  # no active entity: nothing to score, no session needed
        return
    fits = {}  # a challenger that does not fit is left out here, and dropped by score_interval
    for kind, model in models.items():
        try:
            fits[kind] = check_signature(model, sample)
        except SignatureMismatch:
            if kind == "champion":
                raise
    spark = engine.session(target)
    features = spark.read.parquet(str(path)).select(entity, *names)
    has_value = functools.reduce(operator.or_, (F.col(n).isNotNull() for n in names), F.lit(False))
    scored = features.filter(has_value)
    for kind, columns in fits.items():
        udf = mlflow.pyfunc.spark_udf(spark, uris[kind], result_type="double", env_manager="local")
        scored = scored.withColumn(SCORE + kind, udf(F.struct(*(F.col(c).cast("float").alias(c) for c in columns))))

    t = time.perf_counter()
    for frame in engine.to_driver(features.filter(~has_value), chunk_rows):
        yield Chunk(frame, {kind: np.empty(0) for kind in models}, time.perf_counter() - t)
        t = time.perf_counter()
    for frame in engine.to_driver(scored, chunk_rows):
        scores = {kind: frame.pop(SCORE + kind).to_numpy() for kind in fits}
        yield Chunk(frame, scores, time.perf_counter() - t)
        t = time.perf_counter()
