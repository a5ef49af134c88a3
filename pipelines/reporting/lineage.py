"""One day's predictions, traced back through every store that made them (`mlops lineage`).

For the predictions of day D (as of D's end): the model version and its training
run (MLflow), the training window and its data hash, the validation results of
the curated partitions the day's features were computed from (Great
Expectations), the feature service and definitions (Feast), and the drift report
of that night with the retrain decision it led to (Evidently, the monitor). For
one entity, its score that day and the top reasons stored beside it
(``inference.reasons``). Everything is read from what the stages recorded;
nothing is recomputed.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from pipelines.config import UseCase
from pipelines.stores import partitions


def _day_interval(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(day, dt.time(0), tzinfo=dt.UTC)
    return start, start + dt.timedelta(days=1)


def _validation(usecase: UseCase, dataset: str, key: str) -> dict[str, Any]:
    from pipelines.ingestion.ingest import validation_record_path

    path = partitions.partition_path(partitions.CURATED, usecase.name, dataset, key)
    quarantined = partitions.partition_path(partitions.QUARANTINE, usecase.name, dataset, key).exists()
    info = partitions.read_info(path)
    record = validation_record_path(usecase.name, dataset, key)
    return {
        "partition": key,
        "status": "missing" if info is None else info.status,
        "rows": info.rows if info else None,
        "content_hash": info.content_hash if info else None,
        "warnings": info.warnings if info else [],
        "open_quarantine": quarantined,
        "validation_record": str(record) if record.exists() else None,
    }


def trace(usecase: UseCase, day: dt.date, warehouse_url: str, entity: str | None = None) -> dict[str, Any]:
    """The lineage record of ``usecase``'s predictions for ``day``; with ``entity``, also that entity's
    served prediction and its top reasons (``entity``: :func:`entity_prediction`).

    Raises:
        LookupError: no predictions were made for that day, or none for ``entity``.
    """
    from pipelines.features.definitions import FEATURES_ZONE
    from pipelines.inference.batch import DATASETS, PREDICTIONS_ZONE
    from pipelines.promotion.decisions import decisions_dir
    from pipelines.stores import mlflow_store
    from pipelines.stores import monitoring as store

    start, end = _day_interval(day)
    key = partitions.partition_key(start, end)
    path = partitions.partition_path(PREDICTIONS_ZONE, usecase.name, DATASETS["champion"], key)
    if not path.exists():
        raise LookupError(
            f"no {usecase.name} predictions for {key} ({path}): run {usecase.dag_id('batch_inference')} for that day"
        )
    served_entity = entity_prediction(usecase, path, key, entity) if entity is not None else None
    columns = ["model_name", "model_version", "training_run_id", "feature_service", "airflow_run_id"]
    if _has_stage(path):
        served = partitions.read_partition(path, columns=[*columns, "stage"])
    else:  # written before stages existed
        served = partitions.read_partition(path, columns=columns).assign(stage=None)
    versions = sorted(served["model_version"].astype(str).unique())
    models = []
    client = mlflow_store.configure()
    for version in versions:
        rows = served[served["model_version"].astype(str) == version]
        decision_path = decisions_dir(usecase) / f"v{version}.json"
        record = json.loads(decision_path.read_text()) if decision_path.exists() else {}
        run_id = str(rows["training_run_id"].iloc[0])
        try:
            run = client.get_run(run_id)
            run_info = {
                "run_id": run_id,
                "experiment_id": run.info.experiment_id,
                "run_name": run.info.run_name,
                "candidate": run.data.tags.get("candidate"),
                "git_commit": run.data.tags.get("git_commit"),
            }
        except Exception as exc:  # a deleted run must not hide the rest of the record
            run_info = {"run_id": run_id, "error": f"{type(exc).__name__}: {exc}"}
        primary = record.get("primary_metric")
        models.append(
            {
                "model": str(rows["model_name"].iloc[0]),
                "version": version,
                "rows_scored": len(rows),
                "served_as": sorted({str(v) for v in rows["stage"].dropna()}),  # champion, canary
                "scored_by_airflow_run": str(rows["airflow_run_id"].iloc[0]),
                "training_run": run_info,
                "parent_training_run_id": record.get("training_run_id"),
                "training_window_end": record.get("training_window_end"),
                "training_set": record.get("training_set"),
                "data_hash": record.get("data_hash"),
                "trained_by": {k: record.get(k) for k in ("airflow_dag_id", "airflow_run_id", "trigger")}
                | {"reason": record.get("trigger_reason")},
                "promotion": {
                    "decision": record.get("decision"),
                    "reason": record.get("reason"),
                    "holdout_days": record.get("holdout_days"),
                    primary or "metric": (record.get("challenger") or {}).get("metrics", {}).get(primary),
                    "record": str(decision_path) if decision_path.exists() else None,
                },
                "feature_service": str(rows["feature_service"].iloc[0]),
            }
        )
    features = None
    if usecase.features:
        feature_path = partitions.partition_path(FEATURES_ZONE, usecase.name, usecase.features.dataset, key)
        info = partitions.read_info(feature_path)
        first = day - dt.timedelta(days=usecase.features.history_days - 1)
        source_days = [(first + dt.timedelta(days=i)).isoformat() for i in range(usecase.features.history_days)]
        features = {
            "partition": str(feature_path),
            "rows": info.rows if info else None,
            "definitions_fingerprint": info.definition if info else None,
            "computed_from": {
                "dataset": usecase.features.dataset,
                "days": f"{source_days[0]}..{source_days[-1]}",
                "validation": [
                    _validation(usecase, usecase.features.dataset, d)
                    for d in source_days
                    if d >= usecase.schedule.start_date.isoformat()
                ],
            },
        }
    monitoring = None
    if usecase.monitoring:
        history = store.read_night(warehouse_url, store.HISTORY, usecase.name, end)
        decision = store.read_night(warehouse_url, store.DECISIONS, usecase.name, end)
        monitoring = {
            "drift_report": history.get("report_html") if history else None,
            "drift_json": history.get("report_json") if history else None,
            "mlflow_run_id": history.get("mlflow_run_id") if history else None,
            "drift_share": history.get("drift_share") if history else None,
            "drifted_features": history.get("drifted_features") if history else None,
            "prediction_drift": history.get("prediction_drift") if history else None,
            "live_metric": history.get("live_metric") if history else None,
            "evidence": history.get("evidence") if history else None,
            "retrain_decision": {k: decision.get(k) for k in ("action", "reason", "onset", "dedupe_key", "run_id")}
            if decision
            else None,
        }
    record = {
        "usecase": usecase.name,
        "day": key,
        "predictions": {"partition": str(path), "rows": len(served), "as_of": end.isoformat()},
        "models": models,
        "features": features,
        "monitoring": monitoring,
    }
    if served_entity is not None:
        record["entity"] = served_entity
    return record


def entity_prediction(usecase: UseCase, path: Any, key: str, entity: str) -> dict[str, Any]:
    """The prediction served to ``entity`` in the champion predictions partition ``path`` (of day
    ``key``): its score, decision, version, stage and top reasons (parsed; None when not stored, with
    ``reasons_note`` saying why).

    Raises:
        LookupError: the entity has no prediction that day.
    """
    import pyarrow.parquet as pq

    names = set(pq.read_schema(path).names)
    wanted = ["entity_id", "score", "decision", "model_version", "stage", "reasons"]
    table = pq.read_table(path, columns=[c for c in wanted if c in names], filters=[("entity_id", "=", str(entity))])
    rows = table.to_pylist()
    if not rows:
        raise LookupError(
            f"{usecase.entity.name} {entity} has no {usecase.name} prediction for {key} ({path}): it was not "
            "active that day, or had no feature values (see the day's skipped list)"
        )
    row = rows[0]
    text = row.get("reasons")
    if "reasons" not in names:
        note = "not stored: the day was scored before reasons were stored"
    elif text is None:
        note = "not stored: inference.reasons was 0 then, or the model could not be explained"
    else:
        note = None
    decision = row.get("decision")
    return {
        "id": str(row["entity_id"]),
        "score": float(row["score"]),
        "decision": None if decision is None else int(decision),
        "model_version": str(row["model_version"]),
        "stage": row.get("stage"),
        "reasons": json.loads(text) if text is not None else None,
        "reasons_note": note,
        # contributions are in margin units: log-odds (binary), the estimate itself (regression)
        "contributions_in": "log-odds" if usecase.task == "binary" else "the estimate's units",
    }


def render(record: dict[str, Any]) -> str:
    """The lineage record as text a person reads top to bottom."""
    lines = [f"lineage of {record['usecase']} predictions for {record['day']} (as of {record['predictions']['as_of']})"]
    lines.append(f"  predictions: {record['predictions']['rows']} rows in {record['predictions']['partition']}")
    e = record.get("entity")
    if e:
        decision = "" if e["decision"] is None else f", decision {e['decision']}"
        stage = e["stage"] or "champion"  # null in rows written before stages existed
        lines.append(f"  entity {e['id']}: score {e['score']:.4f}{decision}, by v{e['model_version']} ({stage})")
        if e["reasons"] is None:
            lines.append(f"    reasons: {e['reasons_note']}")
        else:
            lines.append(f"    top reasons (contributions to the score's {e['contributions_in']}):")
            lines += [f"      {_reason(r)}" for r in e["reasons"]]
    for m in record["models"]:
        run = m["training_run"]
        lines += [
            f"  model {m['model']} v{m['version']}: {m['rows_scored']} rows, scored by Airflow run "
            f"{m['scored_by_airflow_run']}",
            f"    MLflow training run {run.get('run_id')} (candidate {run.get('candidate')}, parent "
            f"{m['parent_training_run_id']}, git {run.get('git_commit')})",
            f"    training window ending {m['training_window_end']}; training set {m['training_set']}",
            f"    data hash {m['data_hash']}",
            f"    trained by {m['trained_by'].get('airflow_dag_id')} run {m['trained_by'].get('airflow_run_id')} "
            f"({m['trained_by'].get('trigger')}: {m['trained_by'].get('reason')})",
            f"    promotion: {m['promotion'].get('decision')} ({m['promotion'].get('reason')}); "
            f"record {m['promotion'].get('record')}",
            f"    feature service {m['feature_service']}",
        ]
    f = record.get("features")
    if f:
        checks = f["computed_from"]["validation"]
        bad = [c for c in checks if c["status"] != "curated" or c["warnings"] or c["open_quarantine"]]
        lines += [
            f"  features: {f['rows']} rows in {f['partition']} (definitions {f['definitions_fingerprint']})",
            f"    computed from {f['computed_from']['dataset']} days {f['computed_from']['days']}: "
            f"{len(checks)} partitions validated by Great Expectations, "
            + (f"{len(bad)} with warnings or failures: {[c['partition'] for c in bad]}" if bad else "all passed"),
        ]
    mon = record.get("monitoring")
    if mon:
        if mon["drift_report"]:
            share = mon["drift_share"]
            lines.append(
                f"  drift report of that night: {mon['drift_report']} (drifted features "
                f"{'n/a' if share is None else f'{share:.0%}'}, MLflow run {mon['mlflow_run_id']})"
            )
        else:
            lines.append("  drift report of that night: none (no monitor run for it)")
        d = mon["retrain_decision"]
        if d:
            lines.append(
                f"  retrain decision: {d['action']} ({d['reason']})"
                + (f"; train run {d['run_id']}" if d["run_id"] else "")
            )
    return "\n".join(lines)


def _reason(reason: dict[str, Any]) -> str:
    value, contribution = reason["value"], float(reason["contribution"])
    effect = "raises" if contribution > 0 else "lowers" if contribution < 0 else "does not move"
    if value is None:
        shown = "missing"
    else:  # stored rounded to 6 decimals: a count shows as 3, not 3.0
        shown = str(int(value)) if float(value).is_integer() else str(value)
    return f"{reason['feature']} = {shown}: contribution {contribution:+.4f} ({effect} the score)"


def _has_stage(path: Any) -> bool:
    import pyarrow.parquet as pq

    return "stage" in pq.read_schema(path).names


def served_split(warehouse_url: str, usecase: UseCase, as_of: dt.datetime) -> dict[str, int]:
    """Rows of one day's predictions by the version and stage that served them (``"3 canary": 512``),
    and of a challenger's shadow scores (``"4 challenger": 2000``: scored, served to nobody)."""
    import pandas as pd

    from pipelines.stores import warehouse

    served = warehouse.read_interval(warehouse_url, "predictions", usecase.name, as_of)
    shadow = warehouse.read_interval(warehouse_url, "shadow_predictions", usecase.name, as_of)
    rows = pd.concat([served, shadow[shadow["stage"] == "challenger"]], ignore_index=True)
    if rows.empty:
        return {}
    counts = rows.groupby([rows["model_version"].astype(str), rows["stage"].fillna("champion")]).size()
    return {f"{version} {stage}": int(n) for (version, stage), n in counts.items()}
