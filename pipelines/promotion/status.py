"""What ``mlops status`` shows of a use case's model: its aliases and its latest decision."""

from __future__ import annotations

import json
from typing import Any

from pipelines.config import UseCase
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
    return {
        "model": name,
        "versions": len(mlflow_store.version_numbers(client, name)),
        "aliases": {
            alias: mlflow_store.alias_version(client, name, alias) for alias in (CHAMPION, CHALLENGER, PREVIOUS)
        },
        "latest_decision": {
            k: latest.get(k) for k in ("kind", "version", "decision", "reason", "decided_at", "changed")
        }
        if latest
        else None,
    }
