"""Rollback: make an earlier version the champion again, checked, guarded and recorded.

The target (by default the version holding ``previous``) must exist and load and
score its logged input example before the champion moves; the move itself is the
store's guarded :func:`~pipelines.stores.mlflow_store.restore_champion`.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import pandas as pd

from pipelines.config import UseCase
from pipelines.errors import BadInput
from pipelines.promotion.decisions import write_record
from pipelines.stores import mlflow_store
from pipelines.stores.mlflow_store import CHAMPION, PREVIOUS, ROLLED_BACK

log = logging.getLogger(__name__)


class RollbackError(BadInput):
    """The rollback target does not exist, does not load, or there is none."""


def rollback_requested(usecase: UseCase, target: int | str | None, reason: str, run: dict[str, str]) -> dict:
    """:func:`rollback` as the rollback DAG asks for it (``run``: who and which run); logs the verdict."""
    record = rollback(
        usecase,
        str(target) if target else None,
        reason,
        run.get("triggered_by") or "unknown",
        {"airflow_dag_id": run["airflow_dag_id"], "airflow_run_id": run["airflow_run_id"]},
    )
    moved = f"rolled back from v{record.get('from_version')}" if record.get("changed") else "nothing changed"
    log.info("VERDICT: %s champion is v%s (%s)", record["model"], record["version"], moved)
    return record


def rollback(usecase: UseCase, target: str | None, reason: str, who: str, context: dict | None = None) -> dict:
    """Make ``target`` (default: the version holding ``previous``) the champion again.

    The target must exist and load and score its logged input example. The
    demoted champion gets the alias ``rolled_back`` and ``previous`` is cleared
    when it was the target, so running the same rollback again changes nothing.
    If the champion moves while the target is checked, nothing changes.

    Raises:
        RollbackError: no such version, it does not load or score, or no target to default to.
    """
    client = mlflow_store.configure()
    name = mlflow_store.model_name(usecase)
    champion = mlflow_store.alias_version(client, name, CHAMPION)
    if not target:
        target = mlflow_store.alias_version(client, name, PREVIOUS)
        if target is None:
            if champion is not None and mlflow_store.alias_version(client, name, ROLLED_BACK) is not None:
                log.info("no version holds '%s': the last rollback is done, v%s is champion", PREVIOUS, champion)
                return {
                    "kind": "rollback",
                    "model": name,
                    "version": champion,
                    "changed": False,
                    "reason": "nothing to do: already rolled back",
                }
            raise RollbackError(f"no version of '{name}' holds '{PREVIOUS}': name the version to roll back to")
    target = str(target).removeprefix("v")
    if mlflow_store.find_version(client, name, target) is None:
        raise RollbackError(
            f"'{name}' has no version {target} (versions: {mlflow_store.version_numbers(client, name)})"
        )
    try:
        model = mlflow_store.load_model(mlflow_store.version_uri(name, target))
        example = model.input_example
        if example is not None:
            model.predict(pd.DataFrame(example))
    except Exception as exc:
        raise RollbackError(f"{name} v{target} does not load or score: {type(exc).__name__}: {exc}") from None
    record: dict[str, Any] = {
        "kind": "rollback",
        "model": name,
        "version": target,
        "from_version": champion,
        "reason": reason,
        "by": who,
        "decided_at": dt.datetime.now(dt.UTC).isoformat(),
    } | (context or {})
    try:
        current = mlflow_store.restore_champion(client, name, target, champion)
    except mlflow_store.ChampionMoved as moved:
        raise RollbackError(
            f"the champion of '{name}' moved from v{champion} to v{moved.current} during the rollback: "
            "nothing changed; check the registry and run it again"
        ) from None
    record["from_version"] = current
    record["changed"] = current != target
    if not record["changed"]:
        log.info("v%s of %s is already champion: nothing changed", target, name)
        return record
    stamp = record["decided_at"].replace(":", "").replace("-", "")[:15]
    path = write_record(usecase, f"rollback-{stamp}-v{target}.json", record)
    mlflow_store.set_version_tags(
        client,
        name,
        target,
        {
            "rollback_by": who,
            "rollback_reason": reason[:4000] or "(none given)",
            "rollback_at": record["decided_at"],
            "rollback_from": str(current),
            "rollback_record": str(path),
        },
    )
    log.info("rolled %s back from v%s to v%s (%s, by %s)", name, current, target, reason, who)
    return record
