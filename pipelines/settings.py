"""Where things live: every runtime path derives from ``$MLOPS_HOME``.

Nothing here does work on import (no folders created, no tracking URIs set), so
DAG files can import it at parse time for free. Deleting ``$MLOPS_HOME`` resets
all state.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

SOURCE_CONN_ID = "mlops_source"
WAREHOUSE_CONN_ID = "mlops_warehouse"
SPARK_CONN_ID = "mlops_spark"  # the Spark cluster of use cases on `engine: spark` (optional: local mode without it)


def mlops_home() -> Path:
    """The state folder: ``$MLOPS_HOME``, by default ``var/`` in the repository.

    A process started with only ``AIRFLOW_HOME`` set (the plain ``airflow`` command,
    a worker) finds it in ``[mlops] home`` of that folder's ``airflow.cfg``, which
    ``mlops init`` writes relative to ``AIRFLOW_HOME``, so a state folder can move.
    """
    if os.environ.get("MLOPS_HOME"):
        return Path(os.environ["MLOPS_HOME"]).resolve()
    if os.environ.get("AIRFLOW_HOME"):
        home = _home_in_airflow_cfg(Path(os.environ["AIRFLOW_HOME"]))
        if home is not None:
            return home
    return (REPO_ROOT / "var").resolve()


def _home_in_airflow_cfg(airflow_home: Path) -> Path | None:
    path = airflow_home / "airflow.cfg"
    try:
        mtime = path.stat().st_mtime_ns
    except FileNotFoundError:
        return None
    return _read_home(path, mtime)


@functools.lru_cache(maxsize=8)
def _read_home(path: Path, mtime_ns: int) -> Path | None:
    """``[mlops] home`` of one version of an airflow.cfg (the version is part of the cache key)."""
    import configparser

    cfg = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        cfg.read(path)
    except configparser.Error:
        return None
    home = cfg.get("mlops", "home", fallback=None)
    return (path.parent / home).resolve() if home else None


def airflow_home() -> Path:
    return Path(os.environ.get("AIRFLOW_HOME") or mlops_home() / "airflow").resolve()


def configs_dir() -> Path:
    return Path(os.environ.get("MLOPS_CONFIGS") or REPO_ROOT / "configs").resolve()


def expectations_dir() -> Path:
    return Path(os.environ.get("MLOPS_EXPECTATIONS") or REPO_ROOT / "expectations").resolve()


def dags_dir() -> Path:
    return REPO_ROOT / "dags"


def data_dir(zone: str, usecase: str, dataset: str) -> Path:
    """Folder of one dataset's partitions in a zone (staging, curated, quarantine)."""
    return mlops_home() / zone / usecase / dataset


def mlflow_ui_url() -> str:
    """Where people open MLflow's UI (links from the Airflow UI plugin): ``$MLOPS_MLFLOW_UI_URL``,
    by default ``make mlflow-ui``'s address."""
    return os.environ.get("MLOPS_MLFLOW_UI_URL", "http://localhost:5000").rstrip("/")


def reports_dir() -> Path:
    return mlops_home() / "reports"


def gx_dir() -> Path:
    """Great Expectations' own stores (validation results); the suites live in the repo."""
    return mlops_home() / "gx"


def default_connection_urls() -> dict[str, str]:
    """SQLAlchemy URLs used for the two connections when nothing else defines them."""
    home = mlops_home()
    return {
        SOURCE_CONN_ID: f"sqlite:///{home / 'source.db'}",
        WAREHOUSE_CONN_ID: f"sqlite:///{home / 'warehouse.db'}",
    }


# Airflow's own SQLite metadata DB is shared by the scheduler, the API server and
# the CLI: wait for a lock instead of failing with "database is locked"
# (airflow.cfg names this dict: mlops/airflow_config.py).
SQLITE_CONNECT_ARGS = {"timeout": 60}


def airflow_environment() -> dict[str, str]:
    """Environment every process of the project runs with, before any user override.

    Airflow's own settings are in ``$AIRFLOW_HOME/airflow.cfg`` (``mlops/airflow_config.py``),
    so the plain ``airflow`` command sees them too; only what Airflow cannot read
    from its file is here.
    """
    return {
        "AIRFLOW_HOME": str(airflow_home()),
        "GX_ANALYTICS_ENABLED": "False",
        "NO_PROXY": "*",
    }


def apply_airflow_environment() -> None:
    """Set the defaults of :func:`airflow_environment` in ``os.environ``.

    Must run before Airflow is imported; values already in the environment win.
    """
    os.environ.setdefault("MLOPS_HOME", str(mlops_home()))
    for key, value in airflow_environment().items():
        os.environ.setdefault(key, value)


def data_docs_per_run() -> bool:
    """Whether each validation rebuilds its Data Docs pages (default). ``MLOPS_DATA_DOCS=deferred``
    leaves that to one build at the end (``mlops demo``, which validates a hundred partitions in a row)."""
    return os.environ.get("MLOPS_DATA_DOCS", "each") != "deferred"
