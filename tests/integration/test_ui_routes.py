"""The plugin's routes on a state folder, its login check replaced by a fixed user: what each
route serves, and that no path outside the report folders can be reached. The login check
itself, on Airflow's API server, is tests/e2e/test_ui_plugin.py."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins"))

from mlops_web import auth
from mlops_web.app import app, last_successes, run_interval_end


@pytest.fixture
def client(home):
    from fastapi.testclient import TestClient

    (home / "reports" / "churn" / "drift").mkdir(parents=True)
    (home / "reports" / "churn" / "drift" / "2025-02-01.html").write_text("<html>drift of 2025-02-01</html>")
    (home / "reports" / "churn" / "drift" / "js").mkdir()
    (home / "reports" / "churn" / "drift" / "js" / "evidently.0.7.js").write_text("var evidently = 1")
    (home / "reports" / "churn" / "model_cards").mkdir(parents=True)
    (home / "reports" / "churn" / "model_cards" / "v1.html").write_text("<html>card v1</html>")
    (home / "reports" / "data_docs" / "static").mkdir(parents=True)
    (home / "reports" / "data_docs" / "index.html").write_text("<html>data docs</html>")
    (home / "reports" / "data_docs" / "static" / "style.css").write_text("body{}")
    (home / "secret.txt").write_text("not for the web")
    (home / "reports" / "churn" / "drift" / "escape.html").symlink_to(home / "secret.txt")
    app.dependency_overrides[auth.require_login] = lambda: "tester"
    app.dependency_overrides[last_successes] = lambda: {}  # Airflow's metadata DB: tests/e2e/test_ui_plugin.py
    app.dependency_overrides[run_interval_end] = lambda dag_id, run_id: (
        dt.datetime(2025, 2, 2, tzinfo=dt.UTC) if run_id.startswith("scheduled__") else None
    )
    try:
        yield TestClient(app)
    finally:
        app.dependency_overrides.clear()


def test_the_report_routes_serve_the_files_of_their_folders(client):
    assert "drift of 2025-02-01" in client.get("/churn/drift/2025-02-01.html").text
    assert "card v1" in client.get("/churn/model_cards/v1.html").text
    assert client.get("/churn/drift/js/evidently.0.7.js").text == "var evidently = 1"  # the reports' library
    assert client.get("/data_docs/index.html").text == "<html>data docs</html>"
    assert client.get("/data_docs/static/style.css").status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/churn/drift/..%2F..%2F..%2Fsecret.txt",
        "/churn/drift/%2E%2E%2Fsecret.txt",
        "/churn/drift/escape.html",  # a symlink out of the folder
        "/churn/drift/js/..%2F2025-02-01.html",
        "/churn/drift/js/..%2F..%2F..%2Fsecret.txt",
        "/churn/drift/js/evidently.0.7.html",  # the library folder serves scripts and fonts only
        "/churn/drift/.hidden.html",
        "/churn/model_cards/..%2Fdrift%2F2025-02-01.html",
        "/data_docs/..%2F..%2Fsecret.txt",
        "/data_docs/%2E%2E/%2E%2E/secret.txt",
        "/data_docs//etc/passwd",
        "/data_docs/static/..%2F..%2F..%2Fsecret.txt",
        "/..%2Fsecret.txt/drift/2025-02-01.html",
        "/churn%2F..%2F..%2Fsecret/drift/2025-02-01.html",
        "/nope/drift/2025-02-01.html",
    ],
)
def test_no_path_outside_the_report_folders_can_be_reached(client, path):
    response = client.get(path)
    assert response.status_code == 404, (path, response.text[:200])
    assert "not for the web" not in response.text


def test_pages_of_a_fresh_state_say_what_is_missing(client):
    index = client.get("/")
    assert index.status_code == 200 and "/mlops/churn" in index.text and "store_sales" in index.text
    page = client.get("/churn")
    assert page.status_code == 200
    assert "No day has been ingested yet" in page.text and "No version has been judged yet" in page.text
    assert "href='/dags/churn_train'>Retrain" in page.text and "href='/dags/churn_rollback'>Roll back" in page.text
    metrics = client.get("/metrics")
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    assert 'mlops_partitions_quarantined{dataset="activity",usecase="churn"} 0.0' in metrics.text


def test_a_monitor_runs_tab_opens_that_nights_report(client, home, warehouse_url):
    from pipelines.stores import monitoring

    report = home / "reports" / "churn" / "drift" / "2025-02-01.html"
    warehouse = warehouse_url  # the mlops_warehouse connection of this test (another may be in Airflow's DB)
    night = dt.datetime(2025, 2, 2, tzinfo=dt.UTC)  # the monitored interval's end
    monitoring.write(warehouse, monitoring.HISTORY, "churn", night, {"report_html": str(report)},
                     champion_version="1", current_rows=10)  # fmt: skip
    tab = client.get("/runs/churn_drift_monitor/scheduled__2025-02-01T00:00:00+00:00", follow_redirects=False)
    assert tab.status_code == 307 and tab.headers["location"] == "/mlops/churn/drift/2025-02-01.html"
    report.unlink()  # deleted by monitoring.keep_reports_days
    pruned = client.get("/runs/churn_drift_monitor/scheduled__2025-02-01T00:00:00+00:00", follow_redirects=False)
    assert pruned.status_code == 200 and "keep_reports_days" in pruned.text
    other = client.get("/runs/churn_ingest/scheduled__2025-02-01T00:00:00+00:00")
    assert other.status_code == 200 and "only the drift monitor" in other.text
    assert client.get("/runs/churn_drift_monitor/manual__nope").status_code == 404
