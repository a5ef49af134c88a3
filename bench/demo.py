"""Benchmark: `mlops demo` in reference units, so that machines can be compared.

    .venv/bin/python bench/demo.py

The reference workload (issue 20): XGBoost ``hist``, 500,000 x 20 float32 features,
200 trees of depth 6, binary logistic, every core; its best of two fits is one
reference unit. Then ``mlops demo`` runs in a process of its own on a fresh state
(``$MLOPS_HOME/bench_demo``), as ``make demo`` runs it, and its wall time is printed
in seconds and in reference units beside its own time by DAG. The target is 42
units for ``make demo`` with the bootstrap of ``.venv`` from a warm package cache
(``time make demo`` on a fresh clone measures that; this script measures the demo alone).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TARGET_UNITS = 42


def reference_seconds(repeats: int = 2) -> float:
    """The best of ``repeats`` fits of the reference workload."""
    import numpy as np
    import xgboost as xgb

    rng = np.random.default_rng(0)
    features = rng.normal(size=(500_000, 20)).astype(np.float32)
    label = (features[:, 0] + 0.5 * features[:, 1] - features[:, 2] * features[:, 3] + rng.normal(size=500_000)) > 0
    data = xgb.DMatrix(features, label=label.astype(np.float32))
    params = {"tree_method": "hist", "objective": "binary:logistic", "max_depth": 6, "nthread": 0}
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        xgb.train(params, data, 200)
        best = min(best, time.perf_counter() - t0)
    return best


def demo_seconds(home: Path) -> tuple[float, str]:
    """`mlops demo` on a fresh state in ``home``: wall seconds and its `time by DAG` line."""
    shutil.rmtree(home, ignore_errors=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MLFLOW_", "MLOPS_"))}
    env |= {"MLOPS_HOME": str(home), "AIRFLOW_HOME": str(home / "airflow")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as `make demo` runs it
    t0 = time.perf_counter()
    done = subprocess.run([str(Path(sys.executable).parent / "mlops"), "demo"], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"mlops demo failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    by_dag = next((line for line in done.stdout.splitlines() if line.startswith("time by DAG:")), "")
    return wall, by_dag


def main() -> None:
    from pipelines import settings

    unit = reference_seconds()
    print(f"reference (XGBoost hist, 500k x 20, 200 trees, {os.cpu_count()} cores): {unit:.2f} s = 1 unit")
    wall, by_dag = demo_seconds(settings.mlops_home() / "bench_demo")
    print(f"mlops demo: {wall:.0f} s = {wall / unit:.1f} units (target for make demo, bootstrap included: "
          f"{TARGET_UNITS} units = {TARGET_UNITS * unit:.0f} s here)")  # fmt: skip
    print(by_dag)


if __name__ == "__main__":
    main()
