"""The config-driven synthetic simulator: deterministic, appendable, learnable, drifting when asked to."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from pipelines.config import get_usecase
from pipelines.simulation import synthetic
from pipelines.simulation.writer import SimulationMismatch, world_for, write_simulation

START = dt.date(2025, 1, 1)
DRIFT_DAY = 10
FEATURES = ["footfall", "avg_basket", "price_index", "staff_on_shift", "region", "store_format", "promo"]


@pytest.fixture(scope="module")
def store_sales():
    return get_usecase("store_sales")


@pytest.fixture(scope="module")
def world(store_sales) -> synthetic.World:
    return world_for(store_sales, START, population=200, seed=5, drift_day=DRIFT_DAY)


def _frames(world: synthetic.World, days: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    sim = list(world.simulate(days))
    return pd.concat([d.frames["activity"] for d in sim]), pd.concat([d.frames["labels"] for d in sim])


def _labelled(world: synthetic.World, days: int) -> pd.DataFrame:
    """Each label joined with the activity row of the day it is about."""
    activity, labels = _frames(world, days)
    activity = activity.assign(reference_date=activity["event_timestamp"].dt.floor("D"))
    return labels.merge(activity, on=["store_id", "reference_date"], validate="one_to_one")


def _design(frame: pd.DataFrame) -> np.ndarray:
    return pd.get_dummies(frame[FEATURES], dtype=float).to_numpy()


def test_the_use_case_config_chooses_the_synthetic_generator(store_sales, world):
    assert isinstance(world, synthetic.World) and world.population == 200
    assert world.label_delay_days == store_sales.label.delay_days == 3
    churn = world_for(get_usecase("churn"), START)
    assert type(churn).__module__ == "pipelines.simulation.churn" and churn.population == 2000
    with pytest.raises(ValueError, match="no simulation section with generator 'synthetic'"):
        synthetic.world_from_usecase(get_usecase("churn"), START, 10, 1)


def test_same_parameters_same_rows_and_another_seed_other_rows(world):
    a1, l1 = _frames(world, 6)
    a2, l2 = _frames(world, 6)
    pd.testing.assert_frame_equal(a1, a2)
    pd.testing.assert_frame_equal(l1, l2)
    other, _ = _frames(dataclasses.replace(world, seed=6), 6)
    assert not other["footfall"].equals(a1["footfall"])


def test_a_day_holds_the_same_rows_however_far_the_simulation_goes(world):
    short = list(world.simulate(5))
    long = list(world.simulate(9))
    for a, b in zip(short, long[:5], strict=True):
        assert a.day == b.day
        for name in ("activity", "labels"):
            pd.testing.assert_frame_equal(a.frames[name], b.frames[name])


def test_rows_follow_the_column_specs_and_labels_arrive_after_the_delay(store_sales, world):
    activity_spec = store_sales.source.datasets["activity"]
    for day in world.simulate(8):
        activity, labels = day.frames["activity"], day.frames["labels"]
        start = pd.Timestamp(day.day)
        assert sorted(activity.columns) == sorted(activity_spec.column_names)
        assert activity["store_id"].tolist() == list(range(1, 201))  # every store, once a day
        assert activity["event_timestamp"].between(start, start + pd.Timedelta(days=1), inclusive="left").all()
        for col in activity_spec.columns:
            if col.min is not None:
                assert activity[col.name].between(col.min, col.max).all(), col.name
            if col.type == "int":
                assert activity[col.name].dtype == np.int64
            if col.type == "category":
                assert set(activity[col.name]) <= set(col.values), col.name
        if day.day < START + dt.timedelta(days=3):
            assert labels.empty  # nothing is known before the delay
        else:
            assert len(labels) == 200
            assert (labels["reference_date"] == start - pd.Timedelta(days=3)).all()
            assert (labels["label_timestamp"] >= start).all()
            assert labels["sales_next_3d"].between(0, 1000).all()


def test_the_target_is_learnable_from_the_days_columns(world):
    from sklearn.linear_model import LinearRegression

    rows = _labelled(world, DRIFT_DAY + world.label_delay_days)  # labels about days before the drift
    x, y = _design(rows), rows["sales_next_3d"].to_numpy()
    train = rows["reference_date"] < pd.Timestamp(START + dt.timedelta(days=6))
    fit = LinearRegression().fit(x[train], y[train])
    assert fit.score(x[~train], y[~train]) > 0.8  # noise 3 against a spread of about 12


def test_drift_shifts_the_columns_and_changes_the_target(world):
    from sklearn.linear_model import LinearRegression

    days = DRIFT_DAY * 2 + world.label_delay_days
    drifted = _labelled(world, days)
    steady = _labelled(dataclasses.replace(world, drift_day=None), days)
    after = drifted["reference_date"] >= pd.Timestamp(START + dt.timedelta(days=DRIFT_DAY))
    assert (~after).any() and after.any()
    pd.testing.assert_frame_equal(drifted[~after], steady[~after])  # nothing changes before the drift day
    assert drifted[after]["footfall"].mean() < 0.8 * steady[after]["footfall"].mean()  # scale 0.7
    assert drifted[after]["avg_basket"].mean() > 1.05 * steady[after]["avg_basket"].mean()  # scale 1.15

    before = LinearRegression().fit(_design(drifted[~after]), drifted[~after]["sales_next_3d"])
    later = LinearRegression().fit(_design(drifted[after]), drifted[after]["sales_next_3d"])
    price = FEATURES.index("price_index")  # numeric columns come first in the design matrix
    assert before.coef_[price] == pytest.approx(-40, abs=8)  # target.terms
    assert later.coef_[price] == pytest.approx(-75, abs=8)  # drift.terms replace them
    y_after = drifted[after]["sales_next_3d"]
    assert before.score(_design(drifted[after]), y_after) < later.score(_design(drifted[after]), y_after) - 0.1


def _count(url: str, table: str) -> int:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        return conn.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar_one()


def test_the_writer_appends_days_once_and_refuses_another_world(home, store_sales, world):
    url = f"sqlite:///{home / 'source.db'}"
    first = write_simulation(url, store_sales, world, 4)
    assert (first.days_written, first.activity_rows, first.label_rows) == (4, 800, 200)
    more = write_simulation(url, store_sales, world, 7)
    assert (more.days_written, more.days_skipped) == (3, 4)
    assert write_simulation(url, store_sales, world, 7).days_written == 0
    activity, labels = _frames(world, 7)
    assert _count(url, "store_activity") == len(activity)
    assert _count(url, "store_sales_labels") == len(labels)
    target = world.design["target"] | {"noise": 5.0}
    other = dataclasses.replace(world, design=world.design | {"target": target})  # another config: another world
    with pytest.raises(SimulationMismatch, match="already holds a 'store_sales' simulation"):
        write_simulation(url, store_sales, other, 2)
