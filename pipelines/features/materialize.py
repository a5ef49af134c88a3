"""Materialize feature intervals into the online store and check them for skew."""

from __future__ import annotations

import datetime as dt
import json
import logging

from pipelines import settings
from pipelines.config import UseCase, scan
from pipelines.features.build import build_feature_partition, check_definitions, feature_intervals
from pipelines.features.definitions import FEATURES_ZONE, feast_objects, feature_view_name
from pipelines.features.serving import check_skew
from pipelines.stores import feature_store, partitions

log = logging.getLogger(__name__)

SKEW_SAMPLE = 200


def materialized_record(usecase: UseCase):
    return settings.reports_dir() / "features" / usecase.name / "materialized.json"


def materialize_intervals(usecase: UseCase, intervals: list[tuple[dt.datetime, dt.datetime]]) -> int:
    """Materialize the intervals' feature rows into the online store, one interval at a time, in order.

    The online store keeps whatever was written last, so re-materializing an old
    interval (a rerun, a backfill) would roll customers back to older values.
    Every later interval already materialized is therefore replayed after it,
    still one at a time, and the online store ends as it would have without the rerun.

    Returns:
        The number of intervals materialized, replays included.
    """
    check_definitions(usecase)
    store = feature_store.get_store()
    view = feature_view_name(usecase)
    todo = set(intervals)
    record = materialized_record(usecase)
    if record.exists() and intervals:
        latest_end = dt.datetime.fromisoformat(json.loads(record.read_text())["interval_end"])
        earliest = min(start for start, _ in intervals)
        todo |= {
            (start, end)
            for start, end in feature_intervals(usecase)
            if start > earliest and end <= latest_end and (start, end) not in todo
        }
    with feature_store.writing():
        for start, end in sorted(todo):
            feature_store.materialize_interval(store, view, start, end)
            log.info("materialized %s [%s, %s]%s", view, start, end, "" if (start, end) in intervals else " (replay)")
            _record(usecase, start, end)
    return len(todo)


def rebuild(usecase: UseCase) -> int:
    """Rebuild the feature partitions of ``usecase``, then the registry and the online store.

    Every feature partition is rebuilt from the curated data under the current
    definitions (unchanged ones are not rewritten), the registry is applied anew,
    and every partition is materialized again, one interval at a time, in order.

    Returns:
        The number of intervals materialized.
    """
    for start, end in feature_intervals(usecase):
        build_feature_partition(usecase, start, end)
    # The registry and online store are shared by every use case: rebuild them for all.
    usecases = {u.name: u for u in scan().usecases if u.features is not None} | {usecase.name: usecase}
    with feature_store.writing():
        for path in (feature_store.registry_path(), feature_store.online_store_path()):
            path.unlink(missing_ok=True)
        for each in usecases.values():
            materialized_record(each).unlink(missing_ok=True)
        store = feature_store.get_store()
        store.apply([obj for each in usecases.values() for obj in feast_objects(each)])
        total = 0
        for each in usecases.values():
            view = feature_view_name(each)
            for start, end in feature_intervals(each):
                feature_store.materialize_interval(store, view, start, end)
                _record(each, start, end)
                total += each.name == usecase.name
            log.info("rebuilt %s", view)
    return total


def _record(usecase: UseCase, start: dt.datetime, end: dt.datetime) -> None:
    """Remember the latest materialized interval (for `mlops status`), atomically."""
    path = materialized_record(usecase)
    path.parent.mkdir(parents=True, exist_ok=True)
    latest = json.loads(path.read_text()) if path.exists() else {}
    if latest.get("interval_end", "") >= end.isoformat():
        return
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"interval_start": start.isoformat(), "interval_end": end.isoformat()}))
    tmp.replace(path)


def check_interval_skew(usecase: UseCase, start: dt.datetime, end: dt.datetime) -> int:
    """Skew check for an evenly spread sample of entities, as of what the online store holds.

    That is the end of the given interval, or of a later one already materialized
    (after a rerun of an old interval, the online store holds the latest values).
    """
    assert usecase.features is not None
    record = materialized_record(usecase)
    if record.exists():
        latest = json.loads(record.read_text())
        if dt.datetime.fromisoformat(latest["interval_end"]) > end:
            start, end = (dt.datetime.fromisoformat(latest[k]) for k in ("interval_start", "interval_end"))
    key = partitions.partition_key(start, end)
    frame = partitions.read_partition(
        partitions.partition_path(FEATURES_ZONE, usecase.name, usecase.features.dataset, key)
    )
    ids = frame[usecase.entity.name].tolist()
    if not ids:
        log.info("no entities in %s: nothing to compare", key)
        return 0
    step = max(1, len(ids) // SKEW_SAMPLE)
    return check_skew(feature_store.get_store(), usecase, ids[::step][:SKEW_SAMPLE], end, offline=frame)
