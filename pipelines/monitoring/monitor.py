"""One night of the drift monitor: measure, report, record; then the retrain decision.

``measure`` compares the current days with the champion's training window
(Evidently: data drift of every model feature, drift of the champion's scores),
computes the champion's live metric on the days whose labels have matured (and
the challenger's, from shadow scoring), saves the reports under
``reports/<use case>/drift/<date>.*``, logs them to the MLflow experiment
``<use case>_monitoring`` and writes the night's row of ``drift_history``.

``decide_night`` turns that row, the night before and earlier decisions into one
retrain decision (:mod:`pipelines.monitoring.policy`) and records it in
``retrain_decisions``. A rerun of a night keeps a trigger it already recorded.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
from pathlib import Path
from typing import Any

import pandas as pd

from pipelines import settings
from pipelines.config import MonitoringSpec, RetrainPolicySpec, UseCase
from pipelines.errors import BadInput
from pipelines.monitoring import data, movers, policy
from pipelines.monitoring.live import live_metrics, live_note, served_metric, shadow_comparison, shadowed_rows
from pipelines.promotion import canary
from pipelines.stores import mlflow_store
from pipelines.stores import monitoring as store
from pipelines.training import metrics

log = logging.getLogger(__name__)


def spec_of(usecase: UseCase) -> MonitoringSpec:
    if usecase.monitoring is None:
        raise ValueError(f"use case '{usecase.name}' has no monitoring section")
    return usecase.monitoring


def drift_dir(usecase: str) -> Path:
    return settings.reports_dir() / usecase / "drift"


def night_key(end: dt.datetime) -> str:
    """Reports of a night are named after the day it monitored (the day before its end)."""
    return (end - dt.timedelta(days=1)).date().isoformat()


def run_id_for(usecase: UseCase, decision: dict[str, Any]) -> str:
    """The train DAG's run id of a triggered retrain: one per dedupe key, so a retried trigger finds it."""
    day = decision.get("day") or decision["night"][:10]
    onset = (decision.get("onset") or day)[:10]
    return f"drift_retrain__{onset}__{day}"


def readiness(usecase: UseCase, start: dt.datetime, end: dt.datetime) -> tuple[str, str]:
    """Whether the night can be monitored: ``ready``, ``wait`` (features not built yet) or
    ``skip`` (no champion, or no entity active in the current window), with a message."""
    from pipelines.inference.inputs import feature_partition
    from pipelines.stores import partitions

    spec = spec_of(usecase)
    client = mlflow_store.configure()
    if mlflow_store.alias_version(client, mlflow_store.model_name(usecase), mlflow_store.CHAMPION) is None:
        return "skip", f"no champion for {usecase.name} yet: nothing to monitor (run {usecase.dag_id('train')})"
    try:
        feature_partition(usecase, start, end)
    except BadInput as exc:
        return "wait", f"waiting for the features of {night_key(end)}: {exc}"
    rows = 0
    for day_start, day_end in data.days_of(end - dt.timedelta(days=spec.current_days), end):
        try:
            info = partitions.read_info(feature_partition(usecase, day_start, day_end))
        except BadInput:
            continue
        rows += info.rows if info else 0
    if not rows:
        return (
            "skip",
            f"no {usecase.name} entity was active in the current window ending {end:%Y-%m-%d}: nothing to compare",
        )
    return "ready", f"{rows} current rows"


def measure_summary(
    usecase: UseCase, start: dt.datetime, end: dt.datetime, warehouse_url: str, airflow_run_id: str
) -> dict[str, Any]:
    """:func:`measure`, reduced to what the monitor DAG's decision and its log need."""
    record = measure(usecase, start, end, warehouse_url, airflow_run_id)
    keys = ("day", "champion_version", "drift_share", "drifted_features", "score_movers", "live_metric", "evidence")
    return {k: record[k] for k in (*keys, "onset")} | {"report_html": record["report_html"]}


