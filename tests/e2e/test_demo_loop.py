"""The whole loop, as `make demo` runs it: history, first champion, drift, detection, one retrain, recovery.

Real DAG runs in-process over the demo's simulated stream (configs/churn.yaml:
drift on day 31 of 47). Asserts the closed-loop figures the README promises:
drift detected within 2 days, exactly one retrain in the cooldown, and a new
champion at >= 95% of the old champion's pre-drift metric on post-drift days,
while the old champion fell. A drift that persists for two weeks gives one retrain.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import yaml

from mlops import airflow_admin
from pipelines.config import get_usecase
from pipelines.monitoring import policy
from pipelines.stores import monitoring as store

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def demo_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh home with the repository's churn config as it is (warm-up included), retries fast."""
    home, configs = tmp_path / "var", tmp_path / "configs"
    configs.mkdir()
    raw = yaml.safe_load((REPO / "configs" / "churn.yaml").read_text())
    raw["schedule"]["retry_delay_minutes"] = 0.01
    (configs / "churn.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    monkeypatch.setenv("MLOPS_HOME", str(home))
    monkeypatch.setenv("MLOPS_CONFIGS", str(configs))
    for conn, db in (("SOURCE", "source.db"), ("WAREHOUSE", "warehouse.db")):
        url = json.dumps({"conn_type": "generic", "extra": {"sqlalchemy_url": f"sqlite:///{home / db}"}})
        monkeypatch.setenv(f"AIRFLOW_CONN_MLOPS_{conn}", url)
    home.mkdir()
    airflow_admin.migrate_db()
    for queued in airflow_admin.queued_runs("churn_train"):  # left by other tests in this session's DB
        airflow_admin._delete_run("churn_train", queued["run_id"])
    return home


def test_the_loop_detects_the_drift_retrains_once_and_recovers(demo_home, capsys):
    from mlops import demo
    from pipelines.simulation.writer import world_for, write_simulation

    usecase = get_usecase("churn")
    sim = usecase.simulation
    world = world_for(usecase, sim.start)
    write_simulation(f"sqlite:///{demo_home / 'source.db'}", usecase, world, sim.days)

    assert demo.run(usecase, sim.start, sim.days, sim.drift_day) == 0
    summary = json.loads((demo_home / "reports" / "demo_summary.json").read_text())
    loop = summary["closed_loop"]
    printed = capsys.readouterr().out
    assert "closed loop:" in printed and "recovery: new champion at" in printed

    drift = dt.date.fromisoformat(loop["drift_day"])
    assert loop["false_alarms_before_drift"] == []
    assert loop["detection_delay_days"] is not None and loop["detection_delay_days"] <= 2
    # Two weeks of persisting drift, one retrain: labels of the new regime first, then the cooldown.
    assert len(loop["triggered"]) == 1 and loop["at_most_one_retrain_per_cooldown"]
    assert loop["decisions"][policy.WAITING] >= 7
    retrain = loop["retrain"]
    assert retrain["decision"] == "promoted"
    assert min(retrain["post_drift_holdout_days"]) >= drift.isoformat()
    assert loop["recovery_ratio"] >= 0.95 and loop["recovered"]
    old_after = retrain["replaced_champion_post_drift_metric"]
    assert old_after < loop["old_champion"]["pre_drift_metric"] - 0.1  # the old champion did fall

    # The triggered run carried the monitor's reason, report and window to the train DAG.
    decisions = store.read(airflow_admin.connection_url("mlops_warehouse"), store.DECISIONS, "churn")
    trigger = next(d for d in decisions if d["action"] == policy.TRIGGERED)
    record = json.loads((demo_home / "reports" / "churn" / "decisions" / f"v{retrain['version']}.json").read_text())
    assert record["trigger_reason"].startswith("drift monitor") and trigger["conf"]["window_days"] >= 8
    assert Path(trigger["report_html"]).exists()

    # One record across the stores for a post-drift day's predictions.
    from pipelines.lineage import trace

    day = dt.date.fromisoformat(summary["per_day"][-1]["day"])
    lineage = trace(usecase, day, airflow_admin.connection_url("mlops_warehouse"))
    assert lineage["models"][0]["version"] == retrain["version"]
    assert lineage["models"][0]["data_hash"] and lineage["features"]["computed_from"]["validation"]
    assert lineage["monitoring"]["drift_report"] and lineage["monitoring"]["retrain_decision"]["action"]
