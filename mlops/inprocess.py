"""Runs of the project's DAGs in this process (``mlops demo``, ``mlops replay``, the tests): the one seam
between this project and Airflow's internals.

Airflow has no public API for what the in-process runner needs beyond
``DAG.test`` (one run of a DAG in the calling process). What else it uses is
internal, checked against the Airflow versions in :data:`AIRFLOW_CHECKED` (the
range ``pyproject.toml`` pins), and held by ``tests/integration/test_inprocess_seam.py``,
which fails naming the piece that moved when an upgrade changes one of them:

- ``airflow.dag_processing.dagbag.DagBag``: parse the DAGs folder (``dags``, ``import_errors``);
- ``DAG.test(logical_date=, run_after=, run_conf=)``: one run; a second call at the same
  logical date replaces the first run (a rerun of an interval);
- ``DagRun`` rows (``dag_id``, ``run_id``, ``state``, ``logical_date``, ``run_after``, ``conf``):
  the runs a ``TriggerDagRunOperator`` queued, marking a run stopped from outside
  failed (as the UI's "mark failed" does);
- a queued run is run as it is (``DAG.test`` would replace it by a ``manual__`` run):
  ``DagSerialization`` round trip, ``DagRun.update_state`` and
  ``airflow.sdk.definitions.dag._run_task``, the loop and task runner of ``DAG.test``;
- a DAG's ``params`` and its tasks' ``params`` (a run's conf is resolved into them in place);
- ``DagRun.start_date``: ``DAG.test`` starts a run at its logical date (a 2025 day replayed in
  2026 showed a duration of hundreds of days); the runner sets it to when its first task started.

Task logs go where the UI reads them through a listener (:mod:`mlops.task_logs`).
Nothing here patches Airflow. ``DAG.test`` parses and syncs the whole DAGs
folder on every call (apache/airflow#64884, so that the targets of a
``TriggerDagRunOperator`` exist): 0.3 to 0.7 s a run here, most of a small run's
cost. The first run of a process (and the first after a DAG or config file
changed) lets it sync the whole folder; later ones set ``MLOPS_ONLY_DAG`` while
it re-parses, so the DAG files build only the DAG being run (``dagkit.usecases``,
the same filter Airflow's workers apply through the parsing context).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops import task_logs
from mlops.airflow_admin import prepare
from pipelines import settings

log = logging.getLogger(__name__)

AIRFLOW_CHECKED = (">=3.3.2", "<3.4")  # the versions this module was checked against


def load_dag(dag_id: str) -> Any:
    """The DAG ``dag_id`` parsed from the project's dags folder.

    Import errors of other files (a broken use-case file, say) are logged, not
    raised: the DAGs of the other use cases still run.

    Raises:
        KeyError: no such DAG; the message lists the import errors, which may be why.
    """
    prepare()
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(settings.dags_dir()))
    dag = bag.dags.get(dag_id)
    if dag is None:
        errors = "".join(f"\n{path}: {error}" for path, error in bag.import_errors.items())
        raise KeyError(f"no DAG '{dag_id}' in {settings.dags_dir()} (have: {sorted(bag.dag_ids)}){errors}")
    for path, error in bag.import_errors.items():
        log.warning("DAG import error in %s (other DAGs still run): %s", path, error.strip().splitlines()[-1])
    return dag


def is_asset_driven(timetable: Any) -> bool:
    """Whether a DAG runs when assets update (its runs have no timetable interval)."""
    return "Asset" in type(timetable).__name__


@contextlib.contextmanager
def _root_log_stream(stream: Any) -> Any:
    """Point the root logger's stream handlers (Airflow's task log output) at ``stream`` for a while."""
    handlers = [h for h in logging.getLogger().handlers if isinstance(h, logging.StreamHandler)]
    # Swap without setStream(), which flushes the old stream: it may already be closed.
    previous = [h.stream for h in handlers]
    for handler in handlers:
        handler.stream = stream
    try:
        yield
    finally:
        for handler, old in zip(handlers, previous, strict=True):
            handler.stream = old


@contextlib.contextmanager
def _output_to(log_file: Path | None) -> Any:
    """Send everything a run prints and logs to ``log_file`` (nothing changes without one)."""
    with contextlib.ExitStack() as stack:
        if log_file is not None:
            log_file.parent.mkdir(parents=True, exist_ok=True)
            fh = stack.enter_context(open(log_file, "w"))
            stack.enter_context(contextlib.redirect_stdout(fh))
            stack.enter_context(contextlib.redirect_stderr(fh))
            stack.enter_context(_root_log_stream(fh))
        yield


@contextlib.contextmanager
def params_restored(dag: Any) -> Any:
    """Undo what a run's conf writes into the DAG's own Param objects.

    Airflow resolves a run's conf into the DAG's Param objects in place; a worker
    parses the DAG anew for every task, but ``dag.test`` in one process reuses the
    objects, so one run's conf would become the next run's defaults.
    """
    import copy

    saved = copy.deepcopy(dag.params), {t.task_id: copy.deepcopy(t.params) for t in dag.tasks}
    try:
        yield
    finally:
        dag.params = saved[0]
        for task in dag.tasks:
            task.params = saved[1][task.task_id]


_FULLY_SYNCED: dict[str, tuple] = {}  # "dags": fingerprint of the DAG folder when DAG.test last synced all of it

ONLY_DAG_ENV = "MLOPS_ONLY_DAG"  # read by dagkit.usecases at parse time


def _dag_folder_fingerprint() -> tuple:
    """Names, sizes and times of the DAG and config files: what a re-parse could see change."""
    files = sorted([*settings.dags_dir().rglob("*.py"), *settings.configs_dir().glob("*.yaml")])
    return tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in files)


@contextlib.contextmanager
def _parse_only(dag_id: str) -> Any:
    """While ``DAG.test`` re-parses the DAGs folder, have the DAG files build ``dag_id`` only, once
    the whole folder was synced by this process (every other DAG is then in the metadata DB as on disk);
    the first, whole sync of a process holds the ``dag_sync`` lock."""
    from pipelines.locks import named_lock

    fingerprint = _dag_folder_fingerprint()
    if _FULLY_SYNCED.get("dags") != fingerprint:
        # One process at a time writes the whole folder's DAGs and Assets: two first syncs side by
        # side on a fresh metadata DB both insert the same Asset rows, and one fails on the unique key
        # (found by tests/reliability/test_concurrency.py). Later runs find the rows and only read them.
        with named_lock("dag_sync"):
            yield
        _FULLY_SYNCED["dags"] = fingerprint
        return
    before = os.environ.get(ONLY_DAG_ENV)
    os.environ[ONLY_DAG_ENV] = dag_id
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(ONLY_DAG_ENV, None)
        else:
            os.environ[ONLY_DAG_ENV] = before


@dataclass(frozen=True)
class RunOutcome:
    dag_id: str
    run_id: str
    interval_start: dt.datetime
    interval_end: dt.datetime
    state: str
    task_states: dict[str, str]
    try_numbers: dict[str, int]

    @property
    def ok(self) -> bool:
        return self.state == "success"

    @classmethod
    def of(cls, dr: Any, start: dt.datetime, end: dt.datetime, run_id: str | None = None) -> RunOutcome:
        """The outcome of the finished run ``dr`` (named ``run_id`` when it replaced a queued run)."""
        tis = dr.get_task_instances()
        return cls(
            dag_id=dr.dag_id,
            run_id=run_id or dr.run_id,
            interval_start=start,
            interval_end=end,
            state=str(dr.state),
            task_states={ti.task_id: str(ti.state) for ti in tis},
            try_numbers={ti.task_id: ti.try_number for ti in tis},
        )


def run_interval(
    dag: Any,
    start: dt.datetime,
    end: dt.datetime,
    conf: dict | None = None,
    log_file: Path | None = None,
) -> RunOutcome:
    """Run ``dag`` for the data interval ``[start, end)`` in this process with ``dag.test``.

    ``dag.test`` infers the last complete interval that ends at the logical date,
    so the run is keyed by ``end``; running the same interval again replaces that run.
    Two processes running the same interval at once take turns (the second waits, then
    replaces the first's finished run): ``DAG.test`` deletes a run of the same logical
    date it finds, so side by side the second would delete the first's task instances
    under it ("Task Instance not found"). With ``log_file``, the task logs go there
    instead of the terminal.
    """
    from pipelines.locks import named_lock

    with named_lock("runs", dag.dag_id, end.strftime("%Y-%m-%dT%H%M%S%z")), _output_to(log_file):
        asset_driven = is_asset_driven(dag.timetable)
        if asset_driven:  # no timetable intervals: the interval travels in the run's params
            conf = {"interval_start": start.isoformat(), "interval_end": end.isoformat(), **(conf or {})}
        with params_restored(dag), _parse_only(dag.dag_id):
            task_logs.enable()
            dr = dag.test(logical_date=end, run_after=end, run_conf=conf)
    _started_when_it_ran(dr)
    if not asset_driven and (dr.data_interval_start != start or dr.data_interval_end != end):
        raise RuntimeError(
            f"{dag.dag_id}: asked for [{start}, {end}) but Airflow ran "
            f"[{dr.data_interval_start}, {dr.data_interval_end}): is the timetable daily?"
        )
    return RunOutcome.of(dr, start, end)


def queued_runs(dag_id: str) -> list[dict[str, Any]]:
    """Runs of ``dag_id`` waiting in the metadata DB (for example created by a TriggerDagRunOperator)."""
    prepare()
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState

    with create_session() as session:
        runs = session.query(DagRun).filter(DagRun.dag_id == dag_id, DagRun.state == DagRunState.QUEUED).all()
        return [
            {"run_id": r.run_id, "conf": dict(r.conf or {}), "logical_date": r.logical_date, "run_after": r.run_after}
            for r in sorted(runs, key=lambda r: r.run_after)
        ]


def run_queued(dag: Any, queued: dict[str, Any], log_file: Path | None = None) -> RunOutcome:
    """Run a queued run of ``dag`` in this process, as a scheduler would pick it up.

    The run stays the one that was queued: its id (``drift_retrain__...``), its type
    (``operator_triggered``) and who triggered it, as under the scheduler. ``DAG.test``
    would replace it with a ``manual__`` run of its own, so this drives the run
    with the loop ``DAG.test`` itself uses: the run's state decides which tasks can
    run, and each runs in this process through the task runner ``DAG.test`` uses.
    """
    prepare()
    from airflow import settings as airflow_settings
    from airflow.models.dagrun import DagRun
    from airflow.sdk.definitions.dag import _run_task
    from airflow.serialization.serialized_objects import DagSerialization
    from airflow.utils import timezone
    from airflow.utils.state import DagRunState, TaskInstanceState

    task_logs.enable()
    with _output_to(log_file), params_restored(dag):
        session = airflow_settings.Session()
        try:
            dr = session.query(DagRun).filter(DagRun.dag_id == dag.dag_id, DagRun.run_id == queued["run_id"]).one()
            dr.dag = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag))
            dr.dag.on_success_callback, dr.dag.on_failure_callback = dag.on_success_callback, dag.on_failure_callback
            dr.state, dr.start_date = DagRunState.RUNNING, timezone.utcnow()
            session.commit()
            while dr.state == DagRunState.RUNNING:
                session.expire_all()
                schedulable, _ = dr.update_state(session=session)
                for ti in schedulable:
                    if ti.state != TaskInstanceState.UP_FOR_RESCHEDULE:
                        ti.try_number += 1
                    ti.state, ti.scheduled_dttm = TaskInstanceState.SCHEDULED, timezone.utcnow()
                session.commit()
                scheduled = [
                    t for t in dr.get_task_instances(session=session) if t.state == TaskInstanceState.SCHEDULED
                ]
                if not scheduled and dr.state == DagRunState.RUNNING:
                    time.sleep(0.5)  # a retry waiting for its delay
                for ti in scheduled:
                    try:
                        _run_task(ti=ti, task=dag.task_dict[ti.task_id], run_triggerer=True)
                    except Exception:
                        log.exception("task failed: %s", ti)
            outcome = RunOutcome.of(dr, dr.data_interval_start, dr.data_interval_end)
        finally:
            session.close()
    return outcome


def _started_when_it_ran(dr: Any) -> None:
    """Give the finished run ``dr`` the start date of its first task (``DAG.test`` gave it its logical date)."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        run = session.get(DagRun, dr.id)
        starts = [ti.start_date for ti in run.get_task_instances(session=session) if ti.start_date]
        if starts:
            run.start_date = dr.start_date = min(starts)


def mark_run_failed(dag_id: str, logical_date: dt.datetime) -> str | None:
    """Mark the run of ``dag_id`` at ``logical_date`` failed, with every unfinished task in it
    (a run stopped from outside, as the UI's "mark failed" does). Returns its run id, None if there is none."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, State, TaskInstanceState

    with create_session() as session:
        run = session.query(DagRun).filter(DagRun.dag_id == dag_id, DagRun.logical_date == logical_date).one_or_none()
        if run is None:
            return None
        for ti in run.get_task_instances(session=session):
            if ti.state not in State.finished:
                ti.state = TaskInstanceState.FAILED
        run.state = DagRunState.FAILED
        return run.run_id
