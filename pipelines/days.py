"""Days in the use case's timezone: what "the day of a timestamp" means wherever days are meant.

A label's reference time may carry a time of day (the moment of a reading, not
midnight). Every place that groups, splits or joins by day (the training set's
split, the point-in-time join, the monitor's join of labels with served
predictions) takes the day of a timestamp through these functions, in
``schedule.timezone``, so 2025-01-03 14:32 and 2025-01-03 00:00 are the same day.

Timestamps without a zone are UTC (the source store keeps naive UTC).
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pandas as pd


def as_utc(times: pd.Series) -> pd.Series:
    """``times`` as timezone-aware UTC timestamps (naive ones are taken as UTC)."""
    if not pd.api.types.is_datetime64_any_dtype(times):  # to_datetime of datetimes iterates them boxed: slow
        times = pd.to_datetime(times)
    return times.dt.tz_localize("UTC") if times.dt.tz is None else times.dt.tz_convert("UTC")


def day_start(times: pd.Series, timezone: str) -> pd.Series:
    """The start of the day (in ``timezone``) each timestamp falls in, as UTC timestamps."""
    local = as_utc(times).dt.tz_convert(timezone)
    return local.dt.normalize().dt.tz_convert("UTC")


def day_end(times: pd.Series, timezone: str) -> pd.Series:
    """The end of the day (in ``timezone``) each timestamp falls in: the next local midnight, in UTC.

    Features of a daily interval are stamped with its end, so this is the time a
    label about that day joins its features at.
    """
    local = as_utc(times).dt.tz_convert(timezone).dt.normalize()
    return (local + pd.DateOffset(days=1)).dt.tz_convert("UTC")


def has_time_of_day(times: pd.Series, timezone: str) -> bool:
    """Whether any timestamp is not at a local midnight (the column carries times of day)."""
    if times.empty:
        return False
    utc = as_utc(times)
    return bool((utc != day_start(utc, timezone)).any())


def day_bounds(day: dt.date, timezone: str) -> tuple[dt.datetime, dt.datetime]:
    """The data interval of ``day`` in ``timezone``: from its local midnight to the next, as UTC datetimes
    (23 or 25 hours long across a DST change), as a daily cron timetable in that timezone cuts it."""
    zone = ZoneInfo(timezone)
    start = dt.datetime.combine(day, dt.time(0), tzinfo=zone)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=zone)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


def local_date(instant: dt.datetime, timezone: str) -> dt.date:
    """The day in ``timezone`` that ``instant`` falls in (a naive datetime is UTC)."""
    aware = instant if instant.tzinfo else instant.replace(tzinfo=dt.UTC)
    return aware.astimezone(ZoneInfo(timezone)).date()
