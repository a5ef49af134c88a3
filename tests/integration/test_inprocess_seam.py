"""The Airflow internals the in-process runner relies on (mlops/inprocess.py): fails naming what moved.

Run after every Airflow upgrade; the range checked is mlops.inprocess.AIRFLOW_CHECKED.
"""

from __future__ import annotations

import inspect
import tomllib
from importlib.metadata import version

from packaging.specifiers import SpecifierSet

from mlops import inprocess
from pipelines import settings


def test_the_installed_airflow_is_in_the_checked_range_and_pyproject_pins_it():
    checked = SpecifierSet(",".join(inprocess.AIRFLOW_CHECKED))
    assert version("apache-airflow") in checked, f"Airflow {version('apache-airflow')} is not in {checked}"
    deps = tomllib.loads((settings.REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pinned = next(d for d in deps if d.startswith("apache-airflow"))
    assert SpecifierSet(pinned.removeprefix("apache-airflow")) == checked, f"pyproject pins {pinned}, checked {checked}"


def test_dag_test_takes_the_arguments_the_runner_passes():
    from airflow.sdk import DAG

    parameters = inspect.signature(DAG.test).parameters
    for name in ("logical_date", "run_after", "run_conf"):
        assert name in parameters, f"DAG.test has no '{name}' parameter any more: {list(parameters)}"


def test_dag_runs_have_the_columns_the_runner_reads():
    from airflow.models.dagrun import DagRun
    from airflow.utils.state import DagRunState, State, TaskInstanceState

    for column in ("dag_id", "run_id", "state", "logical_date", "run_after", "conf", "start_date"):
        assert column in DagRun.__table__.columns, f"DagRun has no column '{column}'"
    assert callable(DagRun.get_task_instances)
    assert DagRunState.QUEUED and DagRunState.FAILED and TaskInstanceState.FAILED
    assert TaskInstanceState.RUNNING not in State.finished and TaskInstanceState.SUCCESS in State.finished


def test_the_dag_bag_parses_the_dags_folder_and_reports_import_errors_by_file():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(settings.dags_dir()))
    assert isinstance(bag.import_errors, dict) and "churn_ingest" in bag.dag_ids
    assert bag.dags["churn_ingest"].dag_id == "churn_ingest"


def test_a_runs_conf_resolves_into_dag_params_that_the_runner_restores():
    dag = inprocess.load_dag("churn_train")
    before = dag.params["reason"]
    with inprocess.params_restored(dag):
        dag.params["reason"] = "changed in place, as a run's conf does"
    assert dag.params["reason"] == before


def test_the_runner_and_the_dag_files_name_the_same_parse_filter():
    from dagkit.usecases import ONLY_DAG_ENV

    assert inprocess.ONLY_DAG_ENV == ONLY_DAG_ENV


def test_with_the_parse_filter_set_the_dag_files_build_only_that_dag(monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv(inprocess.ONLY_DAG_ENV, "churn_train")
    bag = DagBag(dag_folder=str(settings.dags_dir()))
    assert sorted(bag.dag_ids) == ["churn_train"] and not bag.import_errors


def test_the_loop_that_runs_a_queued_run_as_it_is_exists_with_the_signatures_used():
    from airflow.models.dagrun import DagRun
    from airflow.sdk.definitions import dag as sdk_dag
    from airflow.serialization.serialized_objects import DagSerialization

    run_task = getattr(sdk_dag, "_run_task", None)
    assert run_task is not None, "airflow.sdk.definitions.dag._run_task is gone: run_queued needs another task runner"
    assert {"ti", "task", "run_triggerer"} <= set(inspect.signature(run_task).parameters)
    assert "session" in inspect.signature(DagRun.update_state).parameters
    assert callable(DagSerialization.serialize_dag) and callable(DagSerialization.deserialize_dag)
    # DAG.test still runs its tasks with that runner and the same loop (what run_queued copies).
    source = inspect.getsource(sdk_dag.DAG.test)
    assert "_run_task(ti=ti, task=task, run_triggerer=True)" in source and "dr.update_state(session=session)" in source


def test_task_logs_go_to_the_file_the_ui_reads_through_the_public_listener_hooks():
    from airflow.listeners import hookimpl  # noqa: F401 (the listener's hooks are marked with it)
    from airflow.sdk.listener import get_listener_manager

    from mlops import task_logs

    task_logs.enable()
    hooks = get_listener_manager().hook
    for name in ("running", "success", "failed", "skipped"):
        assert hasattr(hooks, f"on_task_instance_{name}"), f"listener hook on_task_instance_{name} is gone"
    path = task_logs.log_path("d", "manual__x", "t", 2)
    assert path.name == "attempt=2.log" and "dag_id=d" in str(path) and "run_id=manual__x" in str(path)
