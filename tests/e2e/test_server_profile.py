"""The server profile for real: `mlops server up` on this machine's PostgreSQL and Redis
(CeleryExecutor, two workers, FAB auth, an MLflow server, Feast on Redis), driven only
through Airflow's REST API with a token, as a user or an external system drives it."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

pytestmark = [pytest.mark.server, pytest.mark.postgres]

DAY = dt.timedelta(days=1)
START = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
MLOPS = str(Path(sys.executable).parent / "mlops")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _free_pair() -> int:
    """A port p with p + 2 free too (the second worker's log server)."""
    while True:
        port = _free_port()
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port + 2)) != 0:
                return port


def _redis_reachable() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=2).close()
        return True
    except OSError:
        return False


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
    if not _redis_reachable() and not os.environ.get("CI"):
        pytest.skip("no Redis at 127.0.0.1:6379")
    import redis
    import sqlalchemy as sa

    home = tmp_path_factory.mktemp("server") / "var"
    prefix = f"mlops_e2e_{uuid.uuid4().hex[:6]}"
    api_port = _free_port()
    env = {
        **os.environ,
        "MLOPS_HOME": str(home),
        "AIRFLOW_HOME": str(home / "airflow"),
        "MLOPS_DB_PREFIX": prefix,
        "REDIS_BROKER_DB": "14",
        "REDIS_FEAST_DB": "15",
        "AIRFLOW_API_PORT": str(api_port),
        "AIRFLOW_BASE_URL": f"http://localhost:{api_port}",
        "MLFLOW_PORT": str(_free_port()),
        "SCHEDULER_HEALTH_PORT": str(_free_port()),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(_free_pair()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(_free_port()),
        "AIRFLOW_WORKER_CONCURRENCY": "2",
    }
    own = ("AIRFLOW__CORE__", "AIRFLOW__DATABASE__", "AIRFLOW_CONN_", "AIRFLOW__LOGGING__LOGGING_LEVEL")
    for key in [k for k in env if k.startswith(own)]:
        del env[key]  # the session's own Airflow settings (tests/conftest.py), not the profile's
    for db in (14, 15):
        redis.Redis(db=db).flushdb()
    stack = Stack(home, env)
    up = stack.mlops("server", "up", "--timeout", "300")
    try:
        assert up.returncode == 0, up.stdout + up.stderr + stack.logs()
        yield stack
    finally:
        stack.mlops("server", "down")
        admin = sa.create_engine("postgresql+psycopg2://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            for suffix in ("airflow", "mlflow", "feast", "source", "warehouse"):
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{prefix}_{suffix}" WITH (FORCE)'))
        admin.dispose()
        for db in (14, 15):
            redis.Redis(db=db).flushdb()


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
    from mlflow import MlflowClient

    simulated = stack.mlops("server", "run", "--", MLOPS, "simulate", "--usecase", "churn", "--days", "20")
    assert simulated.returncode == 0, simulated.stderr
    assert "postgresql+psycopg2://mlops:***@127.0.0.1" in simulated.stdout  # the server source, its password masked

    api.wait_for_dags(["churn_ingest", "churn_features", "churn_train", "churn_batch_inference"])
    for dag_id in ("churn_ingest", "churn_features", "churn_train"):
        api.unpause(dag_id)

    # 1. A backfill of 16 days through the backfill API; the features DAG follows through Asset events.
    api.backfill("churn_ingest", START, START + 15 * DAY)
    ingest = [r for r in api.wait_runs("churn_ingest", 16) if r["run_type"] == "backfill"]
    assert len(ingest) == 16 and all(r["state"] == "success" for r in ingest), [r["state"] for r in ingest]
    features = api.wait_runs("churn_features", 1)
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
    client = MlflowClient(f"http://127.0.0.1:{stack.variables()['MLFLOW_PORT']}")
    champion = client.get_model_version_by_alias("churn", "champion")
    assert str(champion.version) == "1"
    assert client.get_run(champion.run_id).info.status == "FINISHED"

    # 3. Three more days: features, then batch inference through the online-features Asset
    # (unpaused once there is a champion: before, it fails saying "run churn_train first").
    api.unpause("churn_batch_inference")
    api.backfill("churn_ingest", START + 16 * DAY, START + 18 * DAY)
    api.wait_runs("churn_ingest", 19)
    inference = api.wait_runs("churn_batch_inference", 1, timeout=600)
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
        "f = fs.online_features(s, 'churn_v1', 'customer_id', [1, 2, 3]); print(int(f.notna().all(axis=1).sum()))"
    )
    online = stack.mlops("server", "run", "--", sys.executable, "-c", probe)
    assert online.returncode == 0, online.stderr
    store, complete = online.stdout.split()[-2:]
    assert store == "RedisOnlineStore" and int(complete) > 0, online.stdout


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
