"""Feast objects (entity, source, feature view, feature service) derived from a use case."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pipelines import settings
from pipelines.config import UseCase
from pipelines.features.engineering import FEATURE_TIMESTAMP, feature_columns
from pipelines.stores import feast_import

FEATURES_ZONE = "features"


def feature_view_name(usecase: UseCase) -> str:
    return f"{usecase.name}_daily"


def feature_service_name(usecase: UseCase) -> str:
    """The versioned service that training and inference both name, e.g. ``churn_v1``."""
    assert usecase.features is not None
    return f"{usecase.name}_v{usecase.features.version}"


def features_dir(usecase: UseCase) -> Any:
    assert usecase.features is not None
    return settings.data_dir(FEATURES_ZONE, usecase.name, usecase.features.dataset)


def feast_objects(usecase: UseCase) -> list[Any]:
    """Entity, file source over the feature partitions, feature view and feature service."""
    feast_import.load()
    from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
    from feast.types import Float64, Int64

    if usecase.features is None:
        raise ValueError(f"use case '{usecase.name}' has no features section")
    dataset = usecase.source.datasets[usecase.features.dataset]
    tags = {"owner": usecase.owner, "usecase": usecase.name}
    entity = Entity(
        name=f"{usecase.name}_{usecase.entity.name}",
        join_keys=[usecase.entity.name],
        value_type=ValueType.INT64 if usecase.entity.type == "int" else ValueType.STRING,
        description=f"{usecase.entity.name} of use case {usecase.name}",
        tags=tags,
    )
    source = FileSource(
        name=f"{usecase.name}_{usecase.features.dataset}_features",
        path=str(features_dir(usecase)),
        timestamp_field=FEATURE_TIMESTAMP,
        description="Daily feature partitions written by the features DAG",
        tags=tags,
    )
    types = {"float64": Float64, "int64": Int64}
    view = FeatureView(
        name=feature_view_name(usecase),
        entities=[entity],
        ttl=dt.timedelta(days=usecase.features.ttl_days),
        schema=[Field(name=n, dtype=types[t]) for n, t in feature_columns(usecase.features, dataset).items()],
        source=source,
        online=True,
        description=f"Daily features of {usecase.name}, as of the end of each day",
        tags=tags,
    )
    service = FeatureService(
        name=feature_service_name(usecase),
        features=[view],
        description=f"Features version {usecase.features.version} of {usecase.name}: what training and inference read",
        tags=tags,
    )
    return [entity, source, view, service]


def apply_definitions(usecase: UseCase) -> list[str]:
    """Apply the use case's Feast objects to the registry when they changed; the names applied."""
    from pipelines.stores import feature_store

    return feature_store.apply_if_changed(feature_store.get_store(), feast_objects(usecase))
