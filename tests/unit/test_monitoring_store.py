"""The monitor's tables (SQLite and PostgreSQL): one row per use case and night, replaced on rerun."""

from __future__ import annotations

import datetime as dt

import pytest

from pipelines.stores import monitoring as store

NIGHTS = [dt.datetime(2025, 2, d, tzinfo=dt.UTC) for d in (1, 2, 3)]


@pytest.fixture(params=["sqlite", "postgres"])
def url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'warehouse.db'}"
    return request.getfixturevalue("postgres_url")


def _history(night: dt.datetime, share: float) -> dict:
    return {"night": night.isoformat(), "drift_share": share}


def test_a_rerun_of_a_night_replaces_its_row_and_reads_come_oldest_first(url):
    assert (
        store.read(url, store.HISTORY, "churn") == []
        and store.read_night(url, store.HISTORY, "churn", NIGHTS[0]) is None
    )
    columns = {
        "champion_version": "1",
        "current_rows": 10,
        "drift_share": None,
        "prediction_drift": None,
        "live_metric": None,
    }
    for i, night in enumerate(NIGHTS):
        store.write(url, store.HISTORY, "churn", night, _history(night, i / 10), **columns)
    store.write(url, store.HISTORY, "churn", NIGHTS[1], _history(NIGHTS[1], 0.9), **columns)  # a rerun
    store.write(url, store.HISTORY, "other", NIGHTS[1], _history(NIGHTS[1], 0.5), **columns)
    rows = store.read(url, store.HISTORY, "churn")
    assert [r["drift_share"] for r in rows] == [0.0, 0.9, 0.2]
    assert store.read(url, store.HISTORY, "churn", before=NIGHTS[2], last=1) == [_history(NIGHTS[1], 0.9)]
    assert store.read_night(url, store.HISTORY, "churn", NIGHTS[2]) == _history(NIGHTS[2], 0.2)

    store.write(url, store.DECISIONS, "churn", NIGHTS[0], {"action": "triggered"}, action="triggered", dedupe_key="k")
    assert store.read(url, store.DECISIONS, "churn") == [{"action": "triggered"}]
