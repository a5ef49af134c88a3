"""Onboarding a user's own source: tables of another shape, replayed through the whole loop.

The source (tests/onboarding.py) is not one the project ships: string entity ids,
a custom connection id and table names, label reference times within the day
(the moment of the reading), a regression with a 4-day label delay and a
change in the data on 2025-03-17. `mlops replay` runs its history through the
real DAGs; it is stopped by SIGTERM and resumed, and never writes into the source.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from mlops.cli import main
from tests import onboarding

DAYS = 25  # 2025-03-01 .. 03-25: first champion on 03-14, drift from 03-17, its retrain on 03-25
STOP_AFTER = 3  # days the first replay process completes before it is sent SIGTERM


def _user_setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, raw: dict) -> dict:
    """A state folder, a configs folder with the user's YAML only, and their source (a SQLite file)."""
    home, configs = tmp_path / "var", tmp_path / "configs"
    configs.mkdir()
    onboarding.write_config(configs, raw)
    source = tmp_path / "source.db"
    monkeypatch.setenv("MLOPS_HOME", str(home))
    monkeypatch.setenv("MLOPS_CONFIGS", str(configs))
    monkeypatch.setenv("MLOPS_EXPECTATIONS", str(tmp_path / "expectations"))  # `mlops init` derives the suites
    conn_id = raw["source"]["connection_id"].upper()
    conns = {conn_id: f"sqlite:///{source}", "MLOPS_WAREHOUSE": f"sqlite:///{home / 'warehouse.db'}"}
    for conn, url in conns.items():
        extra = {"sqlalchemy_url": url}
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn}", json.dumps({"conn_type": "generic", "extra": extra}))
    return {"home": home, "source": source, "url": conns[conn_id]}


@pytest.fixture
def meters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    return _user_setup(tmp_path, monkeypatch, onboarding.METERS)


def test_demo_refuses_a_use_case_without_simulation_before_writing_anything(meters, capsys):
    onboarding.write_source(meters["url"], days=3, times_of_day=True)
    before = onboarding.file_digest(meters["source"])
    with pytest.raises(SystemExit) as stop:
        main(["demo", "--usecase", "meter_load"])
    assert "no simulation section" in str(stop.value) and "mlops replay --usecase meter_load" in str(stop.value)
    assert onboarding.file_digest(meters["source"]) == before
    assert not meters["home"].exists()  # not even the state folder


def test_resume_without_a_stopped_replay_says_so(meters, capsys):
    onboarding.write_source(meters["url"], days=3, times_of_day=True)
    assert main(["replay", "--usecase", "meter_load", "--resume"]) == 2
    assert "no replay of meter_load to resume" in capsys.readouterr().err


def _stopped_replay(env: dict[str, str]) -> tuple[int, str]:
    """`mlops replay` in its own process, sent SIGTERM once it has completed STOP_AFTER days."""
    command = [str(Path(sys.executable).parent / "mlops"), "replay", "--usecase", "meter_load"]
    command += ["--end", onboarding.day(DAYS).date().isoformat(), "--drift-from", "2025-03-17"]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if f"[{STOP_AFTER}/{DAYS}]" in line:
            proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=300), "".join(lines)


@pytest.mark.slow
def test_a_real_source_replays_through_the_loop_stops_on_sigterm_and_resumes(meters, capsys):
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    from mlops import airflow_admin, task_logs
    from pipelines.config import get_usecase
    from pipelines.promotion.decisions import decisions_dir
    from pipelines.stores import monitoring as store

    onboarding.write_source(meters["url"], days=DAYS, times_of_day=True)
    before = onboarding.file_digest(meters["source"])

    code, printed = _stopped_replay(dict(os.environ))
    assert code == 128 + signal.SIGTERM, printed
    assert "stopped by SIGTERM" in printed and "Resume with: mlops replay --usecase meter_load --resume" in printed
    usecase = get_usecase("meter_load")
    state = json.loads((meters["home"] / "reports" / "meter_load" / "replay_state.json").read_text())
    assert state["status"] == "stopped" and len(state["per_day"]) >= STOP_AFTER
    with create_session() as session:  # the run the signal cut short is failed, not left running
        states = {r.state for r in session.query(DagRun).filter(DagRun.dag_id.like("meter_load_%"))}
    assert "running" not in states and "queued" not in states

    assert main(["replay", "--usecase", "meter_load", "--resume"]) == 0
    printed = capsys.readouterr().out
    assert "resuming after the" in printed and "closed loop:" in printed
    summary = json.loads((meters["home"] / "reports" / "meter_load" / "replay_summary.json").read_text())
    assert summary["days"] == DAYS and len(summary["per_day"]) == DAYS and not summary["failed_runs"]

    # The split counts days, not timestamps: 2 holdout days of 250 meters, and the first model was held to
    # the configured holdout size like every other.
    records = sorted(decisions_dir(usecase).glob("v*.json"), key=lambda p: int(p.stem[1:]))
    first = json.loads(records[0].read_text())
    assert len(first["holdout_days"]) == 2 and first["holdout_rows"] == 2 * onboarding.ENTITIES
    assert any(c["name"] == "holdout_size" and c["passed"] for c in first["checks"])
    assert first["decision"] == "promoted"

    # A live metric on matured days: labels stamped within the day joined the day's served predictions.
    history = store.read(airflow_admin.connection_url("mlops_warehouse"), store.HISTORY, "meter_load")
    live = [h for h in history if h["live_metric"] is not None]
    assert live and all(h["live"]["weighed_rows"] >= onboarding.ENTITIES for h in live)

    loop = summary["closed_loop"]
    assert loop["false_alarms_before_drift"] == [] and loop["detection_delay_days"] <= 2
    assert len(loop["triggered"]) == 1 and loop["retrain"]["decision"] == "promoted"
    assert loop["recovered"] and loop["time_to_recovery_days"] is not None
    assert summary["thresholds"]["stable_nights"] >= 1
    # The retrain the monitor queued ran as queued, as under the scheduler: its id, type and a real duration,
    # and each of its tasks wrote the log the Airflow UI opens.
    with create_session() as session:
        runs = session.query(DagRun).filter(DagRun.dag_id == "meter_load_train").all()
        retrains = [r for r in runs if getattr(r.run_type, "value", r.run_type) == "operator_triggered"]
        assert len(retrains) == 1 and retrains[0].run_id.startswith("drift_retrain__"), [r.run_id for r in runs]
        retrain = retrains[0]
        assert retrain.state == "success" and retrain.end_date - retrain.start_date < dt.timedelta(minutes=10)
        for ti in retrain.get_task_instances(session=session):
            assert task_logs.log_path(ti.dag_id, ti.run_id, ti.task_id, ti.try_number).stat().st_size > 0, ti.task_id

    assert onboarding.file_digest(meters["source"]) == before  # a replay only reads the source


