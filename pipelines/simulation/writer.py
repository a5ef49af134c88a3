"""Write a simulated world into the source database, one day per transaction.

Works with either generator (``simulation.generator`` in the use case's YAML):
:mod:`pipelines.simulation.churn` (the demo's telecom world) or
:mod:`pipelines.simulation.synthetic` (any use case, from its column specs).
:func:`world_for` builds the world a config asks for.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import sqlalchemy as sa

from pipelines.config import SIMULATION_DEFAULT_POPULATION, UseCase
from pipelines.stores import source

log = logging.getLogger(__name__)

_META = sa.MetaData()
WORLD_TABLE = sa.Table(
    "simulation_world",
    _META,
    sa.Column("usecase", sa.String(64), primary_key=True),
    sa.Column("fingerprint", sa.String(16), nullable=False),
    sa.Column("parameters", sa.Text, nullable=False),
)
DAYS_TABLE = sa.Table(
    "simulation_days",
    _META,
    sa.Column("usecase", sa.String(64), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("activity_rows", sa.BigInteger, nullable=False),
    sa.Column("label_rows", sa.BigInteger, nullable=False),
)


class SimulationMismatch(ValueError):
    """The source already holds a simulation made with other parameters."""


class SimulatedWorld(Protocol):
    """What the writer needs of a generator's world (a frozen dataclass of its parameters)."""

    start: dt.date
    seed: int
    drift_day: int | None

    @property
    def population(self) -> int: ...

    def fingerprint(self) -> str: ...

    def simulate(self, days: int) -> Iterator[Any]:
        """Days ``0 .. days-1``, each with ``day`` and ``frames`` (dataset name -> rows)."""
        ...


def world_for(
    usecase: UseCase,
    start: dt.date,
    population: int | None = None,
    seed: int | None = None,
    drift_day: int | None = None,
) -> SimulatedWorld:
    """The world of the generator that ``usecase``'s ``simulation`` section names (default: churn).

    Parameters left as None come from the section (or its defaults).
    """
    sim = usecase.simulation
    population = population or (sim.population if sim else SIMULATION_DEFAULT_POPULATION)
    seed = seed if seed is not None else (sim.seed if sim else 7)
    drift_day = drift_day if drift_day is not None else (sim.drift_day if sim else None)
    if sim is not None and sim.generator == "synthetic":
        from pipelines.simulation.synthetic import world_from_usecase

        return world_from_usecase(usecase, start, population, seed, drift_day)
    from pipelines.simulation.churn import World

    return World(
        start=start, customers=population, seed=seed, label_delay_days=usecase.label.delay_days, drift_day=drift_day
    )


@dataclass(frozen=True)
class SimulationSummary:
    days_written: int
    days_skipped: int
    activity_rows: int
    label_rows: int


def write_simulation(url: str, usecase: UseCase, world: SimulatedWorld, days: int) -> SimulationSummary:
    """Write days ``0 .. days-1`` of ``world`` into the source at ``url``.

    Days already written are skipped, so a longer run appends and a repeated run
    changes nothing. Each day (its activity, its labels and its bookkeeping row)
    is one transaction: a crash leaves whole days only.

    Raises:
        SimulationMismatch: the source holds a world with other parameters.
    """
    engine = source.make_engine(url)
    metadata = sa.MetaData()
    tables = {name: source.table_for(ds, metadata) for name, ds in usecase.source.datasets.items()}
    metadata.create_all(engine)
    _META.create_all(engine)
    try:
        done = _claim_world(engine, usecase.name, world)
        written = skipped = activity_rows = label_rows = 0
        for sim_day in world.simulate(days):
            if sim_day.day in done:
                skipped += 1
                continue
            frames = sim_day.frames
            _check_columns(usecase, frames)
            labels = sum(len(f) for name, f in frames.items() if name == usecase.label.dataset)
            activity = sum(len(f) for name, f in frames.items() if name != usecase.label.dataset)
            with engine.begin() as conn:
                for name, frame in frames.items():
                    if len(frame):
                        conn.execute(tables[name].insert(), _records(frame))
                conn.execute(
                    DAYS_TABLE.insert(),
                    {"usecase": usecase.name, "day": sim_day.day, "activity_rows": activity, "label_rows": labels},
                )
            written += 1
            activity_rows += activity
            label_rows += labels
            log.info("simulated %s: %d activity rows, %d labels", sim_day.day, activity, labels)
    finally:
        engine.dispose()
    return SimulationSummary(written, skipped, activity_rows, label_rows)


def _claim_world(engine: sa.Engine, usecase: str, world: SimulatedWorld) -> set[dt.date]:
    """Record the world's parameters, or check them against the recorded ones; return the days present."""
    params = json.dumps(asdict(world), default=str, sort_keys=True)
    with engine.begin() as conn:
        row = conn.execute(sa.select(WORLD_TABLE).where(WORLD_TABLE.c.usecase == usecase)).first()
        if row is None:
            conn.execute(
                WORLD_TABLE.insert(), {"usecase": usecase, "fingerprint": world.fingerprint(), "parameters": params}
            )
        elif row.fingerprint != world.fingerprint():
            raise SimulationMismatch(
                f"the source already holds a '{usecase}' simulation with parameters {row.parameters}; "
                f"this run asked for {params}. Use the same parameters to extend it, "
                "or delete the source database (or $MLOPS_HOME) to start over."
            )
        days = conn.execute(sa.select(DAYS_TABLE.c.day).where(DAYS_TABLE.c.usecase == usecase)).scalars()
        return {d if isinstance(d, dt.date) else dt.date.fromisoformat(str(d)) for d in days}


def _check_columns(usecase: UseCase, frames: dict) -> None:
    for name, frame in frames.items():
        if name not in usecase.source.datasets:
            raise SimulationMismatch(f"use case '{usecase.name}' has no dataset '{name}' for the simulator to fill")
        expected = usecase.source.datasets[name].column_names
        if sorted(frame.columns) != sorted(expected):
            raise SimulationMismatch(
                f"the simulator makes columns {sorted(frame.columns)} for '{name}', "
                f"but configs/{usecase.name}.yaml declares {sorted(expected)}"
            )


def _records(frame) -> list[dict]:
    """Rows as dicts of plain Python values (naive UTC datetimes), as DBAPI drivers expect."""
    out = frame.copy()
    for col in out.columns:
        if str(out[col].dtype).startswith("datetime64"):
            out[col] = out[col].dt.tz_localize(None) if out[col].dt.tz is not None else out[col]
            out[col] = out[col].astype(object).where(out[col].notna(), None)
    return out.to_dict("records")
