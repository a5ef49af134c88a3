"""The drift monitor's wait for the night's features."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseSensorOperator

from pipelines.config import UseCase


class DayReadySensor(BaseSensorOperator):
    """Waits until the night's features exist; skips when there is nothing to monitor.

    (A plain sensor class: ``@task.sensor`` imports a deprecated Airflow module at every parse.)
    """

    def __init__(self, usecase: UseCase, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.usecase = usecase

    def poke(self, context: Any) -> bool:
        from airflow.sdk.exceptions import AirflowSkipException

        from pipelines.monitoring.monitor import readiness

        state, message = readiness(self.usecase, context["data_interval_start"], context["data_interval_end"])
        self.log.info(message)
        if state == "skip":
            raise AirflowSkipException(message)
        return state == "ready"
