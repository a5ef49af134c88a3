"""The Feast feature store: registry, online store and offline retrieval.

The repository is ``feature_repo/`` (its ``feature_store.yaml`` reads every
location from ``$MLOPS_HOME``); the registry and online store live in
``$MLOPS_HOME/feast``. Other modules reach Feast only through this one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from pipelines import settings
from pipelines.errors import CorruptState
from pipelines.locks import named_lock
from pipelines.stores import feast_import

log = logging.getLogger(__name__)


class FeatureStoreCorrupt(CorruptState):
    """The registry or online store file cannot be read; the message says how to rebuild it."""


def repo_dir() -> Path:
    return settings.REPO_ROOT / "feature_repo"


def state_dir() -> Path:
    return settings.mlops_home() / "feast"


def registry_path() -> Path:
    return state_dir() / "registry.db"


def online_store_path() -> Path:
    return state_dir() / "online.db"


@contextlib.contextmanager
def writing() -> Iterator[None]:
    """Exclusive lock for writers of the registry and online store (all use cases share them)."""
    with named_lock("feast"):
        yield


class _FileRegistryAdvice(logging.Filter):
    """Feast advises that ``serve_features_while_materializing`` "typically has no effect" on a file
    registry; it does (the file registry reads it, and serving checks it), so the advice is noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "serve_features_while_materializing" not in record.getMessage()


def get_store() -> Any:
    """The project's FeatureStore, on this process's ``$MLOPS_HOME``."""
    logging.getLogger("feast").setLevel(logging.WARNING)
    config_log = logging.getLogger("feast.repo_config")
    if not any(isinstance(f, _FileRegistryAdvice) for f in config_log.filters):
        config_log.addFilter(_FileRegistryAdvice())
    feast_import.load()
    from feast import FeatureStore

    os.environ["MLOPS_HOME"] = str(settings.mlops_home())  # feature_store.yaml expands it
    state_dir().mkdir(parents=True, exist_ok=True)
    return FeatureStore(repo_path=str(repo_dir()))


def _rebuild_hint(path: Path, exc: Exception) -> FeatureStoreCorrupt:
    return FeatureStoreCorrupt(
        f"Feast file {path} cannot be read ({type(exc).__name__}: {exc}). Rebuild it: delete it and run "
        "`mlops features rebuild` (re-applies the definitions and re-materializes the online store "
        "from the feature partitions, which are the source of truth)."
    )


def apply_if_changed(store: Any, objects: list[Any]) -> list[str]:
    """Apply the objects that differ from the registry; return their names (empty: nothing written)."""
    feast_import.load()
    from feast import Entity, FeatureService, FeatureView, FileSource

    getters = {
        Entity: store.get_entity,
        FeatureView: store.get_feature_view,
        FeatureService: store.get_feature_service,
        FileSource: store.get_data_source,
    }
    changed = []
    for obj in objects:
        getter = next(g for cls, g in getters.items() if isinstance(obj, cls))
        try:
            current = getter(obj.name)
        except Exception as exc:  # Feast raises a different *NotFound class per object kind
            if "not exist" not in str(exc) and "NotFound" not in type(exc).__name__:
                raise _rebuild_hint(registry_path(), exc) from exc
            current = None
        if current is None or _definition(current) != _definition(obj):
            changed.append(obj.name)
    if changed:
        with writing():
            store.apply(objects)
        log.info("feast apply: %s changed", ", ".join(changed))
    else:
        log.info("feast apply: no change, registry untouched")
    return changed


# Fields Feast fills in itself (timestamps, materialized intervals, columns derived at apply).
_RECORDED = {"meta", "createdTimestamp", "lastUpdatedTimestamp", "materializationIntervals", "entityColumns"}


def _definition(obj: Any) -> Any:
    """What the user defined, without what Feast records about it."""
    from google.protobuf.json_format import MessageToDict

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in _RECORDED}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return strip(MessageToDict(obj.to_proto()))


_CORRUPT_SIGNS = ("file is not a database", "database disk image is malformed", "Error parsing message")


def _looks_corrupt(exc: Exception) -> bool:
    return any(sign in str(exc) for sign in _CORRUPT_SIGNS) or type(exc).__name__ == "DecodeError"


def materialize_interval(store: Any, view: str, start: dt.datetime, end: dt.datetime) -> None:
    """Load the latest feature rows stamped in ``[start, end]`` into the online store.

    One interval per call: Feast reads the whole range into memory, so callers
    loop over intervals instead of handing it months at once.
    """
    try:
        store.materialize(start_date=start, end_date=end, feature_views=[view])
    except Exception as exc:
        if _looks_corrupt(exc):
            raise _rebuild_hint(online_store_path(), exc) from exc
        raise


def online_features(
    store: Any,
    service: str,
    entity: str,
    ids: list[Any],
    as_of: dt.datetime | None = None,
    ttl: dt.timedelta | None = None,
) -> Any:
    """Online features of ``ids`` through a feature service, as a DataFrame (missing ones as NaN).

    Feast's SQLite online store does not expire values, so with ``as_of`` and
    ``ttl`` a value stamped more than ``ttl`` before ``as_of`` is treated as missing,
    as the point-in-time join treats it.
    """
    from feast.online_response import TIMESTAMP_POSTFIX

    features = _service(store, service)
    try:
        response = store.get_online_features(features=features, entity_rows=[{entity: i} for i in ids])
    except Exception as exc:
        if _looks_corrupt(exc):
            raise _rebuild_hint(online_store_path(), exc) from exc
        raise
    frame = response.to_df(include_event_timestamps=True)
    stamps = [c for c in frame.columns if c.endswith(TIMESTAMP_POSTFIX)]
    if as_of is not None and ttl is not None:
        for column in stamps:
            feature = column.removesuffix(TIMESTAMP_POSTFIX)
            if feature == entity:
                continue
            stamped = pd.to_datetime(frame[column], unit="s", utc=True)
            frame[feature] = frame[feature].where(stamped >= pd.Timestamp(as_of) - ttl)
    return frame.drop(columns=stamps)


def historical_features(store: Any, service: str, entity_rows: Any) -> Any:
    """Point-in-time join of ``entity_rows`` (entity key, ``event_timestamp``) with a feature service."""
    return store.get_historical_features(entity_df=entity_rows, features=_service(store, service)).to_df()


def _service(store: Any, name: str) -> Any:
    """A feature service from the registry; a registry that cannot be read names itself."""
    try:
        return store.get_feature_service(name)
    except Exception as exc:
        if _looks_corrupt(exc):
            raise _rebuild_hint(registry_path(), exc) from exc
        raise


def service_features(store: Any, name: str) -> list[str]:
    """The feature names a feature service serves, in its order, from the registry."""
    return [
        field.name for projection in _service(store, name).feature_view_projections for field in projection.features
    ]
