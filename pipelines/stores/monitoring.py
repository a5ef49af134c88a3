"""The monitor's two small tables in the warehouse: nightly drift history and retrain decisions.

One row per use case and night (the monitored interval's end, naive UTC), written
by replacing that night's row in one transaction, so a rerun of a night leaves one
row. The headline numbers are columns (for SQL and `mlops status`); everything
else the night recorded is kept as JSON in ``payload``.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import sqlalchemy as sa

from pipelines.stores.source import make_engine, to_naive_utc

HISTORY, DECISIONS = "drift_history", "retrain_decisions"


def _tables(metadata: sa.MetaData) -> dict[str, sa.Table]:
    def key() -> list[sa.Column]:
        return [
            sa.Column("usecase", sa.String(64), primary_key=True),
            sa.Column("night", sa.DateTime, primary_key=True),  # the monitored interval's end
        ]

    return {
        HISTORY: sa.Table(
            HISTORY,
            metadata,
            *key(),
            sa.Column("champion_version", sa.String(32), nullable=False),
            sa.Column("current_rows", sa.BigInteger, nullable=False),
            sa.Column("drift_share", sa.Float, nullable=True),
            sa.Column("prediction_drift", sa.Float, nullable=True),
            sa.Column("live_metric", sa.Float, nullable=True),
            sa.Column("payload", sa.Text, nullable=False),
        ),
        DECISIONS: sa.Table(
            DECISIONS,
            metadata,
            *key(),
            sa.Column("action", sa.String(32), nullable=False),
            sa.Column("dedupe_key", sa.String(256), nullable=True),
            sa.Column("payload", sa.Text, nullable=False),
        ),
    }


def write(url: str, name: str, usecase: str, night: dt.datetime, record: dict[str, Any], **columns: Any) -> None:
    """Replace ``usecase``'s row of ``night`` in table ``name`` with ``record`` (and its headline ``columns``)."""
    engine = make_engine(url)
    try:
        metadata = sa.MetaData()
        table = _tables(metadata)[name]
        metadata.create_all(engine, tables=[table], checkfirst=True)
        night = to_naive_utc(night)
        with engine.begin() as conn:
            conn.execute(table.delete().where(table.c.usecase == usecase, table.c.night == night))
            conn.execute(
                table.insert().values(usecase=usecase, night=night, payload=json.dumps(record, default=str), **columns)
            )
    finally:
        engine.dispose()


def read(
    url: str, name: str, usecase: str, before: dt.datetime | None = None, last: int | None = None
) -> list[dict[str, Any]]:
    """The records of ``usecase`` in table ``name``, oldest first: those of nights before
    ``before`` when given, only the ``last`` ones when given."""
    engine = make_engine(url)
    try:
        if not sa.inspect(engine).has_table(name):
            return []
        table = _tables(sa.MetaData())[name]
        query = sa.select(table.c.night, table.c.payload).where(table.c.usecase == usecase)
        if before is not None:
            query = query.where(table.c.night < to_naive_utc(before))
        query = query.order_by(table.c.night.desc())
        if last is not None:
            query = query.limit(last)
        with engine.connect() as conn:
            rows = conn.execute(query).all()
        return [json.loads(payload) for _, payload in reversed(rows)]
    finally:
        engine.dispose()


def read_night(url: str, name: str, usecase: str, night: dt.datetime) -> dict[str, Any] | None:
    """The record of one night, or None."""
    engine = make_engine(url)
    try:
        if not sa.inspect(engine).has_table(name):
            return None
        table = _tables(sa.MetaData())[name]
        query = sa.select(table.c.payload).where(table.c.usecase == usecase, table.c.night == to_naive_utc(night))
        with engine.connect() as conn:
            payload = conn.execute(query).scalar()
        return json.loads(payload) if payload else None
    finally:
        engine.dispose()
