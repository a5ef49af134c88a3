"""The day of a timestamp, in the use case's timezone: what splits, joins and matured labels count by."""

from __future__ import annotations

import pandas as pd

from pipelines.days import as_utc, day_end, day_start, has_time_of_day


def test_a_time_of_day_belongs_to_its_day_in_utc():
    times = pd.Series(pd.to_datetime(["2025-03-03 00:00:00", "2025-03-03 14:32:10", "2025-03-03 23:59:59"]))
    assert set(day_start(times, "UTC")) == {pd.Timestamp("2025-03-03", tz="UTC")}
    assert set(day_end(times, "UTC")) == {pd.Timestamp("2025-03-04", tz="UTC")}
    assert has_time_of_day(times, "UTC") and not has_time_of_day(times.iloc[:1], "UTC")


def test_days_are_taken_in_the_use_cases_timezone_across_a_dst_change():
    # 2025-03-30 is 23 hours long in Paris; 23:30 UTC on the 29th is already the 30th there.
    times = pd.Series(pd.to_datetime(["2025-03-29 23:30", "2025-03-30 21:59"], utc=True))
    start, end = day_start(times, "Europe/Paris"), day_end(times, "Europe/Paris")
    assert list(start) == [pd.Timestamp("2025-03-29 23:00", tz="UTC")] * 2
    assert list(end) == [pd.Timestamp("2025-03-30 22:00", tz="UTC")] * 2
    assert not has_time_of_day(start, "Europe/Paris")


def test_naive_timestamps_are_utc():
    naive = pd.Series(pd.to_datetime(["2025-01-01 05:00"]))
    assert as_utc(naive).iloc[0] == pd.Timestamp("2025-01-01 05:00", tz="UTC")


def test_a_days_interval_runs_from_local_midnight_to_the_next():
    import datetime as dt

    from pipelines.days import day_bounds

    utc = dt.UTC
    assert day_bounds(dt.date(2025, 3, 3), "UTC") == (
        dt.datetime(2025, 3, 3, tzinfo=utc),
        dt.datetime(2025, 3, 4, tzinfo=utc),
    )
    start, end = day_bounds(dt.date(2025, 3, 30), "Europe/Paris")  # the spring-forward day: 23 hours
    assert start == dt.datetime(2025, 3, 29, 23, tzinfo=utc) and end == dt.datetime(2025, 3, 30, 22, tzinfo=utc)
