"""`mlops replay`: the whole loop over a source's history, day by day, in this process.

For each day of ``[start, end)``: ingestion, features, the training at its
schedule's ticks (once labels allow), batch inference (from the first champion
on), the nightly drift monitor, and any retrain the monitor triggered (its queued
run of the train DAG, with the monitor's conf), through the real DAGs
(``dag.test``, as the scheduler would run them, one day after the other). Ends
with a per-day table, the verdicts, the closed-loop figures (against
``drift_from``, a known change in the data) or the nights where drift was
detected, threshold suggestions from the stable nights, the time by DAG and
``reports/<use case>/replay_summary.json``.

`mlops demo` is a replay over a simulated source. A replay only reads the source.
SIGINT or SIGTERM stops it cleanly: the run in progress is marked failed, the state
of the completed days is kept in ``reports/<use case>/replay_state.json`` and
``--resume`` carries on from the first day not completed.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

from mlops import replay_text
from mlops.replay_signals import Interrupted, stop_on_signals, stop_repeats
from pipelines import settings
from pipelines.config import UseCase


class NothingToResume(ValueError):
    """``--resume`` without an unfinished replay of that use case in this state folder."""


def replay_log(dag_id: str, day: dt.date, suffix: str = "") -> Path:
    """The task log of one DAG run of a replayed day (the day in the use case's timezone)."""
    return settings.mlops_home() / "logs" / "replay" / dag_id / f"{day}{suffix}.log"


def state_path(usecase: UseCase) -> Path:
    return settings.reports_dir() / usecase.name / "replay_state.json"


def summary_path(usecase: UseCase) -> Path:
    return settings.reports_dir() / usecase.name / "replay_summary.json"


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=str))
    os.replace(tmp, path)


def champion_version(usecase: UseCase) -> str | None:
    from pipelines.reporting.models import model_status

    status = model_status(usecase)
    return status["aliases"].get("champion") if status else None


def latest_verdict(usecase: UseCase) -> str:
    from pipelines.promotion.decisions import decisions_dir
    from pipelines.promotion.gate import verdict

    records = sorted(decisions_dir(usecase).glob("v*.json"), key=lambda p: p.stat().st_mtime)
    return verdict(json.loads(records[-1].read_text())) if records else ""


