"""Build one interval's feature partition from the curated partitions it needs."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipelines.config import UseCase
from pipelines.errors import BadInput
from pipelines.features.definitions import FEATURES_ZONE
from pipelines.features.engineering import build_features, history_start
from pipelines.stores import partitions
from pipelines.stores.partitions import CURATED, QUARANTINE, PartitionInfo

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


def _overlaps(info: PartitionInfo, start: dt.datetime, end: dt.datetime) -> bool:
    return dt.datetime.fromisoformat(info.interval_start) < end and dt.datetime.fromisoformat(info.interval_end) > start


def build_feature_partition(usecase: UseCase, start: dt.datetime, end: dt.datetime) -> FeatureResult:
    """Compute the features as of ``end`` for the entities active in ``[start, end)`` and write them.

    Reads only the curated partitions that overlap the history window; writes
    ``features/<use case>/<dataset>/<key>.parquet`` atomically, and not at all
    when the content is unchanged.

    Raises:
        MissingCuratedPartition: the interval's own curated partition is missing or quarantined.
    """
    spec = usecase.features
    if spec is None:
        raise ValueError(f"use case '{usecase.name}' has no features section")
    name = spec.dataset
    key = partitions.partition_key(start, end)
    own = partitions.partition_path(CURATED, usecase.name, name, key)
    if not own.exists():
        quarantined = partitions.partition_path(QUARANTINE, usecase.name, name, key)
        why = f"it was quarantined ({quarantined})" if quarantined.exists() else "it was never ingested"
        raise MissingCuratedPartition(
            f"no curated {usecase.name}.{name} partition {key}: {why}; features are not built from stale data"
        )
    first = history_start(spec, end)
    needed = []
    for path in partitions.list_partitions(CURATED, usecase.name, name):
        info = partitions.read_info(path)
        if info is not None and _overlaps(info, first, end):
            needed.append(path)
    log.info("building %s features %s from %d curated partitions since %s", usecase.name, key, len(needed), first)
    history = pd.concat([partitions.read_partition(p) for p in needed], ignore_index=True)
    dataset = usecase.source.datasets[name]
    required = {usecase.entity.name, dataset.event_time, *spec.aggregates, *spec.trends, *spec.latest, *spec.one_hot}
    missing = sorted(required - set(history.columns))
    if missing:
        raise DefinitionMismatch(
            f"the feature definitions of '{usecase.name}' need columns {missing} that the curated "
            f"{name} partitions do not have (they have {sorted(history.columns)}): was a column renamed "
            f"in configs/{usecase.name}.yaml? Re-ingest the history window or fix the config"
        )
    features = build_features(history, spec, dataset, usecase.entity.name, start, end)

    info = PartitionInfo.describe(features, usecase.name, name, start, end, status="features")
    path = partitions.partition_path(FEATURES_ZONE, usecase.name, name, key)
    with partitions.partition_lock(usecase.name, f"{name}.features", key):
        old = partitions.read_info(path) if path.exists() else None
        unchanged = old is not None and old.content_hash == info.content_hash
        if not unchanged:
            partitions.write_partition(path, features, info)
    log.info("%s: %d entities, %s", path, info.rows, "unchanged" if unchanged else "written")
    return FeatureResult(info=info, path=path, unchanged=unchanged)
