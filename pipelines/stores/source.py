"""The operational source database, reached through SQLAlchemy.

Its location is the Airflow connection ``mlops_source`` (a SQLite file under
``$MLOPS_HOME`` unless configured otherwise); callers resolve the connection and
hand this module a SQLAlchemy URL. Timestamps are stored as naive UTC.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Collection, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import sqlalchemy as sa

from pipelines import settings
from pipelines.config import DatasetSpec
from pipelines.errors import BadInput

if TYPE_CHECKING:
    import pandas as pd

_SA_TYPES: dict[str, Any] = {
    "int": sa.BigInteger,
    "float": sa.Float,
    "category": lambda: sa.String(64),
    "string": sa.Text,
    "timestamp": sa.DateTime,
}

# Airflow connection types whose SQLAlchemy driver name differs.
_DRIVERS = {"postgres": "postgresql+psycopg2", "postgresql": "postgresql+psycopg2", "mysql": "mysql+pymysql"}


class ConnectionFields(Protocol):
    """The fields of an Airflow connection (the Task SDK's and the metadata DB's alike)."""

    conn_type: str | None
    host: str | None
    schema: str | None
    login: str | None
    password: str | None
    port: int | None

    @property
    def extra_dejson(self) -> Mapping[str, Any]: ...


def url_from_connection(conn: ConnectionFields) -> str:
    """Build a SQLAlchemy URL from an Airflow connection.

    An extra ``sqlalchemy_url`` wins over everything else; otherwise the
    remaining extras become URL query parameters.
    """
    extra = dict(conn.extra_dejson or {})
    if extra.get("sqlalchemy_url"):
        return str(extra["sqlalchemy_url"])
    conn_type = conn.conn_type or ""
    if conn_type == "sqlite":
        path = conn.schema or conn.host or ""
        return f"sqlite:///{path}" if path else "sqlite://"
    url = sa.URL.create(
        _DRIVERS.get(conn_type, conn_type),
        username=conn.login or None,
        password=conn.password or None,
        host=conn.host or None,
        port=conn.port or None,
        database=conn.schema or None,
        query={k: str(v) for k, v in extra.items()},
    )
    return url.render_as_string(hide_password=False)


def make_engine(url: str, lenient_text: bool = False) -> sa.Engine:
    """An engine for ``url``; SQLite gets a busy timeout so concurrent tasks wait, not fail.

    With ``lenient_text``, SQLite's text that is not valid UTF-8 is read with each undecodable
    byte as U+FFFD (``UNDECODABLE``) instead of failing the whole read (other databases
    refuse such text when it is stored).
    """
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args=dict(settings.SQLITE_CONNECT_ARGS))
        if lenient_text:
            sa.event.listen(engine, "connect", _decode_leniently)
        return engine
    return sa.create_engine(url, pool_pre_ping=True)


UNDECODABLE = "\ufffd"


def _decode_leniently(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.text_factory = lambda raw: raw.decode("utf-8", errors="replace")


def is_undecodable_text(error: Exception) -> bool:
    """Whether a read failed on stored text that is not valid UTF-8 (SQLite's message)."""
    return "Could not decode to UTF-8" in str(error)


def table_for(dataset: DatasetSpec, metadata: sa.MetaData | None = None) -> sa.Table:
    """The SQLAlchemy table of a dataset, with an index on its event time."""
    metadata = metadata or sa.MetaData()
    columns = [
        sa.Column(c.name, _SA_TYPES[c.type](), nullable=c.nullable or c.name not in dataset.key)
        for c in dataset.columns
    ]
    schema, name = schema_and_name(dataset.table)
    table = sa.Table(name, metadata, *columns, schema=schema)
    sa.Index(f"ix_{name}_{dataset.event_time}", table.c[dataset.event_time])
    return table


def schema_and_name(table: str) -> tuple[str | None, str]:
    """``schema.name`` (or ``name``: the connection's default schema) of a configured source table."""
    schema, _, name = table.rpartition(".")
    return schema or None, name


def to_naive_utc(ts: dt.datetime) -> dt.datetime:
    """Timestamps are stored as naive UTC; aware inputs are converted."""
    if ts.tzinfo is not None:
        ts = ts.astimezone(dt.UTC).replace(tzinfo=None)
    return ts


class SourceSchemaError(BadInput):
    """The source table cannot be read by interval: it, its event time or its key is missing."""


def source_table(engine: sa.Engine, dataset: DatasetSpec) -> sa.Table:
    """The dataset's table as the source has it now (reflected).

    Raises:
        SourceSchemaError: the table, its event-time column or a key column is missing.
    """
    try:
        schema, name = schema_and_name(dataset.table)
        table = sa.Table(name, sa.MetaData(), schema=schema, autoload_with=engine)
    except sa.exc.NoSuchTableError:
        raise SourceSchemaError(f"source table '{dataset.table}' does not exist in {engine.url!r}") from None
    missing = [c for c in [dataset.event_time, *dataset.key] if c not in table.c]
    if missing:
        raise SourceSchemaError(
            f"source table '{dataset.table}' has no column(s) {missing} (it has {list(table.c.keys())}): "
            "it cannot be read by interval; fix the source or the use-case config"
        )
    return table


_KINDS = {"int": "number", "float": "number", "timestamp": "time"}  # declared types whose source type is checked


def _kind(sa_type: Any) -> str | None:
    try:
        python = sa_type.python_type
    except NotImplementedError:
        return None
    for kind, types in (("bool", (bool,)), ("number", (int, float, decimal.Decimal)), ("time", (dt.date, dt.time))):
        if issubclass(python, types):
            return kind
    return "text" if issubclass(python, str) else None


def type_mismatches(table: sa.Table, dataset: DatasetSpec) -> dict[str, str]:
    """Declared numeric or timestamp columns whose type in the source is of another kind (a DATETIME
    where a float is declared, say), with what is wrong. Timestamps stored as text are fine."""
    found = {}
    for col in dataset.columns:
        want = _KINDS.get(col.type)
        if want is None or col.name not in table.c:
            continue
        kind = _kind(table.c[col.name].type)
        if kind is not None and kind != want and not (want == "time" and kind == "text"):
            found[col.name] = (
                f"column '{col.name}' is {table.c[col.name].type} in the source table '{dataset.table}', "
                f"not the {col.type} the config declares (its values were read as stored)"
            )
    return found


def read_window(
    engine: sa.Engine,
    dataset: DatasetSpec,
    start: dt.datetime,
    end: dt.datetime,
    chunk_rows: int = 200_000,
    table: sa.Table | None = None,
    as_stored: Collection[str] = (),
) -> Iterator[pd.DataFrame]:
    """Yield the rows with ``start <= event_time < end`` in chunks of at most ``chunk_rows``.

    Every column the table has *now* is read, not only the declared ones, so a
    column added to or dropped from the source reaches validation instead of being
    silently ignored. The query is parameterised and ordered by the dataset key,
    so the same window always yields the same rows in the same order. Columns in
    ``as_stored`` are read without their reflected type's conversion (see
    :func:`type_mismatches`: a float column now declared DATETIME would fail inside the driver).

    Raises:
        SourceSchemaError: the table, its event-time column or a key column is missing.
    """
    import pandas as pd

    table = source_table(engine, dataset) if table is None else table
    event = table.c[dataset.event_time]
    columns = [sa.type_coerce(c, sa.types.NullType()).label(c.name) if c.name in as_stored else c for c in table.c]
    query = (
        sa.select(*columns)
        .where(event >= to_naive_utc(start), event < to_naive_utc(end))
        .order_by(*[table.c[k] for k in dataset.key])
    )
    with engine.connect().execution_options(stream_results=True) as conn:
        yield from pd.read_sql(query, conn, chunksize=chunk_rows)


def masked_url(url: str) -> str:
    """``url`` with its password masked, for what commands print and pages show."""
    import sqlalchemy as sa

    return sa.make_url(url).render_as_string(hide_password=True)
