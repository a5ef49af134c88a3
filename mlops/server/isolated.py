"""A server profile of its own beside others on one machine: its own state folder, database
prefix, Redis databases and free ports. The profile's end-to-end test and its benchmark
run one this way, so that neither touches a stack someone started with ``make up``."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Mapping
from pathlib import Path

from mlops.server.setup import DATABASES

MLOPS = str(Path(sys.executable).parent / "mlops")

# A calling process's own settings (the test session's SQLite state, its connections, the MLflow store
# an in-process run pointed it at): not the profile's.
_OWN = (
    "AIRFLOW__CORE__", "AIRFLOW__DATABASE__", "AIRFLOW_CONN_", "AIRFLOW__LOGGING__LOGGING_LEVEL",
    "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLOPS_DATA_DOCS",
)  # fmt: skip


def free_port(pair: bool = False) -> int:
    """A free port on 127.0.0.1; with ``pair``, one whose neighbour + 2 is free too (a second worker's log server)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if not pair:
            return port
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port + 2)) != 0:
                return port


def redis_reachable(host: str = "127.0.0.1", port: int = 6379) -> bool:
    try:
        socket.create_connection((host, port), timeout=2).close()
        return True
    except OSError:
        return False


def environment(
    home: Path, prefix: str, redis_dbs: tuple[int, int], extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """This process's environment for a stack on ``home`` with databases ``<prefix>_*``, the Celery
    broker and Feast's online store in Redis databases ``redis_dbs``, every port free."""
    api_port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(_OWN)}
    env.update(
        {
            "MLOPS_HOME": str(home),
            "AIRFLOW_HOME": str(home / "airflow"),
            "MLOPS_DB_PREFIX": prefix,
            "REDIS_BROKER_DB": str(redis_dbs[0]),
            "REDIS_FEAST_DB": str(redis_dbs[1]),
            "AIRFLOW_API_PORT": str(api_port),
            "AIRFLOW_BASE_URL": f"http://localhost:{api_port}",
            "MLFLOW_PORT": str(free_port()),
            "SCHEDULER_HEALTH_PORT": str(free_port()),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port(pair=True)),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            **(extra or {}),
        }
    )
    return env


def stop_strays(redis_dbs: tuple[int, int]) -> list[str]:
    """SIGKILL every process of a stack that uses the Redis broker database ``redis_dbs[0]`` (found by
    the broker URL in its environment): what a test run stopped mid-way, or a ``down`` that missed a
    process, left running. A stray Celery worker on the same broker takes the next stack's tasks and
    runs them on a state that is gone. Returns ``pid: command`` of each process it killed."""
    import psutil

    killed = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            broker = proc.environ().get("AIRFLOW__CELERY__BROKER_URL", "")
            if proc.pid == os.getpid() or not broker.startswith("redis://"):
                continue
            if broker.rsplit("/", 1)[-1] == str(redis_dbs[0]):
                proc.kill()
                killed.append(f"{proc.pid}: {' '.join(proc.info['cmdline'] or [])[:120]}")
        except (psutil.Error, OSError):
            continue
    return killed


def flush_redis(redis_dbs: tuple[int, int]) -> None:
    import redis

    for db in redis_dbs:
        redis.Redis(db=db).flushdb()


def drop(prefix: str, redis_dbs: tuple[int, int], admin_user: str = "postgres") -> None:
    """Drop the stack's databases (their connections closed) and empty its Redis databases."""
    import sqlalchemy as sa

    admin = sa.create_engine(
        f"postgresql+psycopg2://{admin_user}@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        quote = conn.dialect.identifier_preparer.quote
        for suffix in DATABASES:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {quote(f'{prefix}_{suffix}')} WITH (FORCE)"))
    admin.dispose()
    flush_redis(redis_dbs)
