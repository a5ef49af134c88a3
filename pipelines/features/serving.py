"""Training sets by point-in-time join, and the online/offline skew check."""

from __future__ import annotations

import datetime as dt
import logging
import math
from dataclasses import dataclass
from typing import Literal

import pandas as pd

from pipelines.config import UseCase
from pipelines.days import as_utc, day_end, day_start
from pipelines.features.build import check_definitions
from pipelines.features.definitions import feature_service_name
from pipelines.features.engineering import feature_columns
from pipelines.stores import feature_store

log = logging.getLogger(__name__)

EVENT_TIMESTAMP = "event_timestamp"


class FeatureSkew(RuntimeError):
    """Online and offline features disagree for the same entity and time."""


@dataclass(frozen=True)
class TrainingSet:
    frame: pd.DataFrame  # entity, event_timestamp, label, features; only rows with features
    missing: pd.DataFrame  # entity rows that had no feature row within the TTL (reported, not dropped silently)


def label_entity_rows(usecase: UseCase, labels: pd.DataFrame, known_at: dt.datetime) -> pd.DataFrame:
    """Entity rows for training from curated labels: one per label known by ``known_at``.

    A label about reference day D is joined with the features as of the end of D
    (what was known then), so its ``event_timestamp`` is the end of D in the use
    case's timezone, whatever time of day its reference time carries.
    """
    label = usecase.label
    ds = usecase.source.datasets[label.dataset]
    known = labels[as_utc(labels[ds.event_time]) < pd.Timestamp(known_at)]
    return pd.DataFrame(
        {
            usecase.entity.name: known[usecase.entity.name].to_numpy(),
            EVENT_TIMESTAMP: day_end(known[label.reference_time], usecase.schedule.timezone).to_numpy(),
            label.column: known[label.column].to_numpy(),
        }
    ).astype({EVENT_TIMESTAMP: "datetime64[ns, UTC]"})


def reference_day(usecase: UseCase, event_timestamp: pd.Series) -> pd.Series:
    """The labelled day (its start, UTC) of training rows joined at ``event_timestamp`` (that day's end)."""
    return day_start(as_utc(event_timestamp) - pd.Timedelta(seconds=1), usecase.schedule.timezone)


def build_training_set(
    store,
    usecase: UseCase,
    entity_rows: pd.DataFrame,
    chunk_rows: int = 100_000,
    service: str | None = None,
    via: Literal["partitions", "feast"] = "partitions",
) -> TrainingSet:
    """Point-in-time join of entity rows with the use case's feature service.

    No feature stamped after a row's ``event_timestamp`` is used, nor one older
    than the view's TTL. Rows without features are returned in ``missing``.
    ``service`` defaults to the use case's current feature service (a model names its own).

    ``via="partitions"`` (the default) joins with ``pandas.merge_asof`` over the feature
    partitions the feature view's file source reads, only those the rows' times and the TTL
    can reach (:func:`join_partitions`); ``via="feast"`` asks Feast's offline store, which
    scans every partition of the source at each call and joins a whole entity frame in
    memory, so it is handed ``chunk_rows`` at a time. Both give the same rows (tested).
    """
    check_definitions(usecase)
    entity = usecase.entity.name
    rows = entity_rows.reset_index(drop=True).assign(_row=lambda f: range(len(f)))
    service = service or feature_service_name(usecase)
    if via == "partitions":
        joined = join_partitions(usecase, rows, feature_store.service_features(store, service))
    else:
        joined = pd.concat(
            [
                feature_store.historical_features(store, service, rows.iloc[i : i + chunk_rows])
                for i in range(0, max(len(rows), 1), chunk_rows)
            ],
            ignore_index=True,
        )
    # A row "has features" when the join found a feature row: not every value has to be set.
    found = joined.dropna(subset=list(_features(usecase)), how="all")
    del joined  # (each step holds at most two copies of the window)
    found = found.sort_values("_row", kind="stable")
    missing = rows[~rows["_row"].isin(found["_row"])].drop(columns="_row")
    frame = found.drop(columns="_row").reset_index(drop=True)
    del found
    if len(missing):
        log.warning("%d of %d entity rows have no features within the TTL", len(missing), len(rows))
    return TrainingSet(
        frame=frame[[entity, EVENT_TIMESTAMP, *[c for c in frame if c not in (entity, EVENT_TIMESTAMP)]]],
        missing=missing,
    )


