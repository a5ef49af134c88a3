"""Alerts from tasks and failed runs, delivered by Airflow's HTTP notifier (``alerts:`` in the YAML).

A delivery that fails is logged and counted (``pipelines.alerts``), never raised: an
alert channel that is down does not fail a pipeline run.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Iterator
from typing import Any

from airflow.sdk import BaseNotifier

from pipelines.config import UseCase

log = logging.getLogger(__name__)


def alert(usecase: UseCase, event: str, message: str, **details: Any) -> bool:
    """Send one alert when the use case asks for ``event``; True when it was delivered."""
    spec = usecase.alerts
    if spec is None or event not in spec.events:
        return False
    from airflow.providers.http.notifications import HttpNotifier

    from pipelines import alerts

    body = alerts.payload(usecase.name, event, message, details)
    at = dt.datetime.now(dt.UTC).isoformat()  # when it was sent, for the record only
    try:
        notifier = HttpNotifier(
            http_conn_id=spec.connection_id,
            endpoint=spec.endpoint,
            json=body,
            extra_options={"timeout": spec.timeout_seconds},
        )
        notifier.notify({})  # the body as it is: no templating of what the pipeline wrote
    except Exception as exc:  # a receiver that is down must not fail the run
        log.warning("alert %s of %s not delivered (%s): %s", event, usecase.name, type(exc).__name__, exc)
        alerts.record(usecase.name, event, False, f"{type(exc).__name__}: {exc}", at)
        return False
    alerts.record(usecase.name, event, True, None, at)
    log.info("alert %s sent: %s", event, message)
    return True


@contextlib.contextmanager
def alert_on(usecase: UseCase, errors: type[BaseException] | tuple, event: str) -> Iterator[None]:
    """Alert ``event`` when the block raises one of ``errors``, then let it propagate."""
    try:
        yield
    except errors as exc:
        alert(usecase, event, str(exc)[:1000])
        raise


class RunFailed(BaseNotifier):
    """The ``on_failure_callback`` of every task: a task that failed for good fails its run."""

    def __init__(self, usecase: UseCase):
        super().__init__()
        self.usecase = usecase

    def notify(self, context: Any) -> None:
        ti = context.get("ti") or context.get("task_instance")
        dag_id, run_id = getattr(ti, "dag_id", "?"), context.get("run_id", "?")
        task_id = getattr(ti, "task_id", "?")
        error = context.get("exception")
        message = f"{dag_id} run {run_id}: task {task_id} failed" + (f": {str(error)[:500]}" if error else "")
        alert(self.usecase, "run_failed", message, dag_id=dag_id, run_id=run_id, task_id=task_id)


def failure_callbacks(usecase: UseCase) -> dict[str, Any]:
    """``on_failure_callback`` for a use case's tasks, when its alerts include failed runs."""
    if usecase.alerts is None or "run_failed" not in usecase.alerts.events:
        return {}
    return {"on_failure_callback": [RunFailed(usecase)]}


def alert_gate(usecase: UseCase, record: dict[str, Any], plan: dict[str, Any]) -> None:
    """After the gate: a canary started, or a retrain the drift monitor asked for was rejected."""
    version = record["version"]
    if record["decision"] == "canary":
        share = f"{usecase.rollout.canary_fraction:.0%}"
        alert(usecase, "canary_started", f"{record['model']} v{version} passed the gate: a canary for {share} of the "
              f"entities against v{record['compared_with']}", version=version)  # fmt: skip
    elif record["decision"] == "rejected" and str(plan.get("reason", "")).startswith("drift monitor"):
        alert(usecase, "challenger_rejected_after_drift", f"{record['model']} v{version}, trained after drift, "
              f"was rejected: {record['reason']}", version=version, trigger=plan["reason"][:500])  # fmt: skip


def alert_canary(usecase: UseCase, version: str | None, stage: str, reason: str) -> None:
    """After a canary's judgment or a person's override: promoted (stage ``full``) or rolled back."""
    event = {"full": "canary_promoted", "rolled_back": "canary_rolled_back"}.get(stage)
    if event and version:
        alert(usecase, event, f"{usecase.name} v{version} {stage.replace('_', ' ')}: {reason}", version=version)
