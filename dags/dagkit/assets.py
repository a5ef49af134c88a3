"""The assets DAGs publish and consume, and the data intervals their events carry.

An ingestion publishes the interval it curated; the features DAG publishes the
intervals it materialized; each consumer reads them back from its triggering
asset events, or from a manual run's trigger form.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import Asset, Param

from pipelines.intervals import parse_interval


def curated_asset(usecase: str, dataset: str) -> Asset:
    """The curated partitions of one dataset, as the asset graph in the UI shows them."""
    return Asset(name=f"{usecase}_curated_{dataset}", uri=f"mlops://{usecase}/curated/{dataset}")


def online_features_asset(usecase: str) -> Asset:
    """The online store's features of a use case, updated by its features DAG."""
    return Asset(name=f"{usecase}_online_features", uri=f"mlops://{usecase}/features/online")


def predictions_asset(usecase: str) -> Asset:
    """The predictions of a use case (warehouse table and Parquet partitions), from its inference DAG."""
    return Asset(name=f"{usecase}_predictions", uri=f"mlops://{usecase}/predictions")


def interval_params() -> dict[str, Param]:
    """The trigger form of asset-driven DAGs: a manual run names the interval it processes."""
    return {
        "interval_start": Param(
            None, type=["null", "string"], format="date-time", description="Manual runs: start of the interval"
        ),
        "interval_end": Param(
            None, type=["null", "string"], format="date-time", description="Manual runs: end of the interval"
        ),
    }


def interval_extra(start: dt.datetime, end: dt.datetime) -> dict[str, str]:
    """What an ingestion's asset event tells its consumers: the interval it published."""
    return {"interval_start": start.isoformat(), "interval_end": end.isoformat()}


def intervals_extra(intervals: list[list[str]]) -> dict[str, Any]:
    """An asset event naming several intervals (the last also as ``interval_start``/``interval_end``)."""
    return {"intervals": [list(pair) for pair in intervals]} | (
        {"interval_start": intervals[-1][0], "interval_end": intervals[-1][1]} if intervals else {}
    )


def intervals_from_context(context: Any) -> list[list[str]]:
    """Intervals to process: from the triggering asset events, else from the run's params.

    Raises:
        ValueError: neither names an interval (a manual run without its form filled in).
    """
    intervals = set()
    for events in (context.get("triggering_asset_events") or {}).values():
        for event in events:
            extra = event.extra or {}
            for pair in extra.get("intervals") or []:
                intervals.add(tuple(pair))
            if extra.get("interval_start") and extra.get("interval_end"):
                intervals.add((extra["interval_start"], extra["interval_end"]))
    params = context.get("params") or {}
    if not intervals and params.get("interval_start") and params.get("interval_end"):
        intervals.add((params["interval_start"], params["interval_end"]))
    if not intervals:
        raise ValueError("no interval to process: trigger with interval_start and interval_end (ISO datetimes)")
    ordered = sorted(intervals, key=lambda pair: parse_interval(list(pair))[0])
    return [list(pair) for pair in ordered]
