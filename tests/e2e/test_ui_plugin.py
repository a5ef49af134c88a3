"""Airflow's UI on the demo's state, as `make demo` then `make ui` serve it: the `mlops` plugin's login,
pages and metrics, the demo's runs (real durations, task logs, the retrain the monitor queued), and the
extra links, checked in a real browser (Playwright driving Debian's Chromium) logged in through
Airflow's own login page. Screenshots go to ``$MLOPS_HOME/reports/ui/`` (on failure: ``failure-*.png``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlops.server import isolated
from tests import browser, demo

pytestmark = pytest.mark.xdist_group(demo.GROUP)  # the demo's state (test_demo_loop reads it too), one api-server

USER = "admin"


def _wait_for(url: str, process: subprocess.Popen, log: Path, seconds: float = 120) -> None:
    import httpx

    deadline = time.monotonic() + seconds
    while True:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=5).status_code == 200:
                return
        assert process.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.5)


@pytest.fixture(scope="module")
def ui(demo_run: demo.DemoRun) -> Iterator[dict[str, Any]]:
    """`airflow api-server` and `mlops mlflow-ui` on the demo's state (what `make ui` and `make mlflow-ui`
    serve), the plugin's MLflow links pointed at the latter; yields the addresses, password and state."""
    home, api_port = demo_run.home, isolated.free_port()
    env, mlflow = demo_run.env(), demo_run.mlflow_ui
    commands = {
        "api-server": ["mlops", "airflow", "api-server", "--port", str(api_port)],
        "mlflow-ui": ["mlops", "mlflow-ui", "--port", mlflow.rsplit(":", 1)[1]],
    }
    processes, logs = {}, {}
    try:
        for name, command in commands.items():
            logs[name] = home / "logs" / f"ui-test-{name}.log"
            logs[name].parent.mkdir(parents=True, exist_ok=True)
            with open(logs[name], "w") as out:
                processes[name] = subprocess.Popen(
                    [str(demo.BIN / command[0]), *command[1:]], env=env, stdout=out, stderr=subprocess.STDOUT
                )
        base = f"http://localhost:{api_port}"
        _wait_for(f"{base}/api/v2/monitor/health", processes["api-server"], logs["api-server"])
        _wait_for(f"{mlflow}/health", processes["mlflow-ui"], logs["mlflow-ui"])
        passwords = json.loads((home / "airflow" / "simple_auth_manager_passwords.json.generated").read_text())
        summary = json.loads((home / "reports" / "churn" / "replay_summary.json").read_text())
        yield {"base": base, "mlflow": mlflow, "password": passwords[USER], "home": home, "summary": summary}
    finally:
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            process.wait(30)


@pytest.fixture(scope="module")
def api(ui) -> Any:
    """An HTTP client of the API server with an admin's token."""
    import httpx

    token = httpx.post(f"{ui['base']}/auth/token", json={"username": USER, "password": ui["password"]})
    assert token.status_code in (200, 201), token.text
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    with httpx.Client(base_url=ui["base"], headers=headers, timeout=30) as client:
        yield client


def _retrain(ui: dict[str, Any]) -> dict[str, Any]:
    return ui["summary"]["closed_loop"]["retrain"]


ROUTES = [
    "/mlops/",
    "/mlops/churn",
    "/mlops/metrics",
    "/mlops/churn/model_cards/v1.html",
    "/mlops/churn/drift/2025-02-11.html",  # the night the drift triggered the retrain
    "/mlops/data_docs/index.html",
    "/mlops/runs/churn_drift_monitor/x",
]


@pytest.mark.parametrize("path", ROUTES)
def test_every_route_refuses_a_request_without_a_valid_login(ui, path):
    import httpx

    base = ui["base"]
    assert httpx.get(base + path).status_code == 401
    assert httpx.get(base + path, headers={"Authorization": "Bearer not-a-token"}).status_code == 403
    assert httpx.get(base + path, cookies={"_token": "not-a-token"}).status_code == 403
    page = httpx.get(base + path, headers={"Accept": "text/html"})  # a browser goes to the login page
    assert page.status_code == 303 and "/auth/login" in page.headers["location"]
    assert "model_cards" not in page.text and "mlops_" not in page.text


