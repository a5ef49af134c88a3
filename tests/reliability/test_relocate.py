"""A copy of the demo's state folder runs on its own after `mlops relocate` (issue 17, defect 1).

Before the fix, the copy's stores (Airflow's connections and XComs, MLflow's artefact
locations and model sources, Feast's file sources) named the original folder, so a
run on the copy read and wrote the original. Now a run on an unrelocated copy is
refused, `mlops relocate` rewrites the stored paths, and a day of the loop run on the
copy leaves every byte of the original as it was.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests import demo

pytestmark = pytest.mark.xdist_group(demo.GROUP)  # reads the demo's state, run once per test run


def _fingerprint(home: Path) -> dict[str, str]:
    return {
        str(p.relative_to(home)): hashlib.blake2b(p.read_bytes(), digest_size=16).hexdigest()
        for p in sorted(home.rglob("*"))
        if p.is_file() and not p.name.endswith(".lock")
    }


def _mlops(run: demo.DemoRun, home: Path, *args: str) -> subprocess.CompletedProcess:
    env = run.env(MLOPS_HOME=str(home), AIRFLOW_HOME=str(home / "airflow"))
    return subprocess.run([str(demo.BIN / "mlops"), *args], env=env, capture_output=True, text=True, timeout=600)


def test_a_copied_state_is_refused_until_relocated_then_runs_without_touching_the_original(demo_run, tmp_path):
    original = demo_run.home
    copy = tmp_path / "backup" / "var"
    shutil.copytree(original, copy, symlinks=True)
    before = _fingerprint(original)

    refused = _mlops(demo_run, copy, "status")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert f"copied or moved from {original}" in refused.stderr and "mlops relocate" in refused.stderr

    moved = _mlops(demo_run, copy, "relocate")
    assert moved.returncode == 0, moved.stdout + moved.stderr
    for store in ("mlflow/mlflow.db", "feast/registry.db", "airflow/airflow.db", "airflow connections"):
        assert f"rewritten: {store}" in moved.stdout, moved.stdout
    assert _mlops(demo_run, copy, "relocate", "--check").returncode == 0

    mlflow_db = sqlite3.connect(copy / "mlflow" / "mlflow.db")
    sources = [row[0] for row in mlflow_db.execute("SELECT storage_location FROM model_versions")]
    mlflow_db.close()
    assert sources and all(s.startswith(copy.as_uri()) for s in sources), sources

    # The demo's last day again, on the copy: ingest, features, batch inference and the drift monitor.
    last = max(p.stem for p in (copy / "curated" / "churn" / "activity").glob("*.parquet"))
    day = dt.date.fromisoformat(last)
    copied = _fingerprint(copy)
    rerun = _mlops(demo_run, copy, "replay", "--start", str(day), "--end", str(day + dt.timedelta(days=1)))
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    assert "4 of 4 runs succeeded" in rerun.stdout, rerun.stdout[-3000:]
    changed = {k for k, v in _fingerprint(copy).items() if copied.get(k) != v}
    assert {"airflow/airflow.db", "warehouse.db"} <= changed, sorted(changed)[:20]

    assert _fingerprint(original) == before, "a run on the copy changed the original"
    assert _mlops(demo_run, copy, "relocate", "--check").returncode == 0  # new writes name the copy