def join_partitions(usecase: UseCase, rows: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """Feast's point-in-time join, over the feature partitions: each row of ``rows`` (entity key,
    ``event_timestamp``) gets the feature values ``names`` of the same entity's newest feature row
    stamped at or before its time and no more than the view's TTL before it; none (NaN) otherwise.

    Reads only the partitions whose interval can hold such stamps, only the needed columns, and
    returns the features as float32 (as training sets hold them).
    """
    from pipelines.features.definitions import FEATURES_ZONE
    from pipelines.features.engineering import FEATURE_TIMESTAMP
    from pipelines.stores import partitions

    assert usecase.features is not None
    entity, ttl = usecase.entity.name, pd.Timedelta(days=usecase.features.ttl_days)
    left = rows.assign(**{EVENT_TIMESTAMP: as_utc(rows[EVENT_TIMESTAMP]).astype("datetime64[ns, UTC]")})
    if not len(left):
        return left.assign(**{name: pd.Series(dtype="float32") for name in names})
    low, high = left[EVENT_TIMESTAMP].min() - ttl, left[EVENT_TIMESTAMP].max()
    columns = [entity, FEATURE_TIMESTAMP, *names]
    # Read as float32, what training sets hold: half the memory of the partitions' float64 and int64.
    frames = [
        partitions.read_partition(path, columns).astype({name: "float32" for name in names})
        for path, info in partitions.list_infos(FEATURES_ZONE, usecase.name, usecase.features.dataset)
        if not info.empty and info.interval[1] >= low and info.interval[0] <= high
    ]
    right = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    del frames  # the memory of a window of 10M rows is counted in copies of it (bench/scale.py)
    right[FEATURE_TIMESTAMP] = as_utc(right[FEATURE_TIMESTAMP]).astype("datetime64[ns, UTC]")
    right[entity] = right[entity].astype(left[entity].dtype)
    if not right[FEATURE_TIMESTAMP].is_monotonic_increasing:  # partitions are read oldest first: usually sorted
        right = right.sort_values(FEATURE_TIMESTAMP, kind="stable", ignore_index=True)
    joined = pd.merge_asof(
        left.sort_values(EVENT_TIMESTAMP, kind="stable"),
        right,
        left_on=EVENT_TIMESTAMP,
        right_on=FEATURE_TIMESTAMP,
        by=entity,
        direction="backward",
        tolerance=ttl,  # inclusive, as Feast's: stamped at the row's time minus the TTL still counts
    )
    del right
    joined.drop(columns=FEATURE_TIMESTAMP, inplace=True)
    return joined


def read_online(store, usecase: UseCase, ids: list, as_of: dt.datetime) -> tuple[pd.DataFrame, list]:
    """Online features of ``ids`` as of ``as_of`` through the feature service, and the ids that have none.

    An unknown entity, or one whose features are older than the TTL, is reported
    in the second value, not an error.
    """
    frame = _online(store, usecase, ids, as_of)
    names = list(_features(usecase))
    unknown = frame.loc[frame[names].isna().all(axis=1), usecase.entity.name].tolist()
    if unknown:
        log.warning("%d of %d entities have no online features: %s", len(unknown), len(ids), unknown[:10])
    return frame, unknown


def _online(store, usecase: UseCase, ids: list, as_of: dt.datetime) -> pd.DataFrame:
    assert usecase.features is not None
    ttl = dt.timedelta(days=usecase.features.ttl_days)
    return feature_store.online_features(
        store, feature_service_name(usecase), usecase.entity.name, ids, as_of=as_of, ttl=ttl
    )


def _features(usecase: UseCase) -> dict[str, str]:
    assert usecase.features is not None
    return feature_columns(usecase.features, usecase.source.datasets[usecase.features.dataset])


def check_skew(store, usecase: UseCase, ids: list, as_of: dt.datetime, offline: pd.DataFrame | None = None) -> int:
    """Compare online features of ``ids`` with the offline ones at ``as_of``; raise on any difference.

    The offline side is Feast's point-in-time retrieval, or ``offline`` when given: the
    rows of the feature partition Feast's offline source reads, when ``ids`` are
    entities of the partition ending at ``as_of`` (the same rows, without a
    retrieval that costs seconds per run).

    Returns:
        The number of entities compared.

    Raises:
        FeatureSkew: names the first differing entities and features.
    """
    entity = usecase.entity.name
    service = feature_service_name(usecase)
    online = _online(store, usecase, ids, as_of).set_index(entity)
    rows = pd.DataFrame({entity: ids, EVENT_TIMESTAMP: pd.Timestamp(as_of)}).astype(
        {EVENT_TIMESTAMP: "datetime64[ns, UTC]"}
    )
    if offline is None:
        offline = feature_store.historical_features(store, service, rows)
    offline = offline.set_index(entity)
    differences = []
    for i in ids:
        for name in _features(usecase):
            a = online.at[i, name] if i in online.index else None
            b = offline.at[i, name] if i in offline.index else None
            if not _same(a, b):
                differences.append(f"{entity}={i} {name}: online {a!r} != offline {b!r}")
    if differences:
        raise FeatureSkew(
            f"{len(differences)} online/offline differences at {as_of} (first: {'; '.join(differences[:5])})"
        )
    log.info("skew check: %d entities x %d features agree at %s", len(ids), len(_features(usecase)), as_of)
    return len(ids)


def _same(a, b) -> bool:
    if a is None or b is None or (isinstance(a, float) and math.isnan(a)) or (isinstance(b, float) and math.isnan(b)):
        return (a is None or (isinstance(a, float) and math.isnan(a))) and (
            b is None or (isinstance(b, float) and math.isnan(b))
        )
    return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)
