"""Where things live: every runtime path derives from ``$MLOPS_HOME``.

Nothing here does work on import (no folders created, no tracking URIs set), so
DAG files can import it at parse time for free. Deleting ``$MLOPS_HOME`` resets
all state.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

SOURCE_CONN_ID = "mlops_source"
WAREHOUSE_CONN_ID = "mlops_warehouse"


def mlops_home() -> Path:
    """The state folder: ``$MLOPS_HOME``, by default ``var/`` in the repository."""
    return Path(os.environ.get("MLOPS_HOME") or REPO_ROOT / "var").resolve()


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
# the CLI: wait for a lock instead of failing with "database is locked".
SQLITE_CONNECT_ARGS = {"timeout": 60}


def airflow_environment() -> dict[str, str]:
    """Airflow settings this project runs with, before any user override."""
    env = {}
    if "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" not in os.environ:  # the embedded default: SQLite
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS"] = "pipelines.settings.SQLITE_CONNECT_ARGS"
    return env | {
        "AIRFLOW_HOME": str(airflow_home()),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_dir()),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "GX_ANALYTICS_ENABLED": "False",
        "NO_PROXY": "*",
    }


def fernet_key_path() -> Path:
    """Key that encrypts connection passwords in Airflow's DB; made by ``mlops init``."""
    return airflow_home() / "fernet.key"


def apply_airflow_environment() -> None:
    """Set the defaults of :func:`airflow_environment` in ``os.environ``.

    Must run before Airflow is imported; values already in the environment win.
    """
    os.environ.setdefault("MLOPS_HOME", str(mlops_home()))
    for key, value in airflow_environment().items():
        os.environ.setdefault(key, value)
    if fernet_key_path().exists():
        os.environ.setdefault("AIRFLOW__CORE__FERNET_KEY", fernet_key_path().read_text().strip())


def data_docs_per_run() -> bool:
    """Whether each validation rebuilds its Data Docs pages (default). ``MLOPS_DATA_DOCS=deferred``
    leaves that to one build at the end (``mlops demo``, which validates a hundred partitions in a row)."""
    return os.environ.get("MLOPS_DATA_DOCS", "each") != "deferred"
