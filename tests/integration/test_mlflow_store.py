"""Which MLflow store a process, and the commands it starts, use."""

from __future__ import annotations

import os

from mlops import airflow_admin
from pipelines.stores import mlflow_store


def test_a_command_started_after_configure_finds_its_store_as_the_caller_did(home, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    mlflow_store.configure()
    assert str(home) in os.environ["MLFLOW_REGISTRY_URI"]  # mlflow exports what it was pointed at
    env = airflow_admin.command_environment()
    # Not passed on: a `mlops server up` from here would send the servers' models to this home's registry.
    assert "MLFLOW_TRACKING_URI" not in env and "MLFLOW_REGISTRY_URI" not in env

    monkeypatch.setenv("MLFLOW_REGISTRY_URI", "http://mlflow.example:5000")  # the user's choice is passed on
    assert airflow_admin.command_environment()["MLFLOW_REGISTRY_URI"] == "http://mlflow.example:5000"
    assert mlflow_store.registry_uri() == "http://mlflow.example:5000"


def test_an_environment_restored_to_an_earlier_state_folder_is_not_taken_for_a_choice(home, tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    mlflow_store.configure()
    first = os.environ["MLFLOW_TRACKING_URI"]
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path / "other"))
    mlflow_store.configure()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", first)  # as a test's teardown restores it
    assert str(tmp_path / "other") in mlflow_store.tracking_uri()  # the current state folder's store


def test_a_corrupt_store_is_refused_naming_the_file_not_a_raw_decode_error(home, monkeypatch):
    """Issue 17, defects 6 and 7: a corrupt MLflow database gave a raw UnicodeDecodeError, and was retried."""
    import sqlite3

    import pytest

    from pipelines.errors import BadInput
    from pipelines.stores import sqlite_integrity

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    db = mlflow_store.mlflow_dir() / "mlflow.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(db) as conn:  # sound as a file, but a text value is not UTF-8
        conn.execute("CREATE TABLE registered_models (name TEXT)")
        conn.execute("INSERT INTO registered_models VALUES (CAST(X'6368FF726E' AS TEXT))")
    with pytest.raises(sqlite_integrity.StoreCorrupt, match=rf"MLflow's database {db} is corrupt") as err:
        mlflow_store.configure()
    assert isinstance(err.value, BadInput) and "restore it from a backup" in str(err.value)

    db.write_bytes(os.urandom(8192))  # not a database at all
    sqlite_integrity._sound.clear()
    with pytest.raises(sqlite_integrity.StoreCorrupt, match="file is not a database"):
        mlflow_store.configure()
