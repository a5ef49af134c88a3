"""Benchmark: ingest and validate 1M source rows, against the raw library doing the same I/O.

    .venv/bin/python bench/ingest.py [--rows 1000000] [--customers 50000]

Both sides read the same window of ``customer_activity`` from the same SQLite
source and write one Parquet file:

* ours: ``pipelines.ingestion.ingest.ingest_interval`` (chunked read, Great
  Expectations validation of every row, Data Docs, atomic write, content hash);
* raw: ``pandas.read_sql`` of the same query plus ``DataFrame.to_parquet``, no validation.

Each side runs in its own fresh process so its peak memory (max RSS) is its own.
It also times parsing every DAG file beyond ``import airflow.sdk``. State lives in
``$MLOPS_HOME/bench`` (the simulated source is kept for the next run).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

START = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


def _peak_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_ours(url: str, end: dt.datetime) -> dict:
    from pipelines.config import get_usecase
    from pipelines.ingestion.ingest import ingest_interval
    from pipelines.stores import partitions

    usecase = get_usecase("churn")
    path = partitions.partition_path(partitions.CURATED, "churn", "activity", partitions.partition_key(START, end))
    path.unlink(missing_ok=True)  # measure a real write, not the "unchanged" shortcut
    t0 = time.perf_counter()
    result = ingest_interval(url, usecase, "activity", START, end)
    return {"seconds": time.perf_counter() - t0, "rows": result.info.rows, "peak_mb": _peak_mb()}


def run_raw(url: str, end: dt.datetime, out: Path) -> dict:
    import pandas as pd
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    query = sa.text(
        "SELECT * FROM customer_activity WHERE event_timestamp >= :start AND event_timestamp < :end "
        "ORDER BY customer_id, event_timestamp"
    )
    t0 = time.perf_counter()
    with engine.connect() as conn:
        frame = pd.read_sql(query, conn, params={"start": START.replace(tzinfo=None), "end": end.replace(tzinfo=None)})
    frame.to_parquet(out, compression="zstd", index=False)
    return {"seconds": time.perf_counter() - t0, "rows": len(frame), "peak_mb": _peak_mb()}


def run_parse() -> dict:
    import runpy

    t0 = time.perf_counter()
    import airflow.sdk  # noqa: F401

    t1 = time.perf_counter()
    for path in sorted((REPO / "dags").glob("*.py")):
        runpy.run_path(str(path))
    return {"import_airflow_sdk": t1 - t0, "parse_dags": time.perf_counter() - t1}


def _child(part: str, *args: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", part, *args], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--end", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        end = dt.datetime.fromisoformat(args.end) if args.end else None
        if args.child == "ours":
            print(json.dumps(run_ours(args.url, end)))
        elif args.child == "raw":
            print(json.dumps(run_raw(args.url, end, Path(os.environ["MLOPS_HOME"]) / "raw.parquet")))
        else:
            print(json.dumps(run_parse()))
        return

    home = Path(os.environ.get("MLOPS_HOME") or REPO / "var") / "bench"
    home.mkdir(parents=True, exist_ok=True)
    os.environ["MLOPS_HOME"] = str(home)
    os.environ.setdefault("AIRFLOW_HOME", str(home / "airflow"))

    from pipelines.config import get_usecase
    from pipelines.simulation.churn import World
    from pipelines.simulation.writer import write_simulation

    usecase = get_usecase("churn")
    days = max(1, math.ceil(args.rows / (args.customers * 0.99)))
    url = f"sqlite:///{home / 'source.db'}"
    world = World(start=START.date(), customers=args.customers, seed=1, label_delay_days=usecase.label.delay_days)
    t0 = time.perf_counter()
    sim = write_simulation(url, usecase, world, days)
    print(
        f"source: {days} days x ~{args.customers} customers in {url} "
        f"({sim.days_written} days simulated now, {time.perf_counter() - t0:.0f}s)"
    )

    end = (START + dt.timedelta(days=days)).isoformat()
    raw = _child("raw", "--url", url, "--end", end)
    ours = _child("ours", "--url", url, "--end", end)
    parse = _child("parse")

    rate = lambda r: r["rows"] / r["seconds"]  # noqa: E731
    ratio = rate(ours) / rate(raw)
    print(f"\n{'':<34}{'rows':>10}{'seconds':>10}{'rows/s':>12}{'peak MB':>10}")
    for name, r in (("raw: read_sql + to_parquet", raw), ("ours: ingest + validate + publish", ours)):
        print(f"{name:<34}{r['rows']:>10}{r['seconds']:>10.2f}{rate(r):>12,.0f}{r['peak_mb']:>10.0f}")
    print(f"\nratio ours/raw rows/s: {ratio:.2f}  (target >= 0.3)")
    print(f"peak memory ours: {ours['peak_mb']:.0f} MB  (target < 2048 MB)")
    print(
        f"DAG parse beyond `import airflow.sdk`: {parse['parse_dags'] * 1000:.0f} ms  (target < 1000 ms; "
        f"import airflow.sdk itself: {parse['import_airflow_sdk']:.1f}s)"
    )
    ok = ratio >= 0.3 and ours["peak_mb"] < 2048 and parse["parse_dags"] < 1 and ours["rows"] == raw["rows"]
    print("targets met" if ok else "TARGETS MISSED")


if __name__ == "__main__":
    main()