def measure(
    usecase: UseCase, start: dt.datetime, end: dt.datetime, warehouse_url: str, airflow_run_id: str
) -> dict[str, Any]:
    """Monitor the night ``[start, end)``: reports, MLflow run, history row. Returns the history record.

    Raises:
        NoChampion: nothing to monitor yet.
        EmptyWindow: no entity active in the current window.
        NoReference: the champion's training window cannot be read.
        ReportRenderError: the HTML could not be written (the numbers are recorded first).
    """
    from pipelines.inference.batch import pin_pair
    from pipelines.monitoring import report

    t0 = time.perf_counter()
    spec = spec_of(usecase)
    client = mlflow_store.configure()
    # The comparison with a challenger is best effort: a broken one never blocks the night.
    champion, challenger = pin_pair(usecase)
    current_start = end - dt.timedelta(days=spec.current_days)
    cur, current_rows = data.current(usecase, current_start, end, spec.sample_rows)
    ref = data.reference(usecase, champion.version, spec.sample_rows)
    model = mlflow_store.load_model(champion.uri)
    features = data.model_features(usecase)
    log.info(
        "monitoring %s [%s, %s): %d current rows (%d compared) against v%s's training window [%s, %s) "
        "(%d rows, %d compared)",
        usecase.name, current_start, end, current_rows, len(cur), champion.version, ref.window_start[:10],
        ref.window_end[:10], ref.rows, len(ref.frame),
    )  # fmt: skip
    reference_scored, current_scored = data.score(model, ref.frame), data.score(model, cur)
    served, live_start, live_end = data.matured(usecase, end, spec.performance_days)
    shadow, _, _ = data.matured(usecase, end, spec.performance_days, "shadow")
    # The pinned versions carry their thresholds; older versions that served matured days are looked up.
    thresholds = {champion.version: champion.threshold}
    if challenger is not None:
        thresholds[challenger.version] = challenger.threshold
    for version in {str(v) for v in served["model_version"].unique()} - set(thresholds):
        found = mlflow_store.find_version(client, mlflow_store.model_name(usecase), version)
        thresholds[version] = mlflow_store.decision_threshold(found)
    live = live_metrics(usecase, served, thresholds)
    primary = ref.primary_metric
    # The champion's own live figure on every matured row it scored, served or shadow-scored (as a canary).
    mine = pd.concat([f[f["model_version"].astype(str) == champion.version] for f in (served, shadow)])
    own = live_metrics(usecase, mine, thresholds).get(champion.version, {}) if len(mine) else {}
    served_live, served_holdout, weighed_rows = served_metric(live, primary)
    both = shadowed_rows(served, shadow)
    comparison = shadow_comparison(usecase, both, thresholds, primary)

    key = night_key(end)
    out_dir = drift_dir(usecase.name)
    snapshot = report.drift_snapshot(reference_scored, current_scored, features, data.SCORE, spec)
    numbers = report.drift_numbers(snapshot, features, data.SCORE)  # read before any HTML is rendered
    # Which drifted features moved the champion's scores most: its exact contributions, reference vs current.
    moved = movers.score_movers(model, ref.frame, cur, numbers["drifted_features"])
    record: dict[str, Any] = {
        "usecase": usecase.name,
        "night": end.isoformat(),
        "day": key,
        "champion_version": champion.version,
        "challenger_version": challenger.version if challenger and challenger.version != champion.version else None,
        "reference": {
            "version": ref.version,
            "window_start": ref.window_start,
            "window_end": ref.window_end,
            "rows": ref.rows,
            "compared_rows": len(ref.frame),
            "data_hash": ref.data_hash,
            "training_set": ref.training_set,
            "training_run_id": ref.training_run_id,
        },
        "current": {
            "window_start": current_start.isoformat(),
            "window_end": end.isoformat(),
            "rows": current_rows,
            "compared_rows": len(cur),
        },
        "sampled": len(cur) < current_rows or len(ref.frame) < ref.rows,
        "sample_rows": spec.sample_rows,
        **numbers,
        "score_movers": moved,  # the drifted features that moved the champion's mean margin most
        "primary_metric": primary,
        "holdout_metric": ref.holdout_metric,
        "live": {
            "window_start": live_start.isoformat(),
            "window_end": live_end.isoformat(),
            "rows": len(served),
            "champion_rows": len(mine),
            "weighed_rows": weighed_rows,
            "by_version": live,
            "note": live_note(usecase, champion.version, live, live_start, live_end),
        },
        "live_metric": served_live,  # of the served predictions, whichever version served them
        "live_holdout_metric": served_holdout,  # the same weighting of the serving versions' holdout figures
        "champion_live_metric": own.get(primary),
        "shadow": comparison,
        "airflow_run_id": airflow_run_id,
    }
    ev = evidence_from(record)
    previous_night = _night_before(warehouse_url, usecase, end)
    found = policy.evidence_of(ev, spec.retrain)
    onset = policy.onset_of(ev, spec.retrain, previous_night)
    record["evidence"] = [text for text, _ in found]
    record["onset"] = onset.isoformat() if onset else None
    paths = {"json": out_dir / f"{key}.json", "html": out_dir / f"{key}.html"}
    # The numbers survive a report that fails to render (or a process killed while it renders): they
    # are recorded first, naming no HTML report until one exists (found by tests/reliability/test_faults.py).
    record["report_json"], record["report_html"] = str(paths["json"]), None
    report.write_json(paths["json"], record)
    _write_history(warehouse_url, usecase, end, record)
    rendered = report.render(paths["html"], record, snapshot, served, both, usecase, data.TARGET, data.SCORE)
    record["report_html"] = str(paths["html"])
    record["report_files"] = [str(p) for p in rendered]
    if spec.keep_reports_days:
        pruned = report.prune(out_dir, key, spec.keep_reports_days)
        if pruned:
            log.info(
                "deleted %d reports older than %d days (monitoring.keep_reports_days)",
                len(pruned),
                spec.keep_reports_days,
            )
    shown = report.newest_pair(both)
    if comparison and not shown.empty:  # which pair <day>.shadow.html shows
        record["shadow"]["report_pair"] = [
            str(shown["model_version"].iloc[0]),
            str(shown["model_version_shadow"].iloc[0]),
        ]
    # MLflow keeps the numbers (the JSON record); the HTML reports stay one copy, in the reports folder.
    record["mlflow_run_id"] = _log_to_mlflow(client, usecase, record, [paths["json"]])
    record["seconds"] = round(time.perf_counter() - t0, 2)
    report.write_json(paths["json"], record)
    _write_history(warehouse_url, usecase, end, record)
    log.info(
        "%s %s: %s of features drifted (score movers: %s), prediction drift %s, live %s %s; evidence: %s; report %s",
        usecase.name, key, _pct(record["drift_share"]), movers.summary(record["score_movers"]) or "none",
        record["prediction_drift"]["score"], primary, "n/a" if served_live is None else f"{served_live:.4f}",
        record["evidence"] or "none", paths["html"],
    )  # fmt: skip
    return record


