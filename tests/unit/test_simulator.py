"""The source simulator: deterministic, appendable, drifting when asked to."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
import sqlalchemy as sa

from pipelines.simulation.churn import World, simulate
from pipelines.simulation.writer import SimulationMismatch, write_simulation

WORLD = World(start=dt.date(2025, 1, 1), customers=300, seed=3, label_delay_days=5)


def _frames(world: World, days: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    sim = list(simulate(world, days))
    return pd.concat([d.activity for d in sim]), pd.concat([d.labels for d in sim])


def test_same_seed_same_rows_and_other_seed_other_rows():
    a1, l1 = _frames(WORLD, 8)
    a2, l2 = _frames(WORLD, 8)
    pd.testing.assert_frame_equal(a1, a2)
    pd.testing.assert_frame_equal(l1, l2)
    other, _ = _frames(World(**{**WORLD.__dict__, "seed": 4}), 8)
    assert not other["monthly_charges"].equals(a1["monthly_charges"])


def test_rows_fall_inside_their_day_and_labels_arrive_after_the_delay():
    for day in simulate(WORLD, 8):
        start = pd.Timestamp(day.day)
        assert day.activity["event_timestamp"].between(start, start + pd.Timedelta(days=1), inclusive="left").all()
        assert day.activity[["customer_id"]].duplicated().sum() == 0
        if len(day.labels):
            assert (day.labels["reference_date"] == start - pd.Timedelta(days=WORLD.label_delay_days)).all()
            assert (day.labels["label_timestamp"] >= start).all()
    assert sum(len(d.labels) for d in simulate(WORLD, 5)) == 0  # nothing is known before the delay


def test_drift_raises_charges_and_cuts_usage():
    drifted = World(**{**WORLD.__dict__, "drift_day": 5})
    before, _ = _frames(WORLD, 10)
    after, _ = _frames(drifted, 10)
    late = lambda f: f[f["event_timestamp"] >= pd.Timestamp("2025-01-06")]  # noqa: E731
    assert late(after)["monthly_charges"].mean() > 1.15 * late(before)["monthly_charges"].mean()
    assert late(after)["data_usage_gb"].mean() < 0.9 * late(before)["data_usage_gb"].mean()


def _count(url: str, table: str) -> int:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        return conn.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar_one()


def _check_append_and_rerun(url: str, churn) -> None:
    first = write_simulation(url, churn, WORLD, 4)
    assert first.days_written == 4
    more = write_simulation(url, churn, WORLD, 7)
    assert (more.days_written, more.days_skipped) == (3, 4)
    again = write_simulation(url, churn, WORLD, 7)
    assert again.days_written == 0
    expected_activity, expected_labels = _frames(WORLD, 7)
    assert _count(url, "customer_activity") == len(expected_activity)
    assert _count(url, "churn_labels") == len(expected_labels)
    with pytest.raises(SimulationMismatch, match="already holds a 'churn' simulation"):
        write_simulation(url, churn, World(**{**WORLD.__dict__, "customers": 10}), 2)


def test_appending_days_and_rerunning_never_duplicates_sqlite(home, churn):
    _check_append_and_rerun(f"sqlite:///{home / 'source.db'}", churn)


def test_appending_days_and_rerunning_never_duplicates_postgres(postgres_url, churn):
    _check_append_and_rerun(postgres_url, churn)