def test_the_plugin_is_registered_and_its_routes_answer_a_logged_in_user(ui, api):
    champion = _retrain(ui)["version"]
    mlops = next(p for p in api.get("/api/v2/plugins").json()["plugins"] if p["name"] == "mlops")
    assert [a["url_prefix"] for a in mlops["fastapi_apps"]] == ["/mlops"]
    views = {v["name"]: v for v in mlops["external_views"]}
    assert views["Model health"]["destination"] == "nav" and views["Drift report"]["destination"] == "dag_run"
    assert views["MLflow"]["destination"] == "nav"

    page = api.get("/mlops/churn")
    assert page.status_code == 200 and f"champion v{champion}" in page.text and "<svg" in page.text
    assert f"/mlops/churn/model_cards/v{champion}.html" in page.text and ui["mlflow"] in page.text
    card = api.get(f"/mlops/churn/model_cards/v{champion}.html")
    assert card.status_code == 200 and f"churn v{champion}" in card.text
    metrics = api.get("/mlops/metrics").text
    assert f'mlops_champion_version{{usecase="churn"}} {float(champion)}' in metrics
    assert 'mlops_hours_since_last_success{dag_id="churn_train",usecase="churn"}' in metrics
    assert 'mlops_retrain_decisions{action="triggered",usecase="churn"} 1.0' in metrics
    assert api.get("/mlops/churn/drift/..%2F..%2F..%2Fairflow%2Fairflow.cfg").status_code == 404


def _runs(api: Any, dag_id: str) -> list[dict[str, Any]]:
    return api.get(f"/api/v2/dags/{dag_id}/dagRuns", params={"limit": 100, "order_by": "logical_date"}).json()[
        "dag_runs"
    ]


def test_the_demos_runs_look_as_under_the_scheduler(ui, api):
    """Durations of seconds, a log for every task, and the retrain keeps the id and type it was queued with."""
    for dag_id in ("churn_ingest", "churn_features", "churn_train", "churn_batch_inference", "churn_drift_monitor"):
        runs = _runs(api, dag_id)
        assert runs, dag_id
        for run in runs:
            took = dt.datetime.fromisoformat(run["end_date"]) - dt.datetime.fromisoformat(run["start_date"])
            assert dt.timedelta(0) <= took < dt.timedelta(minutes=5), (dag_id, run["dag_run_id"], took)
    retrains = [r for r in _runs(api, "churn_train") if r["run_type"] == "asset_triggered" or r["triggered_by"]]
    triggered = [r for r in retrains if r["dag_run_id"].startswith("drift_retrain__")]
    assert len(triggered) == 1, [(r["dag_run_id"], r["run_type"]) for r in retrains]
    assert triggered[0]["run_type"] == "operator_triggered" and triggered[0]["state"] == "success"

    run = triggered[0]["dag_run_id"]
    tasks = api.get(f"/api/v2/dags/churn_train/dagRuns/{run}/taskInstances").json()["task_instances"]
    for ti in tasks:
        log = api.get(
            f"/api/v2/dags/churn_train/dagRuns/{run}/taskInstances/{ti['task_id']}/logs/{ti['try_number']}",
            headers={"Accept": "application/json"},
        )
        assert log.status_code == 200, (ti["task_id"], log.text[:500])
        events = [e.get("event", "") for e in log.json()["content"] if isinstance(e, dict)]
        assert any("running in process" in e for e in events), (ti["task_id"], events[:5])


def test_every_task_links_to_what_it_produced(ui, api):
    champion = _retrain(ui)["version"]
    run = next(r for r in _runs(api, "churn_train") if r["dag_run_id"].startswith("drift_retrain__"))["dag_run_id"]
    tasks = f"/api/v2/dags/churn_train/dagRuns/{run}/taskInstances"
    trained = api.get(f"{tasks}/train_candidates/links").json()["extra_links"]
    assert trained["MLflow run"].startswith(f"{ui['mlflow']}/#/experiments/")  # the address of this server's MLflow
    promoted = api.get(f"{tasks}/promote/links").json()["extra_links"]
    assert promoted == {
        "Model card": f"/mlops/churn/model_cards/v{champion}.html",
        "Model version (MLflow)": f"{ui['mlflow']}/#/models/churn/versions/{champion}",
        "Model health": "/mlops/churn",
    }
    assert api.get(promoted["Model card"]).status_code == 200  # the link opens

    monitor = _runs(api, "churn_drift_monitor")[-1]["dag_run_id"]
    report = api.get(f"/api/v2/dags/churn_drift_monitor/dagRuns/{monitor}/taskInstances/measure/links").json()
    assert api.get(report["extra_links"]["Drift report"]).status_code == 200
    ingest = _runs(api, "churn_ingest")[-1]["dag_run_id"]
    validation = api.get(f"/api/v2/dags/churn_ingest/dagRuns/{ingest}/taskInstances/ingest_activity/links").json()
    assert api.get(validation["extra_links"]["Validation (Data Docs)"]).status_code == 200
    scored = _runs(api, "churn_batch_inference")[-1]["dag_run_id"]
    lineage = api.get(f"/api/v2/dags/churn_batch_inference/dagRuns/{scored}/taskInstances/score/links").json()
    assert api.get(lineage["extra_links"]["Lineage"]).status_code == 200


