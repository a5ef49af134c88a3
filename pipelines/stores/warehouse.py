"""The warehouse's prediction tables: one row per use case, entity and as-of time.

Writes replace one interval's rows in a single transaction (delete, then insert), so
a rerun leaves the same rows and no duplicates, and a crash leaves either the old
rows or the new ones. SQLite by default (``$MLOPS_HOME/warehouse.db``), PostgreSQL
in the production profile: the connection ``mlops_warehouse`` decides.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterable, Iterator

import pandas as pd
import sqlalchemy as sa

from pipelines.stores.source import make_engine, to_naive_utc

PREDICTIONS, SHADOW = "predictions", "shadow_predictions"

COLUMNS = [
    "usecase", "entity_id", "as_of", "interval_start", "score", "decision", "model_name", "model_version",
    "stage", "training_run_id", "feature_service", "airflow_run_id", "reasons",
]  # fmt: skip
# Columns added after the first release: added to an existing table by the first write that needs them.
ADDED = {
    "stage": "ALTER TABLE %(fullname)s ADD COLUMN stage VARCHAR(16)",
    "reasons": "ALTER TABLE %(fullname)s ADD COLUMN reasons TEXT",
}


def table(name: str, metadata: sa.MetaData) -> sa.Table:
    """``predictions`` (what downstream uses) or ``shadow_predictions`` (the challenger's, never used)."""
    return sa.Table(
        name,
        metadata,
        sa.Column("usecase", sa.String(64), primary_key=True),
        sa.Column("entity_id", sa.String(128), primary_key=True),
        sa.Column("as_of", sa.DateTime, primary_key=True),  # the interval's end, naive UTC
        sa.Column("interval_start", sa.DateTime, nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("decision", sa.Integer, nullable=True),  # score >= threshold (classification)
        sa.Column("model_name", sa.String(128), nullable=False),
        sa.Column("model_version", sa.String(32), nullable=False),
        # champion or canary (serving), challenger (shadow only); null in rows written before stages existed
        sa.Column("stage", sa.String(16), nullable=True),
        sa.Column("training_run_id", sa.String(64), nullable=False),
        sa.Column("feature_service", sa.String(128), nullable=False),
        sa.Column("airflow_run_id", sa.String(256), nullable=False),
        # the top reasons of the score as JSON (inference.reasons); null when off, or in rows written before
        sa.Column("reasons", sa.Text, nullable=True),
    )


@contextlib.contextmanager
def interval_writer(url: str, usecase: str, as_of: dt.datetime, names: list[str]) -> Iterator[Callable]:
    """One transaction that replaces the rows of ``usecase`` as of ``as_of`` in the tables ``names``.

    Yields ``write(name, chunk)``; the old rows are deleted first and everything
    commits at the end of the block, or nothing does.
    """
    engine = make_engine(url)
    metadata = sa.MetaData()
    tables = {name: table(name, metadata) for name in names}
    try:
        metadata.create_all(engine, checkfirst=True)
        _add_columns(engine, tables.values())
        as_of = to_naive_utc(as_of)
        with engine.begin() as conn:
            for target in tables.values():
                conn.execute(target.delete().where(target.c.usecase == usecase, target.c.as_of == as_of))

            def write(name: str, chunk: pd.DataFrame) -> None:
                if len(chunk):
                    conn.execute(tables[name].insert(), _records(chunk))

            yield write
    finally:
        engine.dispose()


def replace_interval(url: str, name: str, usecase: str, as_of: dt.datetime, rows: Iterable[pd.DataFrame]) -> int:
    """Replace the rows of ``usecase`` as of ``as_of`` in table ``name`` with ``rows`` (chunks), atomically."""
    written = 0
    with interval_writer(url, usecase, as_of, [name]) as write:
        for chunk in rows:
            write(name, chunk)
            written += len(chunk)
    return written


def _add_columns(engine: sa.Engine, tables: Iterable[sa.Table]) -> None:
    """Add the columns of :data:`ADDED` a table made by an earlier release lacks (nullable: old rows keep null)."""
    inspector = sa.inspect(engine)
    for target in tables:
        have = {c["name"] for c in inspector.get_columns(target.name, schema=target.schema)}
        for name, statement in ADDED.items():
            if name in have:
                continue
            try:
                with engine.begin() as conn:
                    conn.execute(sa.DDL(statement).against(target))
            except sa.exc.DBAPIError:  # another writer added it first
                columns = sa.inspect(engine).get_columns(target.name, schema=target.schema)
                if name not in {c["name"] for c in columns}:
                    raise


def _records(chunk: pd.DataFrame) -> list[dict]:
    frame = chunk[COLUMNS].copy()
    for column in ("stage", "reasons"):  # NaN, pd.NA or None: NULL
        frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    for column in ("as_of", "interval_start"):
        frame[column] = pd.to_datetime(frame[column], utc=True).dt.tz_localize(None).dt.to_pydatetime()
    frame["decision"] = frame["decision"].astype(object).where(frame["decision"].notna(), None)
    return frame.to_dict("records")


def read_interval(url: str, name: str, usecase: str, as_of: dt.datetime) -> pd.DataFrame:
    engine = make_engine(url)
    try:
        metadata = sa.MetaData()
        target = table(name, metadata)
        if not sa.inspect(engine).has_table(name):
            return pd.DataFrame(columns=COLUMNS)
        query = sa.select(target).where(target.c.usecase == usecase, target.c.as_of == to_naive_utc(as_of))
        with engine.connect() as conn:
            return pd.read_sql(query.order_by(target.c.entity_id), conn)
    finally:
        engine.dispose()


def latest(url: str, name: str, usecase: str) -> dict | None:
    """The newest as-of time of a use case's rows, its row count and model versions (for ``mlops status``)."""
    engine = make_engine(url)
    try:
        if not sa.inspect(engine).has_table(name):
            return None
        target = table(name, sa.MetaData())
        with engine.connect() as conn:
            newest = conn.execute(sa.select(sa.func.max(target.c.as_of)).where(target.c.usecase == usecase)).scalar()
            if newest is None:
                return None
            rows = conn.execute(
                sa.select(target.c.model_version, sa.func.count())
                .where(target.c.usecase == usecase, target.c.as_of == newest)
                .group_by(target.c.model_version)
            ).all()
        return {"as_of": newest.isoformat(), "rows": sum(n for _, n in rows), "versions": sorted(v for v, _ in rows)}
    finally:
        engine.dispose()
