"""What DAGs share: intervals from triggering asset events or the trigger form."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest

from dagkit import interval_extra, intervals_extra, intervals_from_context, parse_interval

D1 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
D2, D3 = D1 + dt.timedelta(days=1), D1 + dt.timedelta(days=2)


def test_intervals_come_from_the_triggering_events_in_order_without_duplicates():
    events = [SimpleNamespace(extra=interval_extra(D2, D3)), SimpleNamespace(extra=interval_extra(D1, D2))]
    context = {"triggering_asset_events": {"asset": events + events[:1]}, "params": {}}
    assert [parse_interval(i) for i in intervals_from_context(context)] == [(D1, D2), (D2, D3)]


def test_an_event_can_name_several_intervals():
    pairs = [[D1.isoformat(), D2.isoformat()], [D2.isoformat(), D3.isoformat()]]
    context = {"triggering_asset_events": {"asset": [SimpleNamespace(extra=intervals_extra(pairs))]}, "params": {}}
    assert intervals_from_context(context) == pairs


def test_a_manual_run_names_its_interval_in_the_form():
    context = {
        "triggering_asset_events": {},
        "params": {"interval_start": D1.isoformat(), "interval_end": D2.isoformat()},
    }
    assert intervals_from_context(context) == [[D1.isoformat(), D2.isoformat()]]


def test_a_manual_run_without_an_interval_says_what_to_fill_in():
    with pytest.raises(ValueError, match="trigger with interval_start and interval_end"):
        intervals_from_context({"triggering_asset_events": {}, "params": {"interval_start": None}})


def test_naive_or_reversed_intervals_are_refused():
    with pytest.raises(ValueError):
        parse_interval(["2025-01-02T00:00:00", "2025-01-03T00:00:00"])
    with pytest.raises(ValueError):
        parse_interval([D2.isoformat(), D1.isoformat()])
