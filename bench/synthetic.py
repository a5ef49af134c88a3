"""Synthetic partitions for the benchmarks: feature rows of the churn feature view and their labels.

Written straight to the feature and curated zones (no simulation, no ingestion), so
a benchmark measures only the stage it is about.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

START = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
ONE = dt.timedelta(days=1)


def write_feature_partitions(entities: int, days: int, seed: int = 0) -> list[pd.DataFrame]:
    """``days`` daily feature partitions of ``entities`` customers each (values uniform at random)."""
    from pipelines.config import get_usecase
    from pipelines.features.definitions import FEATURES_ZONE
    from pipelines.features.engineering import FEATURE_TIMESTAMP, definitions_fingerprint, feature_columns
    from pipelines.stores import partitions

    usecase = get_usecase("churn")
    dataset = usecase.source.datasets["activity"]
    columns = feature_columns(usecase.features, dataset)
    fingerprint = definitions_fingerprint(usecase.features, dataset)
    rng = np.random.default_rng(seed)
    frames = []
    for d in range(days):
        start = START + d * ONE
        frame = pd.DataFrame({"customer_id": np.arange(1, entities + 1, dtype="int64")})
        frame[FEATURE_TIMESTAMP] = pd.Timestamp(start + ONE)
        for name, dtype in columns.items():
            frame[name] = rng.integers(0, 2, entities) if dtype == "int64" else rng.random(entities)
        info = partitions.PartitionInfo.describe(
            frame, "churn", "activity", start, start + ONE, status="features", definition=fingerprint
        )
        path = partitions.partition_path(FEATURES_ZONE, "churn", "activity", info.key)
        partitions.write_partition(path, frame, info)
        frames.append(frame)
    return frames


def write_label_partitions(frames: list[pd.DataFrame], seed: int = 1) -> dt.datetime:
    """Curated labels for every feature row: churn drawn from a logistic function of a few features.

    Returns the end of the window by which every label is known.
    """
    from pipelines.config import get_usecase
    from pipelines.stores import partitions

    usecase = get_usecase("churn")
    delay = dt.timedelta(days=usecase.label.delay_days)
    rng = np.random.default_rng(seed)
    for d, features in enumerate(frames):
        reference = START + d * ONE
        logit = (
            -3.0
            + 2.5 * features["support_tickets_sum_7d"].to_numpy()
            + 1.5 * features["payment_delay_days_max_14d"].to_numpy()
            - 1.0 * features["tenure_days_latest"].to_numpy()
        )
        churned = (rng.random(len(features)) < 1 / (1 + np.exp(-logit))).astype("int64")
        labels = pd.DataFrame(
            {
                "customer_id": features["customer_id"].to_numpy(),
                "reference_date": pd.Timestamp(reference),
                "label_timestamp": pd.Timestamp(reference + delay),
                "churned": churned,
            }
        )
        arrival = reference + delay
        info = partitions.PartitionInfo.describe(labels, "churn", "labels", arrival, arrival + ONE, status="curated")
        partitions.write_partition(
            partitions.partition_path(partitions.CURATED, "churn", "labels", info.key), labels, info
        )
    return START + len(frames) * ONE + delay


def write_activity_partitions(entities: int, days: int, seed: int = 2) -> tuple[dt.datetime, dt.datetime]:
    """``days`` curated activity partitions of ``entities`` customers each, one row per customer and day,
    in the curated types and ranges of the activity dataset. Returns the newest day's interval."""
    from pipelines.config import get_usecase
    from pipelines.stores import partitions

    dataset = get_usecase("churn").source.datasets["activity"]
    rng = np.random.default_rng(seed)
    ids = np.arange(1, entities + 1, dtype="int64")
    for d in range(days):
        start = START + d * ONE
        frame = pd.DataFrame({"customer_id": ids})
        for col in dataset.columns:
            if col.type == "timestamp":
                seconds = rng.integers(0, 86_400, entities).astype("timedelta64[s]")
                frame[col.name] = pd.Series(np.datetime64(start.replace(tzinfo=None), "s") + seconds).dt.tz_localize(
                    "UTC"
                )
            elif col.type == "category":
                frame[col.name] = pd.Series(np.array(col.values)[rng.integers(0, len(col.values), entities)],
                                            dtype="string")  # fmt: skip
            elif col.name != "customer_id":
                high = col.max if col.max is not None else 1000
                values = rng.random(entities) * high
                frame[col.name] = values.astype("int64") if col.type == "int" else values
        frame = frame.sort_values(dataset.key, kind="stable", ignore_index=True)
        info = partitions.PartitionInfo.describe(frame, "churn", "activity", start, start + ONE, status="curated")
        partitions.write_partition(
            partitions.partition_path(partitions.CURATED, "churn", "activity", info.key), frame, info
        )
    return START + (days - 1) * ONE, START + days * ONE
