"""The server profile for real: `mlops server up` on this machine's PostgreSQL and Redis
(CeleryExecutor, two workers, FAB auth, an MLflow server, Feast on Redis), driven only
through Airflow's REST API with a token, as a user or an external system drives it."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
import warnings
from pathlib import Path

import pytest
import yaml

from mlops.server import isolated

pytestmark = [pytest.mark.server, pytest.mark.postgres, pytest.mark.xdist_group("server")]  # one stack

DAY = dt.timedelta(days=1)
START = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
MLOPS = isolated.MLOPS


class Stack:
    def __init__(self, home: Path, env: dict[str, str]):
        self.home, self.env = home, env

    def mlops(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        return subprocess.run([MLOPS, *args], env=self.env, capture_output=True, text=True, timeout=timeout)

    def variables(self) -> dict[str, str]:
        from mlops.server import compose

        return {**compose.read_env_file(self.home / "server" / ".env"), **self.env}

    def logs(self) -> str:
        return "\n".join(
            f"--- {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-40:])
            for log in sorted((self.home / "logs").glob("*.log"))
        )


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    if not isolated.redis_reachable() and not os.environ.get("CI"):
        pytest.skip("no Redis at 127.0.0.1:6379")
    home = tmp_path_factory.mktemp("server") / "var"
    # The session's configs, with churn shortened to the days this test can afford: 1- and 2-day feature
    # windows (full from day 1, so that the champion's reference, its training window, is a steady state
    # the monitor can compare nights with), and a retrain the night a drift is detected (on the normal
    # window: the policy's `labelled_days_after_drift: 0`) instead of 11 days later, on the new regime's labels.
    configs = home.parent / "configs"
    shutil.copytree(os.environ["MLOPS_CONFIGS"], configs)
    churn = yaml.safe_load((configs / "churn.yaml").read_text())
    churn["features"]["windows_days"] = [1, 2]
    # The behavioural tests name 7- and 14-day features, which these windows do not make; the responsible
    # gate is tested on its own (tests/integration/test_responsible_gate.py) and in the demo, and this test
    # needs its first model promoted whatever its group gaps on a 2-day window.
    churn["training"].pop("behaviour")
    churn["training"].pop("fairness")
    churn["training"]["warmup_days"] = 1
    churn["monitoring"]["retrain"]["labelled_days_after_drift"] = 0
    # Inference, unpaused once there is a champion, scores the backlog of feature days: the first monitored
    # nights already have matured predictions, on features of 2-day windows. Data drift alone decides here.
    churn["monitoring"]["retrain"]["metric_drop"] = None
    # The whole reference (8 days x 2,000 customers), not a sample: a calm night's verdict is the data's.
    churn["monitoring"]["sample_rows"] = 50_000
    (configs / "churn.yaml").write_text(yaml.safe_dump(churn, sort_keys=False))
    prefix, redis_dbs = f"mlops_e2e_{uuid.uuid4().hex[:6]}", (14, 15)
    extra = {
        "AIRFLOW_WORKER_CONCURRENCY": "2",
        "MLOPS_CONFIGS": str(configs),
        # A killed worker's task is failed (and retried) after this many seconds without a heartbeat (default 300).
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
        # Two cores shared with another test worker: one MLflow server process, and the DAG files (which
        # do not change during the test) parsed once, not every 30 s.
        "MLFLOW_WORKERS": "1",
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "3600",
    }
    strays = isolated.stop_strays(redis_dbs)  # an earlier run's workers would take this stack's tasks
    if strays:
        warnings.warn(f"killed processes an earlier stack left on Redis db {redis_dbs[0]}: {strays}", stacklevel=1)
    isolated.flush_redis(redis_dbs)
    stack = Stack(home, isolated.environment(home, prefix, redis_dbs, extra))
    up = stack.mlops("server", "up", "--timeout", "300")
    try:
        assert up.returncode == 0, up.stdout + up.stderr + stack.logs()
        yield stack
    finally:
        stack.mlops("server", "down")
        left = isolated.stop_strays(redis_dbs)
        isolated.drop(prefix, redis_dbs)
        assert not left, f"`mlops server down` left these running: {left}"


@pytest.fixture(scope="module")
def api(stack):
    from mlops.server.rest import AirflowAPI

    v = stack.variables()
    client = AirflowAPI(
        f"http://localhost:{v['AIRFLOW_API_PORT']}", v["AIRFLOW_ADMIN_USER"], v["AIRFLOW_ADMIN_PASSWORD"]
    )
    yield client
    client.close()


def test_anonymous_calls_are_refused_and_a_wrong_password_gets_no_token(stack):
    import httpx

    from mlops.server.rest import AirflowAPI, AirflowAPIError

    base = f"http://localhost:{stack.variables()['AIRFLOW_API_PORT']}"
    for path in ("/api/v2/dags", "/api/v2/connections", "/api/v2/dags/churn_ingest/dagRuns"):
        assert httpx.get(base + path).status_code == 401, path
    assert httpx.post(base + "/api/v2/dags/churn_ingest/dagRuns", json={}).status_code == 401
    with pytest.raises(AirflowAPIError, match="401"):
        AirflowAPI(base, "admin", "not-the-password").token()


def test_up_twice_starts_no_second_stack(stack):
    import psutil

    before = json.loads((stack.home / "server" / "processes.json").read_text())
    secrets = [stack.variables()[k] for k in ("POSTGRES_PASSWORD", "AIRFLOW_ADMIN_PASSWORD", "AIRFLOW_JWT_SECRET")]
    for entry in before.values():  # no secret in any command line a process listing shows
        proc = psutil.Process(entry["pid"])
        for p in (proc, *proc.children(recursive=True)):
            assert not any(s in " ".join(p.cmdline()) for s in secrets), p.cmdline()[:3]
    again = stack.mlops("server", "up")
    assert again.returncode == 0, again.stderr
    assert "already running" in again.stdout
    assert json.loads((stack.home / "server" / "processes.json").read_text()) == before
    status = stack.mlops("server", "status", "--json")
    assert status.returncode == 0, status.stdout
    assert all(entry["healthy"] for entry in json.loads(status.stdout).values())
    # `make demo` resets its state folder: not while the profile runs on it.
    repo = Path(__file__).resolve().parents[2]
    demo = subprocess.run(["make", "-C", str(repo), "demo", f"MLOPS_HOME={stack.home}"], env=stack.env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert demo.returncode != 0 and "the server profile runs on it" in demo.stdout, demo.stdout + demo.stderr
    assert (stack.home / "server" / "processes.json").exists()


def test_the_loop_runs_under_the_scheduler_on_the_servers(stack, api):
    import sqlalchemy as sa

    simulated = stack.mlops(
        "server", "run", "--", MLOPS, "simulate", "--usecase", "churn", "--days", "20", "--drift-day", "17"
    )
    assert simulated.returncode == 0, simulated.stderr
    assert "postgresql+psycopg2://mlops:***@127.0.0.1" in simulated.stdout  # the server source, its password masked

    api.wait_for_dags(["churn_ingest", "churn_features", "churn_train", "churn_batch_inference"])
    for dag_id in ("churn_ingest", "churn_features", "churn_train"):
        api.unpause(dag_id)

    # 1. A backfill of 16 days through the backfill API; the features DAG follows through Asset events.
    api.backfill("churn_ingest", START, START + 15 * DAY)
    ingest = [r for r in api.wait_runs("churn_ingest", 16) if r["run_type"] == "backfill"]
    assert len(ingest) == 16 and all(r["state"] == "success" for r in ingest), [r["state"] for r in ingest]
    features = api.wait_runs("churn_features", 1, settled=True)  # every day built before training reads them
    assert {r["run_type"] for r in features} == {"asset_triggered"}
    assert all(r["state"] == "success" for r in features)
    first = ingest[0]
    tasks = {t["task_id"]: t for t in api.task_instances("churn_ingest", first["dag_run_id"])}
    assert all(t["hostname"] for t in tasks.values())  # run on a Celery worker
    log = api.task_log("churn_ingest", first["dag_run_id"], next(iter(tasks)), tasks[next(iter(tasks))]["try_number"])
    assert log.strip(), "task log readable through the API"

    # 2. A training run triggered through the API, tracked on the MLflow server.
    train = api.trigger("churn_train", dt.datetime(2025, 1, 16, tzinfo=dt.UTC), {"reason": "server profile e2e"})
    # Unpausing also scheduled the latest week (catchup off): no data there, so it fails, saying so.
    runs = {r["dag_run_id"]: r for r in api.wait_runs("churn_train", 2, timeout=600)}
    assert runs.pop(train["dag_run_id"])["state"] == "success", api.task_instances("churn_train", train["dag_run_id"])
    assert [r["logical_date"][:4] for r in runs.values()] == [str(dt.date.today().year)]
    client = _mlflow(stack)
    champion = client.get_model_version_by_alias("churn", "champion")
    assert str(champion.version) == "1"
    assert client.get_run(champion.run_id).info.status == "FINISHED"

    # 3. Three more days: features, then batch inference through the online-features Asset
    # (unpaused once there is a champion: before, it fails saying "run churn_train first").
    api.unpause("churn_batch_inference")
    api.backfill("churn_ingest", START + 16 * DAY, START + 18 * DAY)
    api.wait_runs("churn_ingest", 19)
    api.wait_runs("churn_features", 2, settled=True, timeout=600)
    inference = api.wait_runs("churn_batch_inference", 1, settled=True, timeout=600)
    assert all(r["state"] == "success" for r in inference), inference
    warehouse = sa.create_engine(
        f"postgresql+psycopg2://postgres@127.0.0.1:5432/{stack.env['MLOPS_DB_PREFIX']}_warehouse"
    )
    with warehouse.connect() as conn:
        tables = set(sa.inspect(conn).get_table_names())
        assert any("prediction" in t for t in tables), tables
        table = next(t for t in sorted(tables) if "prediction" in t)
        rows = conn.scalar(sa.text(f'SELECT count(*) FROM "{table}"'))
    warehouse.dispose()
    assert rows > 0

    # 4. Online features come from Redis (Feast's server configuration, in the services' environment).
    probe = (
        "from pipelines.stores import feature_store as fs; s = fs.get_store(); "
        "print(type(s._get_provider().online_store).__name__); "
        "f = fs.online_features(s, 'churn_v1', 'customer_id', list(range(1, 201))); "
        "print(int(f.notna().all(axis=1).sum()))"
    )
    online = stack.mlops("server", "run", "--", sys.executable, "-c", probe)
    assert online.returncode == 0, online.stderr
    store, complete = online.stdout.split()[-2:]
    assert store == "RedisOnlineStore" and int(complete) > 0, online.stdout


def _mlflow(stack: Stack):
    """A client of the stack's MLflow server, its registry included (an in-process test before this one
    may have pointed the ``mlflow`` module's default registry at its own store)."""
    from mlflow import MlflowClient

    server = f"http://127.0.0.1:{stack.variables()['MLFLOW_PORT']}"
    return MlflowClient(tracking_uri=server, registry_uri=server)


