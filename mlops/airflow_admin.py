"""Airflow set-up and in-process runs, for the command line and the tests.

Call :func:`prepare` before anything imports Airflow: it fixes AIRFLOW_HOME and
the other settings the project runs with (values already in the environment win).
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

from pipelines import settings

log = logging.getLogger(__name__)


_QUIETENED: list[str] = []  # environment variables prepare() set only to quieten this process


def prepare(quiet: bool = True) -> None:
    """Point Airflow at this project's state and DAGs; optionally quieten its logs."""
    settings.apply_airflow_environment()
    import sys

    from mlops import airflow_config

    airflow_config.ensure()
    if str(settings.dags_dir()) not in sys.path:  # `dagkit`, as the DAG processor and workers import it
        sys.path.append(str(settings.dags_dir()))
    if quiet:
        import os

        if "AIRFLOW__LOGGING__LOGGING_LEVEL" not in os.environ:
            os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "WARNING"
            _QUIETENED.append("AIRFLOW__LOGGING__LOGGING_LEVEL")
        warnings.filterwarnings("ignore", message=r"Using `httpx` with `starlette.testclient`")
        logging.getLogger("alembic").setLevel(logging.WARNING)


def migrate_db() -> None:
    """Create or upgrade the Airflow metadata database (idempotent)."""
    prepare()
    from airflow.utils import db

    db.upgradedb()


def ensure_connections() -> dict[str, str]:
    """Create the project's connections in the metadata DB when missing; never overwrite one.

    Returns what was done per connection id ("created", "kept" or "from the environment").
    """
    import os

    from airflow.models.connection import Connection
    from airflow.utils.session import create_session
    from sqlalchemy import select

    done = {}
    with create_session() as session:
        for conn_id, url in settings.default_connection_urls().items():
            if os.environ.get(f"AIRFLOW_CONN_{conn_id.upper()}"):
                done[conn_id] = "from the environment"  # it wins over the metadata DB: nothing to store
                continue
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


def command_environment() -> dict[str, str]:
    """Environment for an ``airflow`` command on this project's state, with normal (INFO) logs."""
    import os
    import sys

    from pipelines.stores import mlflow_store

    prepare(quiet=False)
    # Less what quietened this process's logs, and the MLflow store it pointed itself at (each
    # command finds its store as this one did).
    env = {k: v for k, v in os.environ.items() if k not in _QUIETENED and k not in mlflow_store.exported()}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # it starts `airflow` processes
    return env


def ui_environment(port: int) -> dict[str, str]:
    """Environment for `mlops ui` (Airflow's components, mlops.local_ui) on this project's state."""
    env = command_environment()
    env.setdefault("AIRFLOW__API__HOST", "127.0.0.1")
    env.setdefault("AIRFLOW__API__PORT", str(port))
    env.setdefault("AIRFLOW__API__BASE_URL", f"http://localhost:{env['AIRFLOW__API__PORT']}")
    env.setdefault("AIRFLOW__CORE__PARALLELISM", "4")  # a laptop, not a cluster
    return env


def serialize_dags() -> None:
    """Write the DAGs folder's DAGs into the metadata DB (``airflow dags reserialize``), so that
    ``airflow dags list`` and the UI show them before any DAG processor has run.

    Raises:
        RuntimeError: the command failed; its output ends the message.
    """
    import subprocess

    done = subprocess.run(["airflow", "dags", "reserialize"], env=command_environment(), capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"airflow dags reserialize failed:\n{(done.stdout + done.stderr)[-2000:]}")


def connection_url(conn_id: str) -> str:
    """SQLAlchemy URL of a connection, resolved the way tasks resolve it (env var, then metadata DB).

    Falls back to the project default when the connection is defined nowhere.
    """
    prepare()
    return resolved_connection_url(conn_id)


def resolved_connection_url(conn_id: str) -> str:
    """:func:`connection_url` in a process Airflow has already set up (the API server's plugin)."""
    from airflow.exceptions import AirflowNotFoundException
    from airflow.models.connection import Connection

    from pipelines.stores.source import url_from_connection

    try:
        conn = Connection.get_connection_from_secrets(conn_id)
    except AirflowNotFoundException:
        return settings.default_connection_urls()[conn_id]
    return url_from_connection(conn)
