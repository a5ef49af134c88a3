"""Feast's SQLite online store, writing each batch of a materialization in one ``executemany``.

Feast's own ``SqliteOnlineStore.online_write_batch`` runs one ``INSERT ... ON CONFLICT``
statement per feature value (29 per customer row for churn) with SQLite's default 2 MB
page cache. Measured (docs/benchmarks.md), most of that time is SQLite's own upserts into
that layout (one row per value, two indexes), not the statements: batching them with a
larger page cache saves about a fifth of the write. This store is that class through
Feast's documented extension point for online stores (``online_store.type`` names a
class; its config class is the same name plus ``Config``): the same tables, rows, keys,
values and upsert, read back by Feast's own ``online_read``; only the write is batched.
What it does not batch (vector columns, the OpenAI-compatible ``value_num`` column), it
hands to Feast's own write.

Held by ``tests/integration/test_features.py``: both stores, fed the same materialization,
hold byte-identical rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Literal

from feast.infra.key_encoding_utils import serialize_entity_key
from feast.infra.online_stores.helpers import compute_table_id, extract_text_and_num
from feast.infra.online_stores.sqlite import SqliteOnlineStore, SqliteOnlineStoreConfig
from feast.utils import to_naive_utc

from pipelines.stores.sqlite_integrity import quoted

TYPE = "pipelines.stores.feast_sqlite.BatchedSqliteOnlineStore"


class BatchedSqliteOnlineStoreConfig(SqliteOnlineStoreConfig):
    """The SQLite online store's settings (``path`` and the rest), under this store's type name."""

    type: Literal["pipelines.stores.feast_sqlite.BatchedSqliteOnlineStore"] = TYPE  # type: ignore[assignment]


class BatchedSqliteOnlineStore(SqliteOnlineStore):
    """``SqliteOnlineStore`` with one ``executemany`` per written batch, in one transaction."""

    def online_write_batch(
        self,
        config: Any,
        table: Any,
        data: list[tuple[Any, dict[str, Any], Any, Any]],
        progress: Callable[[int], Any] | None,
    ) -> None:
        online = config.online_store
        if online.vector_enabled or getattr(online, "enable_openai_compatible_store", False):
            super().online_write_batch(config, table, data, progress)
            return
        name = compute_table_id(config.project, table, config.registry.enable_online_feature_view_versioning)
        upsert = (
            f"INSERT INTO {quoted(name)} (entity_key, feature_name, value, value_text, event_ts, created_ts) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(entity_key, feature_name) DO UPDATE SET "
            "value = excluded.value, value_text = excluded.value_text, "
            "event_ts = excluded.event_ts, created_ts = excluded.created_ts;"
        )
        version = config.entity_key_serialization_version

        def rows() -> Iterator[tuple[Any, ...]]:
            for entity_key, values, event_ts, created_ts in data:
                key = serialize_entity_key(entity_key, entity_key_serialization_version=version)
                event = to_naive_utc(event_ts)
                created = to_naive_utc(created_ts) if created_ts is not None else None
                for feature, value in values.items():
                    text, _ = extract_text_and_num(value, False)
                    yield key, feature, value.SerializeToString(), text, event, created

        conn = self._get_conn(config)
        # SQLite's page cache while writing: its default, 2 MB, thrashes on a day's upserts.
        conn.execute("PRAGMA cache_size = -262144")  # KiB: 256 MB
        with conn:
            conn.executemany(upsert, rows())
        if progress:
            progress(len(data))
