"""Where MLflow keeps runs, artefacts and the model registry.

By default a SQLite database under ``$MLOPS_HOME/mlflow`` (with a busy timeout:
Airflow tasks, the demo and the MLflow UI use it at once) and artefacts on disk
beside it. ``MLFLOW_TRACKING_URI`` (and optionally ``MLFLOW_REGISTRY_URI``)
point elsewhere, for example at an MLflow server in the production profile.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pipelines import settings

# Seconds a writer waits for SQLite's lock instead of failing with "database is locked".
SQLITE_BUSY_TIMEOUT = 60


def mlflow_dir() -> Path:
    return settings.mlops_home() / "mlflow"


def artifacts_root() -> Path:
    return mlflow_dir() / "artifacts"


def tracking_uri() -> str:
    """``$MLFLOW_TRACKING_URI``, else the embedded SQLite store under ``$MLOPS_HOME``."""
    return os.environ.get("MLFLOW_TRACKING_URI") or (
        f"sqlite:///{mlflow_dir() / 'mlflow.db'}?timeout={SQLITE_BUSY_TIMEOUT}"
    )


def registry_uri() -> str:
    return os.environ.get("MLFLOW_REGISTRY_URI") or tracking_uri()


def uses_local_store() -> bool:
    return "MLFLOW_TRACKING_URI" not in os.environ


def configure() -> Any:
    """Point the ``mlflow`` module at this project's store; returns a client for it."""
    import logging

    import mlflow

    if uses_local_store():
        mlflow_dir().mkdir(parents=True, exist_ok=True)
    # Alembic logs every migration at INFO on the first use of a new store.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no bars in task logs
    mlflow.set_tracking_uri(tracking_uri())
    mlflow.set_registry_uri(registry_uri())
    return mlflow.MlflowClient(tracking_uri(), registry_uri())


def experiment_id(name: str) -> str:
    """The experiment ``name``, created with its artefacts under ``$MLOPS_HOME`` when new."""
    import mlflow

    client = configure()
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    location = artifacts_root().as_uri() if uses_local_store() else None
    try:
        return client.create_experiment(name, artifact_location=location)
    except mlflow.MlflowException:  # created meanwhile by a concurrent run
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id


def ui_command(port: int) -> list[str]:
    """The ``mlflow ui`` command line that serves this project's store and artefacts."""
    command = ["mlflow", "ui", "--backend-store-uri", tracking_uri(), "--port", str(port)]
    if uses_local_store():
        command += ["--default-artifact-root", artifacts_root().as_uri()]
    return command
