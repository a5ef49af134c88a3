"""A use case's model: its aliases and latest decision now, and the history of its versions."""

from __future__ import annotations

import json
from typing import Any

from pipelines.config import UseCase
from pipelines.promotion.canary import CANARY
from pipelines.promotion.decisions import decisions_dir
from pipelines.stores import mlflow_store
from pipelines.stores.mlflow_store import CHALLENGER, CHAMPION, PREVIOUS


def model_status(usecase: UseCase) -> dict[str, Any] | None:
    """Aliases of the use case's registered model and its latest decision, for ``mlops status``.

    None when nothing was ever trained (no local MLflow store and no server configured).
    """
    if not mlflow_store.store_exists():
        return None
    client = mlflow_store.configure()
    name = mlflow_store.model_name(usecase)
    records = sorted(decisions_dir(usecase).glob("*.json"), key=lambda p: p.stat().st_mtime)
    latest = json.loads(records[-1].read_text()) if records else None
    if latest and latest.get("kind") == "rollout":  # a stage change of a canary: its newest stage
        stage = latest["stages"][-1]
        latest = {"kind": "rollout", "version": latest["version"], "decision": stage["stage"],
                  "reason": f"{stage['by']}: {stage['reason']}", "decided_at": stage["day"]}  # fmt: skip
    return {
        "model": name,
        "versions": len(mlflow_store.version_numbers(client, name)),
        "aliases": {
            alias: mlflow_store.alias_version(client, name, alias) for alias in (CHAMPION, CHALLENGER, CANARY, PREVIOUS)
        },
        "rollout": _rollout(client, usecase),
        "latest_decision": {
            k: latest.get(k) for k in ("kind", "version", "decision", "reason", "decided_at", "changed")
        }
        if latest
        else None,
    }


def _rollout(client: Any, usecase: UseCase) -> dict[str, Any] | None:
    """The running canary: version, share, start and its newest judgment (None without one)."""
    from pipelines.promotion import canary

    current = canary.running(client, usecase)
    if current is None:
        return None
    judgments = (canary.read_record(usecase, current.version) or {}).get("judgments") or []
    last = judgments[-1] if judgments else None
    return {
        "version": current.version,
        "fraction": current.fraction,
        "started": current.started,
        "champion": current.champion,
        "latest_judgment": {k: last[k] for k in ("night", "action", "reason")} if last else None,
    }


def promotion_records(usecase: UseCase) -> list[dict[str, Any]]:
    """Promotion decision records (``reports/<use case>/decisions/v<N>.json``), oldest version first."""
    paths = decisions_dir(usecase).glob("v*.json")
    return sorted((json.loads(p.read_text()) for p in paths), key=lambda r: int(r["version"]))


def model_history(usecase: UseCase) -> list[dict[str, Any]]:
    """Every judged version, oldest first: its decision, why, its primary metric on the holdout and
    the champion's it was compared with, what triggered its training and on which holdout days."""
    from pipelines.responsible.explain import ranked

    history = []
    for record in promotion_records(usecase):
        primary = record["primary_metric"]
        theirs = (record.get("champion") or {}).get("metrics") or {}
        mine = record.get("challenger") or {}
        history.append(
            {
                "version": record["version"],
                "decision": record["decision"],
                "forced": record.get("forced", False),
                "reason": record["reason"],
                "primary_metric": primary,
                "metric": (record.get("challenger") or {}).get("metrics", {}).get(primary),
                "compared_with": record.get("compared_with"),
                "champion_metric": theirs.get(primary),
                "trigger": record.get("trigger"),
                "trigger_reason": record.get("trigger_reason"),
                "holdout_days": record.get("holdout_days") or [],
                "training_window_end": record.get("training_window_end"),
                "training_run_id": record.get("training_run_id"),
                "decided_at": record.get("decided_at"),
                # The responsible gate's figures (records written before it have none).
                "fairness": {a: f.get("gaps", {}) for a, f in (mine.get("fairness") or {}).items()},
                "behaviour": {t["name"]: t["status"] for t in mine.get("behaviour") or []},
                "top_features": [feature for feature, _ in ranked(mine.get("importance") or {})[:5]],
            }
        )
    return history
