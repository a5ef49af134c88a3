"""`mlops demo`: the use case's real DAGs, day by day, in this process, as the scheduler would run them.

For each simulated day: ingestion, features, the training at its weekly ticks
(once labels allow), batch inference (from the first champion on), the nightly
drift monitor, and any retrain the monitor triggered (its queued run of the train
DAG, with the monitor's conf). Ends with a per-day table, the closed-loop figures
and ``reports/demo_summary.json``.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

from pipelines import settings
from pipelines.config import UseCase


def demo_log(dag_id: str, start: dt.datetime, suffix: str = "") -> Path:
    return settings.mlops_home() / "logs" / "demo" / dag_id / f"{start.date()}{suffix}.log"


def champion_version(usecase: UseCase) -> str | None:
    from pipelines.training.promotion import model_status

    status = model_status(usecase)
    return status["aliases"].get("champion") if status else None


def latest_verdict(usecase: UseCase) -> str:
    from pipelines.training.promotion import decisions_dir, verdict

    records = sorted(decisions_dir(usecase).glob("v*.json"), key=lambda p: p.stat().st_mtime)
    return verdict(json.loads(records[-1].read_text())) if records else ""


class Demo:
    """Runs the DAGs of one use case over simulated days and keeps what each day did."""

    def __init__(self, usecase: UseCase, first_day: dt.date) -> None:
        from mlops import airflow_admin

        self.usecase = usecase
        self.first_day = first_day
        stages = ["ingest"] + (["features"] if usecase.features else [])
        self.daily = [airflow_admin.load_dag(usecase.dag_id(s)) for s in stages]
        self.train = airflow_admin.load_dag(usecase.dag_id("train")) if usecase.training else None
        scored = usecase.training and usecase.inference
        self.inference = airflow_admin.load_dag(usecase.dag_id("batch_inference")) if scored else None
        self.monitor = airflow_admin.load_dag(usecase.dag_id("drift_monitor")) if usecase.monitoring else None
        self.outcomes: list[Any] = []
        self.days: list[dict[str, Any]] = []
        self.verdicts: list[str] = []
        self.seconds: dict[str, tuple[int, float]] = {}  # dag id -> (runs, seconds)
        self.warehouse_url = (
            airflow_admin.connection_url(usecase.inference.connection_id) if usecase.inference else None
        )

    def _run(self, dag: Any, start: dt.datetime, end: dt.datetime, conf: dict | None = None) -> Any:
        from mlops import airflow_admin

        t0 = time.perf_counter()
        outcome = airflow_admin.run_interval(dag, start, end, conf=conf, log_file=demo_log(dag.dag_id, start))
        self._timed(dag.dag_id, t0)
        self.outcomes.append(outcome)
        return outcome

    def _timed(self, dag_id: str, t0: float) -> None:
        runs, seconds = self.seconds.get(dag_id, (0, 0.0))
        self.seconds[dag_id] = (runs + 1, seconds + time.perf_counter() - t0)

    def run_day(self, start: dt.datetime) -> dict[str, Any]:
        end = start + dt.timedelta(days=1)
        row: dict[str, Any] = {"day": start.date().isoformat(), "notes": []}
        for dag in self.daily:  # in order, as the scheduler would: features run on what ingestion published
            outcome = self._run(dag, start, end)
            if not outcome.ok:
                row["notes"].append(f"{dag.dag_id} {outcome.state} (log: {demo_log(dag.dag_id, start)})")
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
        labelled = (end.date() - first).days - self.usecase.label.delay_days
        needed = spec.validation_days + spec.holdout_days + 2
        if labelled < needed:
            return f"{self.train.dag_id} skipped ({max(labelled, 0)} labelled days, needs {needed})"
        outcome = self._run(self.train, end - spec.interval, end)
        if not outcome.ok:
            return f"{self.train.dag_id} {outcome.state} (log: {demo_log(self.train.dag_id, end - spec.interval)})"
        verdict = latest_verdict(self.usecase)
        self.verdicts.append(f"{(end - dt.timedelta(days=1)).date()} (scheduled): {verdict}")
        return verdict

    def _monitor(self, start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
        from mlops import airflow_admin
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
        if not outcome.ok:
            out["action"] = f"monitor {outcome.state} (log: {demo_log(self.monitor.dag_id, start)})"
        # Play the scheduler for the retrain the monitor triggered: run the queued train run.
        for queued in airflow_admin.queued_runs(self.usecase.dag_id("train")) if self.train else []:
            log_file = demo_log(self.usecase.dag_id("train"), start, ".drift")
            t0 = time.perf_counter()
            run = airflow_admin.run_queued(self.train, queued, log_file=log_file)
            self._timed(self.train.dag_id, t0)
            self.outcomes.append(run)
            verdict = latest_verdict(self.usecase) if run.ok else f"retrain {run.state} (log: {log_file})"
            self.verdicts.append(f"{start.date()} (triggered by the drift monitor): {verdict}")
            out["retrain"] = verdict
        return out


def run(usecase: UseCase, first_day: dt.date, days: int, drift_day: int | None) -> int:
    """Run the demo loop over ``days`` days from ``first_day``; print progress, the table and the figures."""
    import os

    from pipelines.validation.validate import build_all_data_docs

    # A hundred validations in a row: Data Docs are built once at the end, not after each one.
    os.environ.setdefault("MLOPS_DATA_DOCS", "deferred")
    demo = Demo(usecase, first_day)
    names = [d.dag_id for d in demo.daily]
    print(f"running {', '.join(names)} for {days} daily intervals (in-process dag.test)")
    if demo.train is not None:
        print(f"  {demo.train.dag_id} at its ticks ({usecase.training.schedule}) once labels allow")
    if demo.inference is not None:
        print(f"  {demo.inference.dag_id} every day from the first champion on")
    if demo.monitor is not None:
        print(f"  {demo.monitor.dag_id} every night from the first champion on, and the retrains it triggers")
    t0 = time.perf_counter()
    for i in range(days):
        start = dt.datetime.combine(first_day + dt.timedelta(days=i), dt.time(0), tzinfo=dt.UTC)
        row = demo.run_day(start)
        demo.days.append(row)
        print("  " + _progress(row, drift_day is not None and i == drift_day), flush=True)
    t_docs = time.perf_counter()
    build_all_data_docs()
    demo.seconds["data docs (built once)"] = (1, time.perf_counter() - t_docs)
    elapsed = time.perf_counter() - t0
    drift_date = first_day + dt.timedelta(days=drift_day) if drift_day is not None else None
    table = day_table(usecase, demo.days, drift_date)
    print("\n" + table)
    if demo.verdicts:
        print("\ntraining:\n  " + "\n  ".join(demo.verdicts))
    loop = None
    if demo.monitor is not None and demo.warehouse_url:
        from pipelines.monitoring.closed_loop import summarize

        loop = summarize(usecase, demo.warehouse_url, drift_date)
        print("\n" + closed_loop_text(loop))
    print(
        "\ntime by DAG: "
        + ", ".join(f"{name} {runs} x {secs / runs:.1f}s = {secs:.0f}s" for name, (runs, secs) in demo.seconds.items())
    )
    failed = [o for o in demo.outcomes if not o.ok]
    summary = {
        "usecase": usecase.name,
        "first_day": first_day.isoformat(),
        "days": days,
        "drift_day": drift_date.isoformat() if drift_date else None,
        "seconds": round(elapsed, 1),
        "seconds_by_dag": {name: round(secs, 1) for name, (_, secs) in demo.seconds.items()},
        "runs": len(demo.outcomes),
        "failed_runs": [f"{o.dag_id} {o.run_id} {o.state}" for o in failed],
        "per_day": demo.days,
        "training": demo.verdicts,
        "closed_loop": loop,
    }
    path = settings.reports_dir() / "demo_summary.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=2, default=str))
    reports = settings.reports_dir() / usecase.name
    print(
        f"\n{len(demo.outcomes) - len(failed)} of {len(demo.outcomes)} runs succeeded in {elapsed:.1f}s. "
        f"Summary: {path}. Data Docs: {settings.reports_dir() / 'data_docs' / 'index.html'}."
        + (f" Drift reports: {reports / 'drift'}." if demo.monitor else "")
        + (f" Model cards: {reports / 'model_cards'}." if demo.train else "")
        + " Next: `make ui` (Airflow: runs, graphs, logs)"
        + (", `make mlflow-ui` (runs, models, aliases, the monitoring experiment)." if demo.train else ".")
    )
    return 1 if failed else 0


def _progress(row: dict[str, Any], drift_starts: bool) -> str:
    parts = [row["day"] + (" (drift starts)" if drift_starts else "")]
    if row.get("champion"):
        parts.append(f"champion v{row['champion']}")
    if row.get("drift_share") is not None:
        parts.append(f"drifted {row['drift_share']:.0%}")
    if row.get("live_metric") is not None:
        parts.append(f"live {row['live_metric']:.3f}")
    if row.get("action"):
        parts.append(row["action"])
    parts += row["notes"]
    if row.get("retrain"):
        parts.append(row["retrain"])
    return ", ".join(parts)


def day_table(usecase: UseCase, days: list[dict[str, Any]], drift_date: dt.date | None) -> str:
    """One line per day: rows ingested, validation, champion, live metric, drift share, action."""
    from pipelines.stores import partitions

    dataset = usecase.features.dataset if usecase.features else next(iter(usecase.source.datasets))
    metric = usecase.training.primary_metric if usecase.training else "metric"
    header = f"{'date':<12}{'rows':>7}  {'validation':<16}{'champion':>9}{'live ' + metric:>16}{'drifted':>9}  action"
    lines = [header, "-" * (len(header) + 20)]
    for row in days:
        validation = []
        rows = "-"
        for name in usecase.source.datasets:
            key = row["day"]
            info = partitions.read_info(partitions.partition_path(partitions.CURATED, usecase.name, name, key))
            quarantined = partitions.partition_path(partitions.QUARANTINE, usecase.name, name, key).exists()
            if name == dataset and info is not None:
                rows = str(info.rows)
            if quarantined:
                validation.append(f"{name} failed")
            elif info is not None and info.warnings:
                validation.append(f"{name} {len(info.warnings)} warn")
        live = row.get("live_metric")
        share = row.get("drift_share")
        action = row.get("action", "")
        if row.get("retrain"):
            action += " -> " + _short_verdict(row["retrain"])
        marker = " <- drift" if drift_date and row["day"] == drift_date.isoformat() else ""
        lines.append(
            f"{row['day']:<12}{rows:>7}  {', '.join(validation) or 'passed':<16}"
            f"{'v' + row['champion'] if row.get('champion') else '-':>9}"
            f"{'-' if live is None else f'{live:.4f}':>16}{'-' if share is None else f'{share:.0%}':>9}  "
            f"{action}{marker}"
        )
    return "\n".join(lines)


def _short_verdict(verdict: str) -> str:
    """``VERDICT: churn v4 (roc_auc 0.77) PROMOTED against ...`` -> ``v4 promoted``."""
    words = verdict.removeprefix("VERDICT:").split()
    version = next((w for w in words if w.startswith("v") and w[1:].isdigit()), "")
    decision = next((w.lower() for w in words if w in ("PROMOTED", "REJECTED")), verdict[:40])
    return f"{version} {decision}".strip()


def closed_loop_text(loop: dict[str, Any]) -> str:
    """The closed-loop figures as a person reads them."""
    lines = ["closed loop:"]
    if loop.get("drift_day"):
        lines.append(
            f"  drift from {loop['drift_day']}: first detected {loop.get('first_detected_day') or 'never'}"
            + (
                f" ({loop['detection_delay_days']} day(s) later)"
                if loop.get("detection_delay_days") is not None
                else ""
            )
            + f"; false alarms before it: {len(loop.get('false_alarms_before_drift') or [])}"
        )
    lines.append(
        f"  retrains triggered: {len(loop['triggered'])} ({', '.join(loop['triggered']) or 'none'}); "
        f"at most one per {loop['cooldown_days']}-day cooldown: "
        + ("yes" if loop["at_most_one_retrain_per_cooldown"] else "NO")
    )
    lines.append("  decisions: " + ", ".join(f"{k} {v}" for k, v in loop["decisions"].items() if v))
    old, retrain, metric = loop.get("old_champion"), loop.get("retrain"), loop.get("primary_metric")
    if old and old.get("pre_drift_metric") is not None:
        lines.append(f"  old champion v{old['version']}: {metric} {old['pre_drift_metric']:.4f} before the drift")
    if retrain:
        replaced = retrain.get("replaced_champion_post_drift_metric")
        lines.append(
            f"  after it, on the post-drift holdout {retrain['post_drift_holdout_days'][0]}.."
            f"{retrain['post_drift_holdout_days'][-1]}: new v{retrain['version']} {retrain['new_champion_metric']:.4f}"
            + (f", replaced v{retrain['replaced_version']} {replaced:.4f}" if replaced is not None else "")
            + f" ({retrain['decision']})"
        )
        ratio = loop.get("recovery_ratio")
        lines.append(
            f"  recovery: new champion at {ratio:.1%} of the old champion's pre-drift {metric} "
            f"(target {loop['recovery_target']:.0%}): {'MET' if loop['recovered'] else 'NOT MET'}"
            if ratio is not None
            else "  recovery: no ratio"
        )
    elif loop.get("drift_day"):
        lines.append("  no drift-triggered retrain was judged on post-drift days (run more days)")
    return "\n".join(lines)
