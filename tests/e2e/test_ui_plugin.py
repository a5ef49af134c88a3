"""The `mlops` plugin on Airflow's API server, as `make ui` serves it: the login every route needs,
the model-health page of a trained champion, its metrics, and the page in a real browser
(Playwright driving Debian's Chromium), logged in through Airflow's own login page."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlops.server import isolated
from tests import browser
from tests.conftest import LABELLED_END

pytestmark = pytest.mark.xdist_group("ui")  # one api-server (module fixture) on one worker, not one per worker

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def ui(tmp_path_factory, labelled_history):
    """A copy of the labelled history, `mlops init`, one churn_train run (`airflow dags test`), then
    `airflow api-server` on it; yields (base URL, admin password, state folder)."""
    home = tmp_path_factory.mktemp("ui") / "var"
    shutil.copytree(labelled_history, home)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLOPS_", "AIRFLOW", "MLFLOW_"))}
    env |= {"MLOPS_HOME": str(home), "MLOPS_CONFIGS": os.environ["MLOPS_CONFIGS"]}
    env |= {"AIRFLOW_HOME": str(home / "airflow"), "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}"}
    subprocess.run([str(BIN / "mlops"), "init"], env=env, check=True, capture_output=True, text=True)
    conf = json.dumps({"window_end": LABELLED_END.isoformat(), "reason": "ui test"})
    trained = subprocess.run(
        [str(BIN / "mlops"), "airflow", "dags", "test", "churn_train", "2025-01-16", "--conf", conf],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert trained.returncode == 0, trained.stdout[-3000:] + trained.stderr[-3000:]
    port = isolated.free_port()
    log = open(home / "api-server.log", "w")
    server = subprocess.Popen(
        [str(BIN / "mlops"), "airflow", "api-server", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://localhost:{port}"
    try:
        import httpx

        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{base}/api/v2/monitor/health", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, (home / "api-server.log").read_text()[-3000:]
            time.sleep(0.5)
        passwords = json.loads((home / "airflow" / "simple_auth_manager_passwords.json.generated").read_text())
        yield base, passwords["admin"], home
    finally:
        server.terminate()
        server.wait(30)
        log.close()


@pytest.fixture(scope="module")
def token(ui):
    import httpx

    base, password, _ = ui
    response = httpx.post(f"{base}/auth/token", json={"username": "admin", "password": password})
    assert response.status_code in (200, 201), response.text
    return response.json()["access_token"]


ROUTES = [
    "/mlops/",
    "/mlops/churn",
    "/mlops/metrics",
    "/mlops/churn/model_cards/v1.html",
    "/mlops/data_docs/index.html",
]


@pytest.mark.parametrize("path", ROUTES)
def test_every_route_refuses_a_request_without_a_valid_login(ui, path):
    import httpx

    base = ui[0]
    assert httpx.get(base + path).status_code == 401
    assert httpx.get(base + path, headers={"Authorization": "Bearer not-a-token"}).status_code == 403
    assert httpx.get(base + path, cookies={"_token": "not-a-token"}).status_code == 403
    page = httpx.get(base + path, headers={"Accept": "text/html"})  # a browser goes to the login page
    assert page.status_code == 303 and "/auth/login" in page.headers["location"]
    assert "model_cards" not in page.text and "mlops_" not in page.text


def test_the_plugin_is_registered_and_its_routes_answer_a_logged_in_user(ui, token):
    import httpx

    base = ui[0]
    auth = {"Authorization": f"Bearer {token}"}
    plugins = httpx.get(f"{base}/api/v2/plugins", headers=auth).json()["plugins"]
    mlops = next(p for p in plugins if p["name"] == "mlops")
    assert [a["url_prefix"] for a in mlops["fastapi_apps"]] == ["/mlops"]
    views = {v["name"]: v for v in mlops["external_views"]}
    assert views["Model health"]["destination"] == "nav" and views["Drift report"]["destination"] == "dag_run"

    page = httpx.get(f"{base}/mlops/churn", headers=auth)
    assert page.status_code == 200 and "champion v1" in page.text and "<svg" in page.text
    assert "/mlops/churn/model_cards/v1.html" in page.text
    card = httpx.get(f"{base}/mlops/churn/model_cards/v1.html", headers=auth)
    assert card.status_code == 200 and "churn v1" in card.text
    metrics = httpx.get(f"{base}/mlops/metrics", headers=auth).text
    assert 'mlops_champion_version{usecase="churn"} 1.0' in metrics
    assert 'mlops_hours_since_last_success{dag_id="churn_train",usecase="churn"}' in metrics
    assert httpx.get(f"{base}/mlops/churn/drift/..%2F..%2F..%2Fairflow%2Fairflow.cfg", headers=auth).status_code == 404


def test_the_training_tasks_link_to_what_they_produced(ui, token):
    import httpx

    base = ui[0]
    auth = {"Authorization": f"Bearer {token}"}
    run = httpx.get(f"{base}/api/v2/dags/churn_train/dagRuns", headers=auth).json()["dag_runs"][0]
    tasks = f"{base}/api/v2/dags/churn_train/dagRuns/{run['dag_run_id']}/taskInstances"
    trained = httpx.get(f"{tasks}/train_candidates/links", headers=auth).json()["extra_links"]
    assert trained["MLflow run"].startswith("http://localhost:5000/#/experiments/")
    promoted = httpx.get(f"{tasks}/promote/links", headers=auth).json()["extra_links"]
    assert promoted == {
        "Model card": "/mlops/churn/model_cards/v1.html",
        "Model version (MLflow)": "http://localhost:5000/#/models/churn/versions/1",
        "Model health": "/mlops/churn",
    }
    assert httpx.get(base + promoted["Model card"], headers=auth).status_code == 200  # the link opens


def test_a_browser_logs_in_and_opens_the_model_health_page_and_a_model_card(ui):
    base, password, home = ui
    with browser.page(1200, 900) as page:
        try:
            page.goto(f"{base}/mlops/churn")  # not logged in: Airflow's login page, then back here
            page.fill("input[name=username]", "admin")
            page.fill("input[name=password]", password)
            page.keyboard.press("Enter")
            page.wait_for_url("**/mlops/churn", timeout=30_000)
            assert page.title() == "Model health: churn"
            assert page.locator("svg.health-chart rect").count() > 10  # a bar per day
            assert page.get_by_text("champion v1").count() >= 1
            page.get_by_role("link", name="model card").first.click()
            page.wait_for_url("**/model_cards/v1.html")
            assert "churn v1" in page.title()
        except Exception:
            shots = home / "reports" / "ui"
            shots.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shots / f"failure-{dt.datetime.now():%H%M%S}.png"), full_page=True)
            raise