def _night_before(url: str, usecase: UseCase, end: dt.datetime) -> dict[str, Any] | None:
    """The history record of the night just before ``end`` (None when that night was not monitored)."""
    earlier = store.read(url, store.HISTORY, usecase.name, before=end, last=1)
    expected = (end - spec_of(usecase).interval).isoformat()
    return earlier[-1] if earlier and earlier[-1]["night"] == expected else None


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def evidence_from(record: dict[str, Any]) -> policy.Evidence:
    """The policy's view of a history record."""
    return policy.Evidence(
        night=dt.datetime.fromisoformat(record["night"]),
        current_start=dt.datetime.fromisoformat(record["current"]["window_start"]),
        current_rows=record["current"]["rows"],
        drift_share=record["drift_share"],
        drifted_features=record["drifted_features"],
        prediction_drifted=record["prediction_drift"]["drifted"],
        holdout_metric=record["live_holdout_metric"],
        live_metric=record["live_metric"],
        live_rows=record["live"]["weighed_rows"],
        live_start=dt.datetime.fromisoformat(record["live"]["window_start"]),
        champion_version=record["champion_version"],
        champion_holdout_metric=record["holdout_metric"],
        champion_live_metric=record["champion_live_metric"],
        champion_live_rows=record["live"]["champion_rows"],
    )


def _write_history(url: str, usecase: UseCase, end: dt.datetime, record: dict[str, Any]) -> None:
    def number(value: Any) -> float | None:
        return float(value) if isinstance(value, int | float) and not math.isnan(value) else None

    store.write(
        url,
        store.HISTORY,
        usecase.name,
        end,
        record,
        champion_version=record["champion_version"],
        current_rows=record["current"]["rows"],
        drift_share=number(record["drift_share"]),
        prediction_drift=number(record["prediction_drift"]["score"]),
        live_metric=number(record["live_metric"]),
    )


