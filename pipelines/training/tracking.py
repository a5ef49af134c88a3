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

# mlflow.set_tracking_uri() also exports MLFLOW_TRACKING_URI (for subprocesses), so the
# variable only means "the user chose a store" when it differs from what we set ourselves.
_ours: dict[str, str] = {}


def mlflow_dir() -> Path:
    return settings.mlops_home() / "mlflow"


def artifacts_root() -> Path:
    return mlflow_dir() / "artifacts"


def _user_setting(name: str) -> str | None:
    value = os.environ.get(name)
    return value if value and value != _ours.get(name) else None


def tracking_uri() -> str:
    """``$MLFLOW_TRACKING_URI``, else the embedded SQLite store under ``$MLOPS_HOME``."""
    return _user_setting("MLFLOW_TRACKING_URI") or (
        f"sqlite:///{mlflow_dir() / 'mlflow.db'}?timeout={SQLITE_BUSY_TIMEOUT}"
    )


def registry_uri() -> str:
    return _user_setting("MLFLOW_REGISTRY_URI") or tracking_uri()


def uses_local_store() -> bool:
    return _user_setting("MLFLOW_TRACKING_URI") is None


def configure() -> Any:
    """Point the ``mlflow`` module at this project's store; returns a client for it."""
    import logging

    import mlflow

    if uses_local_store():
        mlflow_dir().mkdir(parents=True, exist_ok=True)
    # Alembic logs every migration at INFO on the first use of a new store.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no bars in task logs
    chosen = {name: _user_setting(name) for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    tracking, registry = tracking_uri(), registry_uri()
    mlflow.set_tracking_uri(tracking)
    mlflow.set_registry_uri(registry)
    for name, value in (("MLFLOW_TRACKING_URI", tracking), ("MLFLOW_REGISTRY_URI", registry)):
        if chosen[name] is None:  # whatever MLflow exports now is ours, not the user's choice
            _ours[name] = value
    return mlflow.MlflowClient(tracking, registry)


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
