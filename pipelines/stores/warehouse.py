"""The warehouse's prediction tables: one row per use case, entity and as-of time.

Writes replace one interval's rows in a single transaction (delete, then insert), so
a rerun leaves the same rows and no duplicates, and a crash leaves either the old
rows or the new ones. SQLite by default (``$MLOPS_HOME/warehouse.db``), PostgreSQL
in the production profile: the connection ``mlops_warehouse`` decides.

Rows go in through each database's own bulk path, column by column rather than row
by row: ``COPY`` on PostgreSQL, one ``executemany`` of plain tuples on SQLite (values
bound as SQLAlchemy's own column types would bind them, so its reads see the same
rows), SQLAlchemy's executemany elsewhere (docs/benchmarks.md#inference).
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
from collections.abc import Callable, Iterable, Iterator
from typing import Any

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
                    _bulk_insert(conn, tables[name], chunk)

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


def _bulk_insert(conn: sa.Connection, target: sa.Table, chunk: pd.DataFrame) -> None:
    """Insert ``chunk``'s rows into ``target`` inside the open transaction of ``conn``."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        _copy(conn, target, chunk)
    elif dialect == "sqlite":
        # One executemany of tuples straight to the driver: SQLAlchemy's per-row parameter handling
        # cost more than the database's own work (3 of every 4 seconds of a million rows).
        statement = str(target.insert().compile(dialect=conn.dialect))
        conn.exec_driver_sql(statement, list(zip(*_columns(chunk, target, conn.dialect), strict=True)))
    else:
        values = _columns(chunk, target, None)
        conn.execute(target.insert(), [dict(zip(COLUMNS, row, strict=True)) for row in zip(*values, strict=True)])


def _columns(chunk: pd.DataFrame, target: sa.Table, dialect: sa.Dialect | None) -> list[list[Any]]:
    """Each column of :data:`COLUMNS` as a list of Python values (None for null); with ``dialect``,
    the date-times as that dialect's column type binds them (SQLite stores them as text)."""
    out = []
    for name in COLUMNS:
        series = chunk[name]
        if name in ("as_of", "interval_start"):
            bind = target.c[name].type.dialect_impl(dialect).bind_processor(dialect) if dialect else None
            out.append(_datetimes(series, bind or (lambda value: value)))
        elif name in ("decision", "stage", "reasons"):  # nullable: NaN, pd.NA or None are NULL
            out.append(series.astype(object).where(series.notna(), None).tolist())
        else:
            out.append(series.tolist())
    return out


def _datetimes(series: pd.Series, bind: Callable[[dt.datetime], Any]) -> list[Any]:
    """Naive UTC date-times, bound; a column of one value (an interval's as-of time) is bound once."""
    values = pd.to_datetime(series, utc=True).dt.tz_localize(None)
    if len(values) and values.iloc[0] == values.iloc[-1] and (values == values.iloc[0]).all():
        return [bind(values.iloc[0].to_pydatetime())] * len(values)
    return [bind(value) for value in values.dt.to_pydatetime().tolist()]


def _copy(conn: sa.Connection, target: sa.Table, chunk: pd.DataFrame) -> None:
    """PostgreSQL's ``COPY ... FROM STDIN`` of the chunk as CSV; nulls are ``\\N``, so an empty string stays one."""
    from psycopg2 import sql

    frame = chunk[COLUMNS].copy()
    for name in ("as_of", "interval_start"):
        frame[name] = pd.to_datetime(frame[name], utc=True).dt.tz_localize(None)
    frame["decision"] = frame["decision"].astype("Int64")
    buffer = io.StringIO()
    frame.to_csv(
        buffer, index=False, header=False, na_rep=r"\N", quoting=csv.QUOTE_MINIMAL, date_format="%Y-%m-%d %H:%M:%S.%f"
    )
    buffer.seek(0)
    statement = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv, NULL '\\N')").format(
        sql.Identifier(target.name), sql.SQL(", ").join(map(sql.Identifier, COLUMNS))
    )
    with conn.connection.cursor() as cursor:
        cursor.copy_expert(statement, buffer)


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