def _log_to_mlflow(client: Any, usecase: UseCase, record: dict[str, Any], files: list[Path]) -> str:
    """One run per night in ``<use case>_monitoring``, named after the day; a rerun replaces the night's run."""
    experiment = mlflow_store.experiment_id(f"{usecase.name}_monitoring")
    name = f"drift {record['day']}"
    mlflow_store.delete_runs_named(client, experiment, name)
    values = {
        "drift_share": record["drift_share"],
        "drifted_features": len(record["drifted_features"]),
        "prediction_drift": record["prediction_drift"]["score"],
        "current_rows": record["current"]["rows"],
        "live_rows": record["live"]["weighed_rows"],
        f"live_{record['primary_metric']}": record["live_metric"],
        f"champion_live_{record['primary_metric']}": record["champion_live_metric"],
        f"holdout_{record['primary_metric']}": record["holdout_metric"],
    }
    for pair in (record.get("shadow") or {}).get("by_pair", []):  # champion vs challenger on the same rows
        values[f"shadow_v{pair['champion']}_{record['primary_metric']}"] = pair["champion_metric"]
        values[f"shadow_v{pair['challenger']}_{record['primary_metric']}"] = pair["challenger_metric"]
    with mlflow_store.start_run(experiment, name) as run:
        mlflow_store.log_metrics({k: float(v) for k, v in values.items() if metrics.is_number(v)})
        mlflow_store.set_tags(
            {
                "usecase": usecase.name,
                "champion_version": record["champion_version"],
                "reference_data_hash": record["reference"]["data_hash"],
                "sampled": str(record["sampled"]).lower(),
                "airflow_run_id": record["airflow_run_id"],
                "evidence": "; ".join(record["evidence"])[:4000] or "none",
                "reports": "; ".join(record.get("report_files") or [])[:4000] or "none",
                "score_movers": movers.summary(record["score_movers"])[:4000] or "none",
            }
        )
        mlflow_store.log_dict(record["score_movers"], "score_movers.json")
        for path in files:
            mlflow_store.log_artifact(path, "drift")
    return run.info.run_id


def decide_night(usecase: UseCase, end: dt.datetime, warehouse_url: str, in_flight: int) -> dict[str, Any]:
    """The retrain decision of the night ending at ``end``, recorded in ``retrain_decisions``.

    A night that already triggered keeps that decision (a retried or rerun task must
    not trigger twice); otherwise the policy decides from the night's history row.
    """
    spec = spec_of(usecase)
    existing = store.read_night(warehouse_url, store.DECISIONS, usecase.name, end)
    if existing and existing["action"] == policy.TRIGGERED:
        log.info("night %s already triggered %s: kept", end, existing["run_id"])
        return existing
    record = store.read_night(warehouse_url, store.HISTORY, usecase.name, end)
    if record is None:
        raise ValueError(f"no drift_history row for {usecase.name} night {end}: run the measure step first")
    previous_night = _night_before(warehouse_url, usecase, end)
    decisions = store.read(warehouse_url, store.DECISIONS, usecase.name, before=end)
    triggers = [d for d in decisions if d["action"] == policy.TRIGGERED]
    decision = policy.decide(
        usecase.name,
        evidence_from(record),
        spec.retrain,
        usecase.label.delay_days,
        previous_night,
        triggers[-1] if triggers else None,
        in_flight,
        canary.describe(usecase),
    ).to_dict()
    decision["usecase"] = usecase.name
    decision["day"] = night_key(end)
    decision["report_html"] = record.get("report_html")
    decision["champion_version"] = record["champion_version"]
    decision["run_id"] = run_id_for(usecase, decision) if decision["action"] == policy.TRIGGERED else None
    decision["conf"] = _train_conf(decision, spec.retrain) if decision["action"] == policy.TRIGGERED else None
    store.write(
        warehouse_url, store.DECISIONS, usecase.name, end, decision,
        action=decision["action"], dedupe_key=decision["dedupe_key"],
    )  # fmt: skip
    log.info("%s retrain decision %s: %s (%s)", usecase.name, night_key(end), decision["action"], decision["reason"])
    return decision


def _train_conf(decision: dict[str, Any], retrain: RetrainPolicySpec) -> dict[str, Any]:
    """What the triggered train run is told: why, the report, the drifted features, its window (and split)."""
    conf = {
        "reason": f"drift monitor {decision['day']}: {decision['reason']}"[:1000],
        "drift_report": decision.get("report_html") or "",
        "drifted_features": decision.get("drifted_features") or [],
        "window_end": decision["window_end"],
    }
    if decision.get("window_days"):  # a retrain on the days since the onset, split as the policy says
        conf["window_days"] = decision["window_days"]
        for field in ("validation_days", "holdout_days"):
            if getattr(retrain, field) is not None:
                conf[field] = getattr(retrain, field)
    return conf
