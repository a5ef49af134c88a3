"""Every DAG file: imports cleanly and fast, and every DAG carries owner, tags, retries and docs."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines import settings

DAG_FILES = sorted(settings.dags_dir().glob("*.py"))
CONFIG_ERRORS = settings.dags_dir() / "config_errors.py"  # no DAG: the import error of broken use-case files
HEAVY = ["pandas", "numpy", "mlflow", "feast", "great_expectations", "evidently", "xgboost", "sklearn", "pyarrow"]
# Modules that DAG files import at parse time: they must stay light too.
PARSE_TIME_MODULES = [
    *DAG_FILES,
    *sorted((settings.dags_dir() / "dagkit").glob("*.py")),
    *sorted((settings.REPO_ROOT / "pipelines" / "config").glob("*.py")),
    *(settings.REPO_ROOT / "pipelines" / name for name in ("settings.py", "intervals.py", "simulation/checks.py")),
]


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(settings.dags_dir()))


# DAG files whose DAGs exist only for use cases that ask for them (rollout: `rollout.mode: canary`,
# which no config in configs/ sets; tested with one below).
ONLY_WHEN_CONFIGURED = {"rollout.py"}


def test_there_are_dag_files():
    assert DAG_FILES, "no DAG files found"


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_dag_file_imports_without_errors(dagbag, path):
    errors = {k: v for k, v in dagbag.import_errors.items() if Path(k) == path}
    assert not errors, f"{path.name} failed to import:\n{errors}"
    if path != CONFIG_ERRORS and path.name not in ONLY_WHEN_CONFIGURED:
        assert [d for d in dagbag.dags.values() if Path(d.fileloc) == path], f"{path.name} defines no DAG"


def _dags():
    from airflow.dag_processing.dagbag import DagBag

    return sorted(DagBag(dag_folder=str(settings.dags_dir())).dags.values(), key=lambda d: d.dag_id)


@pytest.mark.parametrize("dag", _dags(), ids=lambda d: d.dag_id)
def test_dag_has_owner_tags_retries_and_docs(dag):
    where = f"DAG {dag.dag_id} ({Path(dag.fileloc).name})"
    assert dag.tags, f"{where} has no tags"
    assert dag.doc_md and len(dag.doc_md) > 80, f"{where} has no doc_md"
    for task in dag.tasks:
        assert task.owner and task.owner != "airflow", f"{where}: task {task.task_id} has no owner"
        assert task.retries >= 2, f"{where}: task {task.task_id} has retries={task.retries} (need >= 2)"
    assert _usecase_of(dag), f"{where}: id is not <use case>_<stage>"


def _usecase_of(dag) -> str | None:
    """The use case whose name prefixes the DAG id (use-case names may contain '_' themselves)."""
    names = [p.stem for p in settings.configs_dir().glob("*.yaml") if dag.dag_id.startswith(f"{p.stem}_")]
    return max(names, key=len) if names else None


def test_scheduled_dags_have_data_intervals_of_their_whole_period():
    import datetime as dt

    from airflow.serialization.encoders import coerce_to_core_timetable

    from mlops.inprocess import is_asset_driven
    from pipelines.config import get_usecase

    checked = []
    for dag in _dags():
        timetable = coerce_to_core_timetable(dag.timetable)
        if is_asset_driven(timetable) or not timetable.can_be_scheduled:
            continue  # runs when data arrives (intervals from the events), or only by hand
        usecase = get_usecase(_usecase_of(dag))
        period = usecase.training.interval if dag.dag_id == usecase.dag_id("train") else usecase.schedule.interval
        interval = timetable.infer_manual_data_interval(run_after=dt.datetime(2025, 1, 5, tzinfo=dt.UTC))
        assert interval.end - interval.start == period, dag.dag_id
        checked.append(dag.dag_id)
    assert {"churn_ingest", "churn_train", "store_sales_ingest", "store_sales_train"} <= set(checked)


@pytest.mark.parametrize("path", PARSE_TIME_MODULES, ids=lambda p: str(p.relative_to(settings.REPO_ROOT)))
def test_no_heavy_imports_at_module_level(path):
    tree = ast.parse(path.read_text())
    for node in tree.body:  # only statements at module level; imports inside functions are fine
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        for name in names:
            assert name.split(".")[0] not in HEAVY, f"{path.name}:{node.lineno} imports {name} at module level"


def test_parsing_all_dag_files_loads_no_heavy_library_and_is_fast():
    code = f"""
