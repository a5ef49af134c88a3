"""The ``@dag(...)`` arguments of a use case's DAGs, built in one place from its config."""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import CronDataIntervalTimetable

from dagkit.alerts import failure_callbacks
from pipelines.config import UseCase


def default_args(usecase: UseCase) -> dict[str, Any]:
    return {
        "owner": usecase.owner,
        "retries": usecase.schedule.retries,
        "retry_delay": dt.timedelta(minutes=usecase.schedule.retry_delay_minutes),
        **failure_callbacks(usecase),
    }


def interval_timetable(usecase: UseCase, cron: str | None = None) -> CronDataIntervalTimetable:
    """Runs whose data interval runs from one cron tick to the next, in the schedule's timezone.

    A bare cron string would mean a zero-length interval in Airflow 3. Ticks are
    computed in local time, so days stay whole across daylight-saving changes.
    Scheduled and backfill runs take the interval's start as logical date; manual
    runs (the UI's trigger, ``dag.test``) at T cover the last whole interval ending at T.
    ``cron`` defaults to the use case's ingestion schedule.
    """
    return CronDataIntervalTimetable(cron or usecase.schedule.ingest, timezone=usecase.schedule.timezone)


def start_date(usecase: UseCase) -> dt.datetime:
    return dt.datetime.combine(usecase.schedule.start_date, dt.time(0), tzinfo=dt.UTC)


def dag_arguments(
    usecase: UseCase,
    stage: str,
    *,
    description: str,
    doc_md: str | None,
    tag: str | None = None,
    catchup: bool = False,
    max_active_runs: int = 1,
    **extra: Any,
) -> dict[str, Any]:
    """Keyword arguments of ``@dag`` for the DAG ``<use case>_<stage>``.

    Every DAG of a use case shares its owner, retries, start date and tags; a DAG
    file names what differs (description, params, concurrency) and gives its
    ``schedule`` to ``@dag`` itself, where a reader looks for it.
    """
    return {
        "dag_id": usecase.dag_id(stage),
        "description": description,
        "start_date": start_date(usecase),
        "catchup": catchup,
        "max_active_runs": max_active_runs,
        "tags": ["mlops", usecase.name, tag or stage],
        "default_args": default_args(usecase),
        "doc_md": doc_md,
        **extra,
    }
