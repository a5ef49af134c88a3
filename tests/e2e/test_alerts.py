"""Alerts from real DAG runs (dag.test, in-process) reach a local HTTP receiver through Airflow's HTTP
notifier and an Airflow connection; a receiver that is down fails nothing and is counted."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import shutil
import socket
import threading

import pytest
import sqlalchemy as sa
import yaml

from mlops import airflow_admin, inprocess
from pipelines import alerts, settings
from pipelines.simulation.churn import World
from pipelines.simulation.writer import write_simulation

WORLD = World(start=dt.date(2025, 1, 1), customers=300, seed=5, label_delay_days=2)
DAY = dt.datetime(2025, 1, 4, tzinfo=dt.UTC)
ONE = dt.timedelta(days=1)


@pytest.fixture
def receiver():
    """An HTTP server on a free port that keeps every JSON body POSTed to it, with its path."""
    received: list[dict] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append({"path": self.path, "body": json.loads(body)})
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()


@pytest.fixture
def alerting(tmp_path, monkeypatch, home):
    """The session's configs with churn's alerts on, every event, to the connection mlops_alerts."""
    configs = tmp_path / "configs"
    shutil.copytree(settings.configs_dir(), configs)
    raw = yaml.safe_load((configs / "churn.yaml").read_text())
    raw["alerts"] = {"connection_id": "mlops_alerts", "endpoint": "hooks/mlops", "timeout_seconds": 2}
    (configs / "churn.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    monkeypatch.setenv("MLOPS_CONFIGS", str(configs))
    airflow_admin.migrate_db()
    return configs


def _connect(monkeypatch, url: str) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_MLOPS_ALERTS", json.dumps({"conn_type": "http", "host": url}))


def test_a_quarantine_and_a_failed_run_reach_the_receiver(alerting, receiver, sqlite_source, churn, monkeypatch):
    url, received = receiver
    _connect(monkeypatch, url)
    write_simulation(sqlite_source, churn, WORLD, 6)
    engine = sa.create_engine(sqlite_source)
    with engine.begin() as conn:  # bad rows on one day: its activity is quarantined
        conn.execute(
            sa.text(
                "UPDATE customer_activity SET region = 'atlantis' "
                "WHERE event_timestamp >= '2025-01-04' AND event_timestamp < '2025-01-05' AND customer_id < 20"
            )
        )
    engine.dispose()
    bad = inprocess.run_interval(inprocess.load_dag("churn_ingest"), DAY, DAY + ONE)
    assert bad.state == "failed" and bad.task_states["ingest_activity"] == "failed"
    events = [r["body"]["event"] for r in received]
    assert events == ["quarantine", "run_failed"], received
    quarantine, failed = (r["body"] for r in received)
    assert {r["path"] for r in received} == {"/hooks/mlops"}
    assert quarantine["usecase"] == "churn" and "atlantis" in quarantine["message"]
    assert failed["details"]["task_id"] == "ingest_activity" and failed["details"]["dag_id"] == "churn_ingest"
    assert alerts.counts("churn") == {"sent": 2, "failed": 0, "last_failure": None}


def test_a_day_whose_rows_have_not_arrived_by_its_deadline_alerts_late_data(
    alerting, receiver, sqlite_source, monkeypatch
):
    """With ``late_after_hours`` an empty day is not curated as empty: past its deadline the run alerts
    ``late_data`` and fails without retrying, curating nothing; once the rows arrive a rerun curates them."""
    from pipelines.stores import partitions

    url, received = receiver
    _connect(monkeypatch, url)
    raw = yaml.safe_load((alerting / "churn.yaml").read_text())
    raw["source"]["datasets"]["activity"]["late_after_hours"] = 6
    (alerting / "churn.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    from pipelines.config import get_usecase

    usecase = get_usecase("churn")
    write_simulation(sqlite_source, usecase, WORLD, 6)
    engine = sa.create_engine(sqlite_source)
    that_day = "event_timestamp >= '2025-01-04' AND event_timestamp < '2025-01-05'"
    with engine.begin() as conn:  # the day's activity has not been loaded into the source yet
        held_back = conn.execute(sa.text(f"SELECT * FROM customer_activity WHERE {that_day}")).mappings().all()
        conn.execute(sa.text(f"DELETE FROM customer_activity WHERE {that_day}"))
    late = inprocess.run_interval(inprocess.load_dag("churn_ingest"), DAY, DAY + ONE)
    assert late.state == "failed" and late.task_states["ingest_activity"] == "failed"
    assert late.try_numbers["ingest_activity"] == 1  # no retry: waiting more is the deadline's job
    bodies = [r["body"] for r in received]
    assert [b["event"] for b in bodies] == ["late_data", "run_failed"], bodies
    assert "no rows had arrived by 2025-01-05T06:00:00+00:00" in bodies[0]["message"]
    key = partitions.partition_key(DAY, DAY + ONE)
    assert not partitions.partition_path(partitions.CURATED, "churn", "activity", key).exists()  # nothing curated
    with engine.begin() as conn:  # the rows arrive; a rerun curates them
        conn.execute(sa.table("customer_activity", *[sa.column(c) for c in held_back[0]]).insert(), held_back)
    engine.dispose()
    again = inprocess.run_interval(inprocess.load_dag("churn_ingest"), DAY, DAY + ONE)
    assert again.task_states["ingest_activity"] == "success"
    info = partitions.read_info(partitions.partition_path(partitions.CURATED, "churn", "activity", key))
    assert info is not None and info.rows == len(held_back)


def test_a_receiver_that_is_down_fails_no_run_and_is_counted(alerting, monkeypatch, home):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _connect(monkeypatch, f"http://127.0.0.1:{port}")
    none_yet = inprocess.run_interval(inprocess.load_dag("churn_batch_inference"), DAY, DAY + ONE)
    # It fails for its own reason (no champion), once, as without alerts: the alert's failure changes nothing.
    assert none_yet.task_states["pin_models"] == "failed" and none_yet.try_numbers["pin_models"] == 1
    counted = alerts.counts("churn")
    assert counted["sent"] == 0 and counted["failed"] == 1
    assert counted["last_failure"]["event"] == "run_failed" and "ConnectionError" in counted["last_failure"]["error"]


def test_model_events_name_the_version_and_why(receiver, churn, monkeypatch, home):
    from dagkit.alerts import alert_canary, alert_gate
    from pipelines.config import AlertsSpec

    url, received = receiver
    _connect(monkeypatch, url)
    usecase = churn.model_copy(update={"alerts": AlertsSpec(events=["canary_started", "canary_rolled_back",
                                                                    "challenger_rejected_after_drift"])})  # fmt: skip
    drift = {"reason": "drift monitor 2025-02-03: data drift: 40% of features drifted"}
    alert_gate(usecase, {"decision": "canary", "version": "3", "model": "churn", "compared_with": "2"}, drift)
    alert_gate(usecase, {"decision": "rejected", "version": "4", "model": "churn", "reason": "AUC too low"}, drift)
    alert_gate(usecase, {"decision": "rejected", "version": "5", "model": "churn", "reason": "x"}, {"reason": "weekly"})
    alert_canary(usecase, "3", "rolled_back", "worse than the champion")
    alert_canary(usecase, "3", "full", "no worse")  # canary_promoted: not among this use case's events
    bodies = [r["body"] for r in received]
    assert [b["event"] for b in bodies] == ["canary_started", "challenger_rejected_after_drift", "canary_rolled_back"]
    assert "v3 passed the gate: a canary for 20% of the entities against v2" in bodies[0]["message"]
    assert "v4, trained after drift, was rejected: AUC too low" in bodies[1]["message"]
    assert bodies[2]["message"] == "churn v3 rolled back: worse than the champion"