ACCOUNT_DAYS = 32  # 2025-05-01 .. 06-01: first champion on 05-21, its first served day's labels known by 05-31


# Secrets the hardened-surface check plants (issue 17): a password in the warehouse connection (the local
# PostgreSQL trusts every login, so any password connects) and secrets in the environment. None may appear
# in anything the loop writes (state files and databases, logs, XComs, MLflow, reports, the warehouse) or prints.
SECRETS = {
    "MLOPS_PROBE_PASSWORD": "pw-9f2c41d7e8",
    "AWS_SECRET_ACCESS_KEY": "aws-secret-5be1c0ffee",
    "MLFLOW_TRACKING_PASSWORD": "mlflow-pw-77a1",
}


def _secrets_in(home: Path, warehouse_url: str, printed: str) -> dict[str, list[str]]:
    """Where each planted secret appears: files of the state and of Airflow's home (every byte: databases,
    XComs, task logs, MLflow, reports), the warehouse's tables, what was printed."""
    import sqlalchemy as sa

    found: dict[str, list[str]] = {}
    airflow_home = Path(os.environ["AIRFLOW_HOME"])  # the session's: XComs, task logs, runs
    for path in (p for folder in (home, airflow_home) for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        for secret in SECRETS.values():
            if secret.encode() in data:
                found.setdefault(secret, []).append(str(path))
    engine = sa.create_engine(warehouse_url)
    with engine.connect() as conn:
        for table in sa.inspect(engine).get_table_names():
            text = str(conn.execute(sa.text(f'SELECT * FROM "{table}"')).fetchall())
            found.update({s: [*found.get(s, []), f"warehouse.{table}"] for s in SECRETS.values() if s in text})
    engine.dispose()
    for secret in SECRETS.values():
        if secret in printed:
            found.setdefault(secret, []).append("printed output")
    return found


@pytest.mark.slow
def test_a_binary_source_with_a_long_label_delay_replays_its_whole_history_and_leaks_no_secret(
    tmp_path, monkeypatch, capsys, postgres_url
):
    import sqlalchemy as sa

    from mlops import airflow_admin
    from pipelines.config import get_usecase
    from pipelines.promotion.decisions import decisions_dir
    from pipelines.stores import monitoring as store

    raw, generator = onboarding.ACCOUNTS, onboarding.ACCOUNT_GENERATOR
    setup = _user_setup(tmp_path, monkeypatch, raw)
    warehouse = sa.make_url(postgres_url).set(password=SECRETS["MLOPS_PROBE_PASSWORD"])
    warehouse_url = warehouse.render_as_string(hide_password=False)
    extra = {"sqlalchemy_url": warehouse_url}
    monkeypatch.setenv("AIRFLOW_CONN_MLOPS_WAREHOUSE", json.dumps({"conn_type": "generic", "extra": extra}))
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    onboarding.write_source(setup["url"], ACCOUNT_DAYS, True, raw, generator)
    before = onboarding.file_digest(setup["source"])

    assert main(["replay", "--usecase", "account_lapse"]) == 0  # the source's whole history, no known drift
    captured = capsys.readouterr()
    printed = captured.out
    assert "source sqlite:///" in printed and "rows from 2025-05-01 to 2025-06-01 (read only)" in printed
    assert "nights with drift evidence" in printed or "no night detected drift" in printed
    assert "monitoring.retrain.drift_share:" in printed
    summary = json.loads((setup["home"] / "reports" / "account_lapse" / "replay_summary.json").read_text())
    assert summary["days"] == ACCOUNT_DAYS and not summary["failed_runs"] and summary["drift_day"] is None
    assert summary["thresholds"]["stable_nights"] >= 1

    usecase = get_usecase("account_lapse")
    records = sorted(decisions_dir(usecase).glob("v*.json"), key=lambda p: int(p.stem[1:]))
    first = json.loads(records[0].read_text())
    assert first["decision"] == "promoted" and first["holdout_rows"] == 300 and len(first["holdout_days"]) == 1
    assert any(c["name"] == "holdout_size" and c["passed"] for c in first["checks"])
    # Labels arrive 10 days late and a challenger is judged every week: the live metric is there all the same.
    history = store.read(airflow_admin.connection_url("mlops_warehouse"), store.HISTORY, "account_lapse")
    live = [h for h in history if h["live_metric"] is not None]
    assert live and live[-1]["live"]["weighed_rows"] >= 300 and 0.5 < live[-1]["live_metric"] <= 1
    assert onboarding.file_digest(setup["source"]) == before
    assert _secrets_in(setup["home"], warehouse_url, printed + captured.err) == {}
