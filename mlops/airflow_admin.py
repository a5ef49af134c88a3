"""Airflow set-up and in-process runs, for the command line and the tests.

Call :func:`prepare` before anything imports Airflow: it fixes AIRFLOW_HOME and
the other settings the project runs with (values already in the environment win).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines import settings

log = logging.getLogger(__name__)


_QUIETENED: list[str] = []  # environment variables prepare() set only to quieten this process


def prepare(quiet: bool = True) -> None:
    """Point Airflow at this project's state and DAGs; optionally quieten its logs."""
    settings.apply_airflow_environment()
    import sys

    if str(settings.dags_dir()) not in sys.path:  # `dagkit`, as the DAG processor and workers import it
        sys.path.append(str(settings.dags_dir()))
    if quiet:
        import os

        if "AIRFLOW__LOGGING__LOGGING_LEVEL" not in os.environ:
            os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "WARNING"
            _QUIETENED.append("AIRFLOW__LOGGING__LOGGING_LEVEL")
        warnings.filterwarnings("ignore", message=r"Using `httpx` with `starlette.testclient`")
        logging.getLogger("alembic").setLevel(logging.WARNING)


def ensure_fernet_key() -> None:
    """Create the key that encrypts connection secrets, once; it must exist before Airflow starts."""
    import os

    path = settings.fernet_key_path()
    if not path.exists():
        from cryptography.fernet import Fernet

        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(Fernet.generate_key())
        path.chmod(0o600)
    os.environ.setdefault("AIRFLOW__CORE__FERNET_KEY", path.read_text().strip())


def migrate_db() -> None:
    """Create or upgrade the Airflow metadata database (idempotent)."""
    prepare()
    ensure_fernet_key()
    from airflow.utils import db

    db.upgradedb()


def ensure_connections() -> dict[str, str]:
    """Create the project's connections in the metadata DB when missing; never overwrite one.

    Returns what was done per connection id ("created" or "kept").
    """
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session
    from sqlalchemy import select

    done = {}
    with create_session() as session:
        for conn_id, url in settings.default_connection_urls().items():
            existing = session.scalar(select(Connection).where(Connection.conn_id == conn_id))
            if existing is not None:
                done[conn_id] = "kept"
                continue
            session.add(
                Connection(
                    conn_id=conn_id,
                    conn_type="generic",
                    description=f"SQLAlchemy URL of the {conn_id.removeprefix('mlops_')} database (mlops init)",
                    extra=json.dumps({"sqlalchemy_url": url}),
                )
            )
            done[conn_id] = "created"
    return done


def ui_login() -> tuple[str, str, Path]:
    """User, password and password file of the web UI's login (Airflow's simple auth manager).

    The password is generated once and kept in the file Airflow itself reads.
    """
    import secrets

    path = settings.airflow_home() / "simple_auth_manager_passwords.json.generated"
    passwords = json.loads(path.read_text()) if path.exists() else {}
    if "admin" not in passwords:
        passwords["admin"] = secrets.token_urlsafe(12)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(passwords))
        path.chmod(0o600)
    return "admin", passwords["admin"], path


def standalone_environment(port: int) -> dict[str, str]:
    """Environment for `airflow standalone` on this project's state, with normal (INFO) logs."""
    import os
    import sys

    env = {k: v for k, v in os.environ.items() if k not in _QUIETENED}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # it starts `airflow` processes
    env.setdefault("AIRFLOW__API__HOST", "127.0.0.1")
    env.setdefault("AIRFLOW__API__PORT", str(port))
    env.setdefault("AIRFLOW__API__BASE_URL", f"http://localhost:{env['AIRFLOW__API__PORT']}")
    env.setdefault("AIRFLOW__CORE__PARALLELISM", "4")  # a laptop, not a cluster
    return env


def connection_url(conn_id: str) -> str:
    """SQLAlchemy URL of a connection, resolved the way tasks resolve it (env var, then metadata DB).

    Falls back to the project default when the connection is defined nowhere.
    """
    from pipelines.stores.source import url_from_connection

    prepare()
    from airflow.exceptions import AirflowNotFoundException
    from airflow.models.connection import Connection

    try:
        conn = Connection.get_connection_from_secrets(conn_id)
    except AirflowNotFoundException:
        return settings.default_connection_urls()[conn_id]
    return url_from_connection(conn)


def load_dag(dag_id: str) -> Any:
    """The DAG ``dag_id`` parsed from the project's dags folder, failing on import errors."""
    prepare()
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(settings.dags_dir()))
    if bag.import_errors:
        raise RuntimeError(f"DAG import errors: {bag.import_errors}")
    dag = bag.get_dag(dag_id)
    if dag is None:
        raise KeyError(f"no DAG '{dag_id}' in {settings.dags_dir()} (have: {sorted(bag.dag_ids)})")
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


