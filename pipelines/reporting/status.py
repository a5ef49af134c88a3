"""The state of every use case, as ``mlops status`` prints it (and the UI plugin will show it).

Reads what the stages recorded (partitions, the materialization record, the
registry, the warehouse); computes nothing anew. A store that cannot be reached
is reported in its entry, never raised: the status of the rest still shows.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from pipelines import settings
from pipelines.config import UseCase
from pipelines.reporting.models import model_status
from pipelines.stores.source import masked_url

WarehouseUrl = Callable[[str], "str | None"]


def status(
    usecases: list[UseCase], warehouse_url: WarehouseUrl, config_errors: dict[str, str] | None = None
) -> dict[str, Any]:
    """Machine-readable state: folders, use-case files that do not load, and per use case its
    partitions, features, model, predictions and drift monitor.

    Args:
        warehouse_url: the SQLAlchemy URL of a connection id (None when it cannot be resolved).
        config_errors: use-case file -> why it does not load (``pipelines.config.scan``).
    """
    from pipelines.features.definitions import FEATURES_ZONE
    from pipelines.stores import partitions

    out: dict[str, Any] = {
        "mlops_home": str(settings.mlops_home()),
        "airflow_home": str(settings.airflow_home()),
        "config_errors": dict(config_errors or {}),
        "usecases": {},
    }
    for usecase in usecases:
        datasets = {}
        for name in usecase.source.datasets:
            curated = partitions.list_partitions(partitions.CURATED, usecase.name, name)
            quarantined = partitions.list_partitions(partitions.QUARANTINE, usecase.name, name)
            try:
                latest = partitions.read_info(curated[-1]) if curated else None
            except partitions.CorruptPartition as exc:
                latest, corrupt = None, str(exc)
            else:
                corrupt = None
            datasets[name] = {
                "curated_partitions": len(curated),
                "latest_partition": latest.key if latest else None,
                "latest_rows": latest.rows if latest else None,
                "latest_error": corrupt,
                # A quarantine file is open until a later run of its interval passes (then it
                # moves to quarantine/.../resolved/); the interval may still hold older curated rows.
                "quarantined_open": [p.stem for p in quarantined],
            }
        entry: dict[str, Any] = {"dags": usecase_dags(usecase), "datasets": datasets}
        if usecase.features:
            from pipelines.features.materialize import materialized_record

            record = materialized_record(usecase)
            entry["features"] = {
                "feature_partitions": len(
                    partitions.list_partitions(FEATURES_ZONE, usecase.name, usecase.features.dataset)
                ),
                "latest_materialized": json.loads(record.read_text()) if record.exists() else None,
            }
        if usecase.training:
            entry["model"] = model_status(usecase)
        if usecase.training and usecase.inference:
            entry["predictions"] = _predictions_status(usecase, warehouse_url)
        if usecase.monitoring and usecase.inference:
            entry["monitoring"] = _monitoring_status(usecase, warehouse_url)
        out["usecases"][usecase.name] = entry
    return out


def usecase_dags(usecase: UseCase) -> list[str]:
    """The DAG ids a use case has, by the sections of its YAML."""
    stages = ["ingest"] + (["features"] if usecase.features else [])
    if usecase.training:
        stages += ["train", "rollback"]
    if usecase.training and usecase.inference:
        stages.append("batch_inference")
    if usecase.monitoring and usecase.inference:
        stages.append("drift_monitor")
    return [usecase.dag_id(stage) for stage in stages]


def _monitoring_status(usecase: UseCase, warehouse_url: WarehouseUrl) -> dict | None:
    """The latest night of the drift monitor and the latest retrain decision (None before any)."""
    from pipelines.stores import monitoring as store

    assert usecase.inference is not None
    url = warehouse_url(usecase.inference.connection_id)
    if url is None:
        return None
    try:
        night = store.read(url, store.HISTORY, usecase.name, last=1)
        decisions = store.read(url, store.DECISIONS, usecase.name)
    except Exception as exc:  # an unreachable warehouse must not break `mlops status`
        return {"error": f"{type(exc).__name__}: {exc}"}
    if not night:
        return None
    h = night[-1]
    triggered = [d for d in decisions if d["action"] == "triggered"]
    return {
        "day": h["day"],
        "champion_version": h["champion_version"],
        "drift_share": h["drift_share"],
        "drifted_features": h["drifted_features"],
        "prediction_drift": h["prediction_drift"]["score"],
        "live_metric": h["live_metric"],
        "primary_metric": h["primary_metric"],
        "evidence": h["evidence"],
        "report": h.get("report_html"),
        "decision": {k: decisions[-1].get(k) for k in ("day", "night", "action", "reason")} if decisions else None,
        "last_triggered": triggered[-1]["night"] if triggered else None,
    }


def _predictions_status(usecase: UseCase, warehouse_url: WarehouseUrl) -> dict | None:
    """The newest predictions in the warehouse: as-of time, rows, model versions (None when none)."""
    from pipelines.stores import warehouse

    assert usecase.inference is not None
    url = warehouse_url(usecase.inference.connection_id)
    if url is None:
        return None
    try:
        latest = warehouse.latest(url, warehouse.PREDICTIONS, usecase.name)
        return latest and latest | {
            "shadow": warehouse.latest(url, warehouse.SHADOW, usecase.name),
            "table": warehouse.PREDICTIONS,
            "url": masked_url(url),
        }
    except Exception as exc:  # an unreachable warehouse must not break `mlops status`
        return {"error": f"{type(exc).__name__}: {exc}"}


def render_status(data: dict[str, Any]) -> str:
    """:func:`status` as the text ``mlops status`` prints."""
    lines: list[str] = []
    lines.append(f"state folder   {data['mlops_home']}\nairflow home   {data['airflow_home']}")
    for name, uc in data["usecases"].items():
        lines.append(f"\nuse case {name}  (DAGs: {', '.join(uc['dags'])})")
        lines.append(f"  {'dataset':<12}{'partitions':>12}{'latest':>14}{'rows':>10}  quarantined")
        for ds, d in uc["datasets"].items():
            lines.append(
                f"  {ds:<12}{d['curated_partitions']:>12}{d['latest_partition'] or '-':>14}"
                f"{d['latest_rows'] if d['latest_rows'] is not None else '-':>10}  "
                f"{', '.join(d['quarantined_open']) or 'none'}"
            )
        if "features" in uc:
            latest = uc["features"]["latest_materialized"]
            lines.append(
                f"  features: {uc['features']['feature_partitions']} partitions; latest materialized interval: "
                + (f"[{latest['interval_start']}, {latest['interval_end']}]" if latest else "none")
            )
        if uc.get("model"):
            m = uc["model"]
            aliases = ", ".join(f"{a} v{v}" for a, v in m["aliases"].items() if v) or "no aliases"
            lines.append(f"  model {m['model']}: {m['versions']} versions; {aliases}")
            if m.get("rollout"):
                r = m["rollout"]
                judged = r["latest_judgment"]
                lines.append(
                    f"  rollout: canary v{r['version']} serves {r['fraction']:.0%} of the entities since "
                    f"{r['started'][:10]} (against v{r['champion']}); "
                    + (
                        f"night {judged['night'][:10]}: {judged['action']}: {judged['reason']}"
                        if judged
                        else "not judged yet"
                    )
                )
            if m["latest_decision"]:
                d = m["latest_decision"]
                what = d.get("decision") or ("rolled back" if d.get("changed") else "rollback: no change")
                lines.append(f"  latest decision: v{d['version']} {what} ({d['decided_at'][:19]}): {d['reason']}")
        elif "model" in uc:
            lines.append("  model: none trained yet (run the train DAG)")
        if uc.get("predictions"):
            p = uc["predictions"]
            if "error" in p:
                lines.append(f"  predictions: warehouse unreachable ({p['error']})")
            else:
                shadow = p.get("shadow")
                lines.append(
                    f"  latest predictions: as of {p['as_of']}, {p['rows']} rows by model version(s) "
                    f"{', '.join(p['versions'])}"
                    + (f"; shadow: {shadow['rows']} rows by v{', '.join(shadow['versions'])}" if shadow else "")
                )
                lines.append(f"  query them: table {p['table']} in {p['url']}")
        elif "predictions" in uc:
            lines.append("  predictions: none yet")
        if uc.get("monitoring"):
            m = uc["monitoring"]
            if "error" in m:
                lines.append(f"  monitoring: warehouse unreachable ({m['error']})")
            else:
                share = "n/a" if m["drift_share"] is None else f"{m['drift_share']:.0%}"
                live = "n/a (labels not matured)" if m["live_metric"] is None else f"{m['live_metric']:.4f}"
                lines.append(
                    f"  drift monitor, {m['day']}: champion v{m['champion_version']}, {share} of features drifted, "
                    f"live {m['primary_metric']} {live}; report {m['report']}"
                )
                if m["decision"]:
                    d = m["decision"]
                    lines.append(f"  retrain decision {d.get('day') or d['night'][:10]}: {d['action']} ({d['reason']})")
        elif "monitoring" in uc:
            lines.append("  drift monitor: no night monitored yet")
    return "\n".join(lines)