def _wait_for(probe, timeout: float, poll: float = 1.0, what: str = "a condition"):
    deadline = time.monotonic() + timeout
    while not (found := probe()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not after {timeout:.0f}s")
        time.sleep(poll)
    return found


def _nights(stack: Stack) -> str:
    """What the monitor measured and decided each night so far (for a failing assertion)."""
    from pipelines.stores import monitoring

    warehouse = f"postgresql+psycopg2://postgres@127.0.0.1:5432/{stack.env['MLOPS_DB_PREFIX']}_warehouse"
    keys = ("evidence", "drift_share", "drifted_features", "prediction_drift", "reference", "current", "onset")
    lines = []
    for name in (monitoring.HISTORY, monitoring.DECISIONS):
        for record in monitoring.read(warehouse, name, "churn"):
            shown = {k: record[k] for k in (*keys, "action", "reason") if k in record}
            lines.append(f"{name} {record.get('day') or record.get('night')}: {json.dumps(shown, default=str)}")
    return "\n".join(lines)


def _worker_running(stack: Stack, ti_id: str) -> tuple[str, list] | None:
    """The Celery worker (name, process tree) whose task runner runs the task instance ``ti_id``."""
    import psutil

    for name, entry in json.loads((stack.home / "server" / "processes.json").read_text()).items():
        if entry["service"] != "airflow-worker":
            continue
        try:
            worker = psutil.Process(entry["pid"])
            tree = [worker, *worker.children(recursive=True)]
            if any(ti_id in " ".join(p.cmdline()) for p in tree):  # "airflow worker -- <ti id>"
                return name, tree
        except psutil.NoSuchProcess:
            continue
    return None


def test_a_drift_the_monitor_detects_triggers_a_retrain_that_survives_a_killed_worker(stack, api):
    import psutil

    from pipelines.stores import monitoring

    # 5. Monitor nights: day 16, then day 17 when the simulated drift starts, in order (a night's
    # decision reads the night before). Unpausing also schedules the latest night: its features never
    # come, so it waits; only the backfill's runs are the test's.
    api.unpause("churn_drift_monitor")
    api.backfill("churn_drift_monitor", START + 16 * DAY, START + 17 * DAY, max_active_runs=1)
    retrain = _wait_for(
        lambda: next((r for r in api.runs("churn_train") if r["dag_run_id"].startswith("drift_retrain__")), None),
        600, poll=3, what="the retrain the monitor triggers",
    )  # fmt: skip
    assert retrain["dag_run_id"] == "drift_retrain__2025-01-18__2025-01-18", _nights(stack)
    assert retrain["run_type"] == "operator_triggered"

    # 6. The Celery worker that trains the retrain's candidates is killed with SIGKILL, mid-task.
    running = _wait_for(
        lambda: next(
            (t for t in api.task_instances("churn_train", retrain["dag_run_id"])
             if t["task_id"] == "train_candidates" and t["state"] == "running"), None),
        600, poll=0.5, what="train_candidates running",
    )  # fmt: skip
    worker, tree = _wait_for(lambda: _worker_running(stack, running["id"]), 120, poll=0.2, what="its task runner")
    os.killpg(tree[0].pid, signal.SIGKILL)
    for proc in tree:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    # The scheduler fails the try that stopped heartbeating; the retry runs on the other worker.
    run = api.wait_run("churn_train", retrain["dag_run_id"], timeout=900)
    tasks = {t["task_id"]: t for t in api.task_instances("churn_train", retrain["dag_run_id"])}
    assert run["state"] == "success", {k: (t["state"], t["try_number"]) for k, t in tasks.items()}
    assert tasks["train_candidates"]["try_number"] >= 2, tasks["train_candidates"]
    assert "drift monitor 2025-01-18" in run["conf"]["reason"]
    # `make up` brings the dead worker back, and only it.
    again = stack.mlops("server", "up", "--timeout", "300")
    assert again.returncode == 0 and f"started {worker};" in again.stdout, again.stdout + again.stderr + stack.logs()

    nights = api.wait_runs("churn_drift_monitor", 2, run_type="backfill", timeout=300)
    assert all(r["state"] == "success" for r in nights), nights
    warehouse = f"postgresql+psycopg2://postgres@127.0.0.1:5432/{stack.env['MLOPS_DB_PREFIX']}_warehouse"
    calm = monitoring.read_night(warehouse, monitoring.DECISIONS, "churn", START + 17 * DAY)
    drift = monitoring.read_night(warehouse, monitoring.DECISIONS, "churn", START + 18 * DAY)
    assert calm["action"] == "not_needed", calm["reason"]
    assert drift["action"] == "triggered" and drift["run_id"] == retrain["dag_run_id"], drift["reason"]
    assert any("monthly_charges" in f for f in drift["drifted_features"]), drift["drifted_features"]

    # The gate decided once: one new version (the killed try registered none), the aliases as its record says.
    client = _mlflow(stack)
    versions = {str(v.version): v for v in client.search_model_versions("name='churn'")}
    assert sorted(map(int, versions)) == [1, 2]
    challenger = client.get_model_version("churn", "2")
    decided = challenger.tags["decision"]
    assert decided in ("promoted", "rejected")
    champion = client.get_model_version_by_alias("churn", "champion")
    assert str(champion.version) == ("2" if decided == "promoted" else "1")
    assert json.loads(Path(challenger.tags["decision_record"]).read_text())["decision"] == decided
    assert client.get_run(challenger.run_id).data.tags["trigger"] == "operator_triggered"
    experiment = client.get_experiment_by_name("churn")
    left = client.search_runs([experiment.experiment_id], "attributes.status = 'RUNNING'")
    assert not left, [r.info.run_name for r in left]  # what the killed try left running, the retry ended
    # No partition was left half-written (atomic writes leave `*.tmp-*` files only while they run);
    # predictions are keyed by use case, entity and day, so a rerun replaces them.
    assert not [p for p in (stack.home / "curated").rglob("*") if ".tmp-" in p.name]
    assert not [p for p in (stack.home / "features").rglob("*") if ".tmp-" in p.name]


def test_down_stops_everything_up_started(stack):
    import psutil

    recorded = json.loads((stack.home / "server" / "processes.json").read_text())
    trees = []
    for entry in recorded.values():
        proc = psutil.Process(entry["pid"])
        trees += [proc, *proc.children(recursive=True)]
    down = stack.mlops("server", "down", "--grace", "10")
    assert down.returncode == 0, down.stderr
    assert not [p for p in trees if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not (stack.home / "server" / "processes.json").exists()
    assert stack.mlops("server", "down").stdout.strip() == "nothing was running"
    assert stack.mlops("server", "status").returncode == 3
