"""Reading a running task's context, and failing it the right way on bad input."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

if TYPE_CHECKING:
    from pipelines.engines.spark import SparkTarget

log = logging.getLogger(__name__)


def sqlalchemy_url(conn_id: str) -> str:
    """The SQLAlchemy URL of an Airflow connection, looked up from inside a task."""
    from airflow.sdk.exceptions import AirflowNotFoundException

    from pipelines.stores.source import url_from_connection

    try:
        conn = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        raise AirflowNotFoundException(
            f"connection '{conn_id}' is not defined: run `mlops init`, or set "
            f"AIRFLOW_CONN_{conn_id.upper()} to a SQLAlchemy URL"
        ) from None
    return url_from_connection(conn)


def spark_target(usecase: Any) -> SparkTarget | None:
    """The Spark cluster of the ``mlops_spark`` connection for a use case on ``engine: spark``, looked up from
    inside a task; None for the local engine, or when the connection is not defined (the engine then
    takes ``$MLOPS_SPARK_MASTER``, else ``local[2]``)."""
    from airflow.sdk.exceptions import AirflowNotFoundException

    from pipelines.engines.spark import target_from_connection
    from pipelines.settings import SPARK_CONN_ID

    if usecase.engine != "spark":
        return None
    try:
        return target_from_connection(BaseHook.get_connection(SPARK_CONN_ID))
    except AirflowNotFoundException:
        return None


@contextlib.contextmanager
def task_errors() -> Iterator[None]:
    """Fail the task without retries on bad input (:class:`pipelines.errors.BadInput`): running
    again on the same input would fail the same way. Input that is not complete yet
    (:class:`pipelines.errors.NotYet`) reschedules the task to when it will be, holding no
    worker slot, as a sensor in reschedule mode waits. Other errors are left to Airflow's retries."""
    from airflow.sdk.exceptions import AirflowFailException, AirflowRescheduleException

    from pipelines.errors import BadInput, NotYet
    from pipelines.stores.home import check_not_moved

    try:
        check_not_moved()  # a copied state folder whose stores still name the original: refuse
        yield
    except BadInput as exc:
        raise AirflowFailException(str(exc)) from None
    except NotYet as exc:
        log.info("%s: waiting until %s", exc, exc.ready_at.isoformat())
        raise AirflowRescheduleException(reschedule_date=exc.ready_at) from None


def run_facts(context: Any) -> dict[str, str]:
    """What records of a run name it by (MLflow tags, decision records): DAG, run and trigger.

    The trigger is the run type as Airflow names it, lower case without the enum
    prefix (``scheduled``, ``manual``, ``asset_triggered``, ``backfill``).
    """
    run = context["dag_run"]
    return {
        "airflow_dag_id": context["dag"].dag_id,
        "airflow_run_id": context["run_id"],
        "trigger": str(run.run_type).split(".")[-1].lower(),
        "triggered_by": getattr(run, "triggering_user_name", None) or "unknown",
    }
