"""Benchmark: the server profile's scheduler throughput, beside the in-process runner's cost per run.

    .venv/bin/python bench/scheduler.py [--days 50] [--customers 2000] [--max-active-runs 8]

Both sides run the same ``churn_ingest`` DAG (extract, validate with Great Expectations,
publish) over the same ``days`` of the same simulation:

* server: the server profile as ``make up`` starts it (CeleryExecutor with two workers at
  the compose file's concurrency, the scheduler, the DAG processor, the API server, on this
  machine's PostgreSQL and Redis), on a state of its own (``$MLOPS_HOME/bench_scheduler``,
  databases ``mlops_bench_sched_*``, Redis databases 11 and 12, free ports). One backfill
  over the days through Airflow's REST API, ``max_active_runs`` runs at a time; wall time
  from the request to the last run's success.
* in-process: the same runs one after the other with ``dag.test`` on the embedded default
  (SQLite), as ``make demo`` runs them, in a fresh process.

Printed: runs per minute of each and their ratio (server over in-process), and each server
run's own duration (queueing and the per-task process start included). No target: the
figure says what two workers buy on this machine, and what a scheduled task costs.
Also checked (issue 17, "50 queued runs, nothing lost or duplicated"): one run per day,
each successful, and the server's curated partitions equal to the in-process ones, one per
day and dataset, with the same content hashes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

START = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
ONE = dt.timedelta(days=1)
PREFIX, REDIS_DBS = "mlops_bench_sched", (11, 12)


def _mlops(env: dict[str, str], *args: str) -> str:
    from mlops.server.isolated import MLOPS

    done = subprocess.run([MLOPS, *args], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"mlops {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done.stdout


def _seconds(run: dict, start: str, end: str) -> float:
    return (dt.datetime.fromisoformat(run[end]) - dt.datetime.fromisoformat(run[start])).total_seconds()


def _partitions(home: Path) -> dict[str, str]:
    """Every curated partition of a state and its content hash."""
    from pipelines.stores.partitions import read_info

    return {str(p.relative_to(home)): read_info(p).content_hash for p in sorted((home / "curated").rglob("*.parquet"))}


def run_server(root: Path, days: int, customers: int, max_active_runs: int) -> dict:
    from mlops.server import compose, isolated
    from mlops.server.rest import AirflowAPI

    home = root / "server" / "var"
    shutil.rmtree(home.parent, ignore_errors=True)
    isolated.drop(PREFIX, REDIS_DBS)
    env = isolated.environment(home, PREFIX, REDIS_DBS)
    t0 = time.perf_counter()
    _mlops(env, "server", "up", "--timeout", "300")
    up_s = time.perf_counter() - t0
    try:
        _mlops(env, "server", "run", "--", isolated.MLOPS, "simulate", "--usecase", "churn",
               "--days", str(days), "--customers", str(customers))  # fmt: skip
        variables = {**compose.read_env_file(home / "server" / ".env"), **env}
        api = AirflowAPI(
            f"http://localhost:{variables['AIRFLOW_API_PORT']}",
            variables["AIRFLOW_ADMIN_USER"],
            variables["AIRFLOW_ADMIN_PASSWORD"],
        )
        api.wait_for_dags(["churn_ingest"])
        api.unpause("churn_ingest")  # the features DAG stays paused: ingest alone is measured
        t0 = time.perf_counter()
        api.backfill("churn_ingest", START, START + (days - 1) * ONE, max_active_runs=max_active_runs)
        runs = api.wait_runs("churn_ingest", days, timeout=3600, poll=1, run_type="backfill")
        wall = time.perf_counter() - t0
        failed = [r["dag_run_id"] for r in runs if r["state"] != "success"]
        tasks = len(api.task_instances("churn_ingest", runs[0]["dag_run_id"]))
        every_run = api.runs("churn_ingest")
        logical_dates = [r["logical_date"] for r in every_run if r["run_type"] == "backfill"]
        # Unpausing also schedules the latest interval (yesterday, an empty day of this source):
        # a run of the DAG's own schedule, counted apart.
        scheduled = [r["data_interval_start"][:10] for r in every_run if r["run_type"] == "scheduled"]
        api.close()
    finally:
        subprocess.run([isolated.MLOPS, "server", "down"], env=env, capture_output=True)
        isolated.drop(PREFIX, REDIS_DBS)
    durations = sorted(_seconds(r, "start_date", "end_date") for r in runs)
    return {
        "runs": len(runs),
        "failed": failed,
        "tasks_per_run": tasks,
        "up_s": up_s,
        "wall_s": wall,
        "run_p50_s": statistics.median(durations),
        "run_max_s": durations[-1],
        "distinct_days": len(set(logical_dates)),
        "all_runs": len(logical_dates),
        "scheduled": scheduled,
        "partitions": {k: v for k, v in _partitions(home).items() if not any(day in k for day in scheduled)},
    }


def run_inprocess(root: Path, days: int, customers: int) -> dict:
    """In a fresh process (its own Airflow state): the same runs with ``dag.test``, one after the other."""
    home = root / "inprocess" / "var"
    shutil.rmtree(home.parent, ignore_errors=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_", "AIRFLOW__"))}
    env |= {"MLOPS_HOME": str(home), "AIRFLOW_HOME": str(home / "airflow")}
    _mlops(env, "init")
    _mlops(env, "simulate", "--usecase", "churn", "--days", str(days), "--customers", str(customers))
    done = subprocess.run(
        [sys.executable, __file__, "--inprocess-child", str(days)], env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def _inprocess_child(days: int) -> None:
    from mlops import inprocess

    dag = inprocess.load_dag("churn_ingest")
    log = Path(os.environ["MLOPS_HOME"]) / "bench_runs.log"
    t0 = time.perf_counter()
    outcomes = [inprocess.run_interval(dag, START + i * ONE, START + (i + 1) * ONE, log_file=log) for i in range(days)]
    wall = time.perf_counter() - t0
    failed = [str(o.interval_start) for o in outcomes if not o.ok]
    partitions = _partitions(Path(os.environ["MLOPS_HOME"]))
    print(json.dumps({"runs": days, "failed": failed, "wall_s": wall, "partitions": partitions}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=50)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--max-active-runs", type=int, default=8)
    parser.add_argument("--inprocess-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inprocess_child:
        _inprocess_child(args.inprocess_child)
        return
    from pipelines import settings

    root = settings.mlops_home() / "bench_scheduler"
    print(f"{args.days} churn_ingest days, {args.customers} customers a day ({os.cpu_count()} cores)")
    local = run_inprocess(root, args.days, args.customers)
    print(f"in-process: {local['runs']} runs in {local['wall_s']:.0f} s, {local['wall_s'] / local['runs']:.1f} s a run")
    server = run_server(root, args.days, args.customers, args.max_active_runs)
    print(
        f"server:     {server['runs']} runs ({server['tasks_per_run']} tasks each) in {server['wall_s']:.0f} s "
        f"on 2 workers, max {args.max_active_runs} runs at a time (stack up in {server['up_s']:.0f} s); "
        f"a run's own duration p50 {server['run_p50_s']:.1f} s, max {server['run_max_s']:.1f} s"
    )
    rate_local = 60 * local["runs"] / local["wall_s"]
    rate_server = 60 * server["runs"] / server["wall_s"]
    print(f"\nruns per minute: server {rate_server:.1f}, in-process {rate_local:.1f}")
    print(f"ratio server/in-process runs per minute: {rate_server / rate_local:.2f}")
    same = server["partitions"] == local["partitions"]
    print(
        f"nothing lost or duplicated: {server['all_runs']} backfill runs for {server['distinct_days']} days "
        f"(and {len(server['scheduled'])} scheduled run of the latest interval on unpausing: "
        f"{', '.join(server['scheduled']) or 'none'}); "
        f"{len(server['partitions'])} curated partitions, "
        f"{'equal to' if same else 'DIFFERENT from'} the in-process ones ({len(local['partitions'])})"
    )
    if server["failed"] or local["failed"]:
        raise SystemExit(f"failed runs: server {server['failed']}, in-process {local['failed']}")
    if not same or server["all_runs"] != args.days or server["distinct_days"] != args.days:
        raise SystemExit("runs or partitions lost or duplicated")


if __name__ == "__main__":
    main()