class Replay:
    """Runs the DAGs of one use case day by day and keeps what each day did."""

    def __init__(self, usecase: UseCase, first_day: dt.date) -> None:
        from mlops import airflow_admin, inprocess

        self.usecase = usecase
        self.first_day = first_day
        stages = ["ingest"] + (["features"] if usecase.features else [])
        self.daily = [inprocess.load_dag(usecase.dag_id(s)) for s in stages]
        self.train = inprocess.load_dag(usecase.dag_id("train")) if usecase.training else None
        scored = usecase.training and usecase.inference
        self.inference = inprocess.load_dag(usecase.dag_id("batch_inference")) if scored else None
        self.monitor = inprocess.load_dag(usecase.dag_id("drift_monitor")) if usecase.monitoring else None
        self.runs: list[dict[str, str]] = []  # dag_id, run_id, state of every run
        self.days: list[dict[str, Any]] = []
        self.verdicts: list[str] = []
        self.seconds: dict[str, list[float]] = {}  # dag id -> [runs, seconds]
        self.current: tuple[str, dt.datetime] | None = None  # the run in progress: dag id, logical date
        self.warehouse_url = (
            airflow_admin.connection_url(usecase.inference.connection_id) if usecase.inference else None
        )

    def restore(self, state: dict[str, Any]) -> None:
        """Carry on from a stopped replay's state: its days, verdicts, runs and times."""
        self.days, self.verdicts, self.runs = state["per_day"], state["training"], state["runs"]
        self.seconds = {k: list(v) for k, v in state["seconds_by_dag"].items()}

    def state(self, start: dt.date, end: dt.date, drift_from: dt.date | None, status: str) -> dict[str, Any]:
        return {
            "usecase": self.usecase.name,
            "start": start.isoformat(),
            "end": end.isoformat(),
            "drift_from": drift_from.isoformat() if drift_from else None,
            "status": status,
            "per_day": self.days,
            "training": self.verdicts,
            "runs": self.runs,
            "seconds_by_dag": self.seconds,
        }

    def _run(self, dag: Any, start: dt.datetime, end: dt.datetime, conf: dict | None = None) -> Any:
        from mlops import inprocess

        t0 = time.perf_counter()
        self.current = (dag.dag_id, end)
        log_file = replay_log(dag.dag_id, self.local_day(start))
        outcome = inprocess.run_interval(dag, start, end, conf=conf, log_file=log_file)
        self.current = None
        self._record(dag.dag_id, t0, outcome)
        return outcome

    def local_day(self, instant: dt.datetime) -> dt.date:
        """The day (in the use case's timezone) an interval starting at ``instant`` is."""
        from pipelines.days import local_date

        return local_date(instant, self.usecase.schedule.timezone)

    def _record(self, dag_id: str, t0: float, outcome: Any) -> None:
        runs, seconds = self.seconds.get(dag_id, [0, 0.0])
        self.seconds[dag_id] = [runs + 1, seconds + time.perf_counter() - t0]
        self.runs.append({"dag_id": outcome.dag_id, "run_id": outcome.run_id, "state": outcome.state})

    def run_day(self, day: dt.date) -> dict[str, Any]:
        from pipelines.days import day_bounds
        from pipelines.reporting import lineage

        start, end = day_bounds(day, self.usecase.schedule.timezone)
        row: dict[str, Any] = {"day": day.isoformat(), "notes": []}
        for dag in self.daily:  # in order, as the scheduler would: features run on what ingestion published
            outcome = self._run(dag, start, end)
            if not outcome.ok:
                row["notes"].append(f"{dag.dag_id} {outcome.state} (log: {replay_log(dag.dag_id, day)})")
                return row | {"ok": False}
        if self.train is not None:
            note = self._scheduled_training(end)
            if note:
                row["notes"].append(note)
        champion = champion_version(self.usecase) if self.train is not None else None
        if self.inference is not None and champion:
            outcome = self._run(self.inference, start, end)
            if not outcome.ok:
                row["notes"].append(f"{self.inference.dag_id} {outcome.state}")
            elif self.warehouse_url:
                row["served"] = lineage.served_split(self.warehouse_url, self.usecase, end)
        if self.monitor is not None and champion:
            row |= self._monitor(start, end)
        row["champion"] = champion_version(self.usecase) if self.train is not None else None
        return row | {"ok": True}

    def _scheduled_training(self, end: dt.datetime) -> str:
        """The train DAG at its schedule's ticks, once enough labelled days exist."""
        from zoneinfo import ZoneInfo

        from croniter import croniter

        spec = self.usecase.training
        assert spec is not None and self.train is not None
        local_end = end.astimezone(ZoneInfo(self.usecase.schedule.timezone)).replace(tzinfo=None)
        if not croniter.match(spec.schedule, local_end):
            return ""
        from pipelines.training.dataset import first_trainable_day

        first = max(self.first_day, first_trainable_day(self.usecase).date())  # first day trained on
        labelled = (self.local_day(end) - first).days - self.usecase.label.delay_days
        needed = spec.validation_days + spec.holdout_days + 2
        if labelled < needed:
            return f"{self.train.dag_id} skipped ({max(labelled, 0)} labelled days, needs {needed})"
        outcome = self._run(self.train, end - spec.interval, end)
        if not outcome.ok:
            log_file = replay_log(self.train.dag_id, self.local_day(end - spec.interval))
            return f"{self.train.dag_id} {outcome.state} (log: {log_file})"
        verdict = latest_verdict(self.usecase)
        self.verdicts.append(f"{self.local_day(end - dt.timedelta(days=1))} (scheduled): {verdict}")
        return verdict

    def _monitor(self, start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
        from mlops import inprocess
        from pipelines.promotion import canary
        from pipelines.stores import monitoring as store

        assert self.monitor is not None and self.warehouse_url is not None
        out: dict[str, Any] = {}
        outcome = self._run(self.monitor, start, end)
        history = store.read_night(self.warehouse_url, store.HISTORY, self.usecase.name, end)
        decision = store.read_night(self.warehouse_url, store.DECISIONS, self.usecase.name, end)
        if history:
            out |= {
                "drift_share": history["drift_share"],
                "prediction_drift": history["prediction_drift"]["score"],
                "live_metric": history["live_metric"],
                "report": history["report_html"],
            }
        if decision:
            out["action"] = decision["action"]
            out["decision_reason"] = decision["reason"]
        judged = canary.judgment_of_night(self.usecase, end)
        if judged:
            out["canary"] = {k: judged[k] for k in ("version", "action", "reason")}
        if not outcome.ok:
            out["action"] = f"monitor {outcome.state} (log: {replay_log(self.monitor.dag_id, self.local_day(start))})"
        # Play the scheduler for the retrain the monitor triggered: run the queued train run.
        for queued in inprocess.queued_runs(self.usecase.dag_id("train")) if self.train else []:
            log_file = replay_log(self.usecase.dag_id("train"), self.local_day(start), ".drift")
            t0 = time.perf_counter()
            self.current = (self.usecase.dag_id("train"), queued["logical_date"] or queued["run_after"])
            run = inprocess.run_queued(self.train, queued, log_file=log_file)
            self.current = None
            self._record(self.usecase.dag_id("train"), t0, run)
            verdict = latest_verdict(self.usecase) if run.ok else f"retrain {run.state} (log: {log_file})"
            self.verdicts.append(f"{self.local_day(start)} (triggered by the drift monitor): {verdict}")
            out["retrain"] = verdict
        return out


def source_days(usecase: UseCase) -> tuple[dt.date, dt.date] | None:
    """The first and last day (in the use case's timezone) with rows in the features' dataset, read-only."""
    import sqlalchemy as sa

    from mlops import airflow_admin
    from pipelines.days import local_date
    from pipelines.stores import source

    name = usecase.features.dataset if usecase.features else next(iter(usecase.source.datasets))
    dataset = usecase.source.datasets[name]
    engine = source.make_engine(airflow_admin.connection_url(usecase.source.connection_id))
    try:
        schema, name = source.schema_and_name(dataset.table)
        table = sa.Table(name, sa.MetaData(), schema=schema, autoload_with=engine)
        with engine.connect() as conn:
            first, last = conn.execute(
                sa.select(sa.func.min(table.c[dataset.event_time]), sa.func.max(table.c[dataset.event_time]))
            ).one()
    except sa.exc.NoSuchTableError:
        raise source.SourceSchemaError(f"source table '{dataset.table}' does not exist in {engine.url!r}") from None
    finally:
        engine.dispose()
    if first is None:
        return None

    def local_day(value: Any) -> dt.date:  # SQLite hands back text
        stamp = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
        return local_date(stamp, usecase.schedule.timezone)

    return local_day(first), local_day(last)


def resume_point(usecase: UseCase) -> dict[str, Any]:
    """The state of the unfinished replay of ``usecase``.

    Raises:
        NothingToResume: none in this state folder, or it finished.
    """
    path = state_path(usecase)
    if not path.exists():
        raise NothingToResume(f"no replay of {usecase.name} to resume in {settings.mlops_home()} ({path} is missing)")
    state = json.loads(path.read_text())
    if state["status"] == "done":
        raise NothingToResume(
            f"the replay of {usecase.name} {state['start']}..{state['end']} finished: nothing to resume"
        )
    return state


def run(
    usecase: UseCase,
    first_day: dt.date,
    end_day: dt.date,
    drift_from: dt.date | None = None,
    resume: dict[str, Any] | None = None,
) -> int:
    """Replay the days ``[first_day, end_day)``; print progress, the table and the figures.

    Returns 0 when every run succeeded, 1 when one failed, 128 + the signal's number when stopped.
    """
    from pipelines.validation.validate import build_all_data_docs

    # A hundred validations in a row: Data Docs are built once at the end, not after each one
    # (for this replay only: the caller's process keeps its own setting).
    if "MLOPS_DATA_DOCS" not in os.environ:
        os.environ["MLOPS_DATA_DOCS"] = "deferred"
        try:
            return run(usecase, first_day, end_day, drift_from, resume)
        finally:
            del os.environ["MLOPS_DATA_DOCS"]
    replay = Replay(usecase, first_day)
    if resume:
        replay.restore(resume)
    days = (end_day - first_day).days
    done = len(replay.days)
    print(replay_text.plan(replay, first_day, end_day, done))
    t0 = time.perf_counter()
    with stop_on_signals():
        try:
            for i in range(done, days):
                day = first_day + dt.timedelta(days=i)
                row = replay.run_day(day)
                replay.days.append(row)
                _write_json(state_path(usecase), replay.state(first_day, end_day, drift_from, "running"))
                marker = drift_from is not None and day == drift_from
                print(f"  [{i + 1}/{days}] " + replay_text.progress(row, marker), flush=True)
        except Interrupted as stop:
            stop_repeats()
            return _stopped(replay, stop, first_day, end_day, drift_from)
    t_docs = time.perf_counter()
    build_all_data_docs()
    replay.seconds["data docs (built once)"] = [1, time.perf_counter() - t_docs]
    elapsed = time.perf_counter() - t0
    _write_json(state_path(usecase), replay.state(first_day, end_day, drift_from, "done"))
    return _finish(replay, first_day, end_day, drift_from, elapsed)


def _stopped(replay: Replay, stop: Interrupted, first_day: dt.date, end_day: dt.date, drift_from) -> int:
    """Mark the run in progress failed, keep the state, say how to resume."""
    from mlops import inprocess

    usecase = replay.usecase
    failed = ""
    if replay.current is not None:
        dag_id, logical_date = replay.current
        run_id = inprocess.mark_run_failed(dag_id, logical_date)
        failed = f"; {dag_id} run {run_id or logical_date} marked failed"
    _write_json(state_path(usecase), replay.state(first_day, end_day, drift_from, "stopped"))
    day = first_day + dt.timedelta(days=len(replay.days))
    resume = f"mlops replay --usecase {usecase.name} --resume"
    print(
        f"\nstopped by {signal.Signals(stop.signum).name} during {day}{failed}. "
        f"{len(replay.days)} of {(end_day - first_day).days} days are done (state: {state_path(usecase)}).\n"
        f"Resume with: {resume}",
        flush=True,
    )
    return 128 + stop.signum


def _finish(replay: Replay, first_day: dt.date, end_day: dt.date, drift_from: dt.date | None, elapsed: float) -> int:
    from pipelines.reporting import closed_loop

    usecase = replay.usecase
    print("\n" + replay_text.day_table(usecase, replay.days, drift_from))
    if replay.verdicts:
        print("\ntraining:\n  " + "\n  ".join(replay.verdicts))
    loop = thresholds = None
    if replay.monitor is not None and replay.warehouse_url:
        loop = closed_loop.summarize(usecase, replay.warehouse_url, drift_from)
        thresholds = closed_loop.suggest_thresholds(usecase, replay.warehouse_url, drift_from)
        print("\n" + replay_text.closed_loop_text(loop))
        print("\n" + replay_text.thresholds_text(thresholds))
    print("\ntime by DAG: " + replay_text.seconds_text(replay.seconds))
    failed = [r for r in replay.runs if r["state"] != "success"]
    summary = {
        "usecase": usecase.name,
        "first_day": first_day.isoformat(),
        "end_day": end_day.isoformat(),
        "days": (end_day - first_day).days,
        "drift_day": drift_from.isoformat() if drift_from else None,
        "seconds": round(elapsed, 1),
        "seconds_by_dag": {name: round(secs, 1) for name, (_, secs) in replay.seconds.items()},
        "runs": len(replay.runs),
        "failed_runs": [f"{r['dag_id']} {r['run_id']} {r['state']}" for r in failed],
        "per_day": replay.days,
        "training": replay.verdicts,
        "closed_loop": loop,
        "thresholds": thresholds,
    }
    path = summary_path(usecase)
    _write_json(path, summary)
    reports = settings.reports_dir() / usecase.name
    print(
        f"\n{len(replay.runs) - len(failed)} of {len(replay.runs)} runs succeeded"
        + (f" in {elapsed:.1f}s" if elapsed else "")
        + f". Summary: {path}. Data Docs: {settings.reports_dir() / 'data_docs' / 'index.html'}."
        + (f" Drift reports: {reports / 'drift'}." if replay.monitor else "")
        + (f" Model cards: {reports / 'model_cards'}." if replay.train else "")
        + " Next: `make ui` (Airflow: runs, graphs, logs)"
        + (", `make mlflow-ui` (runs, models, aliases, the monitoring experiment)." if replay.train else ".")
    )
    return 1 if failed else 0
