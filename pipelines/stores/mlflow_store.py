"""The MLflow store: where runs and models live, the registry's versions and aliases, and run logging.

Every stage reaches MLflow through this module (the pyfunc wrapper in
:mod:`pipelines.training.model` aside), and ``mlflow`` is imported inside the
functions only: a DAG file that imports a stage module must not pay for it at parse.

By default a SQLite database under ``$MLOPS_HOME/mlflow`` (with a busy timeout:
Airflow tasks, the demo and the MLflow UI use it at once) and artefacts on disk
beside it. ``MLFLOW_TRACKING_URI`` (and optionally ``MLFLOW_REGISTRY_URI``)
point elsewhere, for example at an MLflow server in the production profile.

Aliases of the registered model ``<use case>``: ``challenger`` (the newest
registered candidate), ``champion`` (what inference uses), ``previous`` (the
champion before it: the default rollback target) and ``rolled_back`` (the
champion a rollback demoted). MLflow's alias update is last-writer-wins, so the
champion moves under a lock, after re-reading it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines import settings
from pipelines.locks import named_lock
from pipelines.stores.sqlite_integrity import check_sqlite_file

if TYPE_CHECKING:
    import pandas as pd

    from pipelines.config import UseCase

log = logging.getLogger(__name__)

# Seconds a writer waits for SQLite's lock instead of failing with "database is locked".
SQLITE_BUSY_TIMEOUT = 60
CHAMPION, CHALLENGER, PREVIOUS, ROLLED_BACK = "champion", "challenger", "previous", "rolled_back"

# mlflow.set_tracking_uri() also exports MLFLOW_TRACKING_URI (for subprocesses), so the
# variable only means "the user chose a store" when it differs from every value we set
# ourselves (a process that moves between state folders, or restores its environment, may
# hold an earlier one).
_ours: dict[str, set[str]] = {}


class ChampionMoved(RuntimeError):
    """The champion is not the version a guarded alias move expected: another run moved it."""

    def __init__(self, name: str, expected: str | None, current: str | None):
        super().__init__(f"the champion of '{name}' moved from v{expected} to v{current}")
        self.expected, self.current = expected, current


# Where: the tracking store, the registry and the artefacts.


def mlflow_dir() -> Path:
    return settings.mlops_home() / "mlflow"


def artifacts_root() -> Path:
    return mlflow_dir() / "artifacts"


def _user_setting(name: str) -> str | None:
    value = os.environ.get(name)
    return value if value and value not in _ours.get(name, ()) else None


def exported() -> dict[str, str]:
    """The ``MLFLOW_*`` variables :func:`configure` exported, with their values: a child process
    started from this one's environment must not take them for the user's choice of store."""
    return {name: os.environ[name] for name, values in _ours.items() if os.environ.get(name) in values}


def tracking_uri() -> str:
    """``$MLFLOW_TRACKING_URI``, else the embedded SQLite store under ``$MLOPS_HOME``."""
    return _user_setting("MLFLOW_TRACKING_URI") or (
        f"sqlite:///{mlflow_dir() / 'mlflow.db'}?timeout={SQLITE_BUSY_TIMEOUT}"
    )


def registry_uri() -> str:
    return _user_setting("MLFLOW_REGISTRY_URI") or tracking_uri()


def uses_local_store() -> bool:
    return _user_setting("MLFLOW_TRACKING_URI") is None


def store_exists() -> bool:
    """Whether there is anything to read: a configured server, or the local database once something was tracked."""
    return not uses_local_store() or (mlflow_dir() / "mlflow.db").exists()


def configure() -> Any:
    """Point the ``mlflow`` module at this project's store; returns a client for it."""
    import mlflow

    if uses_local_store():
        mlflow_dir().mkdir(parents=True, exist_ok=True)
        check_sqlite_file(
            mlflow_dir() / "mlflow.db",
            "MLflow's database",
            "restore it from a backup, or move it away to start an empty registry (`mlops init`; the models' "
            "files stay under mlflow/artifacts)",
            SQLITE_BUSY_TIMEOUT,
        )
    # Alembic logs every migration at INFO on the first use of a new store.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no bars in task logs
    chosen = {name: _user_setting(name) for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    tracking, registry = tracking_uri(), registry_uri()
    mlflow.set_tracking_uri(tracking)
    mlflow.set_registry_uri(registry)
    for name, value in (("MLFLOW_TRACKING_URI", tracking), ("MLFLOW_REGISTRY_URI", registry)):
        if chosen[name] is None:  # whatever MLflow exports now is ours, not the user's choice
            _ours.setdefault(name, set()).add(value)
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


# The registry: versions, their tags and aliases.


def model_name(usecase: UseCase) -> str:
    return usecase.name


def version_uri(name: str, version: str) -> str:
    return f"models:/{name}/{version}"


def alias_version(client: Any, name: str, alias: str) -> str | None:
    """The version holding ``alias``, or None (also when the model is not registered yet)."""
    import mlflow

    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except mlflow.MlflowException:
        return None


def find_version(client: Any, name: str, version: str) -> Any | None:
    """The ModelVersion ``version`` of ``name`` (its tags, run id and source), or None when there is none."""
    import mlflow

    try:
        return client.get_model_version(name, version)
    except mlflow.MlflowException:
        return None


def version_numbers(client: Any, name: str) -> list[int]:
    """The registered versions of ``name``, oldest first (none when the model is not registered)."""
    import mlflow

    try:
        return sorted(int(v.version) for v in client.search_model_versions(f"name='{name}'"))
    except mlflow.MlflowException:
        return []


def decision_threshold(version: Any | None) -> float | None:
    """The decision threshold a ModelVersion was trained with (its ``threshold`` tag), or None."""
    value = (version.tags or {}).get("threshold") if version is not None else None
    return float(value) if value not in (None, "", "None") else None


def register_challenger(usecase: UseCase, model_uri: str, run_id: str, tags: dict[str, str]) -> str:
    """Register ``model_uri`` as a new version of the use case's model and point ``challenger`` at it.

    Idempotent per run: a retried task finds the run's version and registers nothing new.
    """
    import mlflow

    client = configure()
    name = model_name(usecase)
    try:
        client.create_registered_model(name, description=usecase.description, tags={"usecase": usecase.name})
    except mlflow.MlflowException:
        pass  # exists already
    existing = client.search_model_versions(f"name='{name}' and run_id='{run_id}'")
    if existing:  # a retried task: the run's model is registered already
        version = existing[0]
    else:
        # A logged model's URI (models:/m-...) names its model id; a tracking server refuses
        # the version unless the id is given with it (the local store does not check).
        model_id = model_uri.removeprefix("models:/") if model_uri.startswith("models:/m-") else None
        version = client.create_model_version(name, model_uri, run_id=run_id, tags=tags, model_id=model_id)
    client.set_registered_model_alias(name, CHALLENGER, version.version)
    log.info("registered %s version %s from run %s as '%s'", name, version.version, run_id, CHALLENGER)
    return str(version.version)


def move_champion(client: Any, name: str, version: str, expected: str | None) -> bool:
    """Make ``version`` the champion and the old champion ``previous``, if the champion is still ``expected``.

    Under a lock, the champion is re-read just before the move: when another run
    moved it since ``expected`` was read, nothing changes and False is returned
    (the caller evaluates again). ``champion`` is overwritten in place, never removed,
    so a reader always finds one.
    """
    with named_lock("registry", name):
        current = alias_version(client, name, CHAMPION)
        if current != expected:
            log.warning("champion of %s moved from v%s to v%s during evaluation", name, expected, current)
            return False
        if current is not None and current != version:
            client.set_registered_model_alias(name, PREVIOUS, current)
        client.set_registered_model_alias(name, CHAMPION, version)
    return True


def restore_champion(client: Any, name: str, target: str, expected: str | None) -> str | None:
    """Make ``target`` the champion again, if the champion is still ``expected`` (or is ``target`` already).

    Under a lock, the champion is re-read just before the move. The demoted champion
    gets ``rolled_back``, and ``previous`` is cleared when it was the target, so the
    same move again changes nothing.

    Returns:
        The champion found under the lock (``target`` itself: nothing changed).

    Raises:
        ChampionMoved: another run moved the champion since ``expected`` was read; nothing changed.
    """
    with named_lock("registry", name):
        current = alias_version(client, name, CHAMPION)
        if current != expected and current != target:
            raise ChampionMoved(name, expected, current)
        if current != target:
            if current is not None:
                client.set_registered_model_alias(name, ROLLED_BACK, current)
            client.set_registered_model_alias(name, CHAMPION, target)
            if alias_version(client, name, PREVIOUS) == target:
                client.delete_registered_model_alias(name, PREVIOUS)
    return current


def set_version_tags(client: Any, name: str, version: str, tags: dict[str, str]) -> None:
    """Set each of ``tags`` on version ``version`` of ``name`` (decisions, rollbacks)."""
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)


