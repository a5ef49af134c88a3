"""Test harness: one throw-away $MLOPS_HOME per session, set before Airflow is imported.

Airflow reads AIRFLOW_HOME once per process, so the metadata DB is per session
(per worker under pytest-xdist: each worker is its own process); data folders
(curated, quarantine, reports, GX state) are per test, through the ``home``
fixture, because the pipeline reads $MLOPS_HOME at call time. Tests that need
an Airflow state of their own (the whole loop) run the ``mlops`` command in a
subprocess with its own $MLOPS_HOME.

Lanes (markers, set here from the folder a test is in): ``unit``, ``integration``
(real libraries and stores, no DAG run), ``e2e`` (real DAG runs), ``slow`` (a
whole loop over many days), ``postgres`` (uses the local PostgreSQL server).
``make test-fast`` runs what is neither ``e2e`` nor ``slow``.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
from pathlib import Path

import yaml

_SESSION = Path(tempfile.mkdtemp(prefix="mlops-tests-"))
_REPO = Path(__file__).resolve().parents[1]

# The tests' own copy of the configs: same use cases, retries a second apart
# instead of minutes, so retry behaviour can be tested in real runs.
_CONFIGS = _SESSION / "configs"
_CONFIGS.mkdir()
for _path in (_REPO / "configs").glob("*.yaml"):
    _raw = yaml.safe_load(_path.read_text())
    _raw["schedule"]["retry_delay_minutes"] = 0.01
    if "training" in _raw:  # the tests' short histories train from their first day
        _raw["training"]["warmup_days"] = 0
    (_CONFIGS / _path.name).write_text(yaml.safe_dump(_raw, sort_keys=False))

os.environ["MLOPS_HOME"] = str(_SESSION / "var")
os.environ["AIRFLOW_HOME"] = str(_SESSION / "var" / "airflow")
os.environ["MLOPS_CONFIGS"] = str(_CONFIGS)
os.environ.pop("AIRFLOW_CONN_MLOPS_SOURCE", None)
os.environ.pop("AIRFLOW_CONN_MLOPS_WAREHOUSE", None)

import pytest  # noqa: E402

from mlops import airflow_admin  # noqa: E402

airflow_admin.prepare()

POSTGRES_ADMIN_URL = os.environ.get("MLOPS_TEST_POSTGRES", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh $MLOPS_HOME for one test (data, reports, GX state, source DB)."""
    root = tmp_path / "var"
    root.mkdir()
    monkeypatch.setenv("MLOPS_HOME", str(root))
    return root


@pytest.fixture
def churn():
    from pipelines.config import get_usecase

    return get_usecase("churn")


@pytest.fixture
def sqlite_source(home: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """URL of an empty SQLite source in the test's home, also set as the Airflow connection."""
    url = f"sqlite:///{home / 'source.db'}"
    set_source_connection(monkeypatch, url)
    return url


@pytest.fixture
def warehouse_url(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """A SQLite warehouse in the test's home (``labelled_home`` when the test uses it, else ``home``),
    set as the mlops_warehouse connection."""
    import json

    name = "labelled_home" if "labelled_home" in request.fixturenames else "home"
    url = f"sqlite:///{request.getfixturevalue(name) / 'warehouse.db'}"
    conn = {"conn_type": "generic", "extra": {"sqlalchemy_url": url}}
    monkeypatch.setenv("AIRFLOW_CONN_MLOPS_WAREHOUSE", json.dumps(conn))
    return url


def set_source_connection(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    """Define the mlops_source connection for this test, as a user would with an env var."""
    import json

    conn = {"conn_type": "generic", "extra": {"sqlalchemy_url": url}}
    monkeypatch.setenv("AIRFLOW_CONN_MLOPS_SOURCE", json.dumps(conn))


@pytest.fixture
def postgres_url() -> str:
    """A fresh PostgreSQL database on the local server, dropped afterwards.

    CI has the server; elsewhere the test is skipped when it cannot be reached.
    """
    import uuid

    import sqlalchemy as sa

    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"mlops_test_{uuid.uuid4().hex[:8]}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no PostgreSQL server at {POSTGRES_ADMIN_URL}: {exc}")
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    yield url
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


_LANES = {"unit": "unit", "dags": "unit", "data": "integration", "integration": "integration", "e2e": "e2e"}


def pytest_collection_modifyitems(config, items):
    """Mark each test with its lane, and start the slow ones first (so that, spread over
    xdist workers, a whole-loop test does not begin last and decide the suite's duration)."""
    for item in items:
        folder = Path(item.fspath).relative_to(_REPO / "tests").parts[0]
        item.add_marker(getattr(pytest.mark, _LANES.get(folder, "integration")))
        if "postgres_url" in getattr(item, "fixturenames", ()) or "postgres" in item.name:
            item.add_marker(pytest.mark.postgres)
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_SESSION, ignore_errors=True)


# A labelled history for training: 18 simulated days, labels 7 days late, so the
# labels of 10 days are known at LABELLED_END (curated data, features, Feast registry).
LABELLED_START = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
LABELLED_DAYS = 18
LABELLED_END = LABELLED_START + dt.timedelta(days=LABELLED_DAYS)


@pytest.fixture(scope="session")
def labelled_history(tmp_path_factory, worker_id) -> Path:
    """Built once per test run, shared by the xdist workers (the first one builds it under a
    file lock, the others wait and reuse it); use ``labelled_home`` to get a copy of it."""
    from filelock import FileLock

    if worker_id == "master":  # no xdist: this process is the whole run
        _build_labelled_history(root := tmp_path_factory.mktemp("labelled") / "var")
        return root
    shared = tmp_path_factory.getbasetemp().parent / "labelled"  # the run's folder, above each worker's
    with FileLock(f"{shared}.lock"):
        if not (shared / "built").exists():
            shared.mkdir(exist_ok=True)
            _build_labelled_history(shared / "var")
            (shared / "built").touch()
    return shared / "var"


def _build_labelled_history(root: Path) -> None:
    from pipelines.config import get_usecase
    from pipelines.features.build import build_feature_partition
    from pipelines.features.definitions import feast_objects
    from pipelines.ingestion.ingest import ingest_interval
    from pipelines.simulation.churn import World
    from pipelines.simulation.writer import write_simulation
    from pipelines.stores import feature_store

    root.mkdir()
    world = World(start=LABELLED_START.date(), customers=400, seed=11, label_delay_days=7)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLOPS_HOME", str(root))
        mp.setenv("MLOPS_DATA_DOCS", "deferred")  # no test reads this history's Data Docs (28 s instead of 45 s)
        usecase = get_usecase("churn")
        url = f"sqlite:///{root / 'source.db'}"
        write_simulation(url, usecase, world, LABELLED_DAYS)
        for i in range(LABELLED_DAYS):
            day = LABELLED_START + dt.timedelta(days=i)
            for dataset in ("activity", "labels"):
                ingest_interval(url, usecase, dataset, day, day + dt.timedelta(days=1))
            build_feature_partition(usecase, day, day + dt.timedelta(days=1))
        feature_store.apply_if_changed(feature_store.get_store(), feast_objects(usecase))


@pytest.fixture
def labelled_home(labelled_history: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh $MLOPS_HOME holding a copy of the labelled history, with no MLflow state."""
    root = tmp_path / "var"
    shutil.copytree(labelled_history, root)
    monkeypatch.setenv("MLOPS_HOME", str(root))
    return root
