"""Where a use case's alerts go and which events raise one."""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import Field

from pipelines.config.types import Strict

AlertEvent = Literal[
    "run_failed",
    "quarantine",
    "late_data",
    "retrain_triggered",
    "challenger_rejected_after_drift",
    "canary_started",
    "canary_promoted",
    "canary_rolled_back",
    "rollback",
    "approval_waiting",
]
EVENTS: tuple[str, ...] = get_args(AlertEvent)


class AlertsSpec(Strict):
    """Alerts as JSON POSTs through Airflow's HTTP notifier. The address and any credentials live in
    the Airflow connection (never in this file); a channel that is down never fails a run."""

    connection_id: str = Field(
        default="mlops_alerts", description="Airflow HTTP connection: the receiver's URL (and credentials)."
    )
    endpoint: str = Field(default="", description="Path appended to the connection's URL.")
    events: list[AlertEvent] = Field(
        default_factory=lambda: list(EVENTS),
        description=f"Events that raise an alert (default: all of {list(EVENTS)}).",
    )
    timeout_seconds: float = Field(default=5, gt=0, le=60, description="How long one alert may take to deliver.")
