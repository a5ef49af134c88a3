"""Data intervals as they travel between tasks and in asset events: pairs of ISO datetimes.

Light on purpose (no pandas): DAG helpers import it at parse time.
"""

from __future__ import annotations

import datetime as dt


def parse_interval(pair: list[str] | tuple[str, str]) -> tuple[dt.datetime, dt.datetime]:
    """``[start, end)`` from two ISO datetimes (as intervals travel between tasks and in asset events).

    Raises:
        ValueError: not two aware datetimes with start before end.
    """
    start, end = (dt.datetime.fromisoformat(p) for p in pair)
    if start.tzinfo is None or end.tzinfo is None or not start < end:
        raise ValueError(f"not an interval of aware datetimes with start < end: {list(pair)}")
    return start, end


def format_interval(start: dt.datetime, end: dt.datetime) -> list[str]:
    return [start.isoformat(), end.isoformat()]
