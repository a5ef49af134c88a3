"""Test harness: one throw-away $MLOPS_HOME per session, set before Airflow is imported.

Airflow reads AIRFLOW_HOME once per process, so the metadata DB is per session
(per worker under pytest-xdist: each worker is its own process); data folders
(curated, quarantine, reports, GX state) are per test, through the ``home``
fixture, because the pipeline reads $MLOPS_HOME at call time. Tests that need
an Airflow state of their own (the whole loop) run the ``mlops`` command in a
subprocess with its own $MLOPS_HOME.

Lanes (markers, set here from the folder a test is in): ``unit``, ``integration``
(real libraries and stores, no DAG run), ``e2e`` (real DAG runs), ``slow`` (a
whole loop over many days), ``postgres`` (uses the local PostgreSQL server),
``reliability`` (faults injected at every write, bad input, concurrency, the hardened
surface: tests/reliability), ``spark`` (the Spark engine in local mode: skipped without
PySpark, except in CI). ``make test-fast`` runs what is none of ``e2e``, ``slow``
and ``reliability``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import yaml

_SESSION = Path(tempfile.mkdtemp(prefix="mlops-tests-"))
_REPO = Path(__file__).resolve().parents[1]

# The tests' own copy of the configs: same use cases, retries a second apart
# instead of minutes, so retry behaviour can be tested in real runs, and a passing
# challenger promoted at once (``rollout.mode: direct``): the tests of training,
# rollback, concurrency and the server profile judge the gate's promotion itself.
# The canary is tested on its own (tests/e2e/test_canary.py) and in the demo, which
# runs the repository's configs as they are (tests/demo.py).
_CONFIGS = _SESSION / "configs"
_CONFIGS.mkdir()
for _path in (_REPO / "configs").glob("*.yaml"):
    _raw = yaml.safe_load(_path.read_text())
    _raw["schedule"]["retry_delay_minutes"] = 0.01
    if "training" in _raw:  # the tests' short histories train from their first day
        _raw["training"]["warmup_days"] = 0
    _raw.pop("rollout", None)
    (_CONFIGS / _path.name).write_text(yaml.safe_dump(_raw, sort_keys=False))

os.environ["MLOPS_HOME"] = str(_SESSION / "var")
os.environ["AIRFLOW_HOME"] = str(_SESSION / "var" / "airflow")
os.environ["MLOPS_CONFIGS"] = str(_CONFIGS)
os.environ.pop("AIRFLOW_CONN_MLOPS_SOURCE", None)
os.environ.pop("AIRFLOW_CONN_MLOPS_WAREHOUSE", None)
os.environ.pop("AIRFLOW_CONN_MLOPS_SPARK", None)
os.environ.pop("MLOPS_SPARK_MASTER", None)

import pytest  # noqa: E402

from mlops import airflow_admin  # noqa: E402
from tests import demo, labelled  # noqa: E402
from tests.labelled import LABELLED_END, LABELLED_START  # noqa: E402, F401 (the tests import them from here)

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


_LANES = {
    "unit": "unit",
    "dags": "unit",
    "data": "integration",
    "integration": "integration",
    "e2e": "e2e",
    "reliability": "reliability",
}


def pytest_collection_modifyitems(config, items):
    """Mark each test with its lane, and start the slow ones first (so that, spread over
    xdist workers, a whole-loop test does not begin last and decide the suite's duration)."""
    for item in items:
        folder = Path(item.fspath).relative_to(_REPO / "tests").parts[0]
        item.add_marker(getattr(pytest.mark, _LANES.get(folder, "integration")))
        if "postgres_url" in getattr(item, "fixturenames", ()) or "postgres" in item.name:
            item.add_marker(pytest.mark.postgres)
    # Slow first; those on the labelled history last, so that its build overlaps the rest.
    items.sort(
        key=lambda item: (
            item.get_closest_marker("slow") is None,
            "labelled_home" in getattr(item, "fixturenames", ()),
        )
    )


def pytest_collection_finish(session):
    """With ``--dist loadgroup``, each worker must see the ``xdist_group`` suffix on grouped tests'
    ids; without it, xdist spreads a group over workers and the server profile's module-scoped
    stack is started twice, once per worker (pytest 9.2 with xdist 3.8: pytest-xdist#1386)."""
    config = session.config
    if not hasattr(config, "workerinput") or not config.getvalue("loadgroup"):
        return
    lost = [i.nodeid for i in session.items if i.get_closest_marker("xdist_group") and "@" not in i.nodeid]
    if lost:
        raise pytest.UsageError(f"--dist loadgroup does not group {lost[0]}: see pytest-xdist#1386")


def pytest_sessionfinish(session, exitstatus):
    for builder in _LABELLED_BUILDER:  # a run shorter than the build
        builder.kill()
        builder.wait()
    shutil.rmtree(_SESSION, ignore_errors=True)


# The labelled history (tests/labelled.py): built once per test run, in the background from the start.
_LABELLED_BUILDER: list = []  # the controller's background build, when it started one


def _labelled_folder(config: pytest.Config) -> Path:
    """Where this run keeps it: beside the xdist workers' temporary folders (they are below the controller's)."""
    base = config._tmp_path_factory.getbasetemp()
    return (base.parent if hasattr(config, "workerinput") else base) / "labelled"


def pytest_sessionstart(session):
    """The xdist controller starts building the labelled history while the workers start and run
    their first tests (those that need it run last), when the run includes a folder of such tests."""
    import subprocess
    import sys

    config = session.config
    if hasattr(config, "workerinput") or not getattr(config.option, "numprocesses", None):
        return
    folders = {_REPO / "tests", *(_REPO / "tests" / lane for lane in ("integration", "e2e", "reliability"))}
    if not any(Path(arg.split("::")[0]).resolve() in folders for arg in config.args):
        return
    folder = _labelled_folder(config)
    log = open(f"{folder}.log", "w")
    command = [sys.executable, "-m", "tests.labelled", str(folder)]
    _LABELLED_BUILDER.append(subprocess.Popen(command, cwd=_REPO, stdout=log, stderr=subprocess.STDOUT))


@pytest.fixture(scope="session")
def labelled_history(tmp_path_factory, worker_id, pytestconfig) -> Path:
    """The run's labelled history (read-only: use ``labelled_home`` for a copy of it)."""
    if worker_id == "master":  # no xdist: this process is the whole run
        return labelled.shared(tmp_path_factory.mktemp("labelled"))
    return labelled.shared(_labelled_folder(pytestconfig))


@pytest.fixture
def labelled_home(labelled_history: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh $MLOPS_HOME holding a copy of the labelled history, with no MLflow state."""
    root = tmp_path / "var"
    shutil.copytree(labelled_history, root)
    monkeypatch.setenv("MLOPS_HOME", str(root))
    return root


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> demo.DemoRun:
    """`mlops demo` on a fresh state, once per worker that asks (tests.demo: the modules in its group)."""
    return demo.run(tmp_path_factory.mktemp("demo"))
