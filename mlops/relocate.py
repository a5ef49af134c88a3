"""``mlops relocate``: make a copied or moved state folder name itself again.

A state folder holds absolute paths: MLflow's artefact locations, run URIs and
model sources; Feast's file sources in its registry; Airflow's connections to the
embedded databases and the partition paths tasks passed each other; report
summaries. After ``cp -a var /backup/var`` they still name ``var``, so a run on
the copy would read and write the original (:mod:`pipelines.stores.home` refuses
it). This rewrites every stored path from the old folder to the new one, then
checks that nothing outside the logs names the old folder.

Where each kind lives:

- every SQLite file in the state (Airflow's metadata DB, MLflow's, the warehouse,
  the source, Feast's online store): text values in every column;
- Airflow's connections (encrypted in the metadata DB with the state's fernet key);
- Feast's registry (a protobuf file): every string field;
- text files (JSON, YAML, HTML, Markdown, ...): reports, summaries, model artefacts' metadata.

Task logs are a record of what happened and keep the paths they were written with.
The server profile keeps its databases outside the state folder; this covers the
embedded default, whose stores all live in it.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pipelines import settings
from pipelines.stores import feast_import
from pipelines.stores import home as state_home
from pipelines.stores.sqlite_integrity import quoted

SQLITE_MAGIC = b"SQLite format 3\x00"
TEXT_SUFFIXES = {".json", ".jsonl", ".yaml", ".yml", ".html", ".htm", ".md", ".txt", ".csv", ".cfg", ".ini"}
TEXT_NAMES = {"MLmodel", "MLproject", "meta.yaml"}
MAX_TEXT_BYTES = 64 * 2**20


@dataclass
class Relocation:
    """What ``relocate`` rewrote, by place, and what still names the old folder."""

    old: Path
    new: Path
    rewritten: dict[str, int] = field(default_factory=dict)
    remaining: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.remaining


def _state_files(home: Path) -> Iterator[Path]:
    """Every file of the state but task logs and locks."""
    for root, dirs, files in os.walk(home):
        dirs[:] = [d for d in dirs if d not in {"logs", "locks"}]
        for name in files:
            yield Path(root) / name


def _is_sqlite(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(16) == SQLITE_MAGIC
    except OSError:
        return False


def _rewrite_sqlite(path: Path, old: str, new: str) -> int:
    """Replace ``old`` by ``new`` in every text value of every table; the number of values changed."""
    changed = 0
    db = sqlite3.connect(path, timeout=60)
    try:
        tables = [
            row[0]
            for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        ]
        with db:
            for table in tables:
                columns = [row[1] for row in db.execute(f"PRAGMA table_info({quoted(table)})")]
                for column in columns:
                    cur = db.execute(
                        f"UPDATE {quoted(table)} SET {quoted(column)} = replace({quoted(column)}, ?, ?) "
                        f"WHERE typeof({quoted(column)}) = 'text' AND instr({quoted(column)}, ?) > 0",
                        (old, new, old),
                    )
                    changed += cur.rowcount
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()
    return changed


def _replace_strings(message: object, old: str, new: str) -> int:
    """Replace ``old`` by ``new`` in every string field of a protobuf message, recursively."""
    from google.protobuf.descriptor import FieldDescriptor

    changed = 0
    for desc, value in message.ListFields():  # type: ignore[attr-defined]
        repeated = desc.is_repeated
        if desc.type == FieldDescriptor.TYPE_MESSAGE:
            if desc.message_type.GetOptions().map_entry:
                for key in list(value):
                    item = value[key]
                    if isinstance(item, str):
                        if old in item:
                            value[key] = item.replace(old, new)
                            changed += 1
                    else:
                        changed += _replace_strings(item, old, new)
            else:
                for item in value if repeated else [value]:
                    changed += _replace_strings(item, old, new)
        elif desc.type == FieldDescriptor.TYPE_BYTES and desc.name == "feature_view_proto":
            changed += _replace_in_snapshot(message, old, new)
        elif desc.type == FieldDescriptor.TYPE_STRING:
            if repeated:
                for i, item in enumerate(value):
                    if old in item:
                        value[i] = item.replace(old, new)
                        changed += 1
            elif old in value:
                setattr(message, desc.name, value.replace(old, new))
                changed += 1
    return changed


def _replace_in_snapshot(record: object, old: str, new: str) -> int:
    """A feature view's version record holds a serialized snapshot of the view (its sources' paths too)."""
    feast_import.load()
    from feast.protos.feast.core.FeatureView_pb2 import FeatureView
    from feast.protos.feast.core.OnDemandFeatureView_pb2 import OnDemandFeatureView
    from feast.protos.feast.core.StreamFeatureView_pb2 import StreamFeatureView

    kinds = {"feature_view": FeatureView, "stream_feature_view": StreamFeatureView}
    snapshot = kinds.get(record.feature_view_type, OnDemandFeatureView)()  # type: ignore[attr-defined]
    snapshot.ParseFromString(record.feature_view_proto)  # type: ignore[attr-defined]
    changed = _replace_strings(snapshot, old, new)
    if changed:
        record.feature_view_proto = snapshot.SerializeToString()  # type: ignore[attr-defined]
    return changed


def _rewrite_feast_registry(path: Path, old: str, new: str) -> int:
    feast_import.load()
    from feast.protos.feast.core.Registry_pb2 import Registry as RegistryProto

    registry = RegistryProto()
    registry.ParseFromString(path.read_bytes())
    changed = _replace_strings(registry, old, new)
    if changed:
        tmp = path.with_suffix(".relocate.tmp")
        tmp.write_bytes(registry.SerializeToString())
        tmp.replace(path)
    return changed


def _rewrite_text(path: Path, old: str, new: str) -> int:
    if path.suffix not in TEXT_SUFFIXES and path.name not in TEXT_NAMES:
        return 0
    if path.stat().st_size > MAX_TEXT_BYTES:
        return 0
    data = path.read_bytes()
    count = data.count(old.encode())
    if count:
        tmp = path.with_name(path.name + ".relocate.tmp")
        tmp.write_bytes(data.replace(old.encode(), new.encode()))
        os.chmod(tmp, path.stat().st_mode & 0o7777)
        tmp.replace(path)
    return count


def _rewrite_connections(old: str, new: str) -> int:
    """Airflow's connections in the metadata DB (their extras are encrypted: read through Airflow)."""
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    changed = 0
    with create_session() as session:
        for conn in session.query(Connection).all():
            for attr in ("host", "schema"):
                value = getattr(conn, attr)
                if value and old in value:
                    setattr(conn, attr, value.replace(old, new))
                    changed += 1
            extra = conn.extra
            if extra and old in extra:
                conn.extra = extra.replace(old, new)
                changed += 1
    return changed


