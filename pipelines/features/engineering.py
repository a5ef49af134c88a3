"""Daily features per entity from curated activity: pure functions on DataFrames.

The features of an interval ``[start, end)`` describe every entity active in it,
as known at ``end``: rolling aggregates over windows that end at ``end``, trends,
the latest values and one-hot encodings of categories. An entity that stopped
appearing gets no new row; its last row expires after the TTL.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from pipelines.config import DatasetSpec, FeaturesSpec
from pipelines.config.data import feature_names

FEATURE_TIMESTAMP = "feature_timestamp"


def feature_columns(spec: FeaturesSpec, dataset: DatasetSpec) -> dict[str, str]:
    """Feature name -> pandas dtype, in a stable order (what Feast's schema is derived from)."""
    return feature_names(
        spec.windows_days,
        {column: list(how) for column, how in spec.aggregates.items()},
        spec.trends,
        spec.latest,
        {column: list(dataset.column(column).values or []) for column in spec.one_hot},
    )


def definitions_fingerprint(spec: FeaturesSpec, dataset: DatasetSpec) -> str:
    """Names the feature definitions: partitions built under other ones must be rebuilt."""
    import hashlib
    import json

    # The service version names the features for models; it does not change how they are computed.
    definition = spec.model_dump(mode="json", exclude={"version"})
    payload = json.dumps([definition, feature_columns(spec, dataset)], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def history_start(spec: FeaturesSpec, end: dt.datetime) -> dt.datetime:
    """Earliest time whose activity the features as of ``end`` depend on."""
    return end - dt.timedelta(days=spec.history_days)


def build_features(
    history: pd.DataFrame,
    spec: FeaturesSpec,
    dataset: DatasetSpec,
    entity: str,
    start: dt.datetime,
    end: dt.datetime,
) -> pd.DataFrame:
    """Features as of ``end`` for each entity with activity in ``[start, end)``.

    Args:
        history: activity rows; rows outside ``[history_start(end), end)`` are ignored,
            so passing more history than needed changes nothing.
        spec: the use case's feature settings.
        dataset: the activity dataset (its event time and category values).
        entity: the entity key column.
        start: start of the interval the features are for.
        end: end of that interval; the features' timestamp.

    Returns:
        One row per active entity, sorted by entity: the entity key,
        ``feature_timestamp`` (= ``end``) and the columns of :func:`feature_columns`.
    """
    if end - start > dt.timedelta(days=spec.windows_days[0]):
        raise ValueError(f"interval [{start}, {end}) is longer than the shortest window ({spec.windows_days[0]} days)")
    ts = dataset.event_time
    start_ts, end_ts = pd.Timestamp(start), pd.Timestamp(end)
    window_start = pd.Timestamp(history_start(spec, end))
    times = history[ts]
    in_history = history[(times >= window_start) & (times < end_ts)]
    active = in_history.loc[in_history[ts] >= start_ts, entity].drop_duplicates().sort_values()
    rows = in_history[in_history[entity].isin(active)].sort_values([entity, ts], kind="stable")

    out = pd.DataFrame({entity: active.to_numpy()}).set_index(entity)
    day = rows[ts].dt.floor("D")
    for window in spec.windows_days:
        recent = rows[rows[ts] >= end_ts - pd.Timedelta(days=window)]
        grouped = recent.groupby(entity)
        out[f"active_days_{window}d"] = day.loc[recent.index].groupby(recent[entity]).nunique()
        for column, aggregations in spec.aggregates.items():
            for how in aggregations:
                out[f"{column}_{how}_{window}d"] = grouped[column].agg(how).astype("float64")
    shortest, longest = spec.windows_days[0], spec.windows_days[-1]
    for column in spec.trends:
        short = rows[rows[ts] >= end_ts - pd.Timedelta(days=shortest)].groupby(entity)[column].mean()
        long = rows[rows[ts] >= end_ts - pd.Timedelta(days=longest)].groupby(entity)[column].mean()
        out[f"{column}_trend"] = (short - long).astype("float64")
    last = rows.groupby(entity).tail(1).set_index(entity)
    for column in spec.latest:
        out[f"{column}_latest"] = last[column].astype("float64")
    for column in spec.one_hot:
        for value in dataset.column(column).values or []:
            out[f"{column}_is_{value}"] = last[column].eq(value).fillna(False).astype("int64")

    columns = feature_columns(spec, dataset)
    out = out.reset_index()
    out.insert(1, FEATURE_TIMESTAMP, end_ts)
    # Every active entity has a row in every window (the windows all contain [start, end)),
    # so no value is missing; the cast makes the types exact for the schema.
    return out.astype(columns)[[entity, FEATURE_TIMESTAMP, *columns]]