def load_model(uri: str) -> Any:
    """The pyfunc model at ``uri`` (``models:/<name>/<version>``, ``runs:/...``), loaded."""
    import mlflow.pyfunc

    return mlflow.pyfunc.load_model(uri)


def signature_columns(model_uri: str) -> list[str]:
    """The input columns of the signature logged with the model at ``model_uri``, read without loading it."""
    import mlflow

    return [c.name for c in mlflow.models.get_model_info(model_uri).signature.inputs.inputs]


# Runs: thin wrappers over MLflow's fluent API, on the active run.


def start_run(experiment: str, name: str, tags: dict[str, str] | None = None, nested: bool = False) -> Any:
    """A run named ``name`` in the experiment with id ``experiment``, as a context manager.

    It ends FINISHED, or FAILED when the block raises; ``nested`` makes it a child of the active run.
    """
    import mlflow

    return mlflow.start_run(experiment_id=experiment, run_name=name, nested=nested, tags=tags)


def end_failed_run() -> None:
    """End the active run as FAILED (a failure that the block catches and carries on from)."""
    import mlflow

    mlflow.end_run(status="FAILED")


def end_abandoned_runs(experiment: str, airflow_run_id: str) -> list[str]:
    """End as KILLED the runs an earlier try of the same Airflow run left RUNNING (its worker
    died mid-task: nothing ended them), so that the tracking UI shows no run running forever."""
    client = configure()
    query = f"tags.airflow_run_id = '{airflow_run_id}' and attributes.status = 'RUNNING'"
    ended = []
    for run in client.search_runs([experiment], filter_string=query):
        client.set_tag(run.info.run_id, "abandoned", "an earlier try of this Airflow run stopped without ending it")
        client.set_terminated(run.info.run_id, status="KILLED")
        ended.append(run.info.run_id)
    return ended


