"""One interval's features computed on Spark (``engine: spark``), by the same pandas function as the local engine.

:func:`pipelines.features.engineering.build_features` only ever combines the rows of one entity (windows,
trends, the latest values, one-hot codes: nothing ranks or normalizes across entities), so it runs
unchanged on any set of whole entities. Spark reads the curated partitions of the history window, groups
their rows into buckets of entities by a hash of the key, and runs the function once per bucket
(``applyInPandas``: a call per bucket, not per entity); the driver gathers the rows, sorts them by entity
as the function does for one frame, and restores the exact column types. The result is the frame the
local engine builds, so it goes through the same partition writer (same file, metadata and content hash).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from pipelines.config import UseCase
from pipelines.engines import spark as engine
from pipelines.features.engineering import build_features

CHUNK_ROWS = 100_000  # rows of features fetched to the driver at a time


def build_features_on_spark(
    target: engine.SparkTarget | None, usecase: UseCase, paths: list[Path], start: dt.datetime, end: dt.datetime
) -> pd.DataFrame:
    """:func:`build_features` of the use case's curated partitions at ``paths``, run by Spark on ``target``.

    Raises:
        SparkUnavailable: the engine cannot run here (PySpark, Java, the master).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import from_arrow_schema

    assert usecase.features is not None
    spec, entity = usecase.features, usecase.entity.name
    dataset = usecase.source.datasets[spec.dataset]
    spark = engine.session(target)
    # The types a local read gives (the first partition's schema), and the output's: the function on no rows.
    history_like = pq.read_schema(paths[0]).empty_table().to_pandas()
    like = build_features(history_like, spec, dataset, entity, start, end)

    def per_bucket(history: pd.DataFrame) -> pd.DataFrame:
        return build_features(with_times(history, history_like), spec, dataset, entity, start, end)

    history = spark.read.parquet(*map(str, paths))
    buckets = int(spark.conf.get("spark.sql.shuffle.partitions"))
    # An empty text column (a text entity key) has no Arrow type of its own: it is text.
    schema = pa.Schema.from_pandas(like, preserve_index=False)
    schema = pa.schema([f.with_type(pa.string()) if pa.types.is_null(f.type) else f for f in schema])
    features = history.groupBy(F.pmod(F.xxhash64(entity), F.lit(buckets))).applyInPandas(
        per_bucket, schema=from_arrow_schema(schema)
    )
    chunks = list(engine.to_driver(features, CHUNK_ROWS))
    frame = pd.concat(chunks, ignore_index=True) if chunks else like
    return with_times(frame.sort_values(entity, ignore_index=True), like).astype(like.dtypes.to_dict())


def with_times(frame: pd.DataFrame, like: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with the timestamps of ``like``'s type: Spark hands over UTC timestamps without their zone,
    and the curated partitions' nanosecond ones as integers (``engines.spark.SESSION_CONF``); both get back
    their exact value and zone. Other columns keep the types Arrow gave them, as in a local read."""
    for column in like.columns:
        if isinstance(like[column].dtype, pd.DatetimeTZDtype) and column in frame.columns:
            if pd.api.types.is_integer_dtype(frame[column]):
                frame[column] = pd.to_datetime(frame[column], unit="ns", utc=True).astype(like[column].dtype)
            elif frame[column].dt.tz is None:
                frame[column] = frame[column].dt.tz_localize("UTC").astype(like[column].dtype)
    return frame
