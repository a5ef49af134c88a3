"""A source simulated from a use case's YAML alone: daily activity per entity and delayed numeric labels.

``simulation.generator: synthetic`` makes any use case's source without code of
its own. Every entity is active every day, with one row in the activity dataset:

* a numeric column is drawn between the column's ``min`` and ``max`` around a
  level that belongs to the entity (so rolling means and latest values say
  something about it), with daily noise; int columns are rounded;
* a category column keeps the entity's usual value on most days and takes a
  random allowed value on the others.

The label about reference day D arrives ``label.delay_days`` later: it is
``target.intercept + sum(weight * term) + target.noise * N(0, 1)`` on the
entity's row of day D, a term being a numeric column or ``<column>=<value>``
(1 when the row has that value). A model on the day's features can learn it.

From ``drift_day`` on, ``drift.scale`` multiplies numeric columns (covariate
shift, clipped to the column's range) and ``drift.intercept`` / ``drift.terms``
replace the target's (concept change), for labels about days from ``drift_day``.

Like :mod:`pipelines.simulation.churn`, the world is a pure function of its
parameters (:class:`World`): day ``d`` always holds the same rows, drawn from a
generator seeded with ``(seed, d)``, so a simulation can be extended day by day.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from pipelines.config import UseCase

SECONDS_PER_DAY = 86_400
DAILY_NOISE = 0.12  # standard deviation of a numeric column's daily wobble, as a share of its range
USUAL_CATEGORY = 0.8  # share of days on which an entity's category column has its usual value
_LABEL_STREAM = 1  # second seed component of the labels' random numbers (activity uses none)


@dataclass(frozen=True)
class World:
    """The parameters that fully determine a synthetic source.

    ``design`` is what the use case's YAML says about the rows (datasets, columns,
    target, drift), so a changed column range or weight is another world.
    """

    start: dt.date
    entities: int
    seed: int
    label_delay_days: int
    drift_day: int | None = None
    design: dict[str, Any] = field(default_factory=dict)

    def fingerprint(self) -> str:
        """A short hash that names this world in the source's bookkeeping table."""
        payload = json.dumps(asdict(self), default=str, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    @property
    def population(self) -> int:
        return self.entities

    def simulate(self, days: int) -> Iterator[SimulatedDay]:
        """Days ``0 .. days-1`` of this world."""
        return simulate(self, days)


@dataclass
class SimulatedDay:
    day: dt.date
    frames: dict[str, pd.DataFrame]  # dataset name -> rows written on that day


def activity_dataset(usecase: UseCase) -> str:
    """The dataset the generator fills with daily activity: the one that is not the label dataset."""
    others = [name for name in usecase.source.datasets if name != usecase.label.dataset]
    if len(others) != 1:
        raise ValueError(f"use case '{usecase.name}': the synthetic generator fills one activity dataset, got {others}")
    return others[0]


def world_from_usecase(
    usecase: UseCase, start: dt.date, entities: int, seed: int, drift_day: int | None = None
) -> World:
    """The world of ``usecase``'s ``simulation`` section (validated by the config) with these parameters.

    Raises:
        ValueError: the use case has no synthetic ``simulation`` section.
    """
    sim = usecase.simulation
    if sim is None or sim.generator != "synthetic" or sim.target is None:
        raise ValueError(f"use case '{usecase.name}' has no simulation section with generator 'synthetic' and a target")
    name = activity_dataset(usecase)
    activity = usecase.source.datasets[name]
    labels = usecase.source.datasets[usecase.label.dataset]
    label_column = labels.column(usecase.label.column)
    skip = {usecase.entity.name, activity.event_time}
    design = {
        "entity": usecase.entity.model_dump(),
        "activity": {
            "dataset": name,
            "event_time": activity.event_time,
            "columns": [
                c.model_dump(include={"name", "type", "min", "max", "values"})
                for c in activity.columns
                if c.name not in skip
            ],
        },
        "labels": {
            "dataset": usecase.label.dataset,
            "event_time": labels.event_time,
            "reference_time": usecase.label.reference_time,
            "column": label_column.model_dump(include={"name", "type", "min", "max"}),
        },
        "target": sim.target.model_dump(),
        "drift": sim.drift.model_dump() if sim.drift else None,
    }
    return World(start, entities, seed, usecase.label.delay_days, drift_day, design)


def simulate(world: World, days: int) -> Iterator[SimulatedDay]:
    """Yield days ``0 .. days-1`` of ``world``, each with its activity and the labels arriving that day."""
    traits = entity_traits(world)
    names = world.design["activity"]["dataset"], world.design["labels"]["dataset"]
    for d in range(days):
        activity = day_activity(world, traits, d)
        ref = d - world.label_delay_days
        about = activity if ref == d else day_activity(world, traits, ref) if ref >= 0 else None
        yield SimulatedDay(
            day=world.start + dt.timedelta(days=d),
            frames={names[0]: activity, names[1]: _labels(world, about, ref, d)},
        )


def entity_traits(world: World) -> dict[str, np.ndarray]:
    """What each entity keeps from day to day: its level of every numeric column, its usual categories."""
    rng = np.random.default_rng(world.seed)
    traits = {}
    for col in world.design["activity"]["columns"]:
        if col["type"] == "category":
            traits[col["name"]] = rng.integers(0, len(col["values"]), size=world.entities)
        else:
            traits[col["name"]] = rng.beta(2.0, 2.0, size=world.entities)
    return traits


def _entity_ids(world: World) -> np.ndarray:
    numbers = np.arange(1, world.entities + 1, dtype=np.int64)
    if world.design["entity"]["type"] == "int":
        return numbers
    return np.array([f"{world.design['entity']['name']}_{n:06d}" for n in numbers], dtype=object)


def _drifted(world: World, d: int) -> bool:
    return world.drift_day is not None and d >= world.drift_day and world.design["drift"] is not None


def day_activity(world: World, traits: dict[str, np.ndarray], d: int) -> pd.DataFrame:
    """The activity rows of day ``d``: one per entity; the same for the same world and day."""
    rng = np.random.default_rng([world.seed, d])
    n = world.entities
    scale = world.design["drift"]["scale"] if _drifted(world, d) else {}
    day_start = pd.Timestamp(world.start) + pd.Timedelta(days=d)
    out: dict[str, Any] = {
        world.design["entity"]["name"]: _entity_ids(world),
        world.design["activity"]["event_time"]: day_start + pd.to_timedelta(rng.integers(0, SECONDS_PER_DAY, n), "s"),
    }
    for col in world.design["activity"]["columns"]:
        level = traits[col["name"]]
        if col["type"] == "category":
            values = np.asarray(col["values"], dtype=object)
            usual = rng.random(n) < USUAL_CATEGORY
            out[col["name"]] = values[np.where(usual, level, rng.integers(0, len(values), size=n))]
            continue
        low, high = float(col["min"]), float(col["max"])
        share = np.clip(level + rng.normal(0.0, DAILY_NOISE, n), 0.0, 1.0)
        values = np.clip((low + (high - low) * share) * scale.get(col["name"], 1.0), low, high)
        out[col["name"]] = np.round(values).astype(np.int64) if col["type"] == "int" else np.round(values, 3)
    return pd.DataFrame(out)


def target_values(world: World, activity: pd.DataFrame, drifted: bool, noise: np.ndarray) -> np.ndarray:
    """The target of each activity row: intercept, weighted terms and ``noise`` (standard normal draws)."""
    target, drift = world.design["target"], world.design["drift"] or {}
    intercept = drift.get("intercept") if drifted and drift.get("intercept") is not None else target["intercept"]
    terms = drift.get("terms") if drifted and drift.get("terms") is not None else target["terms"]
    values = np.full(len(activity), float(intercept))
    for term, weight in terms.items():
        column, _, value = term.partition("=")
        x = (activity[column] == value).to_numpy(float) if value else activity[column].to_numpy(float)
        values += float(weight) * x
    return values + float(target["noise"]) * noise


def _labels(world: World, about: pd.DataFrame | None, ref: int, d: int) -> pd.DataFrame:
    """Labels arriving on day ``d``: the target of every entity's row of reference day ``ref``."""
    spec = world.design["labels"]
    entity = world.design["entity"]["name"]
    column = spec["column"]
    rng = np.random.default_rng([world.seed, d, _LABEL_STREAM])
    n = 0 if about is None else len(about)
    values = target_values(world, about, _drifted(world, ref), rng.normal(size=n)) if about is not None else np.zeros(0)
    if column.get("min") is not None or column.get("max") is not None:
        values = np.clip(values, column.get("min"), column.get("max"))
    values = np.round(values).astype(np.int64) if column["type"] == "int" else np.round(values, 2)
    day_start = pd.Timestamp(world.start) + pd.Timedelta(days=d)
    return pd.DataFrame(
        {
            entity: about[entity].to_numpy() if about is not None else _entity_ids(world)[:0],
            spec["reference_time"]: np.full(n, np.datetime64(world.start + dt.timedelta(days=ref), "ns")),
            spec["event_time"]: day_start + pd.to_timedelta(rng.integers(0, SECONDS_PER_DAY, n), unit="s"),
            column["name"]: values,
        }
    )
