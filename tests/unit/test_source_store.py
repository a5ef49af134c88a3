"""The source store: SQLAlchemy URLs from Airflow connections."""

from __future__ import annotations


def test_connection_urls_from_airflow_connections():
    from airflow.sdk import Connection

    from pipelines.stores.source import url_from_connection

    def url(uri: str = "", **fields) -> str:
        conn = Connection.from_uri(uri, conn_id="x") if uri else Connection(conn_id="x", **fields)
        return url_from_connection(conn)

    assert url("sqlite:////tmp/x/source.db") == "sqlite:////tmp/x/source.db"
    assert url("postgresql://me:pw@127.0.0.1:5432/src") == "postgresql+psycopg2://me:pw@127.0.0.1:5432/src"
    assert url("postgresql://me@db:5432/src?sslmode=disable") == "postgresql+psycopg2://me@db:5432/src?sslmode=disable"
    assert url(conn_type="generic", extra='{"sqlalchemy_url": "sqlite:///a.db"}') == "sqlite:///a.db"