def _connections_naming(old: str) -> list[str]:
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    with create_session() as session:
        return [
            f"connection {c.conn_id}"
            for c in session.query(Connection).all()
            if any(old in (v or "") for v in (c.host, c.schema, c.extra))
        ]


def _prefix(path: Path) -> str:
    # With the separator: /data/var must not match inside /data/var2.
    return str(path).rstrip("/") + "/"


def remaining_mentions(home: Path, old: Path, connections: bool = True) -> list[str]:
    """Files of the state (logs aside) and (with ``connections``) Airflow connections that still name ``old``."""
    needle = _prefix(old).encode()
    found = []
    for path in _state_files(home):
        if path.name == state_home.MARKER or path.suffix in {".lock", ".tmp"}:
            continue
        try:
            with open(path, "rb") as fh:
                if needle in fh.read():
                    found.append(str(path.relative_to(home)))
        except OSError:
            continue
    return found + (_connections_naming(_prefix(old)) if connections else [])


def relocate(home: Path | None = None, old: Path | None = None, connections: bool = True) -> Relocation:
    """Rewrite the paths the state ``home`` stores from ``old`` (default: the recorded folder) to ``home``.

    ``connections=False`` leaves Airflow's connections alone (a process whose Airflow is set up
    for another state, or a state without Airflow).

    Raises:
        ValueError: no folder to relocate from (a state without a marker needs ``old``).
    """
    home = (home or settings.mlops_home()).resolve()
    old = old or state_home.recorded_home(home)
    if old is None:
        raise ValueError(f"{home} records no folder it was created in: give the old folder (--from PATH)")
    result = Relocation(old=old, new=home)
    if old == home:
        result.remaining = []
        return result
    before, after = _prefix(old), _prefix(home)
    for path in _state_files(home):
        if path.suffix in {".lock", ".tmp"} or path.name.endswith(("-wal", "-shm", "-journal")):
            continue
        if _is_sqlite(path):
            place = str(path.relative_to(home))
            result.rewritten[place] = _rewrite_sqlite(path, before, after)
        elif path == home / "feast" / "registry.db":
            result.rewritten["feast/registry.db"] = _rewrite_feast_registry(path, before, after)
        else:
            n = _rewrite_text(path, before, after)
            if n:
                result.rewritten[str(path.relative_to(home))] = n
    if connections:
        result.rewritten["airflow connections"] = _rewrite_connections(before, after)
    result.remaining = remaining_mentions(home, old, connections)
    if result.ok:
        state_home.record_home(home)
    return result


def add_parser(sub: object) -> None:
    """``mlops relocate [--from PATH] [--check]``."""
    p = sub.add_parser(  # type: ignore[attr-defined]
        "relocate", help="after copying or moving a state folder: rewrite the paths its stores hold"
    )
    p.add_argument("--from", dest="old", type=Path, help="the folder it was copied from (default: the one recorded)")
    p.add_argument("--check", action="store_true", help="only report what still names another folder")
    p.set_defaults(func=cmd_relocate, moved_ok=True)


def cmd_relocate(args: object) -> int:
    home = settings.mlops_home()
    old = getattr(args, "old", None) or state_home.recorded_home(home)
    if old is None or Path(old).resolve() == home:
        print(f"{home}: its stores name this folder; nothing to relocate")
        return 0
    if getattr(args, "check", False):
        found = remaining_mentions(home, Path(old))
        for place in found:
            print(f"names {old}: {place}")
        print(f"{home}: {len(found)} place(s) still name {old}" if found else f"{home}: nothing names {old}")
        return 1 if found else 0
    result = relocate(home, Path(old))
    for place, count in sorted(result.rewritten.items()):
        if count:
            print(f"rewritten: {place} ({count})")
    if not result.ok:
        for place in result.remaining:
            print(f"still names {old}: {place}", file=sys.stderr)
        return 1
    print(f"{home}: every stored path now names this folder (was {old})")
    return 0