_SYNCED: dict[str, Any] = {}  # bundle name -> (DAG folder fingerprint, parsed bag), this process


def _dag_folder_fingerprint() -> tuple:
    """Names, sizes and times of the DAG and config files: what a re-parse could see change."""
    files = sorted([*settings.dags_dir().rglob("*.py"), *settings.configs_dir().glob("*.yaml")])
    return tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in files)


@contextlib.contextmanager
def _bundle_synced_once() -> Any:
    """Let ``dag.test`` parse and serialize the DAG folder once per process, not on every run.

    ``dag.test`` re-parses every DAG file and writes them all to the metadata DB on
    each call (so that TriggerDagRunOperator targets exist, apache/airflow#64884):
    about a second per run here, most of a small run's cost. While no DAG or config
    file changed, the bag parsed by the first call is reused and its sync skipped;
    the DAGs in the metadata DB are then already the ones on disk.
    """
    from unittest import mock

    from airflow.dag_processing import dagbag as dagbag_module

    fingerprint = _dag_folder_fingerprint()
    real_bag, real_sync = dagbag_module.BundleDagBag, dagbag_module.sync_bag_to_db

    def bag(*args: Any, **kwargs: Any) -> Any:
        name = kwargs.get("bundle_name", "")
        cached = _SYNCED.get(name)
        if cached and cached[0] == fingerprint:
            return cached[1]
        parsed = real_bag(*args, **kwargs)
        _SYNCED[name] = (None, parsed)  # marked synced by sync() below
        return parsed

    def sync(parsed: Any, bundle_name: str, *args: Any, **kwargs: Any) -> Any:
        cached = _SYNCED.get(bundle_name)
        if cached and cached[0] == fingerprint and cached[1] is parsed:
            return None
        result = real_sync(parsed, bundle_name, *args, **kwargs)
        _SYNCED[bundle_name] = (fingerprint, parsed)
        return result

    with (
        mock.patch.object(dagbag_module, "BundleDagBag", bag),
        mock.patch.object(dagbag_module, "sync_bag_to_db", sync),
    ):
        yield


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
    With ``log_file``, the task logs go there instead of the terminal.
    """
    with _output_to(log_file):
        asset_driven = is_asset_driven(dag.timetable)
        if asset_driven:  # no timetable intervals: the interval travels in the run's params
            conf = {"interval_start": start.isoformat(), "interval_end": end.isoformat(), **(conf or {})}
        with params_restored(dag), _bundle_synced_once():
            dr = dag.test(logical_date=end, run_after=end, run_conf=conf)
    if not asset_driven and (dr.data_interval_start != start or dr.data_interval_end != end):
        raise RuntimeError(
            f"{dag.dag_id}: asked for [{start}, {end}) but Airflow ran "
            f"[{dr.data_interval_start}, {dr.data_interval_end}): is the timetable daily?"
        )
    tis = dr.get_task_instances()
    return RunOutcome(
        dag_id=dag.dag_id,
        run_id=dr.run_id,
        interval_start=start,
        interval_end=end,
        state=str(dr.state),
        task_states={ti.task_id: str(ti.state) for ti in tis},
        try_numbers={ti.task_id: ti.try_number for ti in tis},
    )


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

    ``dag.test`` cannot resume a run, so the queued run is replaced by one with the
    same logical date and conf (``dag.test`` replaces a run at the same logical date);
    the outcome names the queued run's id.
    """
    when = queued["logical_date"] or queued["run_after"]
    with _output_to(log_file):
        if queued["logical_date"] is None:  # dag.test only replaces a run with the same logical date
            _delete_run(dag.dag_id, queued["run_id"])
        with params_restored(dag), _bundle_synced_once():
            dr = dag.test(logical_date=when, run_after=queued["run_after"], run_conf=queued["conf"])
    tis = dr.get_task_instances()
    return RunOutcome(
        dag_id=dag.dag_id,
        run_id=queued["run_id"],
        interval_start=dr.data_interval_start,
        interval_end=dr.data_interval_end,
        state=str(dr.state),
        task_states={ti.task_id: str(ti.state) for ti in tis},
        try_numbers={ti.task_id: ti.try_number for ti in tis},
    )


def _delete_run(dag_id: str, run_id: str) -> None:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        session.query(DagRun).filter(DagRun.dag_id == dag_id, DagRun.run_id == run_id).delete()


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
