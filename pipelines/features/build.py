"""Build one interval's feature partition from the curated partitions it needs."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from pipelines.config import UseCase
from pipelines.errors import BadInput
from pipelines.features.definitions import FEATURES_ZONE
from pipelines.features.engineering import build_features, definitions_fingerprint, history_start
from pipelines.intervals import format_interval, parse_interval
from pipelines.stores import partitions
from pipelines.stores.partitions import CURATED, QUARANTINE, PartitionInfo

if TYPE_CHECKING:
    from pipelines.engines.spark import SparkTarget

log = logging.getLogger(__name__)


class MissingCuratedPartition(BadInput):
    """The interval has no curated partition (never ingested, or quarantined): nothing stale is built."""


class DefinitionMismatch(BadInput):
    """The feature definitions name columns the curated partitions do not have."""


@dataclass(frozen=True)
class FeatureResult:
    info: PartitionInfo
    path: Path
    unchanged: bool


def feature_intervals(usecase: UseCase) -> list[tuple[dt.datetime, dt.datetime]]:
    """The intervals that have a feature partition, oldest first."""
    assert usecase.features is not None
    return [info.interval for _, info in partitions.list_infos(FEATURES_ZONE, usecase.name, usecase.features.dataset)]


def with_dependents(
    usecase: UseCase, intervals: list[tuple[dt.datetime, dt.datetime]]
) -> list[tuple[dt.datetime, dt.datetime]]:
    """The intervals, plus every later feature interval whose history window contains one of them.

    Re-ingesting day D changes the rolling features of the days after it: those
    are rebuilt too (in order), so offline and online features never keep stale windows.
    """
    assert usecase.features is not None
    out = set(intervals)
    for start, end in feature_intervals(usecase):
        if any(end > e and history_start(usecase.features, end) < e for _, e in intervals):
            out.add((start, end))
    return sorted(out)


def dependent_intervals(usecase: UseCase, given: list[list[str]]) -> list[list[str]]:
    """:func:`with_dependents` of intervals as tasks pass them (pairs of ISO datetimes)."""
    return [format_interval(s, e) for s, e in with_dependents(usecase, [parse_interval(i) for i in given])]


def build_intervals(
    usecase: UseCase, intervals: list[list[str]], spark: SparkTarget | None = None
) -> list[dict[str, Any]]:
    """Build the feature partition of each interval, in order (on ``spark`` under ``engine: spark``);
    one summary per partition."""
    done = []
    for start, end in map(parse_interval, intervals):
        result = build_feature_partition(usecase, start, end, spark)
        done.append({"partition": result.info.key, "entities": result.info.rows, "unchanged": result.unchanged})
    return done


def check_definitions(usecase: UseCase) -> None:
    """Refuse to serve feature partitions built under other definitions (for example before a
    feature was added to the config): they lack columns the feature view now declares.

    Raises:
        DefinitionMismatch: names the stale partitions and the command that rebuilds them.
    """
    assert usecase.features is not None
    fingerprint = definitions_fingerprint(usecase.features, usecase.source.datasets[usecase.features.dataset])
    infos = partitions.list_infos(FEATURES_ZONE, usecase.name, usecase.features.dataset)
    stale = [info.key for _, info in infos if info.definition != fingerprint]
    if stale:
        raise DefinitionMismatch(
            f"{len(stale)} {usecase.name} feature partitions ({stale[0]} .. {stale[-1]}) were built with other "
            f"feature definitions than configs/{usecase.name}.yaml now has: run `mlops features rebuild` "
            "to rebuild them from the curated data and reload the online store"
        )


def build_feature_partition(
    usecase: UseCase, start: dt.datetime, end: dt.datetime, spark: SparkTarget | None = None
) -> FeatureResult:
    """Compute the features as of ``end`` for the entities active in ``[start, end)`` and write them.

    Reads only the curated partitions that overlap the history window; writes
    ``features/<use case>/<dataset>/<key>.parquet`` atomically, and not at all
    when the content is unchanged. Under ``engine: spark`` the features are computed on ``spark``
    (default: :func:`pipelines.engines.spark.environment_target`) and written the same way.

    Raises:
        MissingCuratedPartition: the interval's own curated partition is missing or quarantined.
        SparkUnavailable: ``engine: spark`` cannot run here.
    """
    spec = usecase.features
    if spec is None:
        raise ValueError(f"use case '{usecase.name}' has no features section")
    name = spec.dataset
    key = partitions.partition_key(start, end)
    own = partitions.partition_path(CURATED, usecase.name, name, key)
    quarantined = partitions.partition_path(QUARANTINE, usecase.name, name, key)
    if quarantined.exists():  # also when an older curated file remains: its rows are no longer trusted
        raise MissingCuratedPartition(
            f"{usecase.name}.{name} partition {key} has an open quarantine ({quarantined}); "
            "features are not built from stale data until a run of that interval passes"
        )
    if not own.exists():
        raise MissingCuratedPartition(
            f"no curated {usecase.name}.{name} partition {key}: it was never ingested; nothing is built"
        )
    first = history_start(spec, end)
    curated = partitions.list_infos(CURATED, usecase.name, name)
    needed = [path for path, info in curated if info.interval[0] < end and info.interval[1] > first]
    log.info("building %s features %s from %d curated partitions since %s", usecase.name, key, len(needed), first)
    # History before the oldest curated interval never existed: that is not a gap.
    window_start = max(first, curated[0][1].interval[0]) if curated else first
    expected = round((end - window_start) / (end - start))
    if len(needed) < expected:  # days missing inside the window (not before the first ingested day)
        log.warning(
            "%s features %s: only %d of %d intervals of the history window are curated; windowed sums "
            "and counts cover only those",
            usecase.name,
            key,
            len(needed),
            expected,
        )
    dataset = usecase.source.datasets[name]
    required = {usecase.entity.name, dataset.event_time, *spec.aggregates, *spec.trends, *spec.latest, *spec.one_hot}
    columns = set().union(*(partitions.read_columns(p) for p in needed))
    missing = sorted(required - columns)
    if missing:
        raise DefinitionMismatch(
            f"the feature definitions of '{usecase.name}' need columns {missing} that the curated "
            f"{name} partitions do not have (they have {sorted(columns)}): was a column renamed "
            f"in configs/{usecase.name}.yaml? Re-ingest the history window or fix the config"
        )
    if usecase.engine == "spark":  # the same function, distributed by entity
        from pipelines.features.spark_build import build_features_on_spark

        features = build_features_on_spark(spark, usecase, needed, start, end)
    else:
        history = pd.concat([partitions.read_partition(p) for p in needed], ignore_index=True)
        features = build_features(history, spec, dataset, usecase.entity.name, start, end)

    fingerprint = definitions_fingerprint(spec, dataset)
    info = PartitionInfo.describe(features, usecase.name, name, start, end, status="features", definition=fingerprint)
    path = partitions.partition_path(FEATURES_ZONE, usecase.name, name, key)
    with partitions.partition_lock(usecase.name, f"{name}.features", key):
        old = partitions.read_info(path)
        unchanged = old is not None and old.content_hash == info.content_hash and old.definition == fingerprint
        if not unchanged:
            partitions.write_partition(path, features, info)
    log.info("%s: %d entities, %s", path, info.rows, "unchanged" if unchanged else "written")
    return FeatureResult(info=info, path=path, unchanged=unchanged)
