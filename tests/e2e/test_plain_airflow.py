"""The plain `airflow` command on the project's state, with only AIRFLOW_HOME set (as a data engineer runs it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines import settings

BIN = Path(sys.executable).parent


def _airflow(home: Path, *argv: str) -> subprocess.CompletedProcess:
    """``airflow ARGV`` as a new shell with the venv active runs it: only AIRFLOW_HOME set, no MLOPS_*
    and no AIRFLOW__* variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLOPS_", "AIRFLOW"))}
    env |= {"AIRFLOW_HOME": str(home / "airflow"), "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}"}
    return subprocess.run([str(BIN / "airflow"), *argv], env=env, capture_output=True, text=True)


@pytest.fixture(scope="module")
def initialised(tmp_path_factory) -> Path:
    """A state folder made by `mlops init` and `mlops simulate`, as the README's first steps make it."""
    home = tmp_path_factory.mktemp("plain") / "var"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLOPS_", "AIRFLOW"))} | {"MLOPS_HOME": str(home)}
    for argv in (["init"], ["simulate", "--days", "3", "--customers", "60"]):
        subprocess.run([str(BIN / "mlops"), *argv], env=env, check=True, capture_output=True, text=True)
    return home


def test_airflow_cfg_holds_the_project_settings(initialised):
    text = (initialised / "airflow" / "airflow.cfg").read_text()
    assert f"dags_folder = {settings.dags_dir()}" in text
    assert "load_examples = False" in text and "fernet_key = " in text
    assert "[mlops]\nhome = .." in text  # where the state is, for processes that only know AIRFLOW_HOME


def test_dags_list_prints_json_only_and_sees_every_dag(initialised):
    done = _airflow(initialised, "dags", "list", "-o", "json")
    assert done.returncode == 0, done.stderr[-3000:]
    dag_ids = {d["dag_id"] for d in json.loads(done.stdout)}  # no warning before the JSON (graphviz)
    assert {"churn_ingest", "churn_train", "store_sales_drift_monitor"} <= dag_ids


def test_dags_test_runs_an_interval_into_the_project_state(initialised):
    done = _airflow(initialised, "dags", "test", "churn_ingest", "2025-01-03")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    # A manual run at 2025-01-03 covers the day before it, written under the state folder.
    assert (initialised / "curated" / "churn" / "activity" / "2025-01-02.parquet").exists()
