"""What every DAG of this project shares: arguments, timetables, assets, task glue.

Light on purpose: DAG files import it at every parse. Heavy libraries are only
imported inside the functions that tasks call.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from typing import Any

from airflow.sdk import Asset, BaseHook, CronDataIntervalTimetable, Param

from pipelines.config import UseCase


def default_args(usecase: UseCase) -> dict[str, Any]:
    return {
        "owner": usecase.owner,
        "retries": usecase.schedule.retries,
        "retry_delay": dt.timedelta(minutes=usecase.schedule.retry_delay_minutes),
    }


def interval_timetable(usecase: UseCase) -> CronDataIntervalTimetable:
    """Runs whose data interval runs from one cron tick to the next, in the schedule's timezone.

    A bare cron string would mean a zero-length interval in Airflow 3. Ticks are
    computed in local time, so days stay whole across daylight-saving changes.
    Scheduled and backfill runs take the interval's start as logical date; manual
    runs (the UI's trigger, ``dag.test``) at T cover the last whole interval ending at T.
    """
    return CronDataIntervalTimetable(usecase.schedule.ingest, timezone=usecase.schedule.timezone)


def start_date(usecase: UseCase) -> dt.datetime:
    return dt.datetime.combine(usecase.schedule.start_date, dt.time(0), tzinfo=dt.UTC)


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


def parse_interval(pair: list[str]) -> tuple[dt.datetime, dt.datetime]:
    start, end = (dt.datetime.fromisoformat(p) for p in pair)
    if start.tzinfo is None or end.tzinfo is None or not start < end:
        raise ValueError(f"not an interval of aware datetimes with start < end: {pair}")
    return start, end


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


def sqlalchemy_url(conn_id: str) -> str:
    """The SQLAlchemy URL of an Airflow connection, looked up from inside a task."""
    from airflow.sdk.exceptions import AirflowNotFoundException

    from pipelines.stores.source import url_from_connection

    try:
        conn = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        raise AirflowNotFoundException(
            f"connection '{conn_id}' is not defined: run `mlops init`, or set "
            f"AIRFLOW_CONN_{conn_id.upper()} to a SQLAlchemy URL"
        ) from None
    return url_from_connection(conn)


@contextlib.contextmanager
def task_errors() -> Iterator[None]:
    """Fail the task without retries on bad input (:class:`pipelines.errors.BadInput`): running
    again on the same input would fail the same way. Other errors are left to Airflow's retries."""
    from airflow.sdk.exceptions import AirflowFailException

    from pipelines.errors import BadInput

    try:
        yield
    except BadInput as exc:
        raise AirflowFailException(str(exc)) from None
