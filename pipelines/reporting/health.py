"""A use case's model health over its days: what the model-health page of the UI plugin shows and
``mlops health`` prints. Reads what the stages recorded; computes nothing anew.

One row per day: rows curated and quarantined, and for the nights the drift monitor ran, the
champion it watched, its live metric once labels matured, the share of drifted features, the
prediction drift and the retrain decision. Events mark the days a version was promoted,
rejected or rolled back, and the nights a retrain was triggered.
"""

from __future__ import annotations

import json
from typing import Any

from pipelines.config import UseCase
from pipelines.reporting.models import model_history, model_status
from pipelines.reporting.status import WarehouseUrl


def health(usecase: UseCase, warehouse_url: WarehouseUrl) -> dict[str, Any]:
    """The model-health record of ``usecase`` (a store that cannot be read is named in ``errors``)."""
    errors: dict[str, str] = {}
    days = _days(usecase)
    nights, decisions = monitoring_records(usecase, warehouse_url, errors)
    for night in nights:
        row = days.setdefault(night["day"], _empty_day(night["day"]))
        row.update(
            champion_version=night.get("champion_version"),
            live_metric=night.get("live_metric"),
            drift_share=night.get("drift_share"),
            prediction_drift=(night.get("prediction_drift") or {}).get("score"),
            drift_report=night.get("report_html"),
        )
    for decision in decisions:
        row = days.setdefault(decision["day"], _empty_day(decision["day"]))
        row.update(action=decision.get("action"), action_reason=decision.get("reason"))
    history = model_history(usecase) if usecase.training else []
    events = _events(usecase, history, decisions)
    return {
        "usecase": usecase.name,
        "task": usecase.task,
        "primary_metric": usecase.training.primary_metric if usecase.training else None,
        "model": model_status(usecase) if usecase.training else None,
        "versions": history,
        "latest_decision": decisions[-1] if decisions else None,
        "days": [days[d] for d in sorted(days)],
        "events": events,
        "errors": errors,
    }


def _empty_day(day: str) -> dict[str, Any]:
    return {
        "day": day,
        "rows": None,
        "quarantined": 0,
        "champion_version": None,
        "live_metric": None,
        "drift_share": None,
        "prediction_drift": None,
        "drift_report": None,
        "action": None,
        "action_reason": None,
    }


def _days(usecase: UseCase) -> dict[str, dict[str, Any]]:
    """Rows curated per day (over the use case's datasets) and the datasets quarantined that day."""
    from pipelines.stores import partitions

    days: dict[str, dict[str, Any]] = {}
    for dataset in usecase.source.datasets:
        for path in partitions.list_partitions(partitions.CURATED, usecase.name, dataset):
            try:
                info = partitions.read_info(path)
            except partitions.CorruptPartition:
                continue  # `mlops status` names it; the page shows the other days
            row = days.setdefault(info.key, _empty_day(info.key))
            row["rows"] = (row["rows"] or 0) + info.rows
        for path in partitions.list_partitions(partitions.QUARANTINE, usecase.name, dataset):
            days.setdefault(path.stem, _empty_day(path.stem))["quarantined"] += 1
    return days


def monitoring_records(
    usecase: UseCase, warehouse_url: WarehouseUrl, errors: dict[str, str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The drift monitor's nights and retrain decisions, oldest first (an unreadable store in ``errors``)."""
    if not (usecase.monitoring and usecase.inference):
        return [], []
    from pipelines.stores import monitoring as store

    url = warehouse_url(usecase.inference.connection_id)
    if url is None:
        errors["warehouse"] = f"connection {usecase.inference.connection_id} is not defined"
        return [], []
    try:
        return store.read(url, store.HISTORY, usecase.name), store.read(url, store.DECISIONS, usecase.name)
    except Exception as exc:  # an unreachable warehouse must not hide the rest of the page
        errors["warehouse"] = f"{type(exc).__name__}: {exc}"
        return [], []


def _events(usecase: UseCase, history: list[dict[str, Any]], decisions: list[dict[str, Any]]) -> list[dict]:
    """Promotions, canaries (their start, promotion or rollback), rejections, rollbacks and triggered
    retrains, by day, oldest first."""
    from pipelines.promotion.decisions import decisions_dir

    events = [
        {"day": _last_day(v["training_window_end"]) or (v["decided_at"] or "")[:10],
         "kind": v["decision"], "version": v["version"], "reason": v["reason"]}
        for v in history
    ]  # fmt: skip
    for path in sorted(decisions_dir(usecase).glob("rollback-*.json")):
        record = json.loads(path.read_text())
        if record.get("changed", True):
            day = (record.get("decided_at") or "")[:10]  # a rollback is decided by hand, on the wall clock
            events.append({"day": day, "kind": "rolled_back", "version": record["version"], "reason": record["reason"]})
    for path in sorted(decisions_dir(usecase).glob("rollout-v*.json")):  # a canary's end: full, or rolled back
        record = json.loads(path.read_text())
        for stage in record.get("stages", [])[1:]:
            kind = "promoted" if stage["stage"] == "full" else "rolled_back"
            reason = f"canary {stage['stage'].replace('_', ' ')} by {stage['by']}: {stage['reason']}"
            day = _last_day(stage["day"])
            events.append({"day": day, "kind": kind, "version": record["version"], "reason": reason})
    events += [
        {"day": d["day"], "kind": "triggered", "version": None, "reason": d.get("reason")}
        for d in decisions
        if d.get("action") == "triggered"
    ]
    order = {"triggered": 0, "canary": 1, "promoted": 1, "rejected": 1, "rolled_back": 2}  # a retrain, its verdict
    return sorted(events, key=lambda e: (e["day"], order.get(e["kind"], 3)))


def _last_day(window_end: str | None) -> str | None:
    """The last day of data in a training window ending (exclusive) at ``window_end``: the day its
    version was judged, in the data's days (a replay judges 2025's days in 2026)."""
    import datetime as dt

    if not window_end:
        return None
    return (dt.datetime.fromisoformat(window_end) - dt.timedelta(days=1)).date().isoformat()
