"""`python -m tests.reliability.run_days DAG_ID FIRST LAST`: run a DAG in-process for each day from FIRST
to LAST (inclusive), as `mlops replay` and a backfill do, in a process of its own; prints one JSON line
per run and exits 1 if one failed. The concurrency tests start several at once on one state."""

from __future__ import annotations

import datetime as dt
import json
import sys


def main(dag_id: str, first: str, last: str) -> int:
    from mlops import inprocess

    dag = inprocess.load_dag(dag_id)
    day = dt.datetime.fromisoformat(first).replace(tzinfo=dt.UTC)
    end = dt.datetime.fromisoformat(last).replace(tzinfo=dt.UTC)
    failed = 0
    while day <= end:
        outcome = inprocess.run_interval(dag, day, day + dt.timedelta(days=1))
        print(json.dumps({"day": day.date().isoformat(), "state": outcome.state, "tasks": outcome.task_states}))
        failed += not outcome.ok
        day += dt.timedelta(days=1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
