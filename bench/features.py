"""Benchmark: Feast materialization, online reads and historical retrieval, against the raw store.

    .venv/bin/python bench/features.py [--entities 100000] [--days 10] [--online sqlite|redis]

Writes ``entities x days`` feature rows (the churn feature view, 29 features) as
daily feature partitions, then in one run:

* ours: ``materialize_intervals`` into Feast's online store, one interval at a time: SQLite
  (the embedded default), or with ``--online redis`` the server profile's configuration
  (``feature_repo/feature_store.server.yaml``: Redis at 127.0.0.1:6379 db 13, flushed, and a
  SQL registry in a PostgreSQL database ``mlops_bench_feast``, recreated);
* raw: the same rows written straight to that store: ``sqlite3`` ``executemany`` into a plain
  table, or a redis-py pipeline of one ``HSET`` per row (one hash per entity, every feature);
* online reads through the feature service for 1 and for 1,000 entities (p50/p99 over 200 calls);
* the historical retrieval (point-in-time join) of a training set with one row per feature row,
  in a fresh process so its peak memory is its own.

State lives in ``$MLOPS_HOME/bench_features`` and is rebuilt on each run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from synthetic import ONE, START, write_feature_partitions  # noqa: E402


def _peak_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_historical(entities: int, days: int) -> dict:
    import pandas as pd

    from pipelines.config import get_usecase
    from pipelines.features.serving import EVENT_TIMESTAMP, build_training_set
    from pipelines.stores import feature_store

    usecase = get_usecase("churn")
    ids = list(range(1, entities + 1))
    rows = pd.DataFrame(
        {
            "customer_id": ids * days,
            EVENT_TIMESTAMP: [START + (d + 1) * ONE + dt.timedelta(hours=12) for d in range(days) for _ in ids],
        }
    ).astype({EVENT_TIMESTAMP: "datetime64[ns, UTC]"})
    t0 = time.perf_counter()
    result = build_training_set(feature_store.get_store(), usecase, rows)
    return {"seconds": time.perf_counter() - t0, "rows": len(result.frame), "peak_mb": _peak_mb()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--online", choices=["sqlite", "redis"], default="sqlite")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.online == "redis":
        _use_redis_profile()
    if args.child:
        print(json.dumps(run_historical(args.entities, args.days)))
        return

    home = Path(os.environ.get("MLOPS_HOME") or REPO / "var") / "bench_features"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    os.environ["MLOPS_HOME"] = str(home)

    from pipelines.config import get_usecase
    from pipelines.features.definitions import feast_objects
    from pipelines.features.materialize import materialize_intervals
    from pipelines.features.serving import read_online
    from pipelines.stores import feature_store

    usecase = get_usecase("churn")
    t0 = time.perf_counter()
    frames = write_feature_partitions(args.entities, args.days)
    rows = sum(len(f) for f in frames)
    n_features = frames[0].shape[1] - 2
    print(f"{rows:,} feature rows x {n_features} features in {args.days} partitions ({time.perf_counter() - t0:.0f}s)")

    store = feature_store.get_store()
    feature_store.apply_if_changed(store, feast_objects(usecase))
    intervals = [(START + d * ONE, START + (d + 1) * ONE) for d in range(args.days)]
    t0 = time.perf_counter()
    materialize_intervals(usecase, intervals)
    ours = time.perf_counter() - t0

    raw = _raw_redis(frames) if args.online == "redis" else _raw_sqlite(frames, home)
    per_value = _raw_sqlite_per_value(frames, home) if args.online == "sqlite" else None

    latencies = {}
    for size in (1, 1000):
        calls = []
        for i in range(200):
            ids = [(i * 7919 + k) % args.entities + 1 for k in range(size)]
            t = time.perf_counter()
            read_online(store, usecase, ids, START + args.days * ONE)
            calls.append((time.perf_counter() - t) * 1000)
        calls.sort()
        latencies[size] = (statistics.median(calls), calls[int(0.99 * len(calls)) - 1])

    child = subprocess.run(
        [sys.executable, __file__, "--child", "--entities", str(args.entities), "--days", str(args.days)],
        capture_output=True,
        text=True,
        env=os.environ,
    )
    if child.returncode:
        sys.exit(f"historical retrieval failed:\n{child.stderr[-3000:]}")
    out = child.stdout
    hist = json.loads(out.strip().splitlines()[-1])

    print(f"\n{'':<44}{'seconds':>10}{'rows/s':>12}")
    raw_label = RAW_LABELS[args.online]
    print(f"online store: {args.online}")
    print(f"{raw_label:<44}{raw:>10.1f}{rows / raw:>12,.0f}")
    print(f"{'ours: Feast materialize, one interval/call':<44}{ours:>10.1f}{rows / ours:>12,.0f}")
    print(f"ratio ours/raw rows/s: {raw / ours:.2f}  (target >= 0.3)")
    if per_value is not None:
        label = "raw: executemany, Feast's layout (a row per value)"
        print(f"{label:<44}{per_value:>10.1f}{rows / per_value:>12,.0f}")
        print(f"ratio ours/raw in Feast's layout: {per_value / ours:.2f}")
    for size, (p50, p99) in latencies.items():
        print(f"online read of {size:>4} entities via churn_v1: p50 {p50:.1f} ms, p99 {p99:.1f} ms (200 calls)")
    print(
        f"historical retrieval of {hist['rows']:,} rows: {hist['seconds']:.1f}s, "
        f"peak memory {hist['peak_mb']:.0f} MB (target < 4096 MB)"
    )


def _raw_sqlite(frames: list, home: Path) -> float:
    columns = list(frames[0].columns)
    t0 = time.perf_counter()
    conn = sqlite3.connect(home / "raw.db")
    conn.execute(f"CREATE TABLE features ({', '.join(columns)}, PRIMARY KEY (customer_id))")
    sql = f"INSERT OR REPLACE INTO features VALUES ({', '.join('?' * len(columns))})"
    for frame in frames:
        values = frame.astype({"feature_timestamp": str}).itertuples(index=False, name=None)
        conn.executemany(sql, values)
        conn.commit()
    conn.close()
    return time.perf_counter() - t0


def _raw_sqlite_per_value(frames: list, home: Path) -> float:
    """The same values written the way Feast's SQLite online store lays them out: one row per
    (entity, feature), keyed by both, with its index on the entity; values as 8-byte floats."""
    import struct

    t0 = time.perf_counter()
    conn = sqlite3.connect(home / "raw_per_value.db")
    conn.execute(
        "CREATE TABLE features (entity_key BLOB, feature_name TEXT, value BLOB, value_text TEXT, "
        "event_ts TEXT, PRIMARY KEY (entity_key, feature_name))"
    )
    conn.execute("CREATE INDEX features_ek ON features (entity_key)")
    sql = (
        "INSERT INTO features VALUES (?, ?, ?, ?, ?) ON CONFLICT(entity_key, feature_name) DO UPDATE SET "
        "value = excluded.value, value_text = excluded.value_text, event_ts = excluded.event_ts"
    )
    for frame in frames:
        names = [c for c in frame.columns if c not in ("customer_id", "feature_timestamp")]
        rows = (
            (str(row[0]).encode(), name, struct.pack("d", float(value)), str(value), str(row[1]))
            for row in frame[["customer_id", "feature_timestamp", *names]].itertuples(index=False, name=None)
            for name, value in zip(names, row[2:], strict=True)
        )
        conn.executemany(sql, rows)
        conn.commit()
    conn.close()
    return time.perf_counter() - t0


def _raw_redis(frames: list) -> float:
    import redis

    client = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB)
    t0 = time.perf_counter()
    for frame in frames:
        records = frame.astype({"feature_timestamp": str}).to_dict("records")
        for start in range(0, len(records), 10_000):
            pipe = client.pipeline(transaction=False)
            for record in records[start : start + 10_000]:
                pipe.hset(f"raw:customer_id:{record['customer_id']}", mapping={k: str(v) for k, v in record.items()})
            pipe.execute()
    return time.perf_counter() - t0


REDIS_DB = 13
RAW_LABELS = {"sqlite": "raw: sqlite3 executemany (upsert)", "redis": "raw: redis-py pipeline, HSET per row"}


def _use_redis_profile() -> None:
    """The server profile's Feast configuration, on a flushed Redis database and a fresh registry DB."""
    if os.environ.get(FRESH) != "done":  # the parent recreates them; its --child process reuses them
        import redis
        import sqlalchemy as sa

        redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB).flushdb()
        admin = sa.create_engine("postgresql+psycopg2://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text("DROP DATABASE IF EXISTS mlops_bench_feast WITH (FORCE)"))
            conn.execute(sa.text("CREATE DATABASE mlops_bench_feast"))
        admin.dispose()
        os.environ[FRESH] = "done"
    os.environ["FEAST_FS_YAML_FILE_PATH"] = str(REPO / "feature_repo" / "feature_store.server.yaml")
    os.environ["MLOPS_FEAST_REGISTRY_URL"] = "postgresql+psycopg2://postgres@127.0.0.1:5432/mlops_bench_feast"
    os.environ["MLOPS_FEAST_REDIS"] = f"127.0.0.1:6379,db={REDIS_DB}"


FRESH = "MLOPS_BENCH_REDIS_FRESH"

if __name__ == "__main__":
    main()