import sys, time, runpy
import airflow.sdk
sys.path.append({str(settings.dags_dir())!r})
t = time.perf_counter()
for path in {[str(p) for p in DAG_FILES]!r}:
    runpy.run_path(path)
print(time.perf_counter() - t)
print(",".join(m for m in {HEAVY!r} if m in sys.modules))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    seconds, loaded = float(out[0]), out[1]
    assert loaded == "", f"parsing the DAG files imported {loaded}"
    assert seconds < 5, f"parsing the DAG files took {seconds:.2f}s"  # generous: only catches real work at parse


def test_daily_intervals_stay_whole_days_across_daylight_saving(churn):
    import datetime as dt

    from airflow.serialization.encoders import coerce_to_core_timetable

    from dagkit import interval_timetable

    paris = churn.model_copy(update={"schedule": churn.schedule.model_copy(update={"timezone": "Europe/Paris"})})
    timetable = coerce_to_core_timetable(interval_timetable(paris))
    for run_after in (dt.datetime(2025, 3, 31, 12, tzinfo=dt.UTC), dt.datetime(2025, 10, 27, 12, tzinfo=dt.UTC)):
        interval = timetable.infer_manual_data_interval(run_after=run_after)
        previous = timetable.infer_manual_data_interval(run_after=interval.start)
        assert previous.end == interval.start  # no gap, no overlap
        assert interval.start.astimezone(dt.UTC).hour in (22, 23)  # local midnight


def test_a_broken_use_case_file_is_an_import_error_and_the_other_use_cases_keep_their_dags(tmp_path, monkeypatch):
    import shutil

    from airflow.dag_processing.dagbag import DagBag

    for path in settings.configs_dir().glob("*.yaml"):
        shutil.copy(path, tmp_path / path.name)
    broken = tmp_path / "store_sales.yaml"
    broken.write_text(broken.read_text().replace("window_days:", "window_dayz:", 1))
    monkeypatch.setenv("MLOPS_CONFIGS", str(tmp_path))

    bag = DagBag(dag_folder=str(settings.dags_dir()))
    assert {k for k in bag.import_errors} == {str(CONFIG_ERRORS)}
    error = bag.import_errors[str(CONFIG_ERRORS)]
    assert str(broken) in error and "training.window_dayz" in error
    assert "churn_train" in bag.dag_ids and "churn_ingest" in bag.dag_ids
    assert not [d for d in bag.dag_ids if d.startswith("store_sales_")]


@pytest.mark.parametrize("approval", ["none", "required"])
def test_a_canary_rollout_adds_the_judgment_to_the_monitor_and_a_rollout_dag(tmp_path, monkeypatch, approval):
    import shutil

    import yaml
    from airflow.dag_processing.dagbag import DagBag

    for path in settings.configs_dir().glob("*.yaml"):
        shutil.copy(path, tmp_path / path.name)
    raw = yaml.safe_load((tmp_path / "churn.yaml").read_text())
    raw["rollout"] = {"mode": "canary", "max_days": 10, "approval": approval}
    raw["monitoring"]["retrain"]["cooldown_days"] = 14
    (tmp_path / "churn.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    monkeypatch.setenv("MLOPS_CONFIGS", str(tmp_path))

    bag = DagBag(dag_folder=str(settings.dags_dir()))
    assert not bag.import_errors, bag.import_errors
    assert "churn_rollout" in bag.dag_ids and "store_sales_rollout" not in bag.dag_ids  # store_sales: direct
    rollout = bag.dags["churn_rollout"]
    assert rollout.schedule is None and set(rollout.params) == {"action", "reason"}
    monitor = bag.dags["churn_drift_monitor"]
    if approval == "none":
        assert rollout.task_ids == ["decide_canary"]
        assert monitor.get_task("judge_canary").downstream_task_ids == {"decide"}
    else:  # a person is asked (Airflow's human-in-the-loop branch operator) before a canary goes to everyone
        assert rollout.get_task("ask_approval").downstream_task_ids == {"promote_canary", "roll_back_canary"}
        assert rollout.get_task("route").downstream_task_ids == {"decide_canary", "prepare_approval"}
        assert {"decide", "approval_needed"} <= monitor.get_task("judge_canary").downstream_task_ids
        assert monitor.get_task("approval_needed").downstream_task_ids == {"ask_for_approval"}
        assert set(rollout.params.get_param("action").schema["enum"]) == {"promote", "abort", "approval"}
    assert "judge_canary" not in bag.dags["store_sales_drift_monitor"].task_ids