@contextlib.contextmanager
def _logged_in(ui: dict[str, Any], start: str) -> Iterator[Any]:
    """A browser page logged in through Airflow's login page, which sends it on to ``start``;
    a screenshot of the page in ``reports/ui/`` when the block fails."""
    with browser.page(1280, 900) as page:
        try:
            page.goto(ui["base"] + start)  # not logged in: Airflow's login page, then back here
            page.fill("input[name=username]", USER)
            page.fill("input[name=password]", ui["password"])
            page.keyboard.press("Enter")
            page.wait_for_url(f"**{start}", timeout=30_000)
            yield page
        except Exception:
            page.screenshot(path=str(_shots(ui) / f"failure-{dt.datetime.now():%H%M%S}.png"), full_page=True)
            raise


def _shots(ui: dict[str, Any]) -> Path:
    folder = ui["home"] / "reports" / "ui"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_a_browser_sees_the_loop_on_the_model_health_page_and_opens_its_reports(ui):
    champion = _retrain(ui)["version"]
    with _logged_in(ui, "/mlops/churn") as page:
        assert page.title() == "Model health: churn"
        assert page.locator("svg.health-chart rect").count() > 40  # a bar per day of the demo's 52
        assert page.get_by_text(f"champion v{champion}").count() >= 1
        # The loop on the chart: the first champion, the retrain the drift triggered, its canary, its promotion.
        assert page.locator("svg.health-chart g.marker-triggered").count() == 1
        canaries = page.locator("svg.health-chart g.marker-canary").all_text_contents()
        assert any(f"canary v{champion}" in text for text in canaries), canaries
        promoted = page.locator("svg.health-chart g.marker-promoted").all_text_contents()
        assert any(f"promoted v{champion}" in text for text in promoted), promoted
        page.screenshot(path=str(_shots(ui) / "model-health.png"), full_page=True)
        # Each version's group gaps and behavioural tests (the responsible gate), as a person reads them.
        versions = page.locator("h2:has-text('Versions') + table")
        assert "group gaps" in versions.inner_text() and "3/3 pass" in versions.inner_text()
        assert "region DP" in versions.locator("td.gaps").first.inner_text()
        page.get_by_role("link", name="drift report").first.click()  # the newest night: drifted since 02-01
        page.wait_for_url("**/drift/*.html")
        assert page.locator("text=Drift").count() >= 1
        assert page.get_by_text("Drifted features that moved the champion's scores most").count() == 1
        page.go_back()
        page.get_by_role("link", name="model card").first.click()
        page.wait_for_url("**/model_cards/v*.html")
        assert "churn v" in page.title()
        page.go_back()
        with page.expect_navigation():
            page.get_by_role("link", name="Retrain").click()
        assert page.url.endswith("/dags/churn_train")


def test_a_browser_opens_a_demo_tasks_log_and_follows_the_training_link_to_mlflow(ui, api):
    run = next(r for r in _runs(api, "churn_train") if r["dag_run_id"].startswith("drift_retrain__"))["dag_run_id"]
    task = f"/dags/churn_train/runs/{run}/tasks/train_candidates"
    with _logged_in(ui, task) as page:
        page.get_by_text("running in process").first.wait_for(timeout=30_000)  # the log, as the UI shows it
        page.get_by_text("candidate xgboost (xgboost): trained").first.wait_for()
        page.screenshot(path=str(_shots(ui) / "task-log.png"))
        page.get_by_role("link", name="Details").click()  # the task's extra links are on its Details tab
        link = page.get_by_role("link", name="MLflow run")
        link.wait_for(timeout=30_000)
        page.screenshot(path=str(_shots(ui) / "task-links.png"))
        with page.context.expect_page() as opened:
            link.click()
        mlflow = opened.value
        mlflow.wait_for_url(f"{ui['mlflow']}/**/runs/*")
        mlflow_run = mlflow.url.rsplit("/", 1)[1]
        # MLflow's page of that run: the candidates as its child runs, the Airflow run in its tags.
        mlflow.get_by_text("airflow_run_id").first.wait_for(timeout=60_000)
        assert mlflow_run in mlflow.title() and mlflow.get_by_text("Child runs").count() >= 1
        mlflow.screenshot(path=str(_shots(ui) / "mlflow-run.png"))


def test_the_train_dags_form_explains_each_field(ui):
    with _logged_in(ui, "/dags/churn_train") as page:
        page.get_by_role("button", name="Trigger").first.click()
        form = page.get_by_role("dialog")
        form.wait_for()
        for field, help_text in {
            "window_days": "days of labelled data to train on",
            "candidates": "model families to train",
            "force_promote": "recorded as forced, with the reason",
            "reason": "why you run it",
        }.items():
            assert field in form.inner_text() and help_text in form.inner_text().lower(), field
        page.screenshot(path=str(_shots(ui) / "train-form.png"))