def log_params(params: dict[str, Any]) -> None:
    import mlflow

    mlflow.log_params(params)


def log_metrics(values: dict[str, float]) -> None:
    import mlflow

    mlflow.log_metrics(values)


def log_dict(value: Any, path: str) -> None:
    import mlflow

    mlflow.log_dict(value, path)


def log_figure(figure: Any, path: str) -> None:
    import mlflow

    mlflow.log_figure(figure, path)


def log_artifact(path: Path, folder: str) -> None:
    import mlflow

    mlflow.log_artifact(str(path), artifact_path=folder)


def set_tags(tags: dict[str, Any]) -> None:
    import mlflow

    mlflow.set_tags(tags)


def training_dataset(path: Path, name: str, digest: str, frame: pd.DataFrame) -> Any:
    """What :func:`log_input` records of a training set: its file, a name, a digest and the column schema.

    (``mlflow.data.from_pandas`` would infer the schema by visiting every value in
    Python: 16 of 23 seconds of training on 500k rows; a sample of 1000 rows gives it.)
    """
    import warnings

    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.models import infer_signature

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "can be interpreted in multiple ways": both are local files
        source = resolve_dataset_source(path.resolve().as_uri())
    return MetaDataset(source=source, name=name, digest=digest, schema=infer_signature(frame.head(1000)).inputs)


def log_input(dataset: Any, context: str) -> None:
    import mlflow

    mlflow.log_input(dataset, context=context)


def log_model(name: str, model: Any, example: pd.DataFrame, pip_requirements: list[str]) -> str:
    """Log the pyfunc ``model`` to the active run as artefact ``name``; returns its model URI.

    The signature is inferred from ``example`` and the model's own predictions on it,
    and ``example`` is kept as the input example (a rollback scores it as a smoke test).
    """
    import mlflow.pyfunc
    from mlflow.models import infer_signature

    info = mlflow.pyfunc.log_model(
        name=name,
        python_model=model,
        signature=infer_signature(example, model.predict(None, example)),
        input_example=example,
        pip_requirements=pip_requirements,
    )
    return info.model_uri


def delete_runs_named(client: Any, experiment: str, name: str) -> None:
    """Delete the runs named ``name`` in the experiment with id ``experiment``."""
    for old in client.search_runs([experiment], filter_string=f"tags.mlflow.runName = '{name}'"):
        client.delete_run(old.info.run_id)
