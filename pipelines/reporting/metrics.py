"""Prometheus metrics of every use case (``/mlops/metrics`` of the UI plugin), from the records the
health page reads: the hook for Grafana and alerting (``docs/grafana/mlops-model-health.json``)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

from pipelines.config import UseCase
from pipelines.reporting.health import monitoring_records
from pipelines.reporting.models import model_status
from pipelines.reporting.status import WarehouseUrl, usecase_dags


def metrics_text(
    usecases: list[UseCase],
    warehouse_url: WarehouseUrl,
    last_success: dict[str, dt.datetime | None],
    now: dt.datetime,
) -> bytes:
    """The Prometheus text exposition. ``last_success``: DAG id -> end of its latest successful run."""
    from prometheus_client import CollectorRegistry, Gauge, generate_latest

    registry = CollectorRegistry()

    def gauge(name: str, doc: str, labels: tuple[str, ...]) -> Gauge:
        return Gauge(f"mlops_{name}", doc, ("usecase", *labels), registry=registry)

    champion = gauge("champion_version", "Registered-model version holding the champion alias", ())
    live = gauge("live_metric", "Champion's primary metric on the latest matured days", ("metric",))
    drifted = gauge("drifted_feature_share", "Share of features drifted on the latest monitored night", ())
    prediction = gauge("prediction_drift", "Prediction drift score of the latest monitored night", ())
    hours = gauge("hours_since_last_success", "Hours since the latest successful run of each DAG", ("dag_id",))
    rows = gauge("rows_curated", "Rows curated in the latest partition of each dataset", ("dataset",))
    quarantined = gauge("partitions_quarantined", "Partitions of each dataset in quarantine, unresolved", ("dataset",))
    decisions = gauge("retrain_decisions", "Retrain decisions of the drift monitor, by kind", ("action",))
    for usecase in usecases:
        # What the newest records say, not the health page's table of every day: this runs at every scrape.
        model = (model_status(usecase) if usecase.training else None) or {}
        version = (model.get("aliases") or {}).get("champion")
        if version is not None:
            champion.labels(usecase.name).set(float(version))
        nights, decided = monitoring_records(usecase, warehouse_url, {})
        if nights:
            latest = nights[-1]
            if latest.get("drift_share") is not None:
                drifted.labels(usecase.name).set(latest["drift_share"])
            score = (latest.get("prediction_drift") or {}).get("score")
            if score is not None:
                prediction.labels(usecase.name).set(score)
        matured = [n for n in nights if n.get("live_metric") is not None]
        if matured and usecase.training:
            live.labels(usecase.name, usecase.training.primary_metric).set(matured[-1]["live_metric"])
        for dag_id in usecase_dags(usecase):
            ended = last_success.get(dag_id)
            if ended is not None:
                hours.labels(usecase.name, dag_id).set((now - ended).total_seconds() / 3600)
        _datasets(usecase, rows, quarantined)
        for action, count in Counter(d["action"] for d in decided if d.get("action")).items():
            decisions.labels(usecase.name, action).set(count)
    return generate_latest(registry)


def _datasets(usecase: UseCase, rows: Any, quarantined: Any) -> None:
    from pipelines.stores import partitions

    for dataset in usecase.source.datasets:
        curated = partitions.list_partitions(partitions.CURATED, usecase.name, dataset)
        if curated:
            try:
                rows.labels(usecase.name, dataset).set(partitions.read_info(curated[-1]).rows)
            except partitions.CorruptPartition:
                pass  # no figure rather than a wrong one; `mlops status` names the file
        open_ = partitions.list_partitions(partitions.QUARANTINE, usecase.name, dataset)
        quarantined.labels(usecase.name, dataset).set(len(open_))
