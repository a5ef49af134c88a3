"""A user's own source, as a new user brings it: tables of their own shape, a YAML file, no simulation block.

The rows are drawn with the synthetic generator (from a generator-only copy of
the use case with a ``simulation`` block), then written straight into the
user's tables with pandas, as their own systems would: no bookkeeping tables of
the simulator. With ``times_of_day`` a label's reference time is the moment of
the reading (a time within the day), not midnight.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
import yaml

# Electricity meters: string ids, readings at random times, the peak load of a reference day
# (measured at a time within that day) known 4 days later; a regression.
METERS: dict[str, Any] = {
    "name": "meter_load",
    "description": "Peak load of a meter on a day, from its recent readings (onboarding test).",
    "owner": "tests",
    "task": "regression",
    "entity": {"name": "meter_id", "type": "string"},
    "schedule": {"ingest": "0 0 * * *", "timezone": "UTC", "start_date": "2025-03-01", "retry_delay_minutes": 0.01},
    "source": {
        "connection_id": "meters_db",
        "datasets": {
            "readings": {
                "table": "meter_readings",
                "event_time": "read_at",
                "key": ["meter_id", "read_at"],
                "columns": [
                    {"name": "meter_id", "type": "string"},
                    {"name": "read_at", "type": "timestamp"},
                    {"name": "district", "type": "category", "values": ["harbour", "hill", "centre"]},
                    {"name": "load_kw", "type": "float", "min": 0, "max": 100},
                    {"name": "temperature", "type": "float", "min": -10, "max": 40},
                    {"name": "occupancy", "type": "int", "min": 0, "max": 50},
                ],
            },
            "outcomes": {
                "table": "meter_peaks",
                "event_time": "known_at",
                "key": ["meter_id", "measured_at"],
                "columns": [
                    {"name": "meter_id", "type": "string"},
                    {"name": "measured_at", "type": "timestamp"},
                    {"name": "known_at", "type": "timestamp"},
                    {"name": "peak_kw", "type": "float", "min": 0, "max": 400},
                ],
            },
        },
    },
    "label": {"dataset": "outcomes", "column": "peak_kw", "reference_time": "measured_at", "delay_days": 4},
    "features": {
        "dataset": "readings",
        "ttl_days": 10,
        "windows_days": [2, 4],
        "aggregates": {"load_kw": ["mean", "max"], "temperature": ["mean"], "occupancy": ["mean"]},
        "trends": ["load_kw"],
        "latest": ["load_kw", "temperature", "occupancy"],
        "one_hot": ["district"],
    },
    "training": {
        "schedule": "0 0 * * 6",  # Saturdays: 2025-03-15 is the first tick with enough labels
        "window_days": 30,
        "validation_days": 1,
        "holdout_days": 2,
        # The generator draws each day's label anew from that day's readings: an entity's neighbouring
        # days share no label, so every meter may be fitted on and judged on (a time split alone).
        "held_out_entities": 0,
        "min_rows": 300,
        "warmup_days": 4,
        "primary_metric": "neg_rmse",
        "segments": ["district"],
        "candidates": {"ridge": {"kind": "ridge", "params": {"alpha": 1.0}}},
        "promotion": {"margin": 0.05, "floor": -30.0, "min_segment_rows": 50, "min_holdout_rows": 400},
    },
    "inference": {"connection_id": "mlops_warehouse"},
    "monitoring": {
        "current_days": 1,
        "performance_days": 3,
        "sample_rows": 1000,
        "retrain": {
            "drift_share": 0.2,
            "metric_drop": 3.0,
            "min_rows": 100,
            "cooldown_days": 7,
            "labelled_days_after_drift": 5,
        },
    },
}
ENTITIES = 250  # meters, each read once a day: 500 holdout rows in 2 days
DRIFT_DAY = 16  # 2025-03-17: loads rise, the peak depends on them differently
GENERATOR = {
    "generator": "synthetic",
    "start": "2025-03-01",
    "entities": ENTITIES,
    "seed": 5,
    "drift_day": DRIFT_DAY,
    "target": {
        "intercept": 20.0,
        "noise": 4.0,
        "terms": {"load_kw": 1.5, "temperature": 0.5, "occupancy": 0.4, "district=hill": 8.0},
    },
    "drift": {
        "scale": {"load_kw": 1.6},
        "intercept": 40.0,
        "terms": {"load_kw": 0.8, "temperature": 1.5, "occupancy": 1.0, "district=harbour": 12.0},
    },
}


# Subscriptions: int account numbers, a binary "lapsed within 10 days" label stamped at the moment of the
# check and known 10 days later, weekly training; no drift. Its replay runs without --drift-from.
ACCOUNTS: dict[str, Any] = {
    "name": "account_lapse",
    "description": "Whether an account lapses within ten days (onboarding test).",
    "owner": "tests",
    "task": "binary",
    "entity": {"name": "account_no", "type": "int"},
    "schedule": {"ingest": "0 0 * * *", "timezone": "UTC", "start_date": "2025-05-01", "retry_delay_minutes": 0.01},
    "source": {
        "connection_id": "accounts_db",
        "datasets": {
            "usage": {
                "table": "account_usage",
                "event_time": "seen_at",
                "key": ["account_no", "seen_at"],
                "columns": [
                    {"name": "account_no", "type": "int"},
                    {"name": "seen_at", "type": "timestamp"},
                    {"name": "plan", "type": "category", "values": ["basic", "plus"]},
                    {"name": "spend", "type": "float", "min": 0, "max": 200},
                    {"name": "sessions", "type": "int", "min": 0, "max": 30},
                    {"name": "tickets", "type": "int", "min": 0, "max": 5},
                ],
            },
            "lapses": {
                "table": "account_lapses",
                "event_time": "recorded_at",
                "key": ["account_no", "checked_at"],
                "columns": [
                    {"name": "account_no", "type": "int"},
                    {"name": "checked_at", "type": "timestamp"},
                    {"name": "recorded_at", "type": "timestamp"},
                    {"name": "lapsed", "type": "int", "min": 0, "max": 1},
                ],
            },
        },
    },
    "label": {"dataset": "lapses", "column": "lapsed", "reference_time": "checked_at", "delay_days": 10},
    "features": {
        "dataset": "usage",
        "ttl_days": 10,
        "windows_days": [2, 4],
        "aggregates": {"spend": ["mean"], "sessions": ["mean"], "tickets": ["sum"]},
        "latest": ["spend", "sessions", "tickets"],
        "one_hot": ["plan"],
    },
    "training": {
        "schedule": "0 0 * * 4",  # Thursdays: 2025-05-22 is the first tick with enough labels
        "window_days": 30,
        "validation_days": 1,
        "holdout_days": 1,
        "held_out_entities": 0,  # each day's label is drawn anew (as for the meters)
        "min_rows": 200,
        "warmup_days": 4,
        "primary_metric": "roc_auc",
        "segments": ["plan"],
        "candidates": {"logistic": {"kind": "logistic", "params": {"C": 1.0}}},
        "promotion": {"margin": 0.0, "floor": 0.55, "min_segment_rows": 50, "min_holdout_rows": 250},
    },
    "inference": {"connection_id": "mlops_warehouse"},
    "monitoring": {"performance_days": 3, "sample_rows": 1000, "retrain": {"min_rows": 100}},
}
ACCOUNT_GENERATOR = {
    "generator": "synthetic",
    "start": "2025-05-01",
    "entities": 300,
    "seed": 9,
    "target": {
        "intercept": 0.2,
        "noise": 0.35,
        "terms": {"tickets": 0.12, "spend": -0.002, "sessions": -0.01, "plan=basic": 0.15},
    },
}


def write_config(configs: Path, raw: dict[str, Any] = METERS) -> Path:
    path = configs / f"{raw['name']}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def generator_world(raw: dict[str, Any] = METERS, generator: dict[str, Any] = GENERATOR) -> Any:
    """The synthetic world of a generator-only copy of the use case (the user's YAML has no simulation)."""
    from pipelines.config import UseCase
    from pipelines.simulation.synthetic import world_from_usecase

    usecase = UseCase.model_validate(copy.deepcopy(raw) | {"simulation": generator})
    sim = usecase.simulation
    return world_from_usecase(usecase, sim.start, sim.population, sim.seed, sim.drift_day)


def write_source(
    url: str, days: int, times_of_day: bool, raw: dict[str, Any] = METERS, generator: dict[str, Any] = GENERATOR
) -> None:
    """The user's tables with ``days`` days of rows; with ``times_of_day`` labels are stamped within the day."""
    world = generator_world(raw, generator)
    label = raw["label"]
    tables = {name: ds["table"] for name, ds in raw["source"]["datasets"].items()}
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for sim_day in world.simulate(days):
            for name, frame in sim_day.frames.items():
                frame = frame.copy()
                if name == label["dataset"] and times_of_day and len(frame):
                    rng = np.random.default_rng(sim_day.day.toordinal())
                    seconds = rng.integers(0, 86_400, len(frame))  # the moment of the reading
                    frame[label["reference_time"]] = frame[label["reference_time"]] + pd.to_timedelta(seconds, "s")
                frame.to_sql(tables[name], conn, if_exists="append", index=False)
    engine.dispose()


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def day(i: int, start: dt.date = dt.date(2025, 3, 1)) -> dt.datetime:
    return dt.datetime.combine(start, dt.time(0), tzinfo=dt.UTC) + dt.timedelta(days=i)
